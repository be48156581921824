package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestLogsScanCommand(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "2026-11-22 08:00:%02d.000 UTC [%d] app@shop 203.0.113.9(5000) FATAL:  password authentication failed for user \"app\"\n", i, 100+i)
	}
	b.WriteString("2026-11-22 08:01:00.000 UTC [200] postgres@shop 10.0.0.1(5000) LOG:  statement: ALTER ROLE app PASSWORD 'TopSecret-77'\n")
	path := writeFile(t, "postgresql.log", b.String())
	code, out, errs := runCLI(t, "logs", "scan", path, "--format", "json")
	if code != ExitFindings {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(out, "TopSecret-77") {
		t.Fatal("the password is in the output")
	}
	var doc struct {
		Events []struct {
			Kind, Source string
			Count        int
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range doc.Events {
		kinds[e.Kind+" "+e.Source] = true
	}
	for _, want := range []string{"brute-force 203.0.113.9", "secret-in-log 10.0.0.1", "role-change 10.0.0.1"} {
		if !kinds[want] {
			t.Errorf("missing %q in %v", want, kinds)
		}
	}
	for _, f := range []string{"text", "sarif", "markdown"} {
		code, out, _ := runCLI(t, "logs", "scan", path, "--format", f)
		if code != ExitFindings || strings.Contains(out, "TopSecret-77") || len(out) < 100 {
			t.Errorf("%s: exit %d, %d bytes", f, code, len(out))
		}
	}
}

func TestLogsBaselineOfSources(t *testing.T) {
	line := func(host string, pid int) string {
		return fmt.Sprintf("2026-11-22 08:00:00.000 UTC [%d] app@shop %s(5000) LOG:  connection received: host=%s port=5000\n2026-11-22 08:00:00.001 UTC [%d] app@shop %s(5000) LOG:  connection authorized: user=app database=shop\n", pid, host, host, pid, host)
	}
	first := writeFile(t, "a.log", line("10.0.0.5", 1))
	base := writeFile(t, "known.txt", "")
	if code, _, errs := runCLI(t, "logs", "scan", first, "--baseline", base, "--save-baseline", base, "--fail-on", "critical"); code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	second := writeFile(t, "b.log", line("10.0.0.5", 2)+line("192.0.2.66", 3))
	_, out, _ := runCLI(t, "logs", "scan", second, "--baseline", base, "--format", "json")
	if !strings.Contains(out, `"new-source"`) || !strings.Contains(out, "192.0.2.66") || strings.Contains(out, `"source": "10.0.0.5"`) {
		t.Errorf("only 192.0.2.66 is new:\n%s", out)
	}
}

// With a connection, logs scan reads log_line_prefix and the superusers
// from the server: a log in an unusual prefix parses without --prefix,
// and a superuser not called postgres is noticed.
func TestLogsScanTakesPrefixFromServer(t *testing.T) {
	const prefix = "<%t|%p|%u|%d|%h> "
	srv := pgtest.Start(t, localpg.Options{Conf: []string{"log_line_prefix = '" + prefix + "'"}})
	ctx := pgtest.Ctx(t)
	must(t, srv.Exec(ctx, "CREATE ROLE boss SUPERUSER LOGIN"))
	var b strings.Builder
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "<2026-11-22 08:00:%02d UTC|%d|app|shop|203.0.113.9> FATAL:  password authentication failed for user \"app\"\n", i, 100+i)
	}
	b.WriteString("<2026-11-22 08:01:00 UTC|300|boss|shop|198.51.100.4> LOG:  connection authorized: user=boss database=shop\n")
	path := writeFile(t, "postgresql.log", b.String())
	args := append([]string{"logs", "scan", path, "--format", "json"}, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	code, out, errs := runCLI(t, args...)
	if code != ExitFindings {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(out+errs, srv.Password) {
		t.Fatal("the connection password is in the output")
	}
	var doc struct {
		Events []struct {
			Kind, Source, Role string
			Count              int
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range doc.Events {
		got[e.Kind+" "+e.Source] = e.Count
	}
	if got["brute-force 203.0.113.9"] != 12 {
		t.Errorf("brute force from 203.0.113.9 not found with 12 failures: %v", got)
	}
	if got["superuser-over-tcp 198.51.100.4"] == 0 {
		t.Errorf("boss's superuser session over TCP not reported: %v", got)
	}
}

// TestLogsScanEmptyPrefixHonoured: an empty --prefix is a prefix (lines start
// with the severity), not "detect one": lines that carry another prefix
// are read all the same but reported as not matching it.
func TestLogsScanEmptyPrefixHonoured(t *testing.T) {
	path := writeFile(t, "postgresql.log", "FATAL:  role \"ghost\" does not exist\n"+
		"2026-11-22 08:00:00.000 UTC [100] FATAL:  role \"ghost2\" does not exist\n")
	for _, c := range []struct {
		args    []string
		changed bool
	}{{[]string{"--prefix", ""}, true}, {nil, false}} {
		args := append([]string{"logs", "scan", path, "--format", "json", "--fail-on", "critical"}, c.args...)
		code, out, errs := runCLI(t, args...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d: %s", c.args, code, errs)
		}
		var doc struct {
			Stats struct {
				Errors []string `json:"errors"`
			} `json:"stats"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(strings.Join(doc.Stats.Errors, "\n"), `instead of ""`)
		if got != c.changed {
			t.Errorf("%v: errors %q", c.args, doc.Stats.Errors)
		}
	}
}
