// Package hbapolicy reads pg_hba.conf as a policy: who can connect from
// where, to what, and how. It explains one connection, tabulates what a
// role can reach, finds lines that can never match, compares two versions
// of the file in terms of access, and guards against a file that would
// lock the administrator out. Matching itself is hba.Match.
package hbapolicy

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// EnvFromSnapshot answers membership from a snapshot's roles and
// memberships, and samehost/samenet from this host's interfaces when the
// snapshot was taken on the database host.
func EnvFromSnapshot(s *snapshot.Snapshot) hba.Env {
	env := hba.Env{Version: s.MajorVersion()}
	if s.Roles != nil && s.Gap(snapshot.GapRoles) == "" && s.Gap(snapshot.GapMemberships) == "" {
		exists := map[string]bool{}
		for _, r := range s.Roles {
			exists[r.Name] = true
		}
		parents := map[string][]string{}
		for _, m := range s.Memberships {
			parents[m.Member] = append(parents[m.Member], m.Role)
		}
		env.RoleExists = func(r string) bool { return exists[r] }
		// Each role's closure is computed once: matrices ask millions of times.
		closure := map[string]map[string]bool{}
		env.IsMember = func(role, group string) bool {
			if !exists[role] || !exists[group] {
				return false
			}
			up, ok := closure[role]
			if !ok {
				up = map[string]bool{role: true}
				queue := []string{role}
				for len(queue) > 0 {
					cur := queue[0]
					queue = queue[1:]
					for _, p := range parents[cur] {
						if !up[p] {
							up[p] = true
							queue = append(queue, p)
						}
					}
				}
				closure[role] = up
			}
			return up[group]
		}
	}
	if s.Target.OnHost {
		env.HostAddrs = LocalAddrs()
	}
	return env
}

// LocalAddrs lists this host's interface addresses with their netmasks.
func LocalAddrs() []netip.Prefix {
	var out []netip.Prefix
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Explanation is the answer for one connection.
type Explanation struct {
	Conn    string            `json:"connection"`
	Matched bool              `json:"matched"`
	File    string            `json:"file,omitempty"`
	Line    int               `json:"line,omitempty"`
	Text    string            `json:"text,omitempty"`
	Method  string            `json:"method,omitempty"`
	Options map[string]string `json:"options"`
	// Accepted: matched a rule whose method is not reject (the connection
	// then still has to authenticate).
	Accepted bool `json:"accepted"`
	// Depends lists what the answer hinges on, when it is not decided.
	Depends []string `json:"depends,omitempty"`
	Summary string   `json:"summary"`
}

// Explain says which rule the server would apply to c.
func Explain(rules []hba.Rule, c hba.Conn, env hba.Env) Explanation {
	res := hba.Match(rules, c, env)
	e := Explanation{Conn: c.String(), Depends: res.Depends, Options: map[string]string{}}
	switch {
	case len(res.Depends) > 0:
		e.Summary = "undecided: the answer depends on " + strings.Join(res.Depends, "; ")
	case !res.Matched:
		e.Summary = "no rule matches: the server refuses the connection (\"no pg_hba.conf entry\")"
	default:
		r := res.Rule
		e.Matched, e.File, e.Line, e.Text, e.Method = true, r.File, r.Line, r.Text, r.Method
		for _, o := range r.Options {
			e.Options[o.Name] = o.Value
		}
		e.Accepted = r.Method != "reject"
		if e.Accepted {
			e.Summary = fmt.Sprintf("%s:%d matches: %s authentication", r.File, r.Line, r.Method)
		} else {
			e.Summary = fmt.Sprintf("%s:%d matches: the connection is rejected", r.File, r.Line)
		}
	}
	return e
}

// Region is a set of client addresses that every rule treats alike,
// named by the narrowest rule network containing it.
type Region struct {
	Name  string
	Addr  netip.Addr // a representative address
	Size  float64    // addresses in the naming network (for "widest")
	Label string     // "10.0.0.0/8", "any other IPv4 address", ...
}

// Regions derives the address regions of a set of files: one per network
// named in a rule (its first address), one per samehost/samenet address
// when the host's addresses are known, and "any other" IPv4 and IPv6.
func Regions(env hba.Env, ruleSets ...[]hba.Rule) []Region {
	var prefixes []netip.Prefix
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix) {
		p = p.Masked()
		if !seen[p] {
			seen[p] = true
			prefixes = append(prefixes, p)
		}
	}
	for _, rules := range ruleSets {
		for _, r := range rules {
			if p, ok := r.Prefix(); ok {
				if p.Addr().Is4In6() && p.Bits() >= 96 {
					p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
				}
				add(p)
			}
		}
	}
	for _, p := range env.HostAddrs {
		add(netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
		add(p)
	}
	var out []Region
	for _, p := range prefixes {
		out = append(out, Region{Name: p.String(), Addr: p.Addr(), Size: size(p), Label: p.String()})
	}
	other4, other6 := netip.MustParseAddr("198.51.100.77"), netip.MustParseAddr("2001:db8:ff::77")
	out = append(out, Region{Name: "0.0.0.0/0", Addr: other4, Size: size(netip.MustParsePrefix("0.0.0.0/0")), Label: "any other IPv4 address"},
		Region{Name: "::/0", Addr: other6, Size: size(netip.MustParsePrefix("::/0")), Label: "any other IPv6 address"})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Size < out[j].Size })
	return out
}

func size(p netip.Prefix) float64 {
	n := 1.0
	for i := 0; i < p.Addr().BitLen()-p.Bits(); i++ {
		n *= 2
	}
	return n
}

// ConnClass is a kind of connection: socket, TCP with or without TLS.
type ConnClass struct {
	Name  string
	Local bool
	SSL   bool
}

// Classes are the connection kinds pgaegis tabulates (GSS encryption is
// not modelled in tables; hba explain --gss answers for it).
var Classes = []ConnClass{{"local", true, false}, {"host TLS", false, true}, {"host no-TLS", false, false}}

// ReachRow is one line of the "who can reach what" view.
type ReachRow struct {
	Class   string `json:"connection"`
	Network string `json:"network"`
	Method  string `json:"method"` // "refused" when nothing matches
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Depends string `json:"depends,omitempty"`
}

// Reach tabulates how user reaches database: for each connection class and
// address region, the method (or refusal) and the rule.
func Reach(rules []hba.Rule, user, db string, replication bool, env hba.Env) []ReachRow {
	var rows []ReachRow
	regions := Regions(env, rules)
	// Lines whose database or role field can never match this user and
	// database cannot decide any row: matching each row against the rest
	// only keeps a table over a large file from costing lines × regions.
	who := hba.Conn{User: user, Database: db, Replication: replication}
	var applicable []hba.Rule
	for i := range rules {
		if hba.UserMatches(&rules[i], who, env) != hba.No && hba.DBMatches(&rules[i], who, env) != hba.No {
			applicable = append(applicable, rules[i])
		}
	}
	all := rules
	rules = applicable
	for _, cl := range Classes {
		if cl.Local {
			rows = append(rows, reachRow(rules, hba.Conn{User: user, Database: db, Local: true, Replication: replication}, cl.Name, "socket", env))
			continue
		}
		for _, rg := range regions {
			c := hba.Conn{User: user, Database: db, Addr: rg.Addr, SSL: cl.SSL, Replication: replication}
			rows = append(rows, reachRow(rules, c, cl.Name, rg.Label, env))
		}
	}
	for i := range all {
		if all[i].AddrKind == hba.AddrHostname {
			rows = append(rows, ReachRow{Class: all[i].Type, Network: "host " + all[i].Address, Method: all[i].Method,
				File: all[i].File, Line: all[i].Line, Depends: "DNS at connect time"})
		}
	}
	return rows
}

func reachRow(rules []hba.Rule, c hba.Conn, class, network string, env hba.Env) ReachRow {
	res := hba.Match(rules, c, env)
	row := ReachRow{Class: class, Network: network, Method: "refused"}
	switch {
	case len(res.Depends) > 0:
		row.Method = "undecided"
		row.Depends = strings.Join(res.Depends, "; ")
	case res.Matched:
		row.Method, row.File, row.Line = res.Rule.Method, res.Rule.File, res.Rule.Line
	}
	return row
}

// Strength orders methods from no access (0) to strongest; a higher
// number is better. trust is the weakest way in.
func Strength(method string) int {
	switch method {
	case "refused", "reject", "undecided", "":
		return 100
	case "trust":
		return 1
	case "password":
		return 2
	case "ident":
		return 3
	case "md5":
		return 4
	case "pam", "ldap", "radius", "bsd":
		return 5
	case "scram-sha-256", "peer":
		return 6
	case "gss", "sspi", "cert":
		return 7
	}
	return 5
}

// Accepts reports whether a method lets the connection proceed.
func Accepts(method string) bool { return Strength(method) < 100 }
