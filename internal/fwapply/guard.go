package fwapply

import (
	"fmt"
	"strconv"
	"strings"
)

// The guard refuses, before anything is loaded, a script that could cut
// off the operator's SSH or the session pgaegis itself uses. It does not
// evaluate arbitrary rulesets; it accepts only the shape pgaegis renders
// and refuses anything it cannot prove harmless:
//
//   - the script touches only pgaegis's own objects (nft: table inet
//     pgaegis; iptables: chain PGAEGIS-PG in the filter table, no policy);
//   - every drop/reject (nft also queue, and any policy drop or verdict
//     map) is confined to TCP destination ports that are not a kept port
//     (22, the server port of SSH_CONNECTION, Options.KeepPorts); for
//     iptables the jumps into the chain may confine it instead;
//   - an accept of established/related connections comes before the
//     first drop in each chain, so sessions already open (pgaegis's own, a client's)
//     survive the load.

// GuardError is a refusal by the guard, naming the script's line.
type GuardError struct {
	Line int
	Msg  string
}

func (e *GuardError) Error() string {
	if e.Line == 0 {
		return "refused: " + e.Msg
	}
	return fmt.Sprintf("refused: script line %d: %s", e.Line, e.Msg)
}

func refuse(line int, format string, a ...any) error {
	return &GuardError{Line: line, Msg: fmt.Sprintf(format, a...)}
}

// services are the port names the guard understands; any other name is
// refused because it cannot tell which port it means.
var services = map[string]int{"ssh": 22, "postgresql": 5432}

// portSpec is one value of a port match: N, N-M (nft) or N:M (iptables).
func portSpec(v string, keep []int) (bool, error) {
	lo, hi := v, v
	if a, b, ok := strings.Cut(v, "-"); ok {
		lo, hi = a, b
	} else if a, b, ok := strings.Cut(v, ":"); ok {
		lo, hi = a, b
	}
	l, err := portNum(lo, 0)
	if err != nil {
		return false, err
	}
	h, err := portNum(hi, 65535)
	if err != nil {
		return false, err
	}
	for _, k := range keep {
		if k >= l && k <= h {
			return true, nil
		}
	}
	return false, nil
}

func portNum(s string, empty int) (int, error) {
	if s == "" {
		return empty, nil
	}
	if n, ok := services[s]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("cannot tell which port %q is", s)
	}
	return n, nil
}

// nftStatements splits an nft script into statements with their line
// numbers: comments and quoted strings dropped, ';' and newlines end a
// statement, braces and commas are tokens of their own.
func nftStatements(script string) ([][]string, []int) {
	var stmts [][]string
	var lines []int
	for i, raw := range strings.Split(script, "\n") {
		var b strings.Builder
		inq := false
		for _, r := range raw {
			switch {
			case r == '"':
				inq = !inq
				if !inq {
					b.WriteString(`""`)
				}
			case inq:
			case r == '#':
				goto done
			case r == '{' || r == '}' || r == ',' || r == ';':
				b.WriteString(" " + string(r) + " ")
			default:
				b.WriteRune(r)
			}
		}
	done:
		var cur []string
		for _, f := range strings.Fields(b.String()) {
			if f == ";" {
				if len(cur) > 0 {
					stmts, lines = append(stmts, cur), append(lines, i+1)
				}
				cur = nil
				continue
			}
			cur = append(cur, f)
		}
		if len(cur) > 0 {
			stmts, lines = append(stmts, cur), append(lines, i+1)
		}
	}
	return stmts, lines
}

// GuardNFT checks an nft -f script (see the package's guard comment).
func GuardNFT(script []byte, keep []int) error {
	stmts, lines := nftStatements(string(script))
	depth := 0
	// established is per chain: an accept in the input chain does not
	// keep the sessions an output chain's drop would cut.
	established := map[string]bool{}
	chain := ""
	for n, st := range stmts {
		line := lines[n]
		switch {
		case st[0] == "chain" && len(st) > 1:
			chain = st[1]
		case (st[0] == "add" || st[0] == "insert") && len(st) > 4 && st[1] == "rule":
			chain = st[4]
		}
		if depth == 0 {
			if err := nftTopLevel(st, line); err != nil {
				return err
			}
		}
		d0 := depth
		for k, t := range st {
			switch t {
			case "table":
				if k+2 >= len(st) || st[k+1] != "inet" || st[k+2] != "pgaegis" {
					return refuse(line, "the script may change only table inet pgaegis")
				}
			case "{":
				depth++
			case "}":
				depth--
				// "} table ip filter {" starts another top-level command.
				if k+1 < len(st) && (depth == 0 && depth < d0 || commands[st[k+1]]) {
					if err := nftTopLevel(st[k+1:], line); err != nil {
						return err
					}
				}
			}
			if depth < 0 {
				return refuse(line, "unbalanced '}'")
			}
		}
		if has(st, "vmap") {
			return refuse(line, "a verdict map can drop any port; pgaegis's guard cannot prove it keeps SSH")
		}
		if i := index(st, "policy"); i >= 0 && i+1 < len(st) && st[i+1] != "accept" {
			return refuse(line, "policy %s drops every port, SSH included; pgaegis's ruleset must filter only the PostgreSQL port", st[i+1])
		}
		if isNFTEstablished(st) {
			established[chain] = true
			continue
		}
		if !has(st, "drop") && !has(st, "reject") && !has(st, "queue") {
			continue
		}
		if !established[chain] {
			return refuse(line, "a drop before any 'ct state established,related accept' in chain %s would cut sessions already open (pgaegis's own, an SSH login)", chain)
		}
		if err := nftConfined(st, line, keep); err != nil {
			return err
		}
	}
	if depth != 0 {
		return refuse(0, "unbalanced '{'")
	}
	return nil
}

var commands = map[string]bool{"add": true, "create": true, "insert": true, "replace": true, "delete": true, "destroy": true,
	"flush": true, "reset": true, "include": true, "define": true, "redefine": true, "undefine": true, "list": true}

// nftTopLevel allows only commands on table inet pgaegis.
func nftTopLevel(st []string, line int) error {
	ours := func(fam, name string) bool { return fam == "inet" && name == "pgaegis" }
	switch st[0] {
	case "table":
		if len(st) >= 3 && ours(st[1], st[2]) {
			return nil
		}
	case "add", "create", "insert", "replace", "delete", "destroy", "flush", "reset":
		if len(st) >= 2 && st[1] == "ruleset" {
			return refuse(line, "%s ruleset would touch every table, not only inet pgaegis", st[0])
		}
		if len(st) >= 4 && ours(st[2], st[3]) {
			return nil
		}
	case "}":
		return nil
	}
	return refuse(line, "%q: the script may change only table inet pgaegis", strings.Join(st, " "))
}

func isNFTEstablished(st []string) bool {
	i := index(st, "state")
	if i < 1 || st[i-1] != "ct" || st[len(st)-1] != "accept" || has(st, "!=") {
		return false
	}
	for _, t := range st[i+1:] {
		if t == "established" {
			return true
		}
	}
	return false
}

// nftConfined: the drop matches tcp dport with values none of which is
// a kept port.
func nftConfined(st []string, line int, keep []int) error {
	i := index(st, "dport")
	if i < 1 || (st[i-1] != "tcp" && st[i-1] != "th") || i+1 >= len(st) {
		return refuse(line, "this drop is not confined to a TCP destination port: it could drop SSH")
	}
	vals := []string{st[i+1]}
	if st[i+1] == "{" {
		vals = nil
		for _, t := range st[i+2:] {
			if t == "}" {
				break
			}
			if t != "," {
				vals = append(vals, t)
			}
		}
	}
	for _, v := range vals {
		if v == "!=" || strings.HasPrefix(v, "@") || strings.HasPrefix(v, "$") {
			return refuse(line, "dport %s: pgaegis's guard cannot tell which ports this drop covers", v)
		}
		hit, err := portSpec(v, keep)
		if err != nil {
			return refuse(line, "%v", err)
		}
		if hit {
			return refuse(line, "this drop covers port %s, a port kept for SSH (%s)", v, ports(keep))
		}
	}
	return nil
}

// GuardIPTables checks an iptables-restore --noflush script and the
// jumps into its chain.
func GuardIPTables(script []byte, jumps [][]string, keep []int) error {
	jumpsConfined := len(jumps) > 0
	for _, j := range jumps {
		if target(j) != Chain {
			return refuse(0, "jump %q: a jump must go to %s", strings.Join(j, " "), Chain)
		}
		if err := iptConfined(j, 0, keep); err != nil {
			if ge, ok := err.(*GuardError); ok && strings.Contains(ge.Msg, "kept for SSH") {
				return refuse(0, "jump %q sends SSH into %s", strings.Join(j, " "), Chain)
			}
			jumpsConfined = false
		}
	}
	table := ""
	established := false
	for i, raw := range strings.Split(string(script), "\n") {
		line := i + 1
		f := strings.Fields(raw)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case strings.HasPrefix(f[0], "*"):
			table = f[0][1:]
			if table != "filter" {
				return refuse(line, "table %s: the script may change only the filter table's chain %s", table, Chain)
			}
			continue
		case f[0] == "COMMIT":
			continue
		case strings.HasPrefix(f[0], ":"):
			if f[0][1:] != Chain {
				return refuse(line, "chain %s: the script may change only chain %s (a built-in chain's policy would drop SSH)", f[0][1:], Chain)
			}
			continue
		}
		if table == "" {
			return refuse(line, "a rule before any *filter line")
		}
		cmd := f[0]
		switch cmd {
		case "-A", "--append", "-I", "--insert", "-R", "--replace", "-D", "--delete", "-F", "--flush", "-Z", "--zero", "-N", "--new-chain", "-X", "--delete-chain":
		default:
			return refuse(line, "%s: the script may only add rules to %s", cmd, Chain)
		}
		if len(f) < 2 || f[1] != Chain {
			return refuse(line, "%q: the script may change only chain %s", raw, Chain)
		}
		switch target(f) {
		case "ACCEPT":
			if isIPTEstablished(f) {
				established = true
			}
		case "DROP", "REJECT", "QUEUE", "NFQUEUE":
			if !established {
				return refuse(line, "a drop before any RELATED,ESTABLISHED accept would cut sessions already open (pgaegis's own, an SSH login)")
			}
			if jumpsConfined {
				continue
			}
			if err := iptConfined(f, line, keep); err != nil {
				return err
			}
		}
	}
	return nil
}

func target(f []string) string {
	for i := len(f) - 2; i >= 0; i-- {
		if f[i] == "-j" || f[i] == "--jump" || f[i] == "-g" || f[i] == "--goto" {
			return f[i+1]
		}
	}
	return ""
}

func isIPTEstablished(f []string) bool {
	if has(f, "!") {
		return false
	}
	for i, t := range f {
		if (t == "--ctstate" || t == "--state") && i+1 < len(f) {
			for _, s := range strings.Split(f[i+1], ",") {
				if s == "ESTABLISHED" {
					return true
				}
			}
		}
	}
	return false
}

// iptConfined: -p tcp and --dport/--dports/--destination-port values,
// none negated or a kept port.
func iptConfined(f []string, line int, keep []int) error {
	if !(has(f, "-p") || has(f, "--protocol")) || !(has(f, "tcp") || has(f, "6")) {
		return refuse(line, "this drop is not confined to TCP: it could drop SSH")
	}
	found := false
	for i, t := range f {
		if t != "--dport" && t != "--dports" && t != "--destination-port" && t != "--destination-ports" {
			continue
		}
		if i > 0 && f[i-1] == "!" || i+1 >= len(f) || f[i+1] == "!" {
			return refuse(line, "a negated port match could drop SSH")
		}
		found = true
		for _, v := range strings.Split(f[i+1], ",") {
			hit, err := portSpec(v, keep)
			if err != nil {
				return refuse(line, "%v", err)
			}
			if hit {
				return refuse(line, "this drop covers port %s, a port kept for SSH (%s)", v, ports(keep))
			}
		}
	}
	if !found {
		return refuse(line, "this drop is not confined to a TCP destination port: it could drop SSH")
	}
	return nil
}

func has(f []string, s string) bool { return index(f, s) >= 0 }

func index(f []string, s string) int {
	for i, t := range f {
		if t == s {
			return i
		}
	}
	return -1
}

func ports(p []int) string {
	s := make([]string, len(p))
	for i, n := range p {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
