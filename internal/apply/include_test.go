package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/fixtest"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// The include directory comes first, so a line in it decides before the
// main file's own lines: the lockout guard must read it.
const (
	includeMainHBA = "include_dir hba.d\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
	// The weak line is line 4: after the main file's lines by number,
	// before them in the server's order.
	includeWeak = "# clients of the extra network\n# (md5 until they move to SCRAM)\n#\nhost all all 10.0.0.0/8 md5\n"
)

// startIncluded starts a 16+ server whose weak line is in hba.d/10-extra.conf.
func startIncluded(t *testing.T, major int) (*localpg.Server, string) {
	t.Helper()
	var extra string
	s := pgtest.StartMajor(t, major, localpg.Options{HBA: includeMainHBA, Init: func(s *localpg.Server) error {
		dir := filepath.Join(s.DataDir, "hba.d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		if err := s.Chown(dir); err != nil {
			return err
		}
		extra = filepath.Join(dir, "10-extra.conf")
		if err := s.WriteFile(extra, includeWeak, 0o600); err != nil {
			return err
		}
		// In the directory, but not a *.conf: the server does not read it.
		return s.WriteFile(filepath.Join(dir, "20-off.txt"), includeWeak, 0o600)
	}})
	return s, extra
}

func failingOf(fs []rules.Finding, only string) []plan.FindingRef {
	var out []plan.FindingRef
	for _, f := range fs {
		if f.Status == rules.Fail && (only == "" || f.Rule == only) {
			out = append(out, plan.FindingRef{Rule: f.Rule, Object: f.Object, Severity: f.Severity.String()})
		}
	}
	return out
}

// reAudit is the CLI's verification (fix.Verifiable after a fresh audit).
func reAudit(t *testing.T, s *localpg.Server, before []rules.Finding) func(context.Context) ([]plan.FindingRef, error) {
	return func(context.Context) ([]plan.FindingRef, error) {
		_, after := fixtest.Audit(t, s)
		return failingOf(fix.Verifiable(before, after), ""), nil
	}
}

// hbaMethods is what the server itself reads now: file:line method.
func hbaMethods(t *testing.T, s *localpg.Server) string {
	t.Helper()
	ctx := pgtest.Ctx(t)
	c, err := s.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT file_name || ':' || line_number || ' ' || coalesce(auth_method, error) FROM pg_hba_file_rules ORDER BY rule_number NULLS LAST, line_number`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// A weak line in an included file (16+): the plan rewrites that file, the
// engine applies it like pg_hba.conf itself (journal, guard over the whole
// configuration, reload), the finding is gone, the server restarts with
// it, a second plan is empty and the rollback restores the file byte for
// byte.
func TestApplyIncludedHBAFile(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		if major < 16 {
			t.Skip("include directives in pg_hba.conf exist from 16 on")
		}
		s, extra := startIncluded(t, major)
		ctx := pgtest.Ctx(t)
		mainPath := filepath.Join(s.DataDir, "pg_hba.conf")
		main0, extra0 := stateOf(t, mainPath), stateOf(t, extra)
		methods0 := hbaMethods(t, s)
		if !strings.Contains(methods0, extra+":4 md5") {
			t.Fatalf("the server does not read the weak included line:\n%s", methods0)
		}

		snap, before := fixtest.Audit(t, s)
		weak := failingOf(before, "AUTH-02")
		if len(weak) == 0 {
			t.Fatalf("AUTH-02 does not fail for %s", extra)
		}
		only := []string{"AUTH-02"}
		p := fix.Build(snap, before, fix.Options{Only: only}).Plan
		var step *plan.Step
		for i := range p.Steps {
			if p.Steps[i].Kind == plan.KindHBA {
				if step != nil {
					t.Fatalf("two pg_hba steps: %+v", p.Steps)
				}
				step = &p.Steps[i]
			}
		}
		if step == nil || filepath.Clean(step.HBA.Path) != extra {
			t.Fatalf("no step rewriting %s: %+v (held %+v)", extra, p.Steps, p.Held)
		}

		o := opts(t, s)
		o.Before, o.ReAudit = failingOf(before, ""), reAudit(t, s, before)
		res, err := Apply(ctx, p, o)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if !res.Reloaded || res.RolledBack {
			t.Fatalf("result %+v", res)
		}
		if got := stateOf(t, extra); got.data != step.HBA.Content || got.mode != extra0.mode || got.uid != extra0.uid {
			t.Errorf("%s after apply: %+v", extra, got)
		}
		sameState(t, "pg_hba.conf (not in the plan)", stateOf(t, mainPath), main0)
		if m := hbaMethods(t, s); !strings.Contains(m, extra+":4 scram-sha-256") {
			t.Errorf("the server reads after the apply:\n%s", m)
		}
		_, after := fixtest.Audit(t, s)
		if left := failingOf(after, "AUTH-02"); len(left) > 0 {
			t.Errorf("AUTH-02 still fails after the apply: %+v", left)
		}
		if err := s.Restart(ctx); err != nil {
			t.Fatalf("the server does not restart with the applied files: %v", err)
		}
		snap2, after2 := fixtest.Audit(t, s)
		if p2 := fix.Build(snap2, after2, fix.Options{Only: only}).Plan; !p2.Empty() {
			t.Errorf("second plan is not empty: %+v", p2.Steps)
		}

		if _, err := Rollback(ctx, res.PlanID, o); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		sameState(t, extra, stateOf(t, extra), extra0)
		sameState(t, "pg_hba.conf", stateOf(t, mainPath), main0)
		if m := hbaMethods(t, s); m != methods0 {
			t.Errorf("after the rollback the server reads:\n%s\nwant:\n%s", m, methods0)
		}
	})
}

// Only files the server reads are rewritten; and the lockout guard judges
// the included file's new lines, which come before the main file's.
func TestApplyIncludedHBARefusals(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		if major < 16 {
			t.Skip("include directives in pg_hba.conf exist from 16 on")
		}
		s, extra := startIncluded(t, major)
		ctx := pgtest.Ctx(t)
		dir := filepath.Dir(extra)
		outside := filepath.Join(t.TempDir(), "10-extra.conf")
		if err := os.WriteFile(outside, []byte(includeWeak), 0o600); err != nil {
			t.Fatal(err)
		}
		ident := filepath.Join(s.DataDir, "pg_ident.conf")
		scram := strings.Replace(includeWeak, "md5", "scram-sha-256", 1)
		cases := []struct {
			name, path, content, want string
		}{
			{"outside the data directory", outside, scram, "no include of it names that file"},
			{"in hba.d, not a .conf", filepath.Join(dir, "20-off.txt"), scram, "no include of it names that file"},
			{"climbing out of hba.d", dir + "/../pg_ident.conf", scram, "no include of it names that file"},
			{"included line locks the operator out", extra, "host all all 127.0.0.1/32 reject\nlocal all all reject\n", "10-extra.conf:1 \"host all all 127.0.0.1/32 reject\" rejects it"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				watched := []string{c.path, extra, ident, filepath.Join(s.DataDir, "pg_hba.conf"), filepath.Join(s.DataDir, "postgresql.auto.conf")}
				before := map[string]fileState{}
				for _, f := range watched {
					before[f] = stateOf(t, filepath.Clean(f))
				}
				methods0 := hbaMethods(t, s)
				p := &plan.Plan{Target: "test", Steps: []plan.Step{{ID: "1", Kind: plan.KindHBA, Apply: plan.ApplyReload,
					HBA: &plan.HBARewrite{Path: c.path, Content: c.content,
						Lines: []plan.LineChange{{Line: 4, Old: "host all all 10.0.0.0/8 md5", New: "host all all 10.0.0.0/8 scram-sha-256", Rules: []string{"AUTH-02"}}}}}}}
				_, err := Apply(ctx, p, opts(t, s))
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want a refusal with %q", err, c.want)
				}
				for _, f := range watched {
					sameState(t, f, stateOf(t, filepath.Clean(f)), before[f])
				}
				if m := hbaMethods(t, s); m != methods0 {
					t.Errorf("the server reads after the refusal:\n%s", m)
				}
			})
		}
		// Off the host the guard takes the rules from pg_hba_file_rules:
		// in the server's order across files, as our parse of them.
		t.Run("rules from the server in order", func(t *testing.T) {
			c, err := pgx.ConnectConfig(ctx, s.ConnConfig("postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			mainPath := filepath.Join(s.DataDir, "pg_hba.conf")
			e := &engine{conn: c, info: serverInfo{version: major * 10000, hbaFile: mainPath}}
			ho := hba.Options{Version: major}
			got, err := e.hbaFromServer(ctx, ho)
			if err != nil {
				t.Fatal(err)
			}
			want, err := hba.ParseFile(mainPath, ho)
			if err != nil {
				t.Fatal(err)
			}
			sig := func(rs []hba.Rule) string {
				var b strings.Builder
				for _, r := range rs {
					fmt.Fprintf(&b, "%s %s %s\n", r.Type, r.Method, r.Addr) // lines are renumbered
				}
				return b.String()
			}
			if len(want.Rules) != 3 || sig(got) != sig(want.Rules) {
				t.Errorf("from the server:\n%s\nparsed:\n%s", sig(got), sig(want.Rules))
			}
		})
	})
}
