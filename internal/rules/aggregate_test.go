package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// scaleFixture: n login roles besides the fixture's, and a superuser's
// SECURITY DEFINER function with dynamic SQL that PUBLIC may execute.
func scaleFixture(n int) *snapshot.Snapshot {
	s := fixture("hostssl all all 10.0.0.0/8 scram-sha-256\n", nil)
	for i := 0; i < n; i++ {
		s.Roles = append(s.Roles, snapshot.Role{OID: uint32(30000 + i), Name: fmt.Sprintf("u%03d", i), CanLogin: true, ConnLimit: -1})
	}
	s.Databases = []snapshot.Database{{Name: "d", Owner: "postgres", AllowConn: true, Collected: true,
		Functions: []snapshot.Function{{Schema: "public", Name: "run", Args: "q text", Owner: "postgres", Language: "plpgsql", SecDef: true, ACLDefault: true, DynamicSQL: true}}}}
	return s
}

func failing(fs []Finding, rule string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Rule == rule && f.Status == Fail {
			out = append(out, f)
		}
	}
	return out
}

// A function PUBLIC may execute is one weakness: one finding for every
// login role, whose change revokes from PUBLIC once.
func TestChainsThroughPublicAreOneFinding(t *testing.T) {
	fs := Run(scaleFixture(40))
	got := failing(fs, "PRIV-02.chains")
	if len(got) != 1 {
		t.Fatalf("%d PRIV-02.chains findings, want 1: %v", len(got), got)
	}
	f := got[0]
	// app and the 40 u roles: every non-superuser login role.
	if f.Object != "every login role via function d.public.run(q text)" || f.Count != 41 || len(f.Objects) != 41 {
		t.Errorf("object %q, count %d, %d objects", f.Object, f.Count, len(f.Objects))
	}
	if f.Objects[0] != "role app via function d.public.run(q text)" {
		t.Errorf("members are named as their own findings were: %q", f.Objects[0])
	}
	if !strings.Contains(f.Evidence, "every login role (41") {
		t.Errorf("evidence: %s", f.Evidence)
	}
	revokes := 0
	for _, c := range f.Changes {
		if c.SQL == nil {
			continue
		}
		if len(c.SQL.Statements) != len(c.SQL.Undo) {
			t.Errorf("statements and undo not paired: %+v", c.SQL)
		}
		for _, st := range c.SQL.Statements {
			if strings.Contains(st, "REVOKE EXECUTE") {
				revokes++
				if !strings.HasSuffix(st, "FROM PUBLIC") {
					t.Errorf("revoke from a role, not PUBLIC: %s", st)
				}
			}
		}
	}
	if revokes != 1 {
		t.Errorf("%d REVOKE statements, want the one from PUBLIC: %+v", revokes, f.Changes)
	}
}

// A pattern repeated over many roles is one finding from repeatMin on,
// and one finding per role below it.
func TestRepeatedPatternThreshold(t *testing.T) {
	few := failing(Run(scaleFixture(repeatMin-2)), "NET-05")
	if len(few) != repeatMin-2 || few[0].Objects != nil {
		t.Errorf("below the threshold: %d findings (%v), want one per role", len(few), few[0].Objects)
	}
	many := failing(Run(scaleFixture(3*repeatMin)), "NET-05")
	if len(many) != 1 || many[0].Count != 3*repeatMin || many[0].Object != "login roles" {
		t.Fatalf("above the threshold: %+v", many)
	}
	stmts := 0
	for _, c := range many[0].Changes {
		if c.SQL != nil {
			stmts += len(c.SQL.Statements)
		}
	}
	if stmts != 3*repeatMin {
		t.Errorf("%d statements, want one per role", stmts)
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{7: "7", 9999: "9999", 15950: "15,950", 1234567: "1,234,567"} {
		if got := textsafe.Thousands(n); got != want {
			t.Errorf("textsafe.Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// Split describes each part by its own members, for rules that aggregate
// through failRepeated (NET-05) and on their own (PRIV-02.chains).
func TestSplitRedescribesParts(t *testing.T) {
	fs := Run(scaleFixture(40))
	for _, tc := range []struct {
		rule, member, restEvidence, partEvidence string
	}{
		{"NET-05", "role u007", "39 login roles have no connection limit", `login role "u007" has no connection limit`},
		{"PRIV-02.chains", "role u007 via function d.public.run(q text)", "login roles (40: app, u000", `login role "u007" can gain`},
	} {
		got := failing(fs, tc.rule)
		if len(got) != 1 {
			t.Fatalf("%s: %d findings", tc.rule, len(got))
		}
		f := got[0]
		part, rest, ok := f.Split(func(o string) bool { return o == tc.member })
		if !ok {
			t.Fatalf("%s: not split", tc.rule)
		}
		if rest.Object != f.Object || rest.Count != f.Count-1 || len(rest.Objects) != f.Count-1 || !strings.HasPrefix(rest.Evidence, tc.restEvidence) {
			t.Errorf("%s rest: object %q, count %d, evidence %q", tc.rule, rest.Object, rest.Count, rest.Evidence)
		}
		if part.Count != 1 || !strings.HasPrefix(part.Evidence, tc.partEvidence) {
			t.Errorf("%s part: count %d, evidence %q", tc.rule, part.Count, part.Evidence)
		}
		if _, _, ok := f.Split(func(string) bool { return true }); ok {
			t.Errorf("%s: a split taking every member", tc.rule)
		}
	}
	if _, _, ok := (Finding{Rule: "X", Objects: []string{"a", "b"}}).Split(func(o string) bool { return o == "a" }); ok {
		t.Error("a finding without members cannot be split")
	}
}
