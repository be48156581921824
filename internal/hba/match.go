package hba

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Conn describes a connection attempt as the server sees it.
type Conn struct {
	User     string
	Database string
	// Local is a Unix-socket connection; otherwise Addr is the client.
	Local bool
	Addr  netip.Addr
	SSL   bool // TLS in use
	GSS   bool // GSSAPI encryption in use
	// Replication: a physical replication connection (replication=true),
	// which only "replication" database entries match. A logical one
	// (replication=database) matches like an ordinary connection.
	Replication bool
}

func (c Conn) String() string {
	src := "local socket"
	if !c.Local {
		src = c.Addr.String()
		switch {
		case c.SSL:
			src += " (TLS)"
		case c.GSS:
			src += " (GSS)"
		default:
			src += " (no TLS)"
		}
	}
	db := c.Database
	if c.Replication {
		db = "replication"
	}
	return fmt.Sprintf("user %q database %q from %s", c.User, db, src)
}

// Env answers what the file alone cannot: role membership (for +group and
// samerole) and the server host's own addresses (samehost, samenet). A nil
// answer function means "unknown", and matching then says what the result
// depends on instead of guessing.
type Env struct {
	// IsMember reports whether role is a member (directly or not, ignoring
	// INHERIT) of group, as is_member_of_role_nosuper does. Nonexistent
	// roles are members of nothing.
	IsMember func(role, group string) bool
	// RoleExists reports whether a role exists (a nonexistent user matches
	// no +group).
	RoleExists func(role string) bool
	// HostAddrs are the server's interface addresses with their netmasks.
	HostAddrs []netip.Prefix
	// Version selects the semantics (16+: regular expressions).
	Version int
}

// Result is what the server would do with a connection.
type Result struct {
	Matched bool  `json:"matched"`
	Rule    *Rule `json:"-"`
	// Depends lists what the answer hinges on when it could not be decided
	// (membership unknown, DNS lookups for host names); Rule is then the
	// first rule that may match.
	Depends []string `json:"depends,omitempty"`
	// Skipped lists earlier rules that might have matched (undecided).
	Skipped []*Rule `json:"-"`
}

// tri is a three-valued answer.
type tri int

const (
	no tri = iota
	yes
	maybe
)

func and(a, b tri) tri {
	if a == no || b == no {
		return no
	}
	if a == maybe || b == maybe {
		return maybe
	}
	return yes
}

// Match finds the first rule that accepts c, as check_hba does: the first
// line whose connection type, address, database and role all match wins;
// no match means the connection is refused.
func Match(rules []Rule, c Conn, env Env) Result {
	var res Result
	for i := range rules {
		r := &rules[i]
		m, why := matchRule(r, c, env)
		switch m {
		case yes:
			res.Matched, res.Rule = true, r
			return res
		case maybe:
			if res.Rule == nil {
				res.Rule = r
			}
			res.Depends = append(res.Depends, fmt.Sprintf("%s: %s", r.Location(), why))
			res.Skipped = append(res.Skipped, r)
		}
	}
	if len(res.Depends) > 0 {
		res.Rule = nil
	}
	return res
}

// matchRule decides one line.
func matchRule(r *Rule, c Conn, env Env) (tri, string) {
	if r.Type == Local {
		if !c.Local {
			return no, ""
		}
	} else {
		if c.Local {
			return no, ""
		}
		switch r.Type {
		case HostSSL:
			if !c.SSL {
				return no, ""
			}
		case HostNoSSL:
			if c.SSL {
				return no, ""
			}
		case HostGSSEnc:
			if !c.GSS {
				return no, ""
			}
		case HostNoGSSEnc:
			if c.GSS {
				return no, ""
			}
		}
		a, why := matchAddr(r, c.Addr, env)
		if a == no {
			return no, ""
		}
		d, whyD := matchDB(r, c, env)
		u, whyU := matchUser(r, c, env)
		res := and(a, and(d, u))
		return res, strings.Trim(strings.Join([]string{why, whyD, whyU}, "; "), "; ")
	}
	d, whyD := matchDB(r, c, env)
	u, whyU := matchUser(r, c, env)
	return and(d, u), strings.Trim(whyD+"; "+whyU, "; ")
}

// matchAddr compares the client address with the rule's.
func matchAddr(r *Rule, a netip.Addr, env Env) (tri, string) {
	switch r.AddrKind {
	case AddrAll:
		return yes, ""
	case AddrCIDR:
		if r.Bits >= 0 && r.Mask.IsValid() {
			// Contiguous mask: a prefix test, the common and fast case.
			p := netip.PrefixFrom(r.Addr, r.Bits)
			if r.Addr.Is4() && a.Is4In6() {
				a = a.Unmap()
			}
			return triOf(a.BitLen() == r.Addr.BitLen() && p.Contains(a)), ""
		}
		return triOf(addrIn(a, r.Addr, r.Mask)), ""
	case AddrHostname:
		return maybe, fmt.Sprintf("host name %q is resolved at connect time (reverse and forward DNS of the client)", r.Address)
	case AddrSameHost, AddrSameNet:
		if env.HostAddrs == nil {
			return maybe, r.AddrKind + " depends on the server host's interface addresses"
		}
		for _, p := range env.HostAddrs {
			if r.AddrKind == AddrSameHost {
				if addrIn(a, p.Addr(), maskFromBits(p.Addr().BitLen(), p.Addr().Is4())) {
					return yes, ""
				}
			} else if addrIn(a, p.Addr(), maskFromBits(p.Bits(), p.Addr().Is4())) {
				return yes, ""
			}
		}
		return no, ""
	}
	return no, ""
}

// addrIn applies the netmask the way check_ip does, including the
// promotion of an IPv4 rule for an IPv6 (IPv4-mapped) client.
func addrIn(client, addr, mask netip.Addr) bool {
	if !client.IsValid() || !addr.IsValid() || !mask.IsValid() {
		return false
	}
	if addr.Is4() && client.Is6() {
		if !client.Is4In6() {
			return false
		}
		client = client.Unmap()
	} else if addr.Is6() && client.Is4() {
		return false
	}
	c, a, m := client.AsSlice(), addr.AsSlice(), mask.AsSlice()
	if len(c) != len(a) || len(a) != len(m) {
		return false
	}
	for i := range c {
		if (c[i]^a[i])&m[i] != 0 {
			return false
		}
	}
	return true
}

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

// member asks the environment, or says the answer is unknown.
func member(env Env, role, group string) (tri, string) {
	if env.RoleExists != nil && !env.RoleExists(role) {
		return no, ""
	}
	if env.IsMember == nil {
		return maybe, fmt.Sprintf("depends on whether %q is a member of %q (no role information)", role, group)
	}
	return triOf(env.IsMember(role, group)), ""
}

// regexTok reports whether t is a regular expression (16+, leading
// slash, quoted or not) and compiles it; re is nil when the pattern uses ARE
// features RE2 lacks, and the match is then undecided.
func regexTok(t Token, env Env) (re *regexp.Regexp, isRegex bool) {
	if !strings.HasPrefix(t.Value, "/") || (env.Version != 0 && env.Version < 16) {
		return nil, false
	}
	re, _ = compileRegex(t.Value[1:])
	return re, true
}

// RegexMatch tells whether t is a regular expression on that major (16+:
// a leading slash, quoted or not) and, when it is, whether it matches
// name; decided is false when the pattern needs the server's engine.
func RegexMatch(t Token, major int, name string) (isRegex, matches, decided bool) {
	re, isRegex := regexTok(t, Env{Version: major})
	if !isRegex {
		return false, false, true
	}
	if re == nil {
		return true, false, false
	}
	return true, re.MatchString(name), true
}

func undecidedRegex(t Token) string {
	return fmt.Sprintf("regular expression %q uses features only the server's engine has: not decided here", t.Value)
}

// matchDB is check_db.
func matchDB(r *Rule, c Conn, env Env) (tri, string) {
	best, why := no, ""
	for _, t := range r.Databases {
		if c.Replication {
			if t.IsKeyword("replication") {
				return yes, ""
			}
			continue
		}
		switch {
		case t.IsKeyword("all"):
			return yes, ""
		case t.IsKeyword("sameuser"):
			if c.Database == c.User {
				return yes, ""
			}
		case t.IsKeyword("samegroup"), t.IsKeyword("samerole"):
			m, w := member(env, c.User, c.Database)
			if m == yes {
				return yes, ""
			}
			if m == maybe {
				best, why = maybe, w
			}
		case t.IsKeyword("replication"):
			continue
		default:
			if re, ok := regexTok(t, env); ok {
				if re == nil {
					best, why = maybe, undecidedRegex(t)
				} else if re.MatchString(c.Database) {
					return yes, ""
				}
				continue
			}
			if t.Value == c.Database {
				return yes, ""
			}
		}
	}
	return best, why
}

// matchUser is check_role.
func matchUser(r *Rule, c Conn, env Env) (tri, string) {
	best, why := no, ""
	for _, t := range r.Users {
		if !t.Quoted && strings.HasPrefix(t.Value, "+") {
			m, w := member(env, c.User, t.Value[1:])
			if m == yes {
				return yes, ""
			}
			if m == maybe {
				best, why = maybe, w
			}
			continue
		}
		if t.IsKeyword("all") {
			return yes, ""
		}
		if re, ok := regexTok(t, env); ok {
			if re == nil {
				best, why = maybe, undecidedRegex(t)
			} else if re.MatchString(c.User) {
				return yes, ""
			}
			continue
		}
		if t.Value == c.User {
			return yes, ""
		}
	}
	return best, why
}

// Decision is a three-valued match answer for callers outside the package.
type Decision int

// Decisions.
const (
	No Decision = iota
	Yes
	Maybe
)

// UserMatches decides a rule's role field for a user.
func UserMatches(r *Rule, c Conn, env Env) Decision {
	m, _ := matchUser(r, c, env)
	return Decision(m)
}

// DBMatches decides a rule's database field for a connection.
func DBMatches(r *Rule, c Conn, env Env) Decision {
	m, _ := matchDB(r, c, env)
	return Decision(m)
}

// SiteMatches decides a rule's connection type and address for a
// connection (names not considered).
func SiteMatches(r *Rule, c Conn, env Env) Decision {
	probe := *r
	probe.Databases = []Token{{Value: "all"}}
	probe.Users = []Token{{Value: "all"}}
	c.Replication = false
	m, _ := matchRule(&probe, c, env)
	return Decision(m)
}
