package apply

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
)

// snap is what a test compares before and after: the bytes, mode and
// owner of the files a plan touches.
type fileState struct {
	data     string
	mode     os.FileMode
	uid, gid uint32
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return fileState{string(b), st.Mode().Perm(), sys.Uid, sys.Gid}
}

func sameState(t *testing.T, what string, got, want fileState) {
	t.Helper()
	if got.data != want.data {
		t.Errorf("%s: content differs:\n got %q\nwant %q", what, got.data, want.data)
	}
	if got.mode != want.mode || got.uid != want.uid || got.gid != want.gid {
		t.Errorf("%s: mode/owner %v %d:%d, want %v %d:%d", what, got.mode, got.uid, got.gid, want.mode, want.uid, want.gid)
	}
}

func show(t *testing.T, s *localpg.Server, name string) string {
	t.Helper()
	c, err := s.Connect(pgtest.Ctx(t), "postgres")
	if err != nil {
		t.Fatalf("admin cannot connect: %v", err)
	}
	defer c.Close(context.Background())
	var v string
	if err := c.QueryRow(pgtest.Ctx(t), "SELECT current_setting($1)", name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func roleExists(t *testing.T, s *localpg.Server, name string) bool {
	t.Helper()
	c, err := s.Connect(pgtest.Ctx(t), "postgres")
	if err != nil {
		t.Fatalf("admin cannot connect: %v", err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(pgtest.Ctx(t), "SELECT count(*) FROM pg_roles WHERE rolname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func opts(t *testing.T, s *localpg.Server) Options {
	return Options{
		Conn:        s.ConnConfig("postgres"),
		JournalRoot: t.TempDir(),
		ServerLog:   filepath.Join(s.Dir, "restart.log"),
		Progress:    testWriter{t},
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

const hostile = `app"; DROP ROLE x; --`

// fullPlan has one step of every kind the engine writes: a chmod, SQL with
// undo (a hostile role name), a reload setting, a pg_hba.conf rewrite and
// restart-needing settings (a list setting of two libraries, a module
// setting and unix_socket_permissions).
func fullPlan(s *localpg.Server, hbaBefore string) *plan.Plan {
	ident := filepath.Join(s.DataDir, "pg_ident.conf")
	newHBA := "host all \"" + strings.ReplaceAll(hostile, `"`, `""`) + "\" 127.0.0.1/32 reject\n" + hbaBefore
	return &plan.Plan{Target: "test", Steps: []plan.Step{
		{ID: "1", Kind: plan.KindFileMode, Summary: "chmod", Modes: []plan.ModeChange{{Path: ident, From: 0o600, To: 0o640}}},
		{ID: "2", Kind: plan.KindSQL, Database: "postgres",
			SQL:  []string{`CREATE ROLE "app""; DROP ROLE x; --" LOGIN`},
			Undo: []string{`DROP ROLE "app""; DROP ROLE x; --"`}},
		{ID: "3", Kind: plan.KindSettings, Apply: plan.ApplyReload, Settings: []plan.SettingChange{{Name: "log_connections", From: "off", To: "on"}}},
		{ID: "4", Kind: plan.KindHBA, Apply: plan.ApplyReload, HBA: &plan.HBARewrite{Path: filepath.Join(s.DataDir, "pg_hba.conf"), Content: newHBA,
			Lines: []plan.LineChange{{Line: 0, New: strings.SplitN(newHBA, "\n", 2)[0], Rules: []string{"T"}}}}},
		{ID: "5", Kind: plan.KindSettings, Apply: plan.ApplyRestart, Settings: []plan.SettingChange{
			{Name: "shared_preload_libraries", To: "pgaudit,auth_delay", Restart: true},
			{Name: "auth_delay.milliseconds", To: "500"},
			{Name: "unix_socket_permissions", From: "0777", To: "0770", Restart: true}}},
	}}
}

func TestApplyRestartRollback(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	hbaPath := filepath.Join(s.DataDir, "pg_hba.conf")
	autoPath := filepath.Join(s.DataDir, "postgresql.auto.conf")
	identPath := filepath.Join(s.DataDir, "pg_ident.conf")
	hba0, auto0, ident0 := stateOf(t, hbaPath), stateOf(t, autoPath), stateOf(t, identPath)
	p := fullPlan(s, hba0.data)
	o := opts(t, s)
	res, err := Apply(ctx, p, o)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !res.Reloaded || !res.Restarted || len(res.Applied) != 5 || res.RolledBack {
		t.Fatalf("result %+v", res)
	}
	// The list setting is two libraries, not one named "pgaudit,auth_delay".
	if got := show(t, s, "shared_preload_libraries"); got != "pgaudit, auth_delay" {
		t.Errorf("shared_preload_libraries = %q", got)
	}
	for name, want := range map[string]string{"auth_delay.milliseconds": "500ms", "unix_socket_permissions": "0770", "log_connections": "on"} {
		if got := show(t, s, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !roleExists(t, s, hostile) {
		t.Errorf("SQL step did not run")
	}
	hba1 := stateOf(t, hbaPath)
	if hba1.data != p.Steps[3].HBA.Content || hba1.mode != hba0.mode || hba1.uid != hba0.uid {
		t.Errorf("pg_hba.conf after apply: %+v", hba1)
	}
	if st := stateOf(t, identPath); st.mode != 0o640 || st.uid != ident0.uid {
		t.Errorf("pg_ident.conf mode %v owner %d", st.mode, st.uid)
	}
	if st := stateOf(t, autoPath); st.uid != auto0.uid || st.mode != auto0.mode {
		t.Errorf("postgresql.auto.conf owner/mode changed: %+v", st)
	}
	// The journal is private.
	checkPrivate(t, res.JournalDir)
	h, err := History(o.JournalRoot)
	if err != nil || len(h) != 1 || h[0].ID != res.PlanID || h[0].State != plan.StateApplied {
		t.Fatalf("history %+v %v", h, err)
	}

	rb, err := Rollback(ctx, res.PlanID, o)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if !rb.Restarted {
		t.Errorf("rollback of a restarted plan did not restart")
	}
	sameState(t, "pg_hba.conf", stateOf(t, hbaPath), hba0)
	sameState(t, "postgresql.auto.conf", stateOf(t, autoPath), auto0)
	sameState(t, "pg_ident.conf", stateOf(t, identPath), ident0)
	if roleExists(t, s, hostile) {
		t.Errorf("undo SQL did not run")
	}
	if got := show(t, s, "shared_preload_libraries"); got != "" {
		t.Errorf("shared_preload_libraries after rollback = %q", got)
	}
	if got := show(t, s, "log_connections"); got != "off" {
		t.Errorf("log_connections after rollback = %q", got)
	}
	if _, err := Rollback(ctx, res.PlanID, o); err == nil || !strings.Contains(err.Error(), "already rolled back") {
		t.Errorf("second rollback: %v", err)
	}
	h, _ = History(o.JournalRoot)
	if len(h) != 1 || h[0].State != plan.StateRolledBack || h[0].RolledBack.IsZero() {
		t.Errorf("history after rollback %+v", h)
	}
}

func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
}
