package waiver

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func write(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "waivers.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApply(t *testing.T) {
	w, err := Load(write(t, `waivers:
  - rule: AUTH-05
    object: "hba rule: host all all 127.0.0.1/32 scram-sha-256"
    reason: loopback, TLS ends in the local pooler
    expires: 2027-01-31
    owner: dba
  - rule: PRIV-01
    object: "role ops_*"
    reason: break-glass accounts
    expires: 2026-01-01
  - rule: LOG-26
    reason: pgaudit packaged next quarter
    expires: 2027-01-31
`))
	if err != nil {
		t.Fatal(err)
	}
	fs := []rules.Finding{
		{Rule: "AUTH-05", Status: rules.Fail, Object: "hba rule: host all all 127.0.0.1/32 scram-sha-256"},
		{Rule: "AUTH-05", Status: rules.Fail, Object: "hba rule: host all all 10.0.0.0/8 scram-sha-256"},
		{Rule: "PRIV-01", Status: rules.Fail, Object: "role ops_anna"},
		{Rule: "PRIV-01", Status: rules.Pass, Object: "role ops_ben"},
	}
	fs, warns := w.Apply(fs, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	if fs[0].Status != rules.Waived || fs[0].Waiver.Owner != "dba" {
		t.Errorf("exact object: %+v", fs[0])
	}
	if fs[1].Status != rules.Fail || fs[1].Waiver != nil {
		t.Errorf("other object must stay failing: %+v", fs[1])
	}
	if fs[2].Status != rules.Fail || fs[2].Waiver == nil || !fs[2].Waiver.Expired {
		t.Errorf("expired waiver must fail again, marked expired: %+v", fs[2])
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "LOG-26") || !strings.Contains(warns[0], ":11:") {
		t.Errorf("unused waiver warning (with its line): %v", warns)
	}
}

func TestExpiryIsInclusive(t *testing.T) {
	w, _ := Load(write(t, "waivers:\n  - rule: X\n    reason: r\n    expires: 2026-11-22\n"))
	fs := []rules.Finding{{Rule: "X", Status: rules.Fail}}
	fs, _ = w.Apply(fs, time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC))
	if fs[0].Status != rules.Waived {
		t.Error("a waiver is valid through its expiry day")
	}
}

// A waiver written for one object still works when the rule reports the
// object inside a finding that stands for many; one that names the
// finding's own object, or matches every member, waives all of it.
func TestApplyAggregated(t *testing.T) {
	w, err := Load(write(t, `waivers:
  - rule: NET-05
    object: "role batch"
    reason: the batch runner is limited by its pool
    expires: 2027-01-31
  - rule: PRIV-02.chains
    object: "every login role via function d.public.f(q text)"
    reason: replaced next sprint
    expires: 2027-01-31
  - rule: AUTH-19
    object: "role svc_*"
    reason: certificates only
    expires: 2027-01-31
`))
	if err != nil {
		t.Fatal(err)
	}
	fs := []rules.Finding{
		{Rule: "NET-05", Status: rules.Fail, Object: "login roles", Objects: []string{"role a", "role batch", "role c"}, Count: 3, Evidence: "3 login roles"},
		{Rule: "PRIV-02.chains", Status: rules.Fail, Object: "every login role via function d.public.f(q text)", Objects: []string{"role a", "role c"}, Count: 2},
		{Rule: "AUTH-19", Status: rules.Fail, Object: "password roles without an expiry", Objects: []string{"role svc_1", "role svc_2"}, Count: 2},
	}
	fs, warns := w.Apply(fs, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if len(fs) != 4 {
		t.Fatalf("want the NET-05 finding split in two, got %d findings: %+v", len(fs), fs)
	}
	part, rest := fs[0], fs[1]
	if part.Status != rules.Waived || part.Object != "role batch" || len(part.Objects) != 1 || part.Count != 1 {
		t.Errorf("waived member: %+v", part)
	}
	if rest.Status != rules.Fail || rest.Count != 2 || strings.Join(rest.Objects, ",") != "role a,role c" || !strings.Contains(rest.Evidence, "waiver") {
		t.Errorf("the rest keeps failing: %+v", rest)
	}
	if fs[2].Status != rules.Waived || fs[3].Status != rules.Waived {
		t.Errorf("a waiver of the finding's object, or of every member, waives it: %+v %+v", fs[2], fs[3])
	}
}

func TestBadFiles(t *testing.T) {
	cases := map[string]string{
		"waivers:\n  - rule: X\n    expires: 2027-01-01\n":                                 "without a reason",
		"waivers:\n  - rule: X\n    reason: r\n":                                           "without an expiry",
		"waivers:\n  - rule: X\n    reason: r\n    expires: soon\n":                        "not a date",
		"waivers:\n  - reason: r\n    expires: 2027-01-01\n":                               "without a rule",
		"waivers:\n  - rule: X\n    reason: r\n    expires: 2027-01-01\n    colour: red\n": "colour",
		"waivers: [\n": "waivers.yaml",
	}
	for content, want := range cases {
		_, err := Load(write(t, content))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "waivers.yaml") {
			t.Errorf("%q: err = %v, want it to mention %q and the file", content, err, want)
		}
	}
}

// connLimitSnapshot has n login roles app0, app1, ... without a
// connection limit: NET-05 reports them as one finding from 10 on.
func connLimitSnapshot(n int) *snapshot.Snapshot {
	s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, CollectedAt: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		Server: &snapshot.Server{Version: "15.18", VersionNum: 150018, CurrentUser: "postgres", Superuser: true}}
	s.Roles = []snapshot.Role{{OID: 10, Name: "postgres", Superuser: true, CanLogin: true, ConnLimit: -1}}
	for i := 0; i < n; i++ {
		s.Roles = append(s.Roles, snapshot.Role{OID: uint32(30000 + i), Name: fmt.Sprintf("app%d", i), CanLogin: true, ConnLimit: -1})
	}
	return s
}

// statements lists the SQL of a finding's changes.
func statements(f rules.Finding) []string {
	var out []string
	for _, c := range f.Changes {
		if c.SQL != nil {
			out = append(out, c.SQL.Statements...)
		}
	}
	return out
}

func alter(role string) string { return "ALTER ROLE " + role + " CONNECTION LIMIT 50" }

// A waiver that accepts some members of an aggregated finding splits it,
// and each part is about its own members only: evidence, count, objects,
// fix text, changes and the plan built afterwards.
func TestApplySplitsAggregatedFinding(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	waiver := func(object, expires string) string {
		return fmt.Sprintf("  - rule: NET-05\n    object: %q\n    reason: pooled\n    expires: %s\n", object, expires)
	}
	cases := []struct {
		name, waivers string
		// the members split off (each its own waiver, in file order)
		parts   [][]string
		expired bool
	}{
		{name: "one member", waivers: waiver("role app7", "2027-01-31"), parts: [][]string{{"app7"}}},
		{name: "a pattern", waivers: waiver("role app1*", "2027-01-31"),
			parts: [][]string{{"app1", "app10", "app11", "app12", "app13", "app14", "app15", "app16", "app17", "app18", "app19"}}},
		{name: "two waivers", waivers: waiver("role app7", "2027-01-31") + waiver("role app8", "2027-01-31"), parts: [][]string{{"app7"}, {"app8"}}},
		{name: "expired", waivers: waiver("role app7", "2026-01-01"), parts: [][]string{{"app7"}}, expired: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Load(write(t, "waivers:\n"+tc.waivers))
			if err != nil {
				t.Fatal(err)
			}
			snap := connLimitSnapshot(42)
			var fs []rules.Finding
			for _, f := range rules.Run(snap) {
				if f.Rule == "NET-05" && f.Status == rules.Fail {
					fs = append(fs, f)
				}
			}
			if len(fs) != 1 || fs[0].Count != 42 {
				t.Fatalf("want one NET-05 finding for 42 roles: %+v", fs)
			}
			fs, warns := w.Apply(fs, now)
			if len(warns) != 0 {
				t.Errorf("warnings: %v", warns)
			}
			if len(fs) != len(tc.parts)+1 {
				t.Fatalf("%d findings, want %d parts and the rest: %+v", len(fs), len(tc.parts), fs)
			}
			res := fix.Build(snap, fs, fix.Options{Now: now})
			res.Annotate(fs)
			var planned []string
			for _, st := range res.Plan.Steps {
				planned = append(planned, st.SQL...)
			}
			split := map[string]bool{}
			for i, names := range tc.parts {
				part := fs[i]
				want := rules.Waived
				if tc.expired {
					want = rules.Fail
				}
				if part.Status != want || part.Waiver == nil || part.Waiver.Expired != tc.expired {
					t.Errorf("part %d: status %v, waiver %+v", i, part.Status, part.Waiver)
				}
				if part.Count != len(names) || len(part.Objects) != len(names) {
					t.Errorf("part %d: count %d, objects %v, want %v", i, part.Count, part.Objects, names)
				}
				if n := fmt.Sprintf("%d login roles", len(names)); len(names) > 1 && !strings.Contains(part.Evidence, n) {
					t.Errorf("part %d evidence %q, want %q", i, part.Evidence, n)
				}
				if len(names) == 1 && part.Evidence != fmt.Sprintf("login role %q has no connection limit", names[0]) {
					t.Errorf("part %d evidence %q, want its member's", i, part.Evidence)
				}
				sts := statements(part)
				if len(sts) != len(names) {
					t.Errorf("part %d has %d statements, want its %d members' only", i, len(sts), len(names))
				}
				for _, n := range names {
					split[n] = true
					if !strings.Contains(part.Fix, alter(n)) || !slices.Contains(sts, alter(n)) {
						t.Errorf("part %d: fix or changes lack %s", i, n)
					}
					if slices.Contains(planned, alter(n)) != tc.expired {
						t.Errorf("%s planned = %v, want %v (waived members stay out of the plan)", n, !tc.expired, tc.expired)
					}
				}
				if strings.Count(part.Fix, "ALTER ROLE") != len(names) {
					t.Errorf("part %d fix holds %d statements, want %d", i, strings.Count(part.Fix, "ALTER ROLE"), len(names))
				}
			}
			rest := fs[len(fs)-1]
			left := 42 - len(split)
			if rest.Status != rules.Fail || rest.Object != "login roles" || rest.Count != left || len(rest.Objects) != left {
				t.Errorf("rest: status %v, object %q, count %d, %d objects; want %d", rest.Status, rest.Object, rest.Count, len(rest.Objects), left)
			}
			if !strings.HasPrefix(rest.Evidence, fmt.Sprintf("%d login roles have no connection limit", left)) {
				t.Errorf("rest evidence: %q", rest.Evidence)
			}
			if strings.Contains(rest.Evidence, "accepted") == tc.expired {
				t.Errorf("rest evidence (expired %v): %q", tc.expired, rest.Evidence)
			}
			if tc.expired && !strings.Contains(rest.Evidence, "expired") {
				t.Errorf("rest evidence does not say the waiver expired: %q", rest.Evidence)
			}
			sts := statements(rest)
			if len(sts) != left {
				t.Errorf("rest has %d statements, want %d", len(sts), left)
			}
			for n := range split {
				if slices.Contains(sts, alter(n)) || strings.Contains(rest.Fix, alter(n)) {
					t.Errorf("rest still changes split-off %s (in fix: %v)", n, strings.Contains(rest.Fix, alter(n)))
				}
			}
			for _, o := range rest.Objects {
				n := strings.TrimPrefix(o, "role ")
				if split[n] || !slices.Contains(planned, alter(n)) || !strings.Contains(rest.Fix, alter(n)) {
					t.Errorf("rest member %s: split %v, planned %v, in fix %v", n, split[n], slices.Contains(planned, alter(n)), strings.Contains(rest.Fix, alter(n)))
				}
			}
		})
	}
}
