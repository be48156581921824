package fleetreport

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/drift"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the golden file (go test ./internal/fleetreport -update); got:\n%s", name, got)
	}
}

var (
	t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	t1 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
)

// A hostile name in every place a server supplies text: a terminal
// escape, Markdown and HTML syntax, a table separator.
const hostile = "evil\x1b[31m<b>|*x*"

func goldenDiff() *drift.Diff {
	return &drift.Diff{Server: "billing-primary", From: drift.ScanRef{ID: 7, StartedAt: t0}, To: drift.ScanRef{ID: 9, StartedAt: t1},
		New:   []drift.Finding{{Rule: "AUTH-01", Object: "pg_hba.conf:1", Severity: rules.Critical, Title: "No trust authentication for TCP connections"}},
		Fixed: []drift.Finding{{Rule: "LOG-19", Object: "log_connections", Severity: rules.Medium, Title: "Connection attempts are logged (log_connections = on)"}},
		Settings: []drift.SettingChange{{Name: "log_connections", Old: "off", New: "on", OldSet: true, NewSet: true, OldSource: "default",
			NewSource: "/var/lib/postgresql/15/main/postgresql.auto.conf:3"}},
		RolesAdded:   []drift.Role{{Name: hostile, Attributes: []string{"login", "password=scram-sha-256"}}},
		RoleChanges:  []drift.RoleChange{{Role: "app", Attribute: "superuser", Old: "false", New: "true"}},
		GrantsAdded:  []string{"SELECT ON TABLE public.orders TO PUBLIC (database shop)"},
		HBAAdded:     []drift.HBALine{{File: "/var/lib/postgresql/15/main/pg_hba.conf", Line: 1, Text: "host all all 127.0.0.1/32 trust"}},
		Certificates: []drift.CertChange{{Field: "not_after", Old: "2026-12-01T00:00:00Z", New: "2027-12-01T00:00:00Z"}},
	}
}

func intp(n int) *int { return &n }

func goldenReport() *Report {
	return &Report{GeneratedAt: t1, Servers: 3, OlderThanDays: 30,
		Worst: []ServerScore{{Server: "billing-primary", Labels: map[string]string{"env": "prod", "team": "billing"}, ScanID: 9, At: t1, Score: intp(82),
			Failed: map[string]int{"critical": 1, "high": 1, "medium": 1}, Pass: 80}, {Server: hostile, ScanID: 8, At: t1, Score: intp(100), Failed: map[string]int{}, Pass: 90}},
		Common: []store.RuleCount{{Rule: "TLS-01", Title: "TLS is enabled (ssl = on)", Severity: rules.High, Servers: 2, Findings: 2}},
		Old: []store.OpenFinding{{Server: "billing-primary", FindingRow: store.FindingRow{ScanID: 9, Rule: "TLS-01", Status: rules.Fail,
			Severity: rules.High, Object: "ssl", OpenSince: t1.AddDate(0, 0, -45)}}},
		Evidence: &store.Evidence{From: t1.AddDate(0, 0, -90), To: t1, Scans: 40, Servers: 2, Unreached: 3,
			Held: []store.HeldControl{{Rule: "AUTH-11", Title: "New passwords are stored as SCRAM verifiers", Scans: 40, Servers: 2}}},
		Unreachable: []ServerState{{Server: "edge-ams", Status: store.Timeout, Message: "no complete scan within 5m0s (the server's timeout)", At: t1, LastOK: t0}},
	}
}

func TestGoldens(t *testing.T) {
	ext := map[string]string{"text": "txt", "json": "json", "html": "html", "markdown": "md"}
	for _, f := range Formats {
		var b bytes.Buffer
		if err := WriteDiff(&b, f, goldenDiff()); err != nil {
			t.Fatal(err)
		}
		checkEscaped(t, f, b.String())
		golden(t, "diff."+ext[f], b.Bytes())
		b.Reset()
		if err := WriteReport(&b, f, goldenReport()); err != nil {
			t.Fatal(err)
		}
		checkEscaped(t, f, b.String())
		golden(t, "report."+ext[f], b.Bytes())
	}
}

// checkEscaped: no raw escape byte in any format, and the hostile name's
// markup is inert in HTML and Markdown.
func checkEscaped(t *testing.T, format, out string) {
	t.Helper()
	if strings.Contains(out, "\x1b") {
		t.Errorf("%s: a raw ESC reached the output", format)
	}
	if format == "html" && strings.Contains(out, "<b>") {
		t.Errorf("html: markup from a name reached the page")
	}
	if format == "markdown" && strings.Contains(out, "<b>|") {
		t.Errorf("markdown: a name's markup or cell separator is not escaped")
	}
}

func TestEmptyDiffSaysSo(t *testing.T) {
	var b bytes.Buffer
	d := &drift.Diff{Server: "a", From: drift.ScanRef{ID: 1, StartedAt: t0}, To: drift.ScanRef{ID: 2, StartedAt: t1}}
	if err := WriteDiff(&b, "text", d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "nothing changed") {
		t.Errorf("an empty diff does not say nothing changed:\n%s", b.String())
	}
}
