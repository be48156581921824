package rules

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/hbapolicy"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// hbaRules returns the pg_hba.conf rules, or reports the rule as not
// checked when they could not be read.
func (c *Check) hbaRules() ([]hba.Rule, bool) {
	if c.S.HBA == nil {
		reason := c.S.Gap(snapshot.GapHBA)
		if reason == "" {
			reason = "pg_hba.conf was not read (give --hba-file or --pgdata, or audit as a superuser)"
		}
		c.NotChecked("pg_hba.conf", reason)
		return nil, false
	}
	return c.S.HBA.Rules, true
}

func hbaObject(r *hba.Rule) string { return "hba rule: " + hbaEvidence(r) }

// hbaEvidence is the line as written, whitespace collapsed.
func hbaEvidence(r *hba.Rule) string { return strings.Join(strings.Fields(r.Text), " ") }

// loopbackOnly reports whether a host rule can only match connections from
// this host's loopback addresses.
func loopbackOnly(r *hba.Rule) bool {
	switch r.AddrKind {
	case hba.AddrCIDR:
		p, ok := r.Prefix()
		if !ok {
			return false
		}
		lo4 := netip.MustParsePrefix("127.0.0.0/8")
		if p.Addr().Is4() {
			return p.Bits() >= 8 && lo4.Contains(p.Addr())
		}
		if p.Addr().Is4In6() {
			return p.Bits() >= 104 && lo4.Contains(p.Addr().Unmap())
		}
		return p.Bits() == 128 && p.Addr() == netip.IPv6Loopback()
	case hba.AddrSameHost:
		return false // the host's public addresses count too
	case hba.AddrHostname:
		return r.Address == "localhost"
	}
	return false
}

// addressWidth classifies how much of the network a host rule admits.
func addressWidth(r *hba.Rule) (desc string, sev Severity, wide bool) {
	switch r.AddrKind {
	case hba.AddrAll:
		return "any address", High, true
	case hba.AddrSameNet:
		return "every host on the server's subnets (samenet)", Medium, true
	case hba.AddrCIDR:
		p, ok := r.Prefix()
		if !ok {
			return "a non-contiguous netmask", Medium, true
		}
		bits, limit := p.Bits(), 16
		if p.Addr().Is6() && !p.Addr().Is4In6() {
			limit = 48
		}
		switch {
		case bits == 0:
			return p.String() + " (any address)", High, true
		case bits < limit:
			return fmt.Sprintf("%s (%s addresses)", p.String(), sizeOf(p)), Medium, true
		}
	}
	return "", Info, false
}

func sizeOf(p netip.Prefix) string {
	host := p.Addr().BitLen() - p.Bits()
	if host >= 63 {
		return fmt.Sprintf("2^%d", host)
	}
	n := uint64(1) << host
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%d billion", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d million", n>>20)
	}
	return fmt.Sprint(n)
}

// replaceLine is the problem for one rule (object, location, evidence)
// with a fix that rewrites it with another method (and, for TCP, hostssl).
func replaceLine(r *hba.Rule, typ, method string) Problem {
	fields := strings.Fields(r.Text)
	if len(fields) == 0 {
		fields = []string{r.Type}
	}
	fields[0] = typ
	// Replace the method field itself, not the first matching word: a
	// role or database may be named like a method ("host all md5 ...").
	start := 4
	if r.Type == "local" {
		start = 3
	}
	for i := start; i < len(fields); i++ {
		if fields[i] == r.Method || r.Method == "peer" && fields[i] == "ident" {
			fields[i] = method
			if method != r.Method {
				// Options of the old method would make the server
				// refuse the line ("map" with scram-sha-256).
				kept := fields[:i+1]
				for j, o := range fields[i+1:] {
					if strings.HasPrefix(o, "#") {
						kept = append(kept, fields[i+1+j:]...)
						break
					}
					name, _, _ := strings.Cut(o, "=")
					if name == "clientcert" && typ == hba.HostSSL || name == "map" && (method == "peer" || method == "cert" || method == "ident") {
						kept = append(kept, o)
					}
				}
				fields = kept
			}
			break
		}
	}
	text := strings.Join(fields, " ")
	return Problem{Object: hbaObject(r), Location: r.Location(), Evidence: hbaEvidence(r),
		Fix: fmt.Sprintf("%s    # replaces %s, then reload", text, textsafe.String(r.Location())), FixKind: FixConfig, FixApply: "reload",
		Changes: []remedy.Change{{HBA: lineEdit(r, typ, method)}}}
}

// lineEdit asks for line r to have type typ and method method; what it
// already has is left out, so that the planner's composition only sees
// real requests.
func lineEdit(r *hba.Rule, typ, method string) *remedy.HBAEdit {
	e := &remedy.HBAEdit{File: r.File, Line: r.Line}
	if typ != r.Type {
		e.Type = typ
	}
	if method != r.Method {
		e.Method = method
	}
	return e
}

// manualChange is a remedy a person must carry out.
func manualChange(what string) []remedy.Change { return []remedy.Change{{Manual: what}} }

func tcpType(r *hba.Rule) string {
	if r.Type == hba.Local {
		return hba.Local
	}
	return hba.HostSSL
}

// userCouldBe reports whether a rule's user list can match role: "yes",
// "no", or "maybe" when it depends on something we cannot see.
func userCouldBe(s *snapshot.Snapshot, r *hba.Rule, role string) string {
	res := "no"
	for _, t := range r.Users {
		switch {
		case strings.HasPrefix(t.Value, "/") && s.MajorVersion() >= 16:
			// A regular expression (quoted or not, as the server reads
			// it), never compared as a name, even to a role named so.
			switch _, m, decided := hba.RegexMatch(t, s.MajorVersion(), role); {
			case !decided:
				res = "maybe"
			case m:
				return "yes"
			}
		case t.IsKeyword("all"), t.Value == role && !strings.HasPrefix(t.Value, "+"):
			return "yes"
		case !t.Quoted && strings.HasPrefix(t.Value, "+"):
			switch memberOf(s, role, t.Value[1:]) {
			case "yes":
				return "yes"
			case "maybe":
				res = "maybe"
			}
		case t.Value == role:
			return "yes"
		}
	}
	return res
}

// memberOf answers whether role is a (transitive) member of group, as the
// server's is_member_of_role does for +group (inheritance ignored).
func memberOf(s *snapshot.Snapshot, role, group string) string {
	if role == group {
		return "yes"
	}
	if s.Gap(snapshot.GapMemberships) != "" || (s.Memberships == nil && s.Server == nil) {
		return "maybe"
	}
	seen := map[string]bool{role: true}
	queue := []string{role}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range s.Memberships {
			if m.Member == cur && !seen[m.Role] {
				if m.Role == group {
					return "yes"
				}
				seen[m.Role] = true
				queue = append(queue, m.Role)
			}
		}
	}
	return "no"
}

func onlyReplication(r *hba.Rule) bool {
	for _, t := range r.Databases {
		if !t.IsKeyword("replication") {
			return false
		}
	}
	return true
}

func hasReplication(r *hba.Rule) bool {
	for _, t := range r.Databases {
		if t.IsKeyword("replication") {
			return true
		}
	}
	return false
}

func allTokens(ts []hba.Token) bool {
	for _, t := range ts {
		if t.IsKeyword("all") {
			return true
		}
	}
	return false
}

func init() {
	register(&Rule{
		ID: "AUTH-01", Title: "No trust authentication for TCP connections", Area: AreaAuth, Severity: Critical,
		Rationale:  "trust lets anyone who can reach the port log in as any matching role, superusers included, with no password.",
		References: refs(cis("5.3", "5.4"), devsec("postgres-13", "postgres-14")),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				if r.IsHost() && r.Method == "trust" {
					p := replaceLine(r, hba.HostSSL, "scram-sha-256")
					p.Expected = "scram-sha-256 (or cert) over hostssl; never trust over TCP"
					c.Fail(p)
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-02", Title: "No password or md5 authentication methods", Area: AreaAuth, Severity: High,
		Rationale:  "password sends the password in clear text; md5 is replayable from a stolen hash and deprecated since PostgreSQL 18. scram-sha-256 resists both.",
		References: refs(cis("5.4"), stig("V-233519"), devsec("postgres-14")),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				if r.Method == "password" || r.Method == "md5" {
					p := replaceLine(r, tcpType(r), "scram-sha-256")
					if r.Method == "md5" && c.S.MajorVersion() >= 18 {
						p.Evidence += " (md5 authentication is deprecated in PostgreSQL 18 and will be removed in a later major)"
					}
					p.Expected = "scram-sha-256 (roles need SCRAM verifiers first: set password_encryption = scram-sha-256 and reset their passwords)"
					if r.Method == "password" && r.IsHost() && r.Type != hba.HostSSL {
						p.Severity, p.SevSet = Critical, true // clear-text password on a possibly unencrypted connection
					}
					c.Fail(p)
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-03", Title: "ident is not used for TCP connections", Area: AreaAuth, Severity: High,
		Rationale:  "ident over TCP asks the client host who the user is: any host that runs its own ident daemon can claim to be anyone.",
		References: cis("5.4"),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				if r.IsHost() && r.Method == "ident" {
					p := replaceLine(r, hba.HostSSL, "scram-sha-256")
					p.Expected = "scram-sha-256 or cert"
					c.Fail(p)
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-04", Title: "Unix-socket rules use peer or scram-sha-256", Area: AreaAuth, Severity: Medium,
		Rationale:  "local trust lets every OS account on the host connect as any role, including the superuser.",
		References: refs(cis("5.3"), devsec("postgres-13")),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				if r.Type == hba.Local && (r.Method == "trust" || r.Method == "password" || r.Method == "md5") {
					p := replaceLine(r, hba.Local, "peer")
					p.Expected = "peer (with a map where OS and role names differ) or scram-sha-256"
					if r.Method == "trust" && allTokens(r.Users) {
						p.Severity, p.SevSet = High, true
					}
					c.Fail(p)
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-05", Title: "TCP rules require TLS (hostssl); host and hostnossl only reject", Area: AreaAuth, Severity: High,
		Rationale: "A host or hostnossl rule accepts unencrypted connections: credentials and data can be read or altered on the way. " +
			"oauth (PostgreSQL 18) sends a bearer token that logs in as whoever holds it: on a line that admits connections without TLS it is critical (the token can be replayed), and it is strong only on hostssl. " +
			"An oauth line also needs a validator (oauth_validator_libraries, or validator= on the line): without one the server reports the line as an error (AUTH-18: \"oauth_validator_libraries must be set for authentication method oauth\", and the server then refuses to load the whole file); servers before 18 do not know the method and refuse the whole file (AUTH-18).",
		References: refs(cis("5.4"), devsec("postgres-15")),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				if (r.Type == hba.Host || r.Type == hba.HostNoSSL || r.Type == hba.HostNoGSSEnc) && r.Method != "reject" {
					p := replaceLine(r, hba.HostSSL, r.Method)
					p.Evidence += " (accepts connections without TLS)"
					p.Expected = "hostssl (or hostgssenc); host/hostnossl lines only with reject"
					switch {
					case r.Method == "oauth" && loopbackOnly(r):
						p.Severity, p.SevSet = Medium, true
						p.Evidence += "; loopback only, but the OAuth bearer token crosses it in clear"
					case r.Method == "oauth":
						p.Severity, p.SevSet = Critical, true
						p.Evidence += "; the OAuth bearer token crosses the network in clear and can be replayed"
					case loopbackOnly(r):
						p.Severity, p.SevSet = Low, true
						p.Evidence += "; loopback only"
					}
					c.Fail(p)
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-06", Title: "Client address ranges are narrow", Area: AreaAuth, Severity: High,
		Rationale:  "A rule for 0.0.0.0/0 lets the whole internet try passwords (or walk in, with trust) wherever the port is reachable.",
		References: cis("5.4"),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				if !r.IsHost() || r.Method == "reject" {
					continue
				}
				if desc, sev, wide := addressWidth(r); wide {
					c.Fail(Problem{Object: hbaObject(r), Location: r.Location(),
						Evidence: fmt.Sprintf("%s admits %s", hbaEvidence(r), desc),
						Expected: "the client networks that need access (e.g. 10.1.2.0/24)",
						Fix:      fmt.Sprintf("narrow the address of %s to the application subnets, then reload", r.Location()),
						FixKind:  FixConfig, FixApply: "reload", Severity: sev, SevSet: true,
						// Which networks need access is known only to the operator.
						Changes: manualChange(fmt.Sprintf("narrow the address of %s to the client networks that need it (only you know them), then reload", textsafe.String(r.Location())))})
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-07.final-reject", Title: "pg_hba.conf ends with an explicit reject for everything else", Area: AreaAuth, Severity: Medium,
		Rationale:  "A final 'reject' line makes the policy explicit and keeps later edits from accidentally widening access through fall-through order.",
		References: stig("V-233520", "V-233612"),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			var v4, v6 bool
			for i := len(rules) - 1; i >= 0; i-- {
				r := &rules[i]
				if !r.IsHost() {
					continue
				}
				if r.Method != "reject" || !allTokens(r.Databases) || !allTokens(r.Users) {
					break
				}
				if r.Type != hba.Host {
					continue // only "host" covers every TCP connection
				}
				switch r.AddrKind {
				case hba.AddrAll:
					v4, v6 = true, true
				case hba.AddrCIDR:
					if p, ok := r.Prefix(); ok && p.Bits() == 0 {
						if p.Addr().Is4() {
							v4 = true
						} else {
							v6 = true
						}
					}
				}
			}
			if v4 && v6 {
				c.Pass("pg_hba.conf", "ends with reject for all addresses")
				return
			}
			path := c.S.HBA.Path
			var add []string
			if !v4 {
				add = append(add, "host all all 0.0.0.0/0 reject")
			}
			if !v6 {
				add = append(add, "host all all ::/0 reject")
			}
			c.Fail(Problem{Object: "pg_hba.conf", Location: path,
				Evidence: "no final reject line covering every address (IPv4 and IPv6) for all databases and users",
				Expected: "last lines: host all all 0.0.0.0/0 reject / host all all ::/0 reject",
				Fix:      "host all all 0.0.0.0/0 reject\nhost all all ::/0 reject    # append to " + textsafe.String(path) + ", then reload",
				FixKind:  FixConfig, FixApply: "reload",
				// Lines at the end only meet connections nothing else
				// matched: the server rejected those already, so this
				// cannot lock anyone out.
				Changes: []remedy.Change{{HBA: &remedy.HBAEdit{File: path, Append: add}}}})
		},
	})

	register(&Rule{
		ID: "AUTH-08", Title: "Superusers cannot log in from the network", Area: AreaAuth, Severity: High,
		Rationale:  "A superuser password that works from the network is one phishing mail or reused password away from full control of the server and its host.",
		References: []Reference{{"pgdsat", "5.11"}},
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			if c.S.Gap(snapshot.GapRoles) != "" || (c.S.Roles == nil && c.S.Server == nil) {
				c.NotChecked("superusers", "roles were not collected (needs a live server or a snapshot)")
				return
			}
			for _, role := range c.S.Roles {
				if !role.Superuser || !role.CanLogin {
					continue
				}
				var hit *hba.Rule
				for i := range rules {
					r := &rules[i]
					if !r.IsHost() || onlyReplication(r) || loopbackOnly(r) {
						continue
					}
					m := userCouldBe(c.S, r, role.Name)
					if m == "no" {
						continue
					}
					if r.Method == "reject" {
						if m == "yes" && allTokens(r.Databases) && (r.AddrKind == hba.AddrAll || isAnyPrefix(r)) {
							break // everything after is shadowed for this role
						}
						continue
					}
					hit = r
					break
				}
				if hit != nil {
					c.Fail(Problem{Object: "role " + role.Name, Location: hit.Location(),
						Evidence: fmt.Sprintf("superuser %q matches %s (method %s)", role.Name, hbaEvidence(hit), hit.Method),
						Expected: "superusers connect only through the local socket (peer); a reject line for them before any network rule",
						Fix:      superuserReject(role.Name, hit, rules),
						FixKind:  FixConfig, FixApply: "reload", Changes: superuserRejectChange(role.Name, hit, rules)})
				} else {
					c.Pass("role "+role.Name, "no network rule accepts this superuser")
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-18", Title: "pg_hba.conf and pg_ident.conf load without errors", Area: AreaAuth, Severity: Medium,
		Rationale:  "The server refuses to load an authentication file with an error and keeps the old rules: what is on disk is not what is enforced, and the next restart fails.",
		References: []Reference{{"check_pgactivity", "#157"}},
		Check: func(c *Check) {
			if c.S.HBA == nil && c.S.Ident == nil {
				c.NotChecked("pg_hba.conf", "the authentication files were not read")
				return
			}
			var errs []hba.ParseError
			if c.S.HBA != nil {
				errs = append(errs, c.S.HBA.Errors...)
			}
			if c.S.Ident != nil {
				errs = append(errs, c.S.Ident.Errors...)
			}
			for _, e := range errs {
				c.Fail(Problem{Object: "file " + e.File, Location: fmt.Sprintf("%s:%d", e.File, e.Line), Evidence: e.Error(),
					Expected: "no errors", Fix: fmt.Sprintf("correct line %d of %s, then reload", e.Line, e.File), FixKind: FixConfig, FixApply: "reload",
					Changes: manualChange(fmt.Sprintf("correct line %d of %s (what the line meant is not knowable), then reload", e.Line, textsafe.String(e.File)))})
			}
		},
	})

	register(&Rule{
		ID: "REPL-04", Title: "Replication rules are limited to the replication role and standby addresses", Area: AreaAuth, Severity: High,
		Rationale:  "A replication connection can stream every byte of the cluster; 'replication all 0.0.0.0/0' offers that to any role from anywhere.",
		References: cis("7.1"),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				if !hasReplication(r) || r.Method == "reject" || (r.Type == hba.Local && r.Method != "trust") {
					continue // socket replication with a password or peer is the packaging default
				}
				var why []string
				if allTokens(r.Users) {
					why = append(why, "all roles")
				}
				if r.IsHost() {
					if desc, _, wide := addressWidth(r); wide {
						why = append(why, desc)
					}
				}
				if r.Method == "trust" {
					why = append(why, "no authentication (trust)")
				}
				if len(why) > 0 {
					sev := High
					if loopbackOnly(r) && r.Method != "trust" {
						sev = Medium
						why = append(why, "from loopback only")
					}
					p := Problem{Object: hbaObject(r), Location: r.Location(), Severity: sev, SevSet: true,
						Evidence: fmt.Sprintf("%s admits %s", hbaEvidence(r), strings.Join(why, ", ")),
						Expected: "hostssl replication <replication role> <standby address>/32 scram-sha-256 (or cert)",
						FixKind:  FixConfig, FixApply: "reload"}
					p.Changes, p.Fix = replicationChanges(c.S, r)
					c.Fail(p)
				}
			}
		},
	})
}

// replicationChanges narrows a replication line to the replication roles
// that exist (never a role the fix would have to invent, which PRIV-01
// would then flag) and to a password method; the standbys' addresses
// are known only to the operator, so a wide address stays a manual step.
func replicationChanges(s *snapshot.Snapshot, r *hba.Rule) ([]remedy.Change, string) {
	loc := textsafe.String(r.Location())
	if r.Type == hba.Local {
		// Socket replication: only trust is reported; peer is the
		// packaging default.
		return []remedy.Change{{HBA: lineEdit(r, hba.Local, "peer")}}, fmt.Sprintf("replace trust on %s with peer, then reload", loc)
	}
	var out []remedy.Change
	var notes []string
	e := lineEdit(r, hba.HostSSL, r.Method)
	if r.Method == "trust" {
		e.Method = "scram-sha-256"
	}
	if allTokens(r.Users) {
		var toks []string
		for _, role := range s.Roles {
			// Superusers replicate too, but naming them here would open
			// a network path AUTH-08 forbids.
			if !role.Replication || !role.CanLogin || role.Superuser {
				continue
			}
			tok, err := quote.HBAToken(role.Name)
			if err != nil {
				continue
			}
			toks = append(toks, tok)
		}
		switch {
		case !onlyReplication(r):
			notes = append(notes, fmt.Sprintf("split %s: give replication its own line naming the replication roles", loc))
		case len(toks) == 0 && s.Roles == nil:
			notes = append(notes, fmt.Sprintf("name the standbys' replication roles instead of all on %s (this audit did not read the roles)", loc))
		case len(toks) == 0:
			notes = append(notes, fmt.Sprintf("create a login role WITH REPLICATION for the standbys and name it instead of all on %s", loc))
		default:
			e.Users = toks
		}
	}
	if e.Type != "" || e.Method != "" || len(e.Users) > 0 {
		out = append(out, remedy.Change{HBA: e})
	}
	if desc, _, wide := addressWidth(r); wide {
		notes = append(notes, fmt.Sprintf("narrow the address of %s (%s) to the standbys' addresses", loc, desc))
	}
	for _, n := range notes {
		out = append(out, remedy.Change{Manual: n + ", then reload"})
	}
	fix := fmt.Sprintf("on %s: hostssl, scram-sha-256 (or cert), the replication roles, the standbys' addresses; then reload", loc)
	return out, fix
}

func isAnyPrefix(r *hba.Rule) bool {
	p, ok := r.Prefix()
	return ok && p.Bits() == 0
}

// superuserReject is the printed form of superuserRejectChange: the lines
// to insert, or why there are none.
func superuserReject(name string, hit *hba.Rule, all []hba.Rule) string {
	ch := superuserRejectChange(name, hit, all)[0]
	if ch.HBA == nil {
		return ch.Manual
	}
	return strings.Join(ch.HBA.Before, "\n") + "    # insert before " + textsafe.String(hit.Location()) + ", then reload"
}

// superuserRejectChange inserts reject lines for a superuser before the
// network line it matches. When that line also takes the superuser's
// loopback connections (the path an administrator on the host uses), a
// loopback copy of that line comes first, so the fix does not lock out
// the operator.
func superuserRejectChange(name string, hit *hba.Rule, all []hba.Rule) []remedy.Change {
	tok, err := quote.HBAToken(name)
	if err != nil {
		return manualChange("role " + quote.Ident(name) + " cannot be named in pg_hba.conf (" + err.Error() + "): rename it, or reject it through a group role (+group) placed before " + textsafe.String(hit.Location()))
	}
	var before []string
	if addrs := loopbackAddrs(hit); len(addrs) > 0 {
		dbs := make([]string, len(hit.Databases))
		for i, d := range hit.Databases {
			dbs[i] = d.String()
		}
		// The same method as the line it is copied from: the operator's
		// login does not change. The planner applies the line's own
		// rewrite (AUTH-01, AUTH-02 ...) to the copy as well.
		method := hit.Method
		var earlier []hba.Rule
		for i := range all {
			if &all[i] == hit {
				earlier = all[:i:i]
				break
			}
		}
		for _, a := range addrs {
			line := fmt.Sprintf("%s %s %s %s %s", hit.Type, strings.Join(dbs, ","), tok, a, method)
			// An earlier line already takes these connections (the
			// admin's own loopback line): a copy would be dead.
			if !shadowedAfter(earlier, hit, line) {
				before = append(before, line)
			}
		}
	}
	before = append(before, fmt.Sprintf("host all %s 0.0.0.0/0 reject", tok), fmt.Sprintf("host all %s ::/0 reject", tok))
	return []remedy.Change{{HBA: &remedy.HBAEdit{File: hit.File, Line: hit.Line, Before: before},
		Breaks: "superuser " + quote.Ident(name) + " can no longer log in over TCP through " + textsafe.String(hit.Location()) + " or any later line, from any address (loopback too, unless an earlier line or a copy inserted here takes it); local socket logins are unchanged"}}
}

// shadowedAfter reports whether line, placed after the rules earlier,
// could never match.
func shadowedAfter(earlier []hba.Rule, at *hba.Rule, line string) bool {
	f := hba.Parse(at.File, []byte(line+"\n"), hba.Options{ReadFile: func(string) ([]byte, error) { return nil, fmt.Errorf("no includes") }})
	if len(f.Rules) != 1 {
		return false
	}
	cand := append(earlier, f.Rules[0])
	for _, sh := range hbapolicy.Shadowed(cand) {
		if sh.Rule == &cand[len(cand)-1] {
			return true
		}
	}
	return false
}

// loopbackAddrs are the loopback networks a host rule can match, as
// pg_hba.conf addresses.
func loopbackAddrs(r *hba.Rule) []string {
	both := []string{"127.0.0.1/32", "::1/128"}
	switch r.AddrKind {
	case hba.AddrAll, hba.AddrSameHost, hba.AddrSameNet:
		return both
	case hba.AddrCIDR:
		var out []string
		if p, ok := r.Prefix(); ok {
			for i, a := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
				if p.Contains(a) {
					out = append(out, both[i])
				}
			}
		}
		return out
	case hba.AddrHostname:
		if r.Address == "localhost" {
			return both
		}
	}
	return nil
}

// trustLineChange replaces trust on a line a password-less role matches:
// peer on the socket (the OS account vouches), scram-sha-256 over TCP,
// where the role then needs a password to get in at all.
func trustLineChange(h *hba.Rule, role string) []remedy.Change {
	if h.Type == hba.Local {
		return []remedy.Change{{HBA: lineEdit(h, hba.Local, "peer")}}
	}
	return []remedy.Change{{HBA: lineEdit(h, h.Type, "scram-sha-256"),
		Breaks: fmt.Sprintf("role %s has no password: it cannot log in over %s until it is given one", quote.Ident(role), textsafe.String(h.Location()))}}
}
