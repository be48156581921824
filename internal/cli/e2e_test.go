package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// connArgs connects to srv as its admin; the password travels in the
// environment, never in argv.
func connArgs(t *testing.T, srv *localpg.Server, user, password string) []string {
	t.Setenv("PGPASSWORD", password)
	return []string{"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=prefer", srv.Port, user)}
}

func auditJSON(t *testing.T, args ...string) (*report.Report, int, string) {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"audit", "--format", "json"}, args...)...)
	if code == ExitError {
		t.Fatalf("audit failed (exit %d): %s", code, errs)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("audit output is not JSON: %v\n%s", err, out)
	}
	return &rep, code, errs
}

// expectFail asserts a failing finding of rule whose object, location or
// evidence mentions each of the given fragments.
func expectFail(t *testing.T, rep *report.Report, rule string, fragments ...string) {
	t.Helper()
	for _, f := range rep.Findings {
		if f.Rule != rule || f.Status != rules.Fail {
			continue
		}
		text := f.Object + "\n" + f.Location + "\n" + f.Evidence
		ok := true
		for _, frag := range fragments {
			if !strings.Contains(text, frag) {
				ok = false
			}
		}
		if ok {
			if f.Fix == "" {
				t.Errorf("%s %v: failing finding without a fix", rule, fragments)
			}
			return
		}
	}
	var seen []string
	for _, f := range rep.Findings {
		if f.Rule == rule {
			seen = append(seen, fmt.Sprintf("%s %s @%s: %s", f.Status, f.Object, f.Location, f.Evidence+f.Reason))
		}
	}
	t.Errorf("no failing %s mentioning %q; %s findings: %s", rule, fragments, rule, strings.Join(seen, " | "))
}

func status(rep *report.Report, rule string) []rules.Status {
	var out []rules.Status
	for _, f := range rep.Findings {
		if f.Rule == rule {
			out = append(out, f.Status)
		}
	}
	return out
}

// startWeak is the weak server of the full suite's major (see
// startWeakMajor, and TestWeakAndHardenedEveryMajor for what it plants).
func startWeak(t *testing.T) *localpg.Server {
	t.Helper()
	major, err := strconv.Atoi(pgtest.Version)
	must(t, err)
	return startWeakMajor(t, major).Server
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

const hardenedHBA = `local all all scram-sha-256
hostssl all all 127.0.0.1/32 scram-sha-256
host all all 0.0.0.0/0 reject
host all all ::/0 reject
`

func TestHostileNamesDoNotChangeWhereWeConnect(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	hostile := []string{"x host=evil.example port=1", "db'; DROP TABLE t; --", "new\nline", `ünï "quoted"`, "dbname=template1", "sslmode=disable password=x"}
	for _, name := range hostile {
		q := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		must(t, srv.Exec(ctx, "CREATE DATABASE "+q))
		must(t, srv.ExecIn(ctx, name, "GRANT CREATE ON SCHEMA public TO PUBLIC", "CREATE ROLE "+q+" LOGIN", "CREATE TABLE "+q+" (id int)"))
	}
	count := func() int {
		c, err := srv.Connect(ctx, "postgres")
		must(t, err)
		defer c.Close(ctx)
		var n int
		must(t, c.QueryRow(ctx, "SELECT count(*) FROM pg_class").Scan(&n))
		return n
	}
	before := count()
	rep, _, _ := auditJSON(t, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	for _, name := range hostile {
		expectFail(t, rep, "PRIV-09", "schema "+name+".public")
	}
	for _, f := range rep.Findings {
		if f.Status == rules.NotChecked && strings.HasPrefix(f.Object, "database ") {
			t.Errorf("database not collected: %s: %s", f.Object, f.Reason)
		}
	}
	if after := count(); after != before {
		t.Errorf("the audit changed the server: %d relations before, %d after", before, after)
	}
}

func TestMonitorRoleDegradesToNotChecked(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	must(t, srv.Exec(pgtest.Ctx(t), `CREATE ROLE auditor LOGIN PASSWORD 'monitor-secret' IN ROLE pg_monitor`, `CREATE ROLE nobody_special LOGIN PASSWORD 'plain-secret'`))
	for _, who := range []string{"auditor", "nobody_special"} {
		t.Run(who, func(t *testing.T) {
			pw := map[string]string{"auditor": "monitor-secret", "nobody_special": "plain-secret"}[who]
			rep, _, errs := auditJSON(t, append(connArgs(t, srv, who, pw), "--no-files")...)
			for _, rule := range []string{"AUTH-01", "AUTH-11.verifiers", "AUTH-18"} {
				st := status(rep, rule)
				if len(st) == 0 {
					t.Errorf("%s: no finding", rule)
				}
				for _, s := range st {
					if s != rules.NotChecked {
						t.Errorf("%s as %s: %s, want not_checked (the role cannot see it)", rule, who, s)
					}
				}
			}
			for _, f := range rep.Findings {
				if f.Status == rules.NotChecked && f.Reason == "" {
					t.Errorf("%s not checked without a reason", f.Rule)
				}
			}
			if strings.Contains(errs, pw) {
				t.Error("stderr contains the password")
			}
		})
	}
}

func TestUnresponsiveServerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept, never answer
		}
	}()
	t.Setenv("PGPASSWORD", "never-print-me")
	port := l.Addr().(*net.TCPAddr).Port
	start := time.Now()
	code, _, errs := runCLI(t, "audit", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "x", "--connect-timeout", "2s")
	took := time.Since(start)
	if code != ExitError {
		t.Errorf("exit %d, want 2", code)
	}
	if took > 15*time.Second {
		t.Errorf("took %s to give up", took)
	}
	if strings.Contains(errs, "never-print-me") {
		t.Errorf("error output contains the password: %s", errs)
	}
	t.Logf("gave up after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(errs))
}

func TestWrongPasswordErrorHasNoSecret(t *testing.T) {
	srv := pgtest.Shared(t)
	secret := "Sup3r-Secret-Value"
	code, _, errs := runCLI(t, "audit", "-d", fmt.Sprintf("postgresql://%s:%s@127.0.0.1:%d/postgres", srv.AdminUser, secret, srv.Port))
	if code != ExitError {
		t.Errorf("exit %d, want 2", code)
	}
	if strings.Contains(errs, secret) {
		t.Errorf("error output contains the password: %s", errs)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	srv := startWeak(t)
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	snap := filepath.Join(t.TempDir(), "snap.json")
	if code, _, errs := runCLI(t, append([]string{"collect", "-o", snap}, args...)...); code != 0 {
		t.Fatalf("collect: %d %s", code, errs)
	}
	data, err := os.ReadFile(snap)
	must(t, err)
	if strings.Contains(string(data), srv.Password) {
		t.Error("snapshot contains the password")
	}
	direct, _, _ := auditJSON(t, args...)
	fromSnap, _, _ := auditJSON(t, "--snapshot", snap)
	strip := func(r *report.Report) string {
		var b strings.Builder
		for _, f := range r.Findings {
			// Volatile rules (servers and processes running on the host)
			// may change between the collect and the live audit.
			if rules.IsVolatile(f.Rule) {
				continue
			}
			fmt.Fprintf(&b, "%s|%s|%s|%s|%s\n", f.Rule, f.Status, f.Object, f.Location, f.Evidence)
		}
		return b.String()
	}
	if strip(direct) != strip(fromSnap) {
		t.Errorf("audit of the snapshot differs from the live audit:\nlive:\n%s\nsnapshot:\n%s", strip(direct), strip(fromSnap))
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"audit", "--format", "xml"},
		{"audit", "--fail-on", "severe"},
		{"audit", "--snapshot", "x.json", "--pgdata", "/tmp"},
		{"nonsense"},
		{"audit", "extra-arg"},
	} {
		code, _, errs := runCLI(t, args...)
		if code != ExitError || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	code, _, errs := runCLI(t, "audit", "--snapshot", filepath.Join(t.TempDir(), "missing.json"))
	if code != ExitError || !strings.Contains(errs, "missing.json") {
		t.Errorf("missing snapshot: exit %d, %q", code, errs)
	}
}

func TestWaiversBaselineProfilesAndFormats(t *testing.T) {
	srv := startWeak(t)
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	dir := t.TempDir()

	// Baseline: a second run against an unchanged server reports nothing new.
	first := filepath.Join(dir, "first.json")
	if code, _, errs := runCLI(t, append([]string{"audit", "--format", "json", "-o", first}, args...)...); code != ExitFindings {
		t.Fatalf("first audit: %d %s", code, errs)
	}
	rep, code, _ := auditJSON(t, append([]string{"--baseline", first}, args...)...)
	if code != ExitOK || rep.Baseline == nil || rep.Baseline.New != 0 || len(rep.Findings) != 0 {
		t.Errorf("unchanged server against its baseline: exit %d, %+v", code, rep.Baseline)
	}
	// A new weakness shows up as new; a repaired one as fixed.
	must(t, srv.Exec(pgtest.Ctx(t), `CREATE ROLE second_su SUPERUSER`, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`))
	rep, code, _ = auditJSON(t, append([]string{"--baseline", first}, args...)...)
	if code != ExitFindings || rep.Baseline.New != 1 || len(rep.Findings) != 1 || rep.Findings[0].Object != "role second_su" {
		t.Errorf("new superuser: exit %d, %+v, %+v", code, rep.Baseline, rep.Findings)
	}
	fixed := false
	for _, f := range rep.Baseline.Fixed {
		fixed = fixed || f.Rule == "PRIV-09"
	}
	if !fixed {
		t.Error("PRIV-09 should be listed as fixed")
	}

	// Waivers: accept everything high or worse and the exit code follows.
	var w strings.Builder
	w.WriteString("waivers:\n")
	full, _, _ := auditJSON(t, args...)
	for _, f := range full.Findings {
		if f.Status == rules.Fail && f.Severity >= rules.High {
			fmt.Fprintf(&w, "  - rule: %q\n    object: %q\n    reason: accepted for the test\n    expires: 2999-01-01\n", f.Rule, strings.ReplaceAll(strings.ReplaceAll(f.Object, "[", "[[]"), "*", "[*]"))
		}
	}
	wf := filepath.Join(dir, "waivers.yaml")
	must(t, os.WriteFile(wf, []byte(w.String()), 0o600))
	rep, code, errs := auditJSON(t, append([]string{"--waivers", wf}, args...)...)
	if code != ExitOK || rep.Summary.Waived == 0 {
		t.Errorf("all high findings waived: exit %d, waived %d, %s", code, rep.Summary.Waived, errs)
	}

	// Profiles select rules by benchmark.
	cis, _, _ := auditJSON(t, append([]string{"--profile", "cis-17"}, args...)...)
	for _, f := range cis.Findings {
		if f.Rule == "AUTH-08" {
			t.Error("AUTH-08 is not a CIS rule")
		}
	}
	if cis.Summary.Rules >= full.Summary.Rules {
		t.Errorf("cis-17 profile ran %d rules, all ran %d", cis.Summary.Rules, full.Summary.Rules)
	}

	// Every format renders from a live audit.
	for _, format := range []string{"text", "sarif", "html", "markdown", "junit"} {
		code, out, errs := runCLI(t, append([]string{"audit", "--format", format}, args...)...)
		if code == ExitError || len(out) < 200 || strings.Contains(out, srv.Password) {
			t.Errorf("%s: exit %d, %d bytes, %s", format, code, len(out), errs)
		}
	}
}
