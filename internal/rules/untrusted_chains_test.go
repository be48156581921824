package rules

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Which functions PRIV-02.chains reports for their language or as a
// SECURITY DEFINER review, at what severity, and the REVOKE it prints.
func TestUntrustedAndReviewChains(t *testing.T) {
	exec := func(grantees ...string) []acl.Item {
		items := []acl.Item{{Grantee: "postgres", Grantor: "postgres", Grants: []acl.Grant{{Privilege: "EXECUTE"}}}}
		for _, g := range grantees {
			items = append(items, acl.Item{Grantee: g, Grantor: "postgres", Grants: []acl.Grant{{Privilege: "EXECUTE"}}})
		}
		return items
	}
	pinned := []string{"search_path=pg_catalog, pg_temp"}
	for _, tc := range []struct {
		name string
		fn   snapshot.Function
		sev  Severity // 0: no finding
		fix  []string // statements the change holds
	}{
		{"C for PUBLIC", snapshot.Function{Schema: "public", Name: "c", Language: "c", Untrusted: true, ACLDefault: true}, Critical,
			[]string{"REVOKE EXECUTE ON FUNCTION public.c() FROM PUBLIC"}},
		{"plpython3u for a group", snapshot.Function{Schema: "public", Name: "py", Language: "plpython3u", Untrusted: true, ACL: exec("grp")}, Critical,
			[]string{"REVOKE EXECUTE ON FUNCTION public.py() FROM grp"}},
		{"PUBLIC and a group, hostile names", snapshot.Function{Schema: `a"b`, Name: "x y", Args: "t text", Language: "plperlu", Untrusted: true, ACL: exec("PUBLIC", "grp", "u000")}, Critical,
			[]string{`REVOKE EXECUTE ON FUNCTION "a""b"."x y"(t text) FROM PUBLIC`, `REVOKE EXECUTE ON FUNCTION "a""b"."x y"(t text) FROM grp`}},
		{"untrusted superuser SECURITY DEFINER: one critical", snapshot.Function{Schema: "public", Name: "sdpy", Language: "plpython3u", Untrusted: true, SecDef: true, Config: pinned, ACLDefault: true}, Critical,
			[]string{"REVOKE EXECUTE ON FUNCTION public.sdpy() FROM PUBLIC"}},
		{"an extension's C function", snapshot.Function{Schema: "public", Name: "digest", Language: "c", Untrusted: true, ACLDefault: true, Extension: "pgcrypto"}, 0, nil},
		{"a built-in", snapshot.Function{Schema: "pg_catalog", Name: "lo_import", Args: "text", Language: "internal", ACLDefault: true}, 0, nil},
		{"granted to one login role", snapshot.Function{Schema: "public", Name: "solo", Language: "plpython3u", Untrusted: true, ACL: exec("u000")}, 0, nil},
		{"revoked from PUBLIC", snapshot.Function{Schema: "public", Name: "none", Language: "plpython3u", Untrusted: true, ACL: exec()}, 0, nil},
		{"pinned superuser SECURITY DEFINER for PUBLIC", snapshot.Function{Schema: "public", Name: "sd", Language: "plpgsql", SecDef: true, Config: pinned, ACLDefault: true}, Medium,
			[]string{"REVOKE EXECUTE ON FUNCTION public.sd() FROM PUBLIC"}},
		{"superuser SECURITY DEFINER for one role", snapshot.Function{Schema: "public", Name: "sd1", Language: "plpgsql", SecDef: true, Config: pinned, ACL: exec("u000")}, 0, nil},
		{"SECURITY DEFINER of an ordinary owner", snapshot.Function{Schema: "public", Name: "sd2", Owner: "u001", Language: "plpgsql", SecDef: true, Config: pinned, ACLDefault: true}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := scaleFixture(2)
			s.Roles = append(s.Roles, snapshot.Role{OID: 40000, Name: "grp", ConnLimit: -1})
			s.Memberships = append(s.Memberships, snapshot.Membership{Role: "grp", Member: "u000", Inherit: true, Set: true})
			f := tc.fn
			if f.Owner == "" {
				f.Owner = "postgres"
			}
			s.Databases[0].Functions = []snapshot.Function{f}
			got := failing(Run(s), "PRIV-02.chains")
			if tc.sev == 0 {
				for _, g := range got {
					t.Errorf("finding %s: %s", g.Object, g.Evidence)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d findings, want 1: %+v", len(got), got)
			}
			if got[0].Severity != tc.sev {
				t.Errorf("severity %v, want %v", got[0].Severity, tc.sev)
			}
			var stmts []string
			for _, c := range got[0].Changes {
				if c.SQL != nil {
					stmts = append(stmts, c.SQL.Statements...)
				}
			}
			all := strings.Join(stmts, "\n")
			for _, w := range tc.fix {
				if !strings.Contains(all, w) {
					t.Errorf("change lacks %q:\n%s", w, all)
				}
			}
			if strings.Contains(all, "u000") {
				t.Errorf("change revokes a login role's own grant:\n%s", all)
			}
		})
	}
}
