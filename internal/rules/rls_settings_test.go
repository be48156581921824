package rules

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// PRIV-20 on a real server: the policies without missing_ok are flagged
// (hostile names included), a policy that passes true and one whose
// string literal spells current_setting( are not; the fix, run as the
// planner runs it, makes an unset session see no rows instead of failing,
// and its undo restores the policies exactly.
func TestPRIV20MissingOK(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{})
	ctx := context.Background()
	c := pgtest.Conn(t, srv, "postgres")
	for _, s := range []string{
		"CREATE ROLE rls_app",
		`CREATE SCHEMA "s""q.x"`,
		`CREATE TABLE "s""q.x"."t'b" (id int PRIMARY KEY, tenant_id int, body text)`,
		`INSERT INTO "s""q.x"."t'b" SELECT g, g % 3, 'b' FROM generate_series(1, 9) g`,
		`GRANT USAGE ON SCHEMA "s""q.x" TO rls_app`,
		`GRANT SELECT, INSERT ON "s""q.x"."t'b" TO rls_app`,
		`ALTER TABLE "s""q.x"."t'b" ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY "p""bad.1" ON "s""q.x"."t'b" FOR SELECT USING (tenant_id = current_setting('app.tenant_id')::int)`,
		`CREATE POLICY ins_false ON "s""q.x"."t'b" FOR INSERT WITH CHECK (tenant_id = current_setting('app.tenant_id', false)::int)`,
		`CREATE POLICY good ON "s""q.x"."t'b" FOR SELECT USING (tenant_id = current_setting('app.tenant_id', true)::int)`,
		`CREATE POLICY literal ON "s""q.x"."t'b" FOR SELECT USING (body <> 'current_setting(''app.x'')' AND tenant_id = nullif(current_setting('app.t', true), '')::int)`,
	} {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	flagged := func() []Finding {
		snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true, NoProbe: true})
		if err != nil {
			t.Fatal(err)
		}
		var out []Finding
		for _, f := range Run(snap) {
			if f.Rule == "PRIV-20" && f.Status == Fail {
				out = append(out, f)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Object < out[j].Object })
		return out
	}
	fs := flagged()
	var objs []string
	for _, f := range fs {
		objs = append(objs, f.Object)
	}
	want := `policy ins_false on table postgres.s"q.x.t'b|policy p"bad.1 on table postgres.s"q.x.t'b`
	if strings.Join(objs, "|") != want {
		t.Fatalf("flagged %q, want %q", strings.Join(objs, "|"), want)
	}
	before := policyRows(t, srv)
	// As the role, without the setting: an error before the fix.
	asApp := func() error {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE rls_app"); err != nil {
			t.Fatal(err)
		}
		var n int
		err = tx.QueryRow(ctx, `SELECT count(*) FROM "s""q.x"."t'b"`).Scan(&n)
		if err == nil && n != 0 {
			t.Errorf("an unset session sees %d rows", n)
		}
		return err
	}
	if err := asApp(); err == nil {
		t.Fatal("the unsafe policy did not fail for an unset session")
	}
	var undo []string
	for _, f := range fs {
		ch, ok := sqlChangeOf(f)
		if !ok || ch.Database != "postgres" || !strings.Contains(f.Fix, "current_setting('app.tenant_id'::text, true)") {
			t.Fatalf("%s: fix %q", f.Object, f.Fix)
		}
		t.Logf("fix: %s", f.Fix)
		for _, s := range ch.Statements {
			if _, err := c.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		undo = append(ch.Undo, undo...)
	}
	if fs := flagged(); len(fs) != 0 {
		t.Errorf("still flagged after the fix: %v", fs[0].Object)
	}
	if err := asApp(); err != nil {
		t.Errorf("after the fix an unset session fails: %v", err)
	}
	for i := len(undo) - 1; i >= 0; i-- {
		if _, err := c.Exec(ctx, undo[i]); err != nil {
			t.Fatalf("%s: %v", undo[i], err)
		}
	}
	if after := policyRows(t, srv); after != before {
		t.Errorf("the undo left the policies as\n%s\nnot\n%s", after, before)
	}
}

func policyRows(t *testing.T, srv *localpg.Server) string {
	t.Helper()
	c := pgtest.Conn(t, srv, "postgres")
	var s string
	if err := c.QueryRow(context.Background(), `SELECT string_agg(format('%s %s %s %s', polname, polcmd, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)), E'\n' ORDER BY polname) FROM pg_policy`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
