package apply

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
)

// NoRestart leaves restart-needing steps pending (still proven first);
// a command step goes through the runner without "pgaegis".
func TestNoRestartLeavesPendingAndRunsCommands(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	var ran [][]string
	o := opts(t, s)
	o.NoRestart = true
	o.RunCommand = func(_ context.Context, argv []string) error {
		ran = append(ran, argv)
		return nil
	}
	p := &plan.Plan{Steps: []plan.Step{
		{ID: "1", Kind: plan.KindCommand, Command: []string{"pgaegis", "tls", "issue", "server", "--out", "/x y"}},
		{ID: "2", Kind: plan.KindSettings, Apply: plan.ApplyRestart, Closes: []plan.FindingRef{{Rule: "LOG-26", Object: "shared_preload_libraries"}},
			Settings: []plan.SettingChange{{Name: "shared_preload_libraries", To: "pgaudit", Restart: true}}},
	}}
	// The finding the pending step closes still fails: that is expected.
	o.Before = []plan.FindingRef{{Rule: "LOG-26", Object: "shared_preload_libraries"}}
	o.ReAudit = func(context.Context) ([]plan.FindingRef, error) { return o.Before, nil }
	res, err := Apply(ctx, p, o)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if res.Restarted || !reflect.DeepEqual(res.Pending, []string{"2"}) || !reflect.DeepEqual(res.Applied, []string{"1"}) {
		t.Errorf("result %+v", res)
	}
	if want := [][]string{{"tls", "issue", "server", "--out", "/x y"}}; !reflect.DeepEqual(ran, want) {
		t.Errorf("ran %q", ran)
	}
	c, err := s.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	var pending bool
	c.QueryRow(ctx, `SELECT pending_restart FROM pg_settings WHERE name = 'shared_preload_libraries'`).Scan(&pending)
	c.Close(ctx)
	if !pending {
		t.Errorf("shared_preload_libraries is not pending a restart")
	}
	auto := stateOf(t, filepath.Join(s.DataDir, "postgresql.auto.conf")).data
	if !strings.Contains(auto, "shared_preload_libraries = 'pgaudit'") {
		t.Errorf("postgresql.auto.conf:\n%s", auto)
	}
	// Without a runner, a command step is refused before anything runs.
	o2 := opts(t, s)
	if _, err := Apply(ctx, &plan.Plan{Steps: p.Steps[:1]}, o2); err == nil || !strings.Contains(err.Error(), "no command runner") {
		t.Errorf("command step without a runner: %v", err)
	}
}
