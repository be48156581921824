package rules

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/hbapolicy"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

func init() {
	register(&Rule{
		ID: "AUTH-18.shadowed", Title: "No pg_hba.conf line is shadowed by an earlier one", Area: AreaAuth, Severity: Medium,
		Rationale:  "First match wins: a line that an earlier line always takes first is dead. It usually means the file does not do what its author meant (a tightening that never applies).",
		References: []Reference{{"check_pgactivity", "#374"}},
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			shadows := hbapolicy.Shadowed(rules)
			deadBy := map[*hba.Rule][]*hba.Rule{}
			for _, sh := range shadows {
				deadBy[sh.Rule] = sh.Covers
			}
			for _, sh := range shadows {
				above := firstLiveCoverer(sh.By, deadBy)
				// The final reject AUTH-07 asks for is a safety net: dead
				// while a catch-all precedes it, and meant to be.
				if catchAllReject(sh.Rule) {
					continue
				}
				p := Problem{Object: hbaObject(sh.Rule), Location: sh.Rule.Location(),
					Evidence: fmt.Sprintf("%s can never match: %s take%s every connection it would", hbaEvidence(sh.Rule), coveringLines(sh.Covers), map[bool]string{true: "s", false: ""}[len(sh.Covers) < 2]),
					Expected: "each line reachable", Fix: fmt.Sprintf("move %s above %s, or delete it", sh.Rule.Location(), above.Location()), FixKind: FixConfig, FixApply: "reload"}
				if sh.Rule.Method == "reject" {
					// A dead reject may be a tightening its author meant
					// to apply: moving it up changes access, deleting it
					// widens access the day the earlier line changes.
					p.Changes = manualChange(fmt.Sprintf("decide whether the reject at %s was meant to apply: move it above %s, or delete it; then reload", textsafe.String(sh.Rule.Location()), textsafe.String(above.Location())))
				} else {
					// A dead line that accepts: removing it changes nothing
					// today and can never widen access.
					p.Changes = []remedy.Change{{HBA: &remedy.HBAEdit{File: sh.Rule.File, Line: sh.Rule.Line, Delete: true}}}
				}
				c.Fail(p)
			}
		},
	})

	register(&Rule{
		ID: "AUTH-07.unknown-names", Title: "pg_hba.conf names only roles and databases that exist", Area: AreaAuth, Severity: Low,
		Rationale:  "A line for a role or database that does not exist is dead today and silently comes alive when someone creates that name.",
		References: stig("V-233520"),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			if c.S.Server == nil || c.S.Gap(snapshot.GapRoles) != "" || c.S.Databases == nil {
				c.NotChecked("pg_hba.conf", "needs the server's roles and databases (a live audit or a snapshot)")
				return
			}
			dbs := map[string]bool{}
			for _, d := range c.S.Databases {
				dbs[d.Name] = true
			}
			roleExists := func(n string) bool { _, ok := c.S.Role(n); return ok }
			named, regexMsgs := hbaNamesByMajor(c.S, rules)
			for _, msg := range append(hbapolicy.UnknownNames(named, roleExists, func(n string) bool { return dbs[n] }), regexMsgs...) {
				loc, _, _ := strings.Cut(msg, ": ")
				c.Fail(Problem{Object: "pg_hba.conf " + loc, Location: loc, Evidence: msg, Expected: "names that exist",
					Fix: "remove the name from " + loc + ", then reload", FixKind: FixConfig, FixApply: "reload",
					Changes: manualChange("remove the name from " + textsafe.String(loc) + " (or create the role or database it was meant for), then reload")})
			}
		},
	})

	register(&Rule{
		ID: "AUTH-06.hostnames", Title: "pg_hba.conf does not depend on DNS at connect time", Area: AreaAuth, Severity: Low,
		Rationale:  "A host-name rule makes every connection wait for reverse and forward DNS, and whoever controls those DNS records controls who matches.",
		References: []Reference{{"PostgreSQL docs", "pg_hba.conf host names"}},
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				if r.AddrKind == hba.AddrHostname {
					c.Fail(Problem{Object: hbaObject(r), Location: r.Location(), Evidence: fmt.Sprintf("%s matches host name %q through DNS", hbaEvidence(r), r.Address),
						Expected: "IP addresses or networks", Fix: fmt.Sprintf("replace %q at %s with its addresses, then reload", r.Address, r.Location()), FixKind: FixConfig, FixApply: "reload",
						// Today's DNS answer is not necessarily the intended client.
						Changes: manualChange(fmt.Sprintf("replace %q at %s with the client's IP addresses, then reload", r.Address, textsafe.String(r.Location())))})
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-06.latent", Title: "Rules that listen_addresses keeps unreachable are known", Area: AreaAuth, Severity: Info,
		Rationale:  "A rule for a network the server does not listen on is latent: harmless today, live the day listen_addresses widens. Weak latent rules are a trap.",
		References: cis("5.2"),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			la, ok := c.S.Setting("listen_addresses")
			if !ok {
				c.NotChecked("listen_addresses", c.missingSetting("listen_addresses"))
				return
			}
			listen := guc.SplitList(la.Value)
			for i := range rules {
				r := &rules[i]
				if r.Method == "reject" || !hbapolicy.Latent(r, listen) {
					continue
				}
				sev := Info
				if hbapolicy.Strength(r.Method) <= hbapolicy.Strength("md5") {
					sev = Low
				}
				c.Fail(Problem{Object: hbaObject(r), Location: r.Location(), Severity: sev, SevSet: true,
					Evidence: fmt.Sprintf("%s is latent: listen_addresses = %q accepts only loopback clients", hbaEvidence(r), la.Value),
					Expected: "no weak rules waiting for the listener to widen", Fix: "remove or harden " + r.Location() + " before widening listen_addresses", FixKind: FixConfig, FixApply: "reload",
					Changes: manualChange("remove or harden " + textsafe.String(r.Location()) + " before widening listen_addresses")})
			}
		},
	})
}

// catchAllReject is a "host all all 0.0.0.0/0 reject" line (or ::/0, or
// all): the final reject of AUTH-07.
// firstLiveCoverer: moving a dead line above a coverer that is itself
// dead leaves it dead; it must go above the earliest line of those that
// really take its connections.
func firstLiveCoverer(by *hba.Rule, deadBy map[*hba.Rule][]*hba.Rule) *hba.Rule {
	for seen := map[*hba.Rule]bool{}; !seen[by]; {
		seen[by] = true
		covers := deadBy[by]
		if len(covers) == 0 {
			return by
		}
		by = covers[0] // in file order
	}
	return by
}

func catchAllReject(r *hba.Rule) bool {
	if r.Type != hba.Host || r.Method != "reject" || !allTokens(r.Databases) || !allTokens(r.Users) {
		return false
	}
	if r.AddrKind == hba.AddrAll {
		return true
	}
	p, ok := r.Prefix()
	return r.AddrKind == hba.AddrCIDR && ok && p.Bits() == 0
}

// hbaNamesByMajor readies rules for UnknownNames, which knows no major:
// from 16 a leading slash makes a regular expression, quoted or not, so
// such tokens leave the name lists and are checked here instead (one that
// matches no role or database is reported; one our engine cannot decide
// is not); before 16 the same token is a plain name, quoted or not, and
// is checked as one.
func hbaNamesByMajor(s *snapshot.Snapshot, rules []hba.Rule) ([]hba.Rule, []string) {
	major := s.MajorVersion()
	var msgs []string
	out := make([]hba.Rule, len(rules))
	for i := range rules {
		r := rules[i]
		keep := func(toks []hba.Token, what string, names []string) []hba.Token {
			var kept []hba.Token
			for _, t := range toks {
				if !strings.HasPrefix(t.Value, "/") {
					kept = append(kept, t)
					continue
				}
				if major < 16 {
					t.Quoted = true // a literal name there
					kept = append(kept, t)
					continue
				}
				hit, decided := false, true
				for _, n := range names {
					_, m, d := hba.RegexMatch(t, major, n)
					hit, decided = hit || m, decided && d
				}
				if decided && !hit {
					msgs = append(msgs, fmt.Sprintf("%s: regular expression %q matches no %s", r.Location(), t.Value, what))
				}
			}
			return kept
		}
		var roles, dbs []string
		for _, ro := range s.Roles {
			roles = append(roles, ro.Name)
		}
		for _, d := range s.Databases {
			dbs = append(dbs, d.Name)
		}
		r.Users = keep(r.Users, "role", roles)
		r.Databases = keep(r.Databases, "database", dbs)
		out[i] = r
	}
	return out, msgs
}

// coveringLines names each line that together shadows another: "f:1 (text)
// and f:2 (text)".
func coveringLines(rs []*hba.Rule) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s (%s)", r.Location(), hbaEvidence(r)))
	}
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
