package report

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Defect 16(b): the result policy. An audit passes only when it saw
// something, no read failed, and at least one rule was decided.
func TestIncompletePolicy(t *testing.T) {
	withSetting := func() *snapshot.Snapshot {
		s := &snapshot.Snapshot{FormatVersion: 1, Server: &snapshot.Server{Version: "15.20"}}
		s.SetSetting(snapshot.Setting{Name: "ssl", Value: "on", Origin: snapshot.FromFile})
		return s
	}
	pass := []rules.Finding{{Rule: "X-1", Status: rules.Pass}, {Rule: "X-2", Status: rules.NotChecked}}
	failHigh := []rules.Finding{{Rule: "X-1", Status: rules.Fail, Severity: rules.High}}
	for _, tc := range []struct {
		name     string
		snap     func() *snapshot.Snapshot
		findings []rules.Finding
		result   string
		reason   string
	}{
		{"empty snapshot", func() *snapshot.Snapshot { return &snapshot.Snapshot{FormatVersion: 1} }, pass, "incomplete", "nothing was audited"},
		{"a server was seen", withSetting, pass, "pass", ""},
		{"a setting alone is not a source", func() *snapshot.Snapshot {
			s := &snapshot.Snapshot{FormatVersion: 1}
			s.SetSetting(snapshot.Setting{Name: "ssl_min_protocol_version", Value: "TLSv1.2", Origin: snapshot.FromServer})
			return s
		}, pass, "incomplete", "nothing was audited"},
		{"a database could not be read", func() *snapshot.Snapshot {
			s := withSetting()
			s.Databases = []snapshot.Database{{Name: "shop", AllowConn: true, Collected: true}, {Name: "rejdb", AllowConn: true, Gap: "no pg_hba.conf entry (SQLSTATE 28000)"}, {Name: "template0"}}
			return s
		}, pass, "incomplete", `"rejdb"`},
		{"every rule not checked", withSetting, []rules.Finding{{Rule: "X-1", Status: rules.NotChecked}}, "incomplete", "no rule"},
		{"collection error", func() *snapshot.Snapshot {
			s := withSetting()
			s.AddError(snapshot.GapRoles, "reading pg_roles failed: boom")
			return s
		}, pass, "incomplete", "collection error"},
		{"collection error and a failure", func() *snapshot.Snapshot {
			s := withSetting()
			s.AddError(snapshot.GapRoles, "reading pg_roles failed: boom")
			return s
		}, failHigh, "fail", "collection error"},
		{"permission gap only", func() *snapshot.Snapshot {
			s := withSetting()
			s.AddGap(snapshot.GapHBA, "pg_hba_file_rules is readable only by superusers")
			return s
		}, pass, "pass", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Build(tc.snap(), tc.findings, rules.High)
			if rep.Summary.Result != tc.result || !strings.Contains(rep.Summary.IncompleteReason, tc.reason) || rep.Incomplete() != (tc.reason != "") {
				t.Errorf("result %q incomplete %v (%q), want %q (%q)", rep.Summary.Result, rep.Incomplete(), rep.Summary.IncompleteReason, tc.result, tc.reason)
			}
		})
	}
}
