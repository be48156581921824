package fixtest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
)

// The applier itself: every kind of step lands on the server, and a
// configuration the server rejects fails the test.
func TestApplyEveryKind(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	hbaPath := filepath.Join(srv.DataDir, "pg_hba.conf")
	old, err := os.ReadFile(hbaPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{Steps: []plan.Step{
		{ID: "1", Kind: plan.KindFileMode, Modes: []plan.ModeChange{{Path: filepath.Join(srv.DataDir, "postgresql.conf"), From: 0o600, To: 0o600}}},
		{ID: "2", Kind: plan.KindSQL, Database: "postgres", SQL: []string{`CREATE ROLE "fixtest;role"`}},
		{ID: "3", Kind: plan.KindSettings, Settings: []plan.SettingChange{
			{Name: "log_connections", To: "on"},
			{Name: "shared_preload_libraries", To: "pg_stat_statements, auth_delay", Restart: true},
		}},
		{ID: "4", Kind: plan.KindHBA, HBA: &plan.HBARewrite{Path: hbaPath, Content: string(old) + "host all all ::1/128 reject\n"}},
	}}
	Apply(t, srv, p, Options{})
	ctx := pgtest.Ctx(t)
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var lc, spl string
	var n int
	if err := c.QueryRow(ctx, `SELECT current_setting('log_connections'), current_setting('shared_preload_libraries'),
		(SELECT count(*) FROM pg_roles WHERE rolname = 'fixtest;role')`).Scan(&lc, &spl, &n); err != nil {
		t.Fatal(err)
	}
	if lc != "on" || spl != "pg_stat_statements, auth_delay" || n != 1 {
		t.Errorf("after apply: log_connections=%s shared_preload_libraries=%q role=%d", lc, spl, n)
	}
	got, _ := os.ReadFile(hbaPath)
	if !strings.HasSuffix(string(got), "::1/128 reject\n") {
		t.Errorf("pg_hba.conf not rewritten")
	}
}

// One quoted string is one library: the statement AlterSystem writes for
// a list setting must give separate elements.
func TestAlterSystemList(t *testing.T) {
	got := plan.AlterSystem(plan.SettingChange{Name: "shared_preload_libraries", To: "pgaudit, auth_delay"})
	if got != "ALTER SYSTEM SET shared_preload_libraries = 'pgaudit', 'auth_delay';" {
		t.Errorf("AlterSystem = %s", got)
	}
}

// recorder is a testing.TB that keeps the errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Helper() {}

// The proof can fail: a step that does not fix what it claims, and a
// step that breaks another rule, are both reported.
func TestVerifyCatchesFalseClaims(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{Conf: []string{"log_connections = off"}})
	_, before := Audit(t, srv)
	claim := plan.Step{ID: "1", Kind: plan.KindSettings,
		// Claims LOG-19 (log_connections) but changes something else, and
		// breaks what passed (LOG-17 wants debug_print_plan off).
		Settings: []plan.SettingChange{{Name: "debug_print_plan", To: "on"}},
		Closes:   []plan.FindingRef{{Rule: "LOG-19", Object: "setting log_connections"}}}
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Verify(rec, srv, before, &plan.Plan{Steps: []plan.Step{claim}}, []string{"LOG-19"}, Options{})
	}()
	<-done
	all := strings.Join(rec.errs, "\n")
	if !strings.Contains(all, "LOG-19 setting log_connections still fails") {
		t.Errorf("a false claim was not caught:\n%s", all)
	}
	if !strings.Contains(all, "passed before and fails after") {
		t.Errorf("a step that breaks another rule was not caught:\n%s", all)
	}
}
