package hbapolicy

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// Shadow is a line that can never match, and the earlier lines that
// together take every connection it would have taken.
type Shadow struct {
	Rule *hba.Rule
	// By is the earliest of Covers (moving Rule above it makes Rule live).
	By *hba.Rule
	// Covers are the earlier lines whose union covers Rule, in file
	// order: one line, or several when no single line does. No line can
	// be dropped from it (minimal by inclusion, not necessarily smallest;
	// past 64 lines, only greedy per cell).
	Covers []*hba.Rule
}

// Shadowed finds lines no connection can reach: covered by one earlier
// line, or by several together. It is sound (a reported line really never
// matches, whatever the roles and the host's interfaces) and conservative
// where the file alone cannot tell: +group membership, regular
// expressions, samerole, host names and samehost/samenet are proven
// covered only by "all" or by the identical token (for samehost/samenet
// and host names, also by covering every IPv4 and IPv6 address).
//
// Lines are looked up in indexes of the earlier ones (see shadowIndex), so
// the cost grows with the number of lines that could cover each line, not
// with the square of the file's length; the exact union check (see
// unionCover) runs only for lines no single line covers and whose first
// connection some earlier line takes.
func Shadowed(rules []hba.Rule) []Shadow {
	var out []Shadow
	x := newShadowIndex()
	x.rules = rules
	for j := range rules {
		r := &rules[j]
		if i, ok := firstCover(rules, x.candidates(r), r); ok {
			out = append(out, Shadow{Rule: r, By: &rules[i], Covers: []*hba.Rule{&rules[i]}})
		} else if cov := x.unionCover(rules, r); len(cov) > 0 {
			out = append(out, Shadow{Rule: r, By: cov[0], Covers: cov})
		}
		x.add(j, r)
	}
	return out
}

// Connection kinds: every connection is exactly one of these.
const (
	kindLocal = 1 << iota
	kindSSL   // TCP with TLS
	kindGSS   // TCP with GSSAPI encryption
	kindPlain // TCP, neither
)

func kinds(typ string) int {
	switch typ {
	case hba.Local:
		return kindLocal
	case hba.Host:
		return kindSSL | kindGSS | kindPlain
	case hba.HostSSL:
		return kindSSL
	case hba.HostNoSSL:
		return kindGSS | kindPlain // TLS and GSS encryption exclude each other
	case hba.HostGSSEnc:
		return kindGSS
	case hba.HostNoGSSEnc:
		return kindSSL | kindPlain
	}
	return 0
}

// typeCovers: every connection of type b is also of type a.
func typeCovers(a, b string) bool {
	ka, kb := kinds(a), kinds(b)
	return kb != 0 && ka&kb == kb
}

func covers(a, b *hba.Rule) bool {
	if !typeCovers(a.Type, b.Type) {
		return false
	}
	if a.Type != hba.Local && !addrCovers(a, b) {
		return false
	}
	return dbsCover(a.Databases, b.Databases) && usersCover(a.Users, b.Users)
}

func addrCovers(a, b *hba.Rule) bool {
	switch a.AddrKind {
	case hba.AddrAll:
		return true
	case hba.AddrCIDR:
		pa, ok := a.Prefix()
		if !ok || b.AddrKind != hba.AddrCIDR {
			return false
		}
		pb, ok := b.Prefix()
		if !ok {
			return false
		}
		if pa.Addr().Is4() && pb.Addr().Is4In6() && pb.Bits() >= 96 {
			// An IPv4 rule matches IPv4-mapped clients too.
			pb = netip.PrefixFrom(pb.Addr().Unmap(), pb.Bits()-96)
		}
		return pa.Addr().BitLen() == pb.Addr().BitLen() && pa.Bits() <= pb.Bits() && pa.Contains(pb.Addr())
	case hba.AddrSameHost, hba.AddrSameNet:
		return b.AddrKind == a.AddrKind || (a.AddrKind == hba.AddrSameNet && b.AddrKind == hba.AddrSameHost)
	}
	return false
}

func hasKeyword(ts []hba.Token, kw string) bool {
	for _, t := range ts {
		if t.IsKeyword(kw) {
			return true
		}
	}
	return false
}

// Token keys: two tokens with the same key match the same names. A key
// says nothing about how keys relate (a regular expression may match a
// literal, a role may be in a group): only "all" covers other keys.
const keyAll, keyRepl, keyOther = "all", "replication", "\x00other"

// userKey: "all", a group, a regular expression (16+; a literal name
// before, which the same key serves: identical text means the same
// match either way), or a literal name.
func userKey(t hba.Token) string {
	switch {
	case t.IsKeyword("all"):
		return keyAll
	case !t.Quoted && strings.HasPrefix(t.Value, "+"):
		return "group:" + t.Value[1:]
	case strings.HasPrefix(t.Value, "/"):
		return "regex:" + t.Value
	}
	return "name:" + t.Value
}

func dbKey(t hba.Token) string {
	if !t.Quoted {
		switch t.Value {
		case "all", "replication", "sameuser", "samerole", "samegroup":
			return t.Value
		}
	}
	if strings.HasPrefix(t.Value, "/") {
		return "regex:" + t.Value
	}
	return "name:" + t.Value
}

// userClasses are stand-ins for every role a line can match: a line
// naming "all" matches "a role no line names", and whatever covers that
// role covers every role (only "all" lines match it).
func userClasses(ts []hba.Token) []string {
	var out []string
	for _, t := range ts {
		k := userKey(t)
		if k == keyAll {
			return []string{keyOther}
		}
		out = append(out, k)
	}
	return out
}

// dbClasses likewise; physical replication is its own class ("all" does
// not match it).
func dbClasses(ts []hba.Token) []string {
	var out []string
	all, repl := false, false
	for _, t := range ts {
		switch k := dbKey(t); k {
		case keyAll:
			all = true
		case keyRepl:
			repl = true
		default:
			out = append(out, k)
		}
	}
	if all {
		out = []string{keyOther}
	}
	if repl {
		out = append(out, keyRepl)
	}
	return out
}

func userCoversClass(ts []hba.Token, class string) bool {
	for _, t := range ts {
		if k := userKey(t); k == keyAll || k == class {
			return true
		}
	}
	return false
}

func dbCoversClass(ts []hba.Token, class string) bool {
	for _, t := range ts {
		k := dbKey(t)
		if k == class || (k == keyAll && class != keyRepl) {
			return true
		}
	}
	return false
}

func dbsCover(a, b []hba.Token) bool {
	for _, c := range dbClasses(b) {
		if !dbCoversClass(a, c) {
			return false
		}
	}
	return true
}

func usersCover(a, b []hba.Token) bool {
	for _, c := range userClasses(b) {
		if !userCoversClass(a, c) {
			return false
		}
	}
	return true
}

// UnknownNames lists role and database names in rules that do not exist.
func UnknownNames(rules []hba.Rule, roleExists, dbExists func(string) bool) []string {
	var out []string
	for _, r := range rules {
		for _, t := range r.Users {
			name := t.Value
			if !t.Quoted && (isSpecial(t) && !strings.HasPrefix(name, "+")) {
				continue
			}
			if !t.Quoted && strings.HasPrefix(name, "+") {
				name = name[1:]
			}
			if !roleExists(name) {
				out = append(out, fmt.Sprintf("%s: role %q does not exist", r.Location(), name))
			}
		}
		for _, t := range r.Databases {
			if !t.Quoted && isSpecial(t) {
				continue
			}
			if !dbExists(t.Value) {
				out = append(out, fmt.Sprintf("%s: database %q does not exist", r.Location(), t.Value))
			}
		}
	}
	return out
}

// Latent reports whether a host rule's network cannot reach the server
// through its listen_addresses (it becomes live if the listener widens).
// listen is the list; loopbackOnly says the server listens on loopback only.
func Latent(r *hba.Rule, listen []string) bool {
	if r.Type == hba.Local || len(listen) == 0 {
		return false
	}
	for _, l := range listen {
		switch l {
		case "*", "0.0.0.0", "::":
			return false
		}
		if l != "localhost" && l != "127.0.0.1" && l != "::1" {
			return false // a real interface: anything may route to it
		}
	}
	// Loopback listener: only loopback clients can connect.
	switch r.AddrKind {
	case hba.AddrCIDR:
		p, ok := r.Prefix()
		if !ok {
			return false
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96))
		}
		lo4, lo6 := netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")
		return !p.Overlaps(lo4) && !p.Overlaps(lo6)
	case hba.AddrHostname:
		return r.Address != "localhost"
	}
	return false
}

// Access is one cell of the access space: who, to what, from where, how.
type Access struct {
	Role     string `json:"role"`
	Database string `json:"database"`
	Class    string `json:"connection"`
	Network  string `json:"network"`
	Method   string `json:"method"`
}

// Change is a difference in access between two files.
type Change struct {
	Access
	Before  string `json:"before"`
	After   string `json:"after"`
	Widens  bool   `json:"widens"`
	OldLine int    `json:"old_line,omitempty"`
	NewLine int    `json:"new_line,omitempty"`
}

// Diff compares what two files allow. The roles and databases compared
// are those named in either file plus any extra (typically the server's),
// and one stand-in for "a role/database not named anywhere".
func Diff(old, new []hba.Rule, env hba.Env, roles, dbs []string) []Change {
	roleSet := names(old, new, true, roles)
	dbSet := names(old, new, false, dbs)
	regions := Regions(env, old, new)
	var out []Change
	for _, role := range roleSet {
		for _, db := range append(dbSet, "") {
			repl := db == ""
			for _, cl := range Classes {
				cases := []Region{{Label: "socket"}}
				if !cl.Local {
					cases = regions
				}
				for _, rg := range cases {
					c := hba.Conn{User: role, Database: db, Local: cl.Local, SSL: cl.SSL, Addr: rg.Addr, Replication: repl}
					a, al := outcome(old, c, env)
					b, bl := outcome(new, c, env)
					if a == b {
						continue
					}
					dbName := db
					if repl {
						dbName = "(replication)"
					}
					out = append(out, Change{Access: Access{Role: role, Database: dbName, Class: cl.Name, Network: rg.Label, Method: b},
						Before: a, After: b, Widens: Strength(b) < Strength(a), OldLine: al, NewLine: bl})
				}
			}
		}
	}
	return out
}

func outcome(rules []hba.Rule, c hba.Conn, env hba.Env) (string, int) {
	res := hba.Match(rules, c, env)
	switch {
	case len(res.Depends) > 0:
		return "undecided", 0
	case !res.Matched:
		return "refused", 0
	}
	return res.Rule.Method, res.Rule.Line
}

// names collects role (or database) names from both files, plus extra,
// plus a stand-in for names no rule mentions.
func names(a, b []hba.Rule, users bool, extra []string) []string {
	set := map[string]bool{}
	for _, rules := range [][]hba.Rule{a, b} {
		for _, r := range rules {
			ts := r.Databases
			if users {
				ts = r.Users
			}
			for _, t := range ts {
				if !t.Quoted && isSpecial(t) {
					if users && strings.HasPrefix(t.Value, "+") {
						set[t.Value[1:]] = true
					}
					continue
				}
				set[t.Value] = true
			}
		}
	}
	for _, x := range extra {
		set[x] = true
	}
	if users {
		set["(any other role)"] = true
	} else {
		set["(any other database)"] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Guard refuses a new file under which the administrator's own
// connection would no longer be accepted (or would only be undecided).
func Guard(newRules []hba.Rule, current hba.Conn, env hba.Env) error {
	e := Explain(newRules, current, env)
	switch {
	case len(e.Depends) > 0:
		return fmt.Errorf("lockout guard: cannot tell whether your connection (%s) is still accepted: %s", e.Conn, strings.Join(e.Depends, "; "))
	case !e.Matched:
		return fmt.Errorf("lockout guard: no rule of the new file accepts your connection (%s): you would be locked out", e.Conn)
	case !e.Accepted:
		return fmt.Errorf("lockout guard: %s:%d rejects your connection (%s): you would be locked out", e.File, e.Line, e.Conn)
	}
	return nil
}

// isSpecial: tokens whose meaning depends on being unquoted.
func isSpecial(t hba.Token) bool {
	switch t.Value {
	case "all", "sameuser", "samerole", "samegroup", "replication":
		return true
	}
	return strings.HasPrefix(t.Value, "+") || strings.HasPrefix(t.Value, "/") || strings.HasPrefix(t.Value, "@")
}
