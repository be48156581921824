package apply

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/plan"
)

// ParsePath reads "ROLE@DB from ADDR [ssl]" or "ROLE@DB local" (--keep).
// The role is what precedes the last "@", so a role may hold "@"; DB
// "replication" is a physical replication connection.
func ParsePath(s string) (Path, error) {
	f := strings.Fields(s)
	bad := func(why string) (Path, error) {
		return Path{}, fmt.Errorf("--keep %q: %s; want \"ROLE@DB from ADDR [ssl]\" or \"ROLE@DB local\"", s, why)
	}
	if len(f) < 2 {
		return bad("too short")
	}
	at := strings.LastIndex(f[0], "@")
	if at <= 0 || at == len(f[0])-1 {
		return bad("no ROLE@DB")
	}
	p := Path{Role: f[0][:at], Database: f[0][at+1:]}
	switch strings.ToLower(f[1]) {
	case "local":
		if len(f) != 2 {
			return bad("nothing may follow \"local\"")
		}
		p.Local = true
	case "from":
		if len(f) < 3 || len(f) > 4 {
			return bad("\"from\" needs one address, then optionally \"ssl\"")
		}
		a, err := netip.ParseAddr(f[2])
		if err != nil {
			return bad(fmt.Sprintf("%q is not an IP address", f[2]))
		}
		p.Address = a.Unmap().String()
		if len(f) == 4 {
			if !strings.EqualFold(f[3], "ssl") {
				return bad(fmt.Sprintf("unexpected %q", f[3]))
			}
			p.SSL = true
		}
	default:
		return bad(fmt.Sprintf("unexpected %q", f[1]))
	}
	return p, nil
}

func (p Path) String() string {
	s := p.Role + "@" + p.Database
	if p.Local {
		s += " local"
		if p.OSUser != "" && p.OSUser != p.Role {
			s += " (OS user " + p.OSUser + ")"
		}
		return s
	}
	s += " from " + p.Address
	if p.SSL {
		s += " ssl"
	}
	return s
}

func (p Path) conn() hba.Conn {
	c := hba.Conn{User: p.Role, Database: p.Database, Local: p.Local, SSL: p.SSL && !p.Local}
	if p.Database == "replication" {
		c.Replication = true
	}
	if !p.Local {
		c.Addr, _ = netip.ParseAddr(p.Address)
	}
	return c
}

// verifier is what pg_authid holds for a role, classified on the server.
type verifier struct {
	kind    string // scram, md5, plain, none
	expired bool
}

// guard is the lockout guard: it decides, for each path, whether the
// candidate pg_hba.conf (and settings) still let it in.
type guard struct {
	env       hba.Env
	cur       []hba.Rule // the file in force now
	verifiers map[string]verifier
	identMaps []hba.IdentMap
	// op is the operator's own path; opNoPassword says pgaegis has no
	// password to answer a password challenge with.
	op           Path
	opNoPassword bool
	opNeedsTLS   bool
	// opTriesTLS: pgaegis's connection asks for TLS first (sslmode
	// prefer or stronger), so once ssl is on it arrives over TLS.
	opTriesTLS   bool
	opServerAddr string
	// hbaFile is the server's hba_file: lines of other (included) files
	// are named with their file.
	hbaFile string
}

// check returns why p would be locked out under the candidate rules, or "".
func (g *guard) check(p Path, rules []hba.Rule, stepID string, sslAfter bool) string {
	c := p.conn()
	if !sslAfter && c.SSL {
		if p == g.op && g.opNeedsTLS {
			return fmt.Sprintf("path %s: step %s turns ssl off and pgaegis connects with TLS required", p, stepID)
		}
		c.SSL = false // the client falls back to plain, if it may
	}
	// The operator's plain TCP session today, from a client that tries TLS
	// first: after a plan that turns ssl on, it reconnects (and is
	// verified) over TLS, so hostssl lines are what it meets.
	if sslAfter && !c.SSL && !c.Local && p == g.op && g.opTriesTLS {
		c.SSL = true
	}
	where := "step " + stepID
	res := hba.Match(rules, c, g.env)
	// An undecided line before the one that matches may be the one the
	// server picks: not proven.
	if len(res.Depends) > 0 {
		return fmt.Sprintf("path %s: %s: cannot prove the new pg_hba.conf lets it in (%s)", p, where, strings.Join(res.Depends, "; "))
	}
	if !res.Matched {
		return fmt.Sprintf("path %s: %s: no line of the new pg_hba.conf matches it, so it would be refused", p, where)
	}
	r := res.Rule
	at := fmt.Sprintf("%s: line %d %q", where, r.Line, r.Text)
	if g.hbaFile != "" && filepath.Clean(r.File) != filepath.Clean(g.hbaFile) {
		at = fmt.Sprintf("%s: %s %q", where, r.Location(), r.Text) // a line of an included file
	}
	if r.Method == "reject" {
		return fmt.Sprintf("path %s: %s rejects it", p, at)
	}
	// The same method and options as the line that lets it in today:
	// the authentication exchange does not change.
	if old := hba.Match(g.cur, c, g.env); old.Matched && old.Rule.Method == r.Method && sameOptions(old.Rule, r) && p == g.op {
		return ""
	}
	switch r.Method {
	case "trust":
		return ""
	case "peer":
		os := p.OSUser
		if os == "" {
			os = p.Role // --keep "ROLE@DB local": the OS user of that name
		}
		if m, ok := r.Option("map"); ok {
			if !g.identMaps0(m, os, p.Role) {
				return fmt.Sprintf("path %s: %s uses peer with map %q, which does not map OS user %q to role %q", p, at, m, os, p.Role)
			}
			return ""
		}
		if os != p.Role {
			return fmt.Sprintf("path %s: %s uses peer, and OS user %q is not role %q", p, at, os, p.Role)
		}
		return ""
	case "scram-sha-256", "md5", "password":
		if p == g.op && g.opNoPassword {
			return fmt.Sprintf("path %s: %s asks for a password (%s) and pgaegis has none to give", p, at, r.Method)
		}
		v, ok := g.verifiers[p.Role]
		switch {
		case g.verifiers == nil:
			return fmt.Sprintf("path %s: %s asks for a password (%s); pgaegis cannot read pg_authid (not a superuser) to see that role %q has one", p, at, r.Method, p.Role)
		case !ok || v.kind == "none":
			return fmt.Sprintf("path %s: %s asks for a password (%s) and role %q has none", p, at, r.Method, p.Role)
		case v.expired:
			return fmt.Sprintf("path %s: %s asks for a password (%s) and role %q's password has expired (rolvaliduntil)", p, at, r.Method, p.Role)
		case r.Method == "scram-sha-256" && v.kind == "md5":
			return fmt.Sprintf("path %s: %s needs a SCRAM verifier and role %q has only an md5 one", p, at, p.Role)
		}
		return ""
	case "cert":
		if !c.SSL || !p.ClientCert {
			return fmt.Sprintf("path %s: %s needs a client certificate and the path uses none", p, at)
		}
		return ""
	}
	return fmt.Sprintf("path %s: %s uses %s, which pgaegis cannot prove will accept it", p, at, r.Method)
}

func sameOptions(a, b *hba.Rule) bool {
	if len(a.Options) != len(b.Options) {
		return false
	}
	for i := range a.Options {
		if a.Options[i] != b.Options[i] {
			return false
		}
	}
	return true
}

// identMaps0 is check_ident_usermap for one map: does a line map the
// OS user to the role?
func (g *guard) identMaps0(name, osUser, role string) bool {
	for _, m := range g.identMaps {
		if m.Map != name {
			continue
		}
		if !m.Regex {
			if m.SystemUser == osUser && (m.PGUser == role || m.PGUser == "all") {
				return true
			}
			continue
		}
		re, err := regexp.Compile(m.SystemUser[1:])
		if err != nil {
			continue
		}
		sub := re.FindStringSubmatch(osUser)
		if sub == nil {
			continue
		}
		want := m.PGUser
		if strings.Contains(want, `\1`) && len(sub) > 1 {
			want = strings.Replace(want, `\1`, sub[1], 1)
		}
		if want == role || want == "all" {
			return true
		}
	}
	return false
}

// listenKeeps reports whether listen_addresses value v still serves a
// TCP path whose server-side address is serverAddr ("" unknown).
func listenKeeps(v, serverAddr string) bool {
	for _, a := range splitList(v) {
		a = strings.ToLower(a)
		switch a {
		case "*":
			return true
		case "0.0.0.0":
			if ip, err := netip.ParseAddr(serverAddr); err == nil && ip.Unmap().Is4() {
				return true
			}
		case "::":
			if ip, err := netip.ParseAddr(serverAddr); err == nil && ip.Is6() {
				return true
			}
		case "localhost":
			if ip, err := netip.ParseAddr(serverAddr); err == nil && ip.IsLoopback() {
				return true
			}
		}
		if serverAddr != "" && a == serverAddr {
			return true
		}
	}
	return false
}

// splitList splits a comma-separated setting (listen_addresses) into
// its items, the way plan.SplitList reads unquoted lists of names.
func splitList(v string) []string { return plan.SplitList("unix_socket_directories", v) }
