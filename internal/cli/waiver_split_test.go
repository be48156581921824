package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// A waiver of one member of an aggregated finding (NET-05 over many login
// roles) splits it in the report: the waived part shows only its member's
// fix, the rest's fix (its plan step) no longer touches that member, and
// an expired waiver fails again with the expiry shown, not "accepted".
func TestWaiverSplitsAggregatedFinding(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	var stmts []string
	for i := 0; i < 12; i++ {
		stmts = append(stmts, fmt.Sprintf("CREATE ROLE app%d LOGIN", i))
	}
	must(t, srv.Exec(pgtest.Ctx(t), stmts...))
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	const app7 = "ALTER ROLE app7 CONNECTION LIMIT 50"

	for _, tc := range []struct {
		name, expires string
		expired       bool
	}{
		{"valid", "2999-01-01", false},
		{"expired", "2020-01-01", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wf := filepath.Join(t.TempDir(), "waivers.yaml")
			must(t, os.WriteFile(wf, []byte("waivers:\n  - rule: NET-05\n    object: \"role app7\"\n    reason: pooled\n    expires: "+tc.expires+"\n"), 0o600))
			rep, _, errs := auditJSON(t, append([]string{"--waivers", wf}, args...)...)
			if strings.Contains(errs, "matched no failing finding") {
				t.Errorf("waiver unused: %s", errs)
			}
			var part, rest *rules.Finding
			for i := range rep.Findings {
				f := &rep.Findings[i]
				switch {
				case f.Rule != "NET-05":
				case f.Object == "role app7":
					part = f
				case f.Object == "login roles":
					rest = f
				}
			}
			if part == nil || rest == nil {
				t.Fatalf("want NET-05 split into role app7 and the rest: %+v", rep.Findings)
			}
			if (part.Status == rules.Waived) == tc.expired || part.Waiver == nil || part.Waiver.Expired != tc.expired {
				t.Errorf("app7: status %v, waiver %+v", part.Status, part.Waiver)
			}
			if part.Count != 1 || !strings.Contains(part.Fix, app7) || strings.Count(part.Fix, "ALTER ROLE") != 1 {
				t.Errorf("app7: count %d, fix %q: want its own statement only", part.Count, part.Fix)
			}
			// The note on the split names the waiver; the rest's own
			// description comes before it.
			if names, _, _ := strings.Cut(rest.Evidence, "\n"); strings.Contains(rest.Fix, app7) || strings.Contains(names, "app7") {
				t.Errorf("the rest still covers app7: evidence %q, fix %q", rest.Evidence, rest.Fix)
			}
			if n := fmt.Sprintf("%d login roles", rest.Count); rest.Count != len(rest.Objects) || !strings.HasPrefix(rest.Evidence, n) {
				t.Errorf("rest: count %d, %d objects, evidence %q", rest.Count, len(rest.Objects), rest.Evidence)
			}
			if strings.Contains(rest.Evidence, "accepted") == tc.expired {
				t.Errorf("rest evidence: %q", rest.Evidence)
			}
			if tc.expired {
				_, out, _ := runCLI(t, append([]string{"audit", "--waivers", wf}, args...)...)
				if !strings.Contains(out, "expired on "+tc.expires) {
					t.Errorf("text report does not show the expired waiver:\n%s", out)
				}
			}
		})
	}
}
