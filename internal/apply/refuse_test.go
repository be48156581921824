package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
)

// guardPlan: an SQL step and a settings step ahead of the hba rewrite, so
// that "nothing changed" covers them too.
func guardPlan(s *localpg.Server, hbaContent string, extra ...plan.Step) *plan.Plan {
	steps := []plan.Step{
		{ID: "1", Kind: plan.KindSQL, Database: "postgres", SQL: []string{`CREATE ROLE guard_probe`}, Undo: []string{`DROP ROLE guard_probe`}},
		{ID: "2", Kind: plan.KindSettings, Apply: plan.ApplyReload, Settings: []plan.SettingChange{{Name: "work_mem", To: "8MB"}}},
	}
	if hbaContent != "" {
		steps = append(steps, plan.Step{ID: "3", Kind: plan.KindHBA, Apply: plan.ApplyReload,
			HBA: &plan.HBARewrite{Path: filepath.Join(s.DataDir, "pg_hba.conf"), Content: hbaContent}})
	}
	return &plan.Plan{Target: "test", Steps: append(steps, extra...)}
}

// assertUntouched: the refusal changed nothing on the server.
func assertUntouched(t *testing.T, s *localpg.Server, hba0, auto0 fileState) {
	t.Helper()
	sameState(t, "pg_hba.conf", stateOf(t, filepath.Join(s.DataDir, "pg_hba.conf")), hba0)
	sameState(t, "postgresql.auto.conf", stateOf(t, filepath.Join(s.DataDir, "postgresql.auto.conf")), auto0)
	if roleExists(t, s, "guard_probe") {
		t.Errorf("the SQL step ran before the refusal")
	}
	if got := show(t, s, "work_mem"); got != "4MB" {
		t.Errorf("work_mem = %q", got)
	}
}

func TestLockoutGuardRefusesBeforeAnyChange(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	if err := s.Exec(ctx, `CREATE ROLE nopw LOGIN`, `SET password_encryption = 'md5'`, `CREATE ROLE md5user LOGIN PASSWORD 'x-not-a-secret'`); err != nil {
		t.Fatal(err)
	}
	hba0 := stateOf(t, filepath.Join(s.DataDir, "pg_hba.conf"))
	auto0 := stateOf(t, filepath.Join(s.DataDir, "postgresql.auto.conf"))
	keep := func(v string) []Path {
		p, err := ParsePath(v)
		if err != nil {
			t.Fatal(err)
		}
		return []Path{p}
	}
	cases := []struct {
		name string
		p    *plan.Plan
		keep []Path
		want string
	}{
		{"admin's first line becomes reject", guardPlan(s, "host all all 127.0.0.1/32 reject\n"+hba0.data), nil, `rejects it`},
		{"admin's first line is a reject for its role", guardPlan(s, "host postgres postgres 127.0.0.0/8 reject\n"+hba0.data), nil, `line 1 "host postgres postgres 127.0.0.0/8 reject" rejects it`},
		{"no line for the admin", guardPlan(s, "local all all trust\n"), nil, `no line of the new pg_hba.conf matches it`},
		{"hostssl for a plain connection", guardPlan(s, "hostssl all all 127.0.0.1/32 scram-sha-256\n"), nil, `no line`},
		{"kept role without a password", guardPlan(s, hba0.data), keep("nopw@postgres from 127.0.0.1"), `role "nopw" has none`},
		{"kept role with only md5", guardPlan(s, hba0.data), keep("md5user@postgres from 127.0.0.1"), `only an md5 one`},
		{"peer for another OS user", guardPlan(s, "local all all peer\n"+hba0.data), []Path{{Role: "postgres", Database: "postgres", Local: true, OSUser: "root"}}, `OS user "root" is not role "postgres"`},
		{"kept replication path", guardPlan(s, "host all all 127.0.0.1/32 scram-sha-256\n"), keep("postgres@replication from 127.0.0.1"), `postgres@replication from 127.0.0.1`},
		{"port change", guardPlan(s, "", plan.Step{ID: "9", Kind: plan.KindSettings, Apply: plan.ApplyRestart, Settings: []plan.SettingChange{{Name: "port", To: "1", Restart: true}}}), nil, `changes port`},
		{"listen_addresses cut", guardPlan(s, "", plan.Step{ID: "9", Kind: plan.KindSettings, Apply: plan.ApplyRestart, Settings: []plan.SettingChange{{Name: "listen_addresses", To: "", Restart: true}}}), nil, `listen_addresses`},
		{"invalid candidate", guardPlan(s, "host all all 127.0.0.1/32 trusst\n"+hba0.data), nil, `invalid`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := opts(t, s)
			o.Keep = c.keep
			res, err := Apply(ctx, c.p, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal containing %q", err, c.want)
			}
			if res.Problem == "" || res.RolledBack || len(res.Applied) != 0 {
				t.Errorf("result %+v", res)
			}
			assertUntouched(t, s, hba0, auto0)
			h, _ := History(o.JournalRoot)
			if len(h) != 1 || h[0].State != plan.StateRefused {
				t.Errorf("history %+v", h)
			}
		})
	}
}

// AUTH-14's paste: one quoted string is one library name. The throwaway
// server refuses to start with it, before the real server is touched.
func TestRestartProofRefusesBadLibraryList(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	hba0 := stateOf(t, filepath.Join(s.DataDir, "pg_hba.conf"))
	auto0 := stateOf(t, filepath.Join(s.DataDir, "postgresql.auto.conf"))
	p := guardPlan(s, "", plan.Step{ID: "3", Kind: plan.KindSettings, Apply: plan.ApplyRestart,
		Settings: []plan.SettingChange{{Name: "shared_preload_libraries", To: `"pgaudit,auth_delay"`, Restart: true}}})
	o := opts(t, s)
	_, err := Apply(ctx, p, o)
	if err == nil || !strings.Contains(err.Error(), `could not access file "pgaudit,auth_delay"`) {
		t.Fatalf("got %v, want the throwaway server's refusal", err)
	}
	assertUntouched(t, s, hba0, auto0)
	c, err := s.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var pending bool
	if err := c.QueryRow(ctx, `SELECT pending_restart FROM pg_settings WHERE name = 'shared_preload_libraries'`).Scan(&pending); err != nil || pending {
		t.Errorf("pending_restart = %v (%v): the real server saw the bad value", pending, err)
	}
}

// A fault after the reload: the journal is restored and the admin gets in.
func TestFaultAfterReloadRestores(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	hbaPath := filepath.Join(s.DataDir, "pg_hba.conf")
	autoPath := filepath.Join(s.DataDir, "postgresql.auto.conf")
	hba0, auto0 := stateOf(t, hbaPath), stateOf(t, autoPath)
	newHBA := "host all nobody_here 127.0.0.1/32 reject\n" + hba0.data
	closes := plan.FindingRef{Rule: "AUTH-01", Object: "hba rule"}
	mk := func(restart bool) *plan.Plan {
		p := guardPlan(s, newHBA)
		p.Steps[2].Closes = []plan.FindingRef{closes}
		if restart {
			p.Steps = append(p.Steps, plan.Step{ID: "4", Kind: plan.KindSettings, Apply: plan.ApplyRestart,
				Settings: []plan.SettingChange{{Name: "shared_preload_libraries", To: "pgaudit", Restart: true}}})
		}
		return p
	}
	waitLoginFails := func(ctx context.Context) error {
		for i := 0; ; i++ {
			c, err := s.Connect(ctx, "postgres")
			if err != nil {
				return nil
			}
			c.Close(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var cancelCur context.CancelFunc
	cases := []struct {
		name    string
		restart bool
		reaudit func(context.Context) ([]plan.FindingRef, error)
		after   func(context.Context) error
		verify  func(context.Context, *pgx.Conn)
		want    string
	}{
		{name: "re-audit finds a new failure (restarted plan)", restart: true,
			reaudit: func(context.Context) ([]plan.FindingRef, error) {
				return []plan.FindingRef{{Rule: "NEW-1", Object: "x"}}, nil
			}, want: "NEW-1 (x) fails now"},
		{name: "closed finding still fails",
			reaudit: func(context.Context) ([]plan.FindingRef, error) { return []plan.FindingRef{closes}, nil },
			want:    "should have closed AUTH-01"},
		{name: "re-audit errors",
			reaudit: func(context.Context) ([]plan.FindingRef, error) { return nil, errors.New("boom") },
			want:    "re-audit: boom"},
		{name: "verifying connection killed",
			verify: func(ctx context.Context, c *pgx.Conn) {
				var pid int
				c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
				s.Exec(ctx, "SELECT pg_terminate_backend("+itoa(pid)+")")
			}, want: "the fresh connection fails"},
		{name: "bad candidate slipped past",
			after: func(ctx context.Context) error {
				if err := s.WriteDataFile("pg_hba.conf", "host all all 0.0.0.0/0 reject\n"); err != nil {
					return err
				}
				if err := s.Reload(); err != nil {
					return err
				}
				return waitLoginFails(ctx)
			}, want: "cannot log in again"},
		{name: "interrupted after the reload",
			after: func(ctx context.Context) error {
				cancelCur() // Ctrl-C: the restore must still run to the end
				return ctx.Err()
			}, want: "context canceled"},
		{name: "bad setting slipped past",
			after: func(ctx context.Context) error {
				b, err := os.ReadFile(autoPath)
				if err != nil {
					return err
				}
				return s.WriteDataFile("postgresql.auto.conf", string(b)+"work_mem = 'lots'\n")
			}, want: "settings not in force: work_mem"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			afterReload, onVerifyConn = c.after, c.verify
			defer func() { afterReload, onVerifyConn = nil, nil }()
			o := opts(t, s)
			o.ReAudit = c.reaudit
			actx, cancel := context.WithCancel(ctx)
			defer cancel()
			cancelCur = cancel
			res, err := Apply(actx, mk(c.restart), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if !res.RolledBack {
				t.Fatalf("not rolled back: %+v", res)
			}
			sameState(t, "pg_hba.conf", stateOf(t, hbaPath), hba0)
			sameState(t, "postgresql.auto.conf", stateOf(t, autoPath), auto0)
			if roleExists(t, s, "guard_probe") {
				t.Errorf("undo SQL did not run")
			}
			if got := show(t, s, "work_mem"); got != "4MB" {
				t.Errorf("work_mem = %q after the restore", got)
			}
			if got := show(t, s, "shared_preload_libraries"); got != "" {
				t.Errorf("shared_preload_libraries = %q after the restore", got)
			}
			h, _ := History(o.JournalRoot)
			if len(h) != 1 || h[0].State != plan.StateFailed {
				t.Errorf("history %+v", h)
			}
			if _, err := Rollback(ctx, res.PlanID, o); err == nil {
				t.Errorf("rollback of a failed (restored) plan was accepted")
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A file edited after the apply is not overwritten by a rollback.
func TestRollbackRefusesChangedFile(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	hbaPath := filepath.Join(s.DataDir, "pg_hba.conf")
	hba0 := stateOf(t, hbaPath)
	o := opts(t, s)
	res, err := Apply(ctx, guardPlan(s, "host all nobody_here 127.0.0.1/32 reject\n"+hba0.data), o)
	if err != nil {
		t.Fatal(err)
	}
	edited := stateOf(t, hbaPath).data + "# edited by hand\n"
	if err := s.WriteDataFile("pg_hba.conf", edited); err != nil {
		t.Fatal(err)
	}
	_, err = Rollback(ctx, res.PlanID, o)
	if err == nil || !strings.Contains(err.Error(), hbaPath) {
		t.Fatalf("got %v, want a refusal naming %s", err, hbaPath)
	}
	if got := stateOf(t, hbaPath).data; got != edited {
		t.Errorf("the edited file was overwritten")
	}
	if !roleExists(t, s, "guard_probe") {
		t.Errorf("the refused rollback ran undo SQL")
	}
}

// A failing SQL step: its own transaction rolls back, the committed step
// before it is undone, and the files come back.
func TestFailingSQLStepRestores(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	hbaPath := filepath.Join(s.DataDir, "pg_hba.conf")
	hba0 := stateOf(t, hbaPath)
	p := guardPlan(s, "host all nobody_here 127.0.0.1/32 reject\n"+hba0.data)
	p.Steps = append(p.Steps[:1], append([]plan.Step{{ID: "1b", Kind: plan.KindSQL, Database: "postgres",
		SQL: []string{`CREATE ROLE half_done`, `SELECT 1/0`}, Undo: []string{`DROP ROLE half_done`}}}, p.Steps[1:]...)...)
	res, err := Apply(ctx, p, opts(t, s))
	if err == nil || !res.RolledBack || !strings.Contains(err.Error(), "step 1b") {
		t.Fatalf("got %v, %+v", err, res)
	}
	if roleExists(t, s, "guard_probe") || roleExists(t, s, "half_done") {
		t.Errorf("SQL left behind")
	}
	sameState(t, "pg_hba.conf", stateOf(t, hbaPath), hba0)
}
