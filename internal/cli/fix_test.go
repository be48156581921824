package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/apply"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/rules"
)

func runCLIInput(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := MainInput(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func fixJSON(t *testing.T, args ...string) (*plan.Plan, int) {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"fix", "--format", "json"}, args...)...)
	if code == ExitError {
		t.Fatalf("fix failed (exit %d): %s", code, errs)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("fix output is not a JSON plan: %v\n%s", err, out)
	}
	return &p, code
}

// refs is every finding a plan mentions: closed by a step, manual, held.
func refs(p *plan.Plan) []plan.FindingRef {
	var out []plan.FindingRef
	for _, s := range p.Steps {
		out = append(out, s.Closes...)
	}
	for _, m := range p.Manual {
		out = append(out, m.FindingRef)
	}
	for _, h := range p.Held {
		out = append(out, h.FindingRef)
	}
	return out
}

// TestFixPlanOnWeakServer: fix plans the weak server's failing findings,
// the filters narrow the plan, and the audit report shows as each
// finding's fix the planner's text.
func TestFixPlanOnWeakServer(t *testing.T) {
	srv := startWeak(t)
	conn := append(connArgs(t, srv, srv.AdminUser, srv.Password), "--password-check-budget", "0")
	p, code := fixJSON(t, conn...)
	if p.FormatVersion != plan.FormatVersion || p.ID == "" || p.Target == "" {
		t.Errorf("plan header: version %d, id %q, target %q", p.FormatVersion, p.ID, p.Target)
	}
	if want := map[bool]int{true: ExitOK, false: ExitFindings}[p.Empty()]; code != want {
		t.Errorf("exit %d for a plan with %d steps, want %d", code, len(p.Steps), want)
	}
	if len(refs(p)) == 0 {
		t.Fatal("the weak server's plan mentions no finding")
	}
	rep, _, _ := auditJSON(t, conn...)
	failingRefs := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Status == rules.Fail {
			failingRefs[f.Rule+"\x00"+f.Object] = true
		}
	}
	for _, r := range refs(p) {
		if !failingRefs[r.Rule+"\x00"+r.Object] {
			t.Errorf("the plan names %s %s, which the audit does not report failing", r.Rule, r.Object)
		}
	}
	// The report's fix of a finding a step closes is that step.
	stepOf := map[string][]string{}
	for _, s := range p.Steps {
		for _, c := range s.Closes {
			stepOf[c.Rule+"\x00"+c.Object] = append(stepOf[c.Rule+"\x00"+c.Object], s.ID)
		}
	}
	for _, f := range rep.Findings {
		for _, id := range stepOf[f.Rule+"\x00"+f.Object] {
			if f.Status == rules.Fail && !strings.Contains(f.Fix, "step "+id+" of `pgaegis fix`") {
				t.Errorf("%s %s: the report's fix is not step %s of the plan: %q", f.Rule, f.Object, id, f.Fix)
			}
		}
	}
	if strings.Contains(mustJSON(t, p), srv.Password) {
		t.Error("the plan contains the admin password")
	}

	t.Run("filters", func(t *testing.T) {
		cases := []struct {
			name string
			args []string
			ok   func(plan.FindingRef) bool
		}{
			{"only", []string{"--only", "AUTH-01,AUTH-05"}, func(r plan.FindingRef) bool { return r.Rule == "AUTH-01" || r.Rule == "AUTH-05" }},
			{"only-subrules", []string{"--only", "AUTH-11"}, func(r plan.FindingRef) bool { return strings.HasPrefix(r.Rule, "AUTH-11") }},
			{"exclude", []string{"--exclude", "AUTH-01", "--exclude", "PRIV-08"}, func(r plan.FindingRef) bool { return r.Rule != "AUTH-01" && r.Rule != "PRIV-08" }},
			{"min-severity", []string{"--min-severity", "high"}, func(r plan.FindingRef) bool { return r.Severity == "high" || r.Severity == "critical" }},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				q, _ := fixJSON(t, append(append([]string{}, conn...), c.args...)...)
				if len(refs(q)) == 0 {
					t.Errorf("%v: an empty plan on the weak server", c.args)
				}
				for _, s := range q.Steps {
					for _, r := range s.Closes {
						if !c.ok(r) {
							t.Errorf("%v: step %s closes %s %s (%s)", c.args, s.ID, r.Rule, r.Object, r.Severity)
						}
					}
				}
				for _, m := range q.Manual {
					if !c.ok(m.FindingRef) {
						t.Errorf("%v: manual %s %s (%s)", c.args, m.Rule, m.Object, m.Severity)
					}
				}
			})
		}
	})

	t.Run("formats", func(t *testing.T) {
		for _, f := range []string{"text", "sql", "sh"} {
			code, out, errs := runCLI(t, append([]string{"fix", "--format", f}, conn...)...)
			if code == ExitError || out == "" {
				t.Errorf("--format %s: exit %d, %s", f, code, errs)
			}
			if f == "sh" {
				path := filepath.Join(t.TempDir(), "plan.sh")
				must(t, os.WriteFile(path, []byte(out), 0o600))
				if o, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
					t.Errorf("sh -n: %v\n%s", err, o)
				}
			}
		}
	})

	t.Run("files-only", func(t *testing.T) {
		q, _ := fixJSON(t, "--pgdata", srv.DataDir)
		if len(refs(q)) == 0 {
			t.Error("files-only plan of the weak data directory mentions no finding")
		}
	})
}

func TestFixUsage(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		// Refused before connecting: nothing to ask on, no --yes.
		{"apply-without-yes", []string{"fix", "--apply", "-h", "/nonexistent"}, "", "give --yes"},
		{"yes-without-apply", []string{"fix", "--yes", "--pgdata", "/nonexistent"}, "", "--yes only means something with --apply"},
		{"unknown-rule", []string{"fix", "--only", "NOPE-99", "--pgdata", "/nonexistent"}, "", `unknown rule "NOPE-99"`},
		{"bad-format", []string{"fix", "--format", "yaml", "--pgdata", "/nonexistent"}, "", `unknown --format "yaml"`},
		{"bad-severity", []string{"fix", "--min-severity", "urgent", "--pgdata", "/nonexistent"}, "", "--min-severity"},
		{"apply-files-only", []string{"fix", "--apply", "--yes", "--pgdata", "/nonexistent"}, "", "--apply needs a connection"},
		{"rollback-no-id", []string{"fix", "rollback"}, "", "needs one plan id"},
		{"history-format", []string{"fix", "history", "--format", "xml"}, "", `unknown --format "xml"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLIInput(t, c.stdin, c.args...)
			if code != ExitError || !strings.Contains(errs, c.want) {
				t.Errorf("%v: exit %d, stderr %q, want exit 2 naming %q", c.args, code, errs, c.want)
			}
			if out != "" {
				t.Errorf("%v: a refusal printed %q", c.args, out)
			}
		})
	}
}

func TestFixSelection(t *testing.T) {
	p := &plan.Plan{ID: "x", Steps: []plan.Step{
		{ID: "1", Summary: "certificate", Closes: []plan.FindingRef{{Rule: "TLS-01", Object: "ssl"}}},
		{ID: "2", Summary: "ssl on", After: []string{"1"}, Closes: []plan.FindingRef{{Rule: "TLS-01", Object: "ssl"}}},
		{ID: "3", Summary: "pg_hba.conf", Closes: []plan.FindingRef{{Rule: "AUTH-01", Object: "line 2"}}},
		{ID: "4", Summary: "revoke", Closes: []plan.FindingRef{{Rule: "PRIV-08", Object: "t"}}},
	}}
	cases := []struct {
		answer string
		kept   []string
		held   map[string]string // rule -> why
		err    string
	}{
		{"", []string{"1", "2", "3", "4"}, nil, ""},
		{"all", []string{"1", "2", "3", "4"}, nil, ""},
		{"none", nil, map[string]string{"TLS-01": "not selected", "AUTH-01": "not selected", "PRIV-08": "not selected"}, ""},
		{"2-4", []string{"3", "4"}, map[string]string{"TLS-01": "needs step 1, which was not selected"}, ""},
		{"1 3,4", []string{"1", "3", "4"}, map[string]string{"TLS-01": "not selected"}, ""},
		{"9", nil, nil, "no step 9"},
		{"x", nil, nil, `"x" is not a step number`},
	}
	for _, c := range cases {
		env := &Env{Stdin: strings.NewReader(c.answer + "\n"), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
		q, err := selectSteps(env, p)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.answer, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.answer, err)
		}
		var kept []string
		for _, s := range q.Steps {
			kept = append(kept, s.ID)
		}
		if !reflect.DeepEqual(kept, c.kept) {
			t.Errorf("%q: kept %v, want %v", c.answer, kept, c.kept)
		}
		for _, h := range q.Held {
			if want, ok := c.held[h.Rule]; !ok || (want != h.Why && h.Rule != "TLS-01") {
				t.Errorf("%q: held %s: %q, want %q", c.answer, h.Rule, h.Why, want)
			}
		}
		if len(c.held) > 0 && len(q.Held) == 0 {
			t.Errorf("%q: nothing held, want %v", c.answer, c.held)
		}
	}
}

// waitsForApply skips a test of --apply, rollback or history while
// internal/apply is the API stub (built by another part of issue 12).
func waitsForApply(t *testing.T, errs string) {
	t.Helper()
	if strings.Contains(errs, "not built yet") {
		t.Skip("waits for internal/apply: " + strings.TrimSpace(errs))
	}
}

func TestFixHistoryEmpty(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runCLI(t, "fix", "history", "--journal-dir", dir)
	waitsForApply(t, errs)
	if code != ExitOK || !strings.Contains(out, "no plans") {
		t.Errorf("history of an empty journal: exit %d, %q %q", code, out, errs)
	}
	code, out, errs = runCLI(t, "fix", "history", "--journal-dir", dir, "--format", "json")
	if code != ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("history --format json of an empty journal: exit %d, %q %q", code, out, errs)
	}
}

// TestFixApplyAndRollback: apply the weak server's plan, see it in the
// history, a second plan has nothing left of what the first closed, and
// rollback restores pg_hba.conf and postgresql.auto.conf byte for byte.
func TestFixApplyAndRollback(t *testing.T) {
	if _, err := apply.History(t.TempDir()); err != nil {
		waitsForApply(t, err.Error())
	}
	srv := startWeak(t)
	conn := append(connArgs(t, srv, srv.AdminUser, srv.Password), "--password-check-budget", "0")
	journal := t.TempDir()
	hba := filepath.Join(srv.DataDir, "pg_hba.conf")
	auto := filepath.Join(srv.DataDir, "postgresql.auto.conf")
	hbaBefore, _ := os.ReadFile(hba)
	autoBefore, _ := os.ReadFile(auto)
	first, _ := fixJSON(t, append(append([]string{}, conn...), "--min-severity", "high")...)

	code, out, errs := runCLI(t, append([]string{"fix", "--apply", "--yes", "--min-severity", "high", "--journal-dir", journal, "--no-restart"}, conn...)...)
	waitsForApply(t, errs)
	if code != ExitOK {
		t.Fatalf("fix --apply --yes: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "fix", "history", "--journal-dir", journal, "--format", "json")
	var hist []struct{ ID, State string }
	if code != ExitOK || json.Unmarshal([]byte(out), &hist) != nil || len(hist) != 1 || hist[0].State != "applied" {
		t.Fatalf("history after apply: exit %d %q %q", code, out, errs)
	}
	second, _ := fixJSON(t, append(append([]string{}, conn...), "--min-severity", "high")...)
	// With --no-restart the restart step, and the step after it, are
	// pending: what they close is still to do.
	pending := map[string]bool{}
	for _, s := range first.Steps {
		if s.Apply == plan.ApplyRestart {
			pending[s.ID] = true
		}
		for _, a := range s.After {
			pending[s.ID] = pending[s.ID] || pending[a]
		}
	}
	closedBefore := map[string]bool{}
	for _, s := range first.Steps {
		if pending[s.ID] {
			continue
		}
		for _, c := range s.Closes {
			closedBefore[c.Rule+"\x00"+c.Object] = true
		}
	}
	for _, s := range second.Steps {
		for _, c := range s.Closes {
			if closedBefore[c.Rule+"\x00"+c.Object] {
				t.Errorf("after the apply, the plan still has %s %s", c.Rule, c.Object)
			}
		}
	}
	code, out, errs = runCLI(t, append([]string{"fix", "rollback", hist[0].ID, "--journal-dir", journal, "--no-restart"}, conn[:2]...)...)
	if code != ExitOK {
		t.Fatalf("rollback: exit %d %q %q", code, out, errs)
	}
	if b, _ := os.ReadFile(hba); !bytes.Equal(b, hbaBefore) {
		t.Errorf("pg_hba.conf after rollback differs:\n%s", b)
	}
	if b, _ := os.ReadFile(auto); !bytes.Equal(b, autoBefore) {
		t.Errorf("postgresql.auto.conf after rollback differs:\n%s", b)
	}
}
