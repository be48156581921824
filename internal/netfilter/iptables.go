package netfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go4.org/netipx"
)

// iptables tables on a SYN's way to a local socket, with the hook
// priority each registers at (linux/netfilter_ipv4.h): raw and mangle
// can drop too; nat PREROUTING can redirect (then Unknown); nat INPUT
// only rewrites sources.
var iptHooks = map[string]struct {
	hook string
	prio int
}{
	"raw PREROUTING":    {"prerouting", -300},
	"mangle PREROUTING": {"prerouting", -150},
	"nat PREROUTING":    {"prerouting", -100},
	"mangle INPUT":      {"input", -150},
	"filter INPUT":      {"input", 0},
	"security INPUT":    {"input", 50},
}

// ParseIPTables reads iptables-save (v6 false) or ip6tables-save (v6
// true) output. name is used in errors and in where verdicts are decided
// ("iptables-save:12").
func ParseIPTables(name string, data []byte, v6 bool) (*Ruleset, error) {
	f, famName := fam4, "ip"
	if v6 {
		f, famName = fam6, "ip6"
	}
	r := &Ruleset{Source: "iptables"}
	var table string
	chains := map[string]*chain{}
	for n, line := range strings.Split(string(data), "\n") {
		ln := n + 1
		line = strings.TrimSpace(line)
		where := fmt.Sprintf("%s:%d", name, ln)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			if table == "" {
				return nil, fmt.Errorf("%s: table without a name", where)
			}
		case line == "COMMIT":
			table = ""
		case strings.HasPrefix(line, ":"):
			if table == "" {
				return nil, fmt.Errorf("%s: chain outside a table", where)
			}
			fs := strings.Fields(line[1:])
			if len(fs) < 2 {
				return nil, fmt.Errorf("%s: chain line needs a name and a policy", where)
			}
			tkey := famName + " " + table
			c := &chain{name: tkey + " " + fs[0], cname: fs[0], table: tkey, fam: f, where: where}
			if h, ok := iptHooks[table+" "+fs[0]]; ok {
				c.hook, c.prio, c.policy = h.hook, h.prio, Accept
				switch fs[1] {
				case "ACCEPT":
				case "DROP":
					c.policy = Drop
				default:
					return nil, fmt.Errorf("%s: policy %q", where, fs[1])
				}
			}
			chains[tkey+"\x00"+fs[0]] = c
			r.chains = append(r.chains, c)
		case strings.HasPrefix(line, "-A "):
			if table == "" {
				return nil, fmt.Errorf("%s: rule outside a table", where)
			}
			args, err := shellWords(line)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			if len(args) < 2 {
				return nil, fmt.Errorf("%s: -A without a chain", where)
			}
			c := chains[famName+" "+table+"\x00"+args[1]]
			if c == nil {
				return nil, fmt.Errorf("%s: chain %q is not declared", where, args[1])
			}
			// iptables-save declares a table's chains before its rules,
			// so every chain a -j may name is known here.
			isChain := func(name string) bool { return chains[famName+" "+table+"\x00"+name] != nil }
			ru, err := iptRule(args[2:], f, isChain)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			ru.where = where
			c.rules = append(c.rules, ru)
		default:
			return nil, fmt.Errorf("%s: not an iptables-save line: %q", where, trunc(line))
		}
	}
	if table != "" {
		return nil, fmt.Errorf("%s: table %s has no COMMIT", name, table)
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return r, nil
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// shellWords splits a line as iptables-restore does: blanks separate,
// double quotes group, a backslash escapes the next character.
func shellWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quoted := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case ch == '"':
			quoted = !quoted
			in = true
		case (ch == ' ' || ch == '\t') && !quoted:
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// iptRule reads the options of one -A line. isChain says whether a
// name is a chain of the rule's table: a -j to one is a jump, whatever
// its case (DOCKER-USER, PGAEGIS-PG).
func iptRule(args []string, f fam, isChain func(string) bool) (*rule, error) {
	ru := &rule{}
	neg := false
	tcp := false
	val := func(i int) (string, error) {
		if i+1 >= len(args) {
			return "", fmt.Errorf("%s needs a value", args[i])
		}
		return args[i+1], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "!" {
			neg = true
			continue
		}
		n := neg
		neg = false
		switch a {
		case "-s", "--source", "-d", "--destination":
			v, err := val(i)
			if err != nil {
				return nil, err
			}
			i++
			set, err := iptAddrs(v)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %v", a, v, err)
			}
			ru.conds = append(ru.conds, addrCond{src: a == "-s" || a == "--source", f: f, set: set, neg: n})
		case "-p", "--protocol":
			v, err := val(i)
			if err != nil {
				return nil, err
			}
			i++
			switch strings.ToLower(v) {
			case "tcp", "6":
				tcp = true
				ru.conds = append(ru.conds, constCond{!n})
			case "all", "0":
				ru.conds = append(ru.conds, constCond{!n})
			default:
				ru.conds = append(ru.conds, constCond{n})
			}
		case "-i", "--in-interface":
			v, err := val(i)
			if err != nil {
				return nil, err
			}
			i++
			ru.conds = append(ru.conds, ifCond{names: []string{v}, neg: n})
		case "-m", "--match":
			v, err := val(i)
			if err != nil {
				return nil, err
			}
			i++
			switch v {
			case "tcp", "multiport", "conntrack", "state", "comment":
			default:
				ru.conds = append(ru.conds, unknownCond{why: "match -m " + v})
			}
		case "--dport", "--destination-port", "--dports", "--destination-ports":
			v, err := val(i)
			if err != nil {
				return nil, err
			}
			i++
			rs, err := iptPorts(v)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %v", a, v, err)
			}
			ru.conds = append(ru.conds, portCond{tcp: tcp, ranges: rs, neg: n})
		case "--ctstate", "--state":
			v, err := val(i)
			if err != nil {
				return nil, err
			}
			i++
			in := false
			for _, s := range strings.Split(v, ",") {
				if s == "NEW" {
					in = true
				}
			}
			ru.conds = append(ru.conds, constCond{in != n})
		case "--comment":
			i++
		case "--syn":
			// A new connection's first packet is a SYN.
			ru.conds = append(ru.conds, constCond{!n})
		case "--tcp-flags":
			i += 2
			ru.conds = append(ru.conds, unknownCond{why: "option --tcp-flags"})
		case "-j", "--jump", "-g", "--goto":
			v, err := val(i)
			if err != nil {
				return nil, err
			}
			i++
			switch v {
			case "ACCEPT":
				ru.act = actAccept
			case "DROP":
				ru.act = actDrop
			case "REJECT":
				ru.act = actReject
			case "RETURN":
				ru.act = actReturn
			case "LOG", "NFLOG":
				ru.act = actNone
			default:
				if !isChain(v) && strings.ToUpper(v) == v {
					// A target extension (MARK, DNAT, CT, NOTRACK ...);
					// any other undeclared name fails as a jump below.
					ru.act, ru.why = actUnknown, "target "+v
				} else {
					ru.act, ru.target = actJump, v
					if a == "-g" || a == "--goto" {
						ru.act = actGoto
					}
				}
			}
			// The target's own options (--reject-with, --log-prefix)
			// follow; none changes whether the packet gets through.
			if ru.act != actUnknown && ru.act != actJump && ru.act != actGoto {
				return ru, nil
			}
			for i+1 < len(args) {
				i++
			}
		default:
			if strings.HasPrefix(a, "-") {
				if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					i++
				}
				ru.conds = append(ru.conds, unknownCond{why: "option " + a})
				continue
			}
			return nil, fmt.Errorf("unexpected word %q", trunc(a))
		}
	}
	return ru, nil
}

func iptAddrs(v string) (*netipx.IPSet, error) {
	var b netipx.IPSetBuilder
	for _, s := range strings.Split(v, ",") {
		if p, err := netip.ParsePrefix(s); err == nil {
			b.AddPrefix(p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			b.Add(a.Unmap())
		} else {
			return nil, fmt.Errorf("not an address or prefix (hostnames are resolved by iptables, never saved)")
		}
	}
	return b.IPSet()
}

func iptPorts(v string) ([]portRange, error) {
	var out []portRange
	for _, s := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(s, ":")
		l, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("port %q", s)
		}
		h := l
		if isRange {
			if h, err = strconv.ParseUint(hi, 10, 16); err != nil {
				return nil, fmt.Errorf("port %q", s)
			}
		}
		out = append(out, portRange{uint16(l), uint16(h)})
	}
	return out, nil
}
