package waiver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/rules"
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
