package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWeakServerTextSummary audits the insecure test cluster and reads
// the text report as a person would: it opens with a summary of at most
// 40 lines whose "fix these first" names the pg_hba.conf rewrite, the
// SECURITY DEFINER backdoor, ssl and the superuser app role first.
func TestWeakServerTextSummary(t *testing.T) {
	srv := startWeak(t)
	args := append([]string{"audit", "--color", "never"}, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	code, out, errs := runCLI(t, args...)
	if code != ExitFindings {
		t.Fatalf("exit code %d, want %d: %s", code, ExitFindings, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	t.Logf("text report of the weak server: %d lines", len(lines))
	if d := os.Getenv("PGAEGIS_REPORT_DUMP"); d != "" {
		os.WriteFile(filepath.Join(d, "weak.txt"), []byte(out), 0o644)
	}
	// The summary ends where the first area's findings begin.
	end := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "── ") {
			end = i
			break
		}
	}
	if end < 0 {
		t.Fatalf("no section after the summary:\n%s", out)
	}
	summary := lines[:end]
	if len(summary) > 40 {
		t.Errorf("summary is %d lines, want at most 40:\n%s", len(summary), strings.Join(summary, "\n"))
	}
	text := strings.Join(summary, "\n")
	if !strings.Contains(text, "result: FAIL (fail-on high)") || !strings.Contains(text, " critical, ") {
		t.Errorf("summary lacks the result and the counts by severity:\n%s", text)
	}
	// The numbered changes, in order; each names what it changes.
	var actions []string
	for _, l := range summary {
		if len(l) > 3 && l[2] == '.' && (l[1] >= '1' && l[1] <= '9') {
			actions = append(actions, l)
		}
	}
	hba := filepath.Join(srv.DataDir, "pg_hba.conf")
	// The changes are the plan's steps, heaviest first.
	for _, c := range []struct{ what, fragment string }{
		{"the pg_hba.conf rewrite", "rewrite " + hba},
		{"the SQL in database postgres (backdoor function, untrusted language)", "SQL statements in database postgres"},
		{"the settings (ssl among them)", "ALTER SYSTEM SET"},
		{"the cluster-wide SQL (the superuser app role)", "connection's database"},
	} {
		found := -1
		for i, a := range actions {
			if strings.Contains(a, c.fragment) {
				found = i
				break
			}
		}
		if found < 0 || found > 4 {
			t.Errorf("%s is not among the first five changes (position %d):\n%s", c.what, found+1, text)
		}
	}
	if !strings.HasPrefix(actions[0], " 1. step ") || !strings.Contains(actions[0], "closes ") {
		t.Errorf("the first change is not a step of the plan with its count: %q", actions[0])
	}
	// The rewrite is shown as the new lines, not as advice.
	if !strings.Contains(text, "hostssl all all 0.0.0.0/0 scram-sha-256") {
		t.Errorf("the pg_hba.conf rewrite lacks its new lines:\n%s", text)
	}
	// The detail: one block per rule, its objects in line order.
	i4, i5 := strings.Index(out, "pg_hba.conf:4"), strings.Index(out, "pg_hba.conf:5")
	blk := out[strings.Index(out, "AUTH-02  "):]
	blk = blk[:strings.Index(blk[1:], "\nCRITICAL")+1]
	if i4 < 0 || i5 < 0 || strings.Index(blk, "pg_hba.conf:4") > strings.Index(blk, "pg_hba.conf:5") {
		t.Errorf("AUTH-02's lines are not in line order:\n%s", blk)
	}
	if n := strings.Count(out, "CRITICAL PRIV-02.chains"); n != 1 {
		t.Errorf("PRIV-02.chains has %d blocks, want one for the rule", n)
	}
	if strings.Contains(out, srv.Password) {
		t.Error("the report contains the admin password")
	}
}

// TestAuditPDFNamesMissingChromium: --format pdf without a browser fails
// at once (before collecting), naming what to install.
func TestAuditPDFNamesMissingChromium(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("PGAEGIS_CHROMIUM", "")
	code, out, errs := runCLI(t, "audit", "--format", "pdf", "--snapshot", filepath.Join(t.TempDir(), "none.json"))
	if code != ExitError {
		t.Errorf("exit code %d, want %d", code, ExitError)
	}
	if !strings.Contains(errs, "needs Chromium") || !strings.Contains(errs, "apt-get install chromium") || strings.Contains(errs, "none.json") {
		t.Errorf("error does not name the missing browser (or collected first): %q", errs)
	}
	if out != "" {
		t.Errorf("output without a browser: %q", out)
	}
}

// TestAuditPDF writes a PDF of a snapshot when Chromium is on the host.
func TestAuditPDF(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil && os.Getenv("PGAEGIS_CHROMIUM") == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium under CI=true")
		}
		t.Skip("no Chromium")
	}
	dir := t.TempDir()
	hba := filepath.Join(dir, "pg_hba.conf")
	os.WriteFile(hba, []byte("host all all 0.0.0.0/0 trust\n"), 0o600)
	pdf := filepath.Join(dir, "r.pdf")
	code, _, errs := runCLI(t, "audit", "--hba-file", hba, "--format", "pdf", "-o", pdf)
	if code == ExitError {
		t.Fatalf("exit %d: %s", code, errs)
	}
	data, err := os.ReadFile(pdf)
	if err != nil || !strings.HasPrefix(string(data), "%PDF-") {
		t.Errorf("no PDF written (%v): %q", err, data[:min(len(data), 8)])
	}
}
