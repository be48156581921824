package rlstest

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/quote"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

const tenantPolicy = "tenant_id = current_setting('app.tenant_id', true)::int"

// tenantTable creates schema.t (id, tenant_id, body) with 300 rows over
// tenants 1..6, owned by owner, app granted CRUD, and runs extra (the
// policies) after ENABLE ROW LEVEL SECURITY.
func tenantTable(t *testing.T, c *pgx.Conn, schema, owner string, extra ...string) {
	t.Helper()
	qs := quote.Ident(schema)
	qt := qs + ".t"
	stmts := []string{
		"CREATE SCHEMA " + qs,
		fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, tenant_id int NOT NULL, body text)", qt),
		fmt.Sprintf("INSERT INTO %s SELECT g, 1 + g %% 6, 'row ' || g FROM generate_series(1, 300) g", qt),
		fmt.Sprintf("ALTER TABLE %s OWNER TO %s", qt, quote.Ident(owner)),
		fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO app", qs),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO app", qt),
		fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", qt),
	}
	execAll(t, c, append(stmts, extra...)...)
}

// execAll runs statements as the admin, failing on the first error.
func execAll(t *testing.T, c *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := c.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// baseRoles are the test's roles: app (the application), app_owner.
func baseRoles(t *testing.T, c *pgx.Conn) {
	t.Helper()
	for _, s := range []string{"CREATE ROLE app_owner NOLOGIN", "CREATE ROLE app LOGIN"} {
		if _, err := c.Exec(context.Background(), s); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
}

// tenantTests is the behaviour the correct policy has, for tenant 3.
func tenantTests() []policy.RLSTest {
	return []policy.RLSTest{{
		Name: "tenant 3", As: "app", Set: map[string]string{"app.tenant_id": "3"}, Sees: "tenant_id = 3",
		Insert: []policy.WriteTest{
			{Values: map[string]string{"id": "1001", "tenant_id": "3", "body": "'mine'"}, Expect: "allowed"},
			{Values: map[string]string{"id": "1002", "tenant_id": "4", "body": "'theirs'"}, Expect: "denied"},
		},
		Update: []policy.WriteTest{
			{Values: map[string]string{"body": "'x'"}, Where: "tenant_id = 3", Expect: "allowed"},
			{Values: map[string]string{"body": "'x'"}, Where: "tenant_id = 4", Expect: "denied"},
			{Values: map[string]string{"tenant_id": "4"}, Where: "id = 3", Expect: "denied"},
		},
		Delete: []policy.WriteTest{
			{Where: "tenant_id = 3", Expect: "allowed"},
			{Where: "tenant_id = 4", Expect: "denied"},
		},
	}, {
		// No setting: with missing_ok the role sees nothing, no error.
		Name: "unset", As: "app", Sees: "false",
	}}
}

func fileFor(db, schema string, tests []policy.RLSTest) *policy.File {
	return &policy.File{Version: 1, Databases: map[string]*policy.Database{db: {Schemas: map[string]*policy.Schema{
		schema: {RLS: map[string]*policy.RLS{"t": {Enabled: true, Tests: tests}}}}}}}
}

func run(t *testing.T, srv *localpg.Server, cfg *pgx.ConnConfig, f *policy.File) *Report {
	t.Helper()
	if cfg == nil {
		cfg = srv.ConnConfig("postgres")
	}
	rep, err := Run(pgtest.Ctx(t), cfg, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// describe is a test's failures in one line (for assertions and logs).
func describe(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s.%s leaks=%d%v hidden=%d%v", r.Table, r.Test, r.Leaks, r.LeakKeys, r.Hidden, r.HiddenKeys)
	for _, w := range r.Writes {
		if !w.OK {
			fmt.Fprintf(&b, " %s#%d:%s(want %s)", w.Command, w.Index, w.Got, w.Expect)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, " error: %s", e)
	}
	return b.String()
}

const correct = "CREATE POLICY tenant ON %s.t USING (" + tenantPolicy + ") WITH CHECK (" + tenantPolicy + ")"

// The correct policy passes; each planted mistake is caught.
func TestRunPlantedMistakes(t *testing.T) {
	srv := pgtest.Shared(t)
	c := pgtest.Conn(t, srv, "postgres")
	baseRoles(t, c)
	cases := []struct {
		schema string
		owner  string
		sql    []string
		tests  []policy.RLSTest
		want   string // what describe must contain; "" = all pass
	}{
		{schema: "ok", sql: []string{fmt.Sprintf(correct, "ok")}, tests: tenantTests()},
		{schema: "nocheck", // reads narrowed, but the insert policy checks nothing
			sql: []string{"CREATE POLICY r ON nocheck.t FOR SELECT USING (" + tenantPolicy + ")",
				"CREATE POLICY u ON nocheck.t FOR UPDATE USING (" + tenantPolicy + ")",
				"CREATE POLICY d ON nocheck.t FOR DELETE USING (" + tenantPolicy + ")",
				"CREATE POLICY i ON nocheck.t FOR INSERT WITH CHECK (true)"},
			tests: tenantTests(), want: "INSERT#2:allowed(want denied)"},
		{schema: "opentrue", sql: []string{fmt.Sprintf(correct, "opentrue"), "CREATE POLICY everything ON opentrue.t FOR SELECT TO app USING (true)"},
			tests: tenantTests()[:1], want: "leaks=250"},
		{schema: "ownerapp", owner: "app", sql: []string{fmt.Sprintf(correct, "ownerapp")},
			tests: tenantTests()[:1], want: "leaks=250"},
		{schema: "othersetting", sql: []string{"CREATE POLICY tenant ON othersetting.t USING (tenant_id = current_setting('app.org_id', true)::int)"},
			tests: tenantTests()[:1], want: "hidden=50"},
		{schema: "wrongexpect", sql: []string{fmt.Sprintf(correct, "wrongexpect")},
			tests: []policy.RLSTest{{As: "app", Set: map[string]string{"app.tenant_id": "3"}, Sees: "tenant_id = 3",
				Insert: []policy.WriteTest{{Values: map[string]string{"id": "2001", "tenant_id": "4"}, Expect: "allowed"}}}},
			want: "INSERT#1:denied(want allowed)"},
	}
	f := &policy.File{Version: 1, Databases: map[string]*policy.Database{"postgres": {Schemas: map[string]*policy.Schema{}}}}
	for _, k := range cases {
		owner := k.owner
		if owner == "" {
			owner = "app_owner"
		}
		tenantTable(t, c, k.schema, owner, k.sql...)
		f.Databases["postgres"].Schemas[k.schema] = &policy.Schema{RLS: map[string]*policy.RLS{"t": {Enabled: true, Tests: k.tests}}}
	}
	rep := run(t, srv, nil, f)
	got := map[string][]Result{}
	for _, r := range rep.Tests {
		got[r.Schema] = append(got[r.Schema], r)
	}
	for _, k := range cases {
		rs := got[k.schema]
		if len(rs) != len(k.tests) {
			t.Errorf("%s: %d results, want %d", k.schema, len(rs), len(k.tests))
			continue
		}
		for _, r := range rs {
			d := describe(r)
			t.Logf("%s: passed=%v %s hints=%v", k.schema, r.Passed, d, r.Hints)
			if strings.Contains(k.want, "INSERT#") && r.WronglyAllowed+r.WronglyDenied == 0 && r.Test == rs[0].Test {
				t.Errorf("%s: the wrong write is not counted", k.schema)
			}
			if k.want == "" && !r.Passed || k.want != "" && r.Test == rs[0].Test && (r.Passed || !strings.Contains(d, k.want)) {
				t.Errorf("%s: %s, want %q", k.schema, d, k.want)
			}
		}
	}
	if r := got["ownerapp"][0]; len(r.Hints) == 0 || !strings.Contains(r.Hints[0], "owns the table") {
		t.Errorf("owner leak hints: %v", r.Hints)
	}
	// Nothing a test wrote stayed.
	var n int
	if err := c.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM ok.t) + (SELECT count(*) FROM ok.t WHERE body = 'row ' || id)").Scan(&n); err != nil || n != 600 {
		t.Errorf("rows changed after the run: %d %v", n, err)
	}
}

// The invoking role's limits are said plainly: it cannot read without
// RLS, or cannot become the role.
func TestRunInvokerLimits(t *testing.T) {
	srv := pgtest.Shared(t)
	c := pgtest.Conn(t, srv, "postgres")
	baseRoles(t, c)
	tenantTable(t, c, "limits", "app_owner", fmt.Sprintf(correct, "limits"),
		"CREATE ROLE tester LOGIN PASSWORD 'tester-pw'", "GRANT USAGE ON SCHEMA limits TO tester", "GRANT SELECT ON limits.t TO tester")
	cfg := srv.ConnConfig("postgres")
	cfg.User, cfg.Password = "tester", "tester-pw"
	rep := run(t, srv, cfg, fileFor("postgres", "limits", tenantTests()[:1]))
	if e := strings.Join(rep.Tests[0].Errors, " "); rep.Tests[0].Passed || !strings.Contains(e, "superuser, a role with BYPASSRLS, or the table owner") {
		t.Errorf("bypass: %s", describe(rep.Tests[0]))
	}
	if _, err := c.Exec(context.Background(), "ALTER ROLE tester BYPASSRLS"); err != nil {
		t.Fatal(err)
	}
	rep = run(t, srv, cfg, fileFor("postgres", "limits", tenantTests()[:1]))
	if e := strings.Join(rep.Tests[0].Errors, " "); rep.Tests[0].Passed || !strings.Contains(e, "cannot SET ROLE") {
		t.Errorf("set role: %s", describe(rep.Tests[0]))
	}
	if _, err := c.Exec(context.Background(), "GRANT app TO tester"); err != nil {
		t.Fatal(err)
	}
	rep = run(t, srv, cfg, fileFor("postgres", "limits", tenantTests()))
	for _, r := range rep.Tests {
		if !r.Passed {
			t.Errorf("as a BYPASSRLS member of app: %s", describe(r))
		}
	}
}

// Expressions that would escape the wrapping are refused before anything
// runs, naming the table and test.
func TestRunRefusesExpressions(t *testing.T) {
	for _, e := range []string{"true); DROP TABLE t; --", "true) OR (true", "tenant_id = '3"} {
		f := fileFor("appdb", "public", []policy.RLSTest{{Name: "evil", As: "app", Sees: e}})
		_, err := Run(context.Background(), &pgx.ConnConfig{}, f, Options{})
		if err == nil || !strings.Contains(err.Error(), "table appdb.public.t, test evil: sees") {
			t.Errorf("%q: %v", e, err)
		}
	}
	f := fileFor("appdb", "public", []policy.RLSTest{{As: "app", Delete: []policy.WriteTest{{Where: "1=1; SELECT 1", Expect: "denied"}}}})
	if _, err := Run(context.Background(), &pgx.ConnConfig{}, f, Options{}); err == nil || !strings.Contains(err.Error(), "test #1: delete #1 where") {
		t.Errorf("delete where: %v", err)
	}
}

// Hostile schema, table, role and setting names travel quoted.
func TestRunHostileNames(t *testing.T) {
	srv := pgtest.Shared(t)
	c := pgtest.Conn(t, srv, "postgres")
	schema, table, role := `s"c.h'em;a`, `t.a"b`, `r"o.le'x`
	qt := quote.Qualified(schema, table)
	execAll(t, c,
		"CREATE ROLE "+quote.Ident(role),
		"CREATE SCHEMA "+quote.Ident(schema),
		fmt.Sprintf(`CREATE TABLE %s ("te""nant" int, v int)`, qt),
		fmt.Sprintf(`INSERT INTO %s SELECT g %% 3, g FROM generate_series(1, 30) g`, qt),
		fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", quote.Ident(schema), quote.Ident(role)),
		fmt.Sprintf("GRANT SELECT, INSERT ON %s TO %s", qt, quote.Ident(role)),
		fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", qt),
		fmt.Sprintf(`CREATE POLICY "p""o.l" ON %s TO %s USING ("te""nant" = current_setting('app.te_nant', true)::int)`, qt, quote.Ident(role)),
	)
	tests := []policy.RLSTest{
		{Name: `it's "1"`, As: role, Set: map[string]string{"app.te_nant": "1"}, Sees: `"te""nant" = 1`,
			Insert: []policy.WriteTest{{Values: map[string]string{`te"nant`: "1", "v": "99"}, Expect: "allowed"}}},
		{Name: "leak by ctid", As: role, Set: map[string]string{"app.te_nant": "2"}, Sees: "false"},
		{Name: "bad setting", As: role, Set: map[string]string{`app.x'y; --`: "1"}, Sees: `"te""nant" = 1`},
	}
	f := &policy.File{Databases: map[string]*policy.Database{"postgres": {Schemas: map[string]*policy.Schema{
		schema: {RLS: map[string]*policy.RLS{table: {Enabled: true, Tests: tests}}}}}}}
	rep := run(t, srv, nil, f)
	if r := rep.Tests[0]; !r.Passed || r.Expected != 10 || !strings.HasPrefix(r.Database+r.Schema+r.Table, "postgres"+schema+table) {
		t.Errorf("hostile names: %s (expected %d)", describe(r), r.Expected)
	}
	// 15+ refuse such a placeholder name; older majors take it. Either
	// way it is a value for set_config, never SQL.
	if r := rep.Tests[1]; r.Passed || r.Leaks != 10 || len(r.LeakKeys) != 5 || !strings.HasPrefix(r.LeakKeys[0], "ctid=(0,") {
		t.Errorf("leak by ctid: %s", describe(r))
	}
	if r := rep.Tests[2]; !r.Passed && len(r.Errors) == 0 {
		t.Errorf("bad setting: %s", describe(r))
	}
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM "+qt).Scan(&n); err != nil || n != 30 {
		t.Errorf("rows after: %d %v", n, err)
	}
}

// The basic pass and leak on every major.
func TestRunMajors(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		srv := pgtest.StartMajor(t, major, localpg.Options{})
		c := pgtest.Conn(t, srv, "postgres")
		baseRoles(t, c)
		tenantTable(t, c, "ok", "app_owner", fmt.Sprintf(correct, "ok"))
		tenantTable(t, c, "leak", "app", fmt.Sprintf(correct, "leak"))
		f := fileFor("postgres", "ok", tenantTests())
		f.Databases["postgres"].Schemas["leak"] = fileFor("postgres", "leak", tenantTests()[:1]).Databases["postgres"].Schemas["leak"]
		rep := run(t, srv, nil, f)
		for _, r := range rep.Tests {
			d := describe(r)
			if r.Schema == "ok" && !r.Passed || r.Schema == "leak" && (r.Passed || r.Leaks != 250) {
				t.Errorf("pg%d %s: %s", major, r.Schema, d)
			}
		}
		if len(rep.Tests) != 3 {
			t.Errorf("pg%d: %d results", major, len(rep.Tests))
		}
	})
}

// Run's verdict against counts the server gives directly, over random
// policies, settings and expectations on one table.
func TestRunOracle(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	c := pgtest.Conn(t, srv, "postgres")
	baseRoles(t, c)
	execAll(t, c,
		"CREATE SCHEMA oracle",
		"CREATE TABLE oracle.t (id int PRIMARY KEY, tenant_id int, grp int, v int)",
		"INSERT INTO oracle.t SELECT g, g % 7, g % 3, (g * 37) % 101 FROM generate_series(1, 210) g",
		"UPDATE oracle.t SET tenant_id = NULL WHERE id % 29 = 0",
		"ALTER TABLE oracle.t OWNER TO app_owner",
		"GRANT USAGE ON SCHEMA oracle TO app",
		"GRANT SELECT ON oracle.t TO app",
		"ALTER TABLE oracle.t ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY p ON oracle.t TO app USING (false)",
	)
	rng := rand.New(rand.NewSource(16))
	setting := "nullif(current_setting('app.tenant_id', true), '')::int"
	preds := []func() string{
		func() string { return "tenant_id = " + setting },
		func() string { return fmt.Sprintf("tenant_id = %s OR grp = %d", setting, rng.Intn(3)) },
		func() string { return fmt.Sprintf("tenant_id <= %s AND v > %d", setting, rng.Intn(101)) },
		func() string { return fmt.Sprintf("v %% %d = 0", 1+rng.Intn(5)) },
		func() string { return fmt.Sprintf("tenant_id IS NULL OR tenant_id = %d", rng.Intn(7)) },
		func() string { return "true" },
	}
	expects := []func(tenant int) string{
		func(tn int) string { return fmt.Sprintf("tenant_id = %d", tn) },
		func(tn int) string { return fmt.Sprintf("tenant_id = %d OR grp = %d", tn, rng.Intn(3)) },
		func(tn int) string { return fmt.Sprintf("v > %d", rng.Intn(101)) },
		func(tn int) string { return "tenant_id IS NULL" },
		func(tn int) string { return fmt.Sprintf("tenant_id <= %d", tn) },
	}
	start := time.Now()
	const cases = 150
	bad := 0
	for i := 0; i < cases; i++ {
		pred := preds[rng.Intn(len(preds))]()
		tenant := rng.Intn(8)
		sees := expects[rng.Intn(len(expects))](tenant)
		if _, err := c.Exec(ctx, "ALTER POLICY p ON oracle.t USING ("+pred+")"); err != nil {
			t.Fatal(err)
		}
		rep := run(t, srv, nil, fileFor("postgres", "oracle", []policy.RLSTest{{As: "app", Set: map[string]string{"app.tenant_id": fmt.Sprint(tenant)}, Sees: sees}}))
		r := rep.Tests[0]
		leaks, hidden := independent(t, c, sees, tenant)
		if r.Leaks != leaks || r.Hidden != hidden || r.Passed != (leaks == 0 && hidden == 0) || len(r.Errors) > 0 {
			bad++
			t.Errorf("policy %q, tenant %d, sees %q: Run leaks=%d hidden=%d passed=%v errors=%v; server leaks=%d hidden=%d",
				pred, tenant, sees, r.Leaks, r.Hidden, r.Passed, r.Errors, leaks, hidden)
		}
	}
	t.Logf("ORACLE rlstest pg%d: cases=%d disagreements=%d seconds=%.1f", srv.Major, cases, bad, time.Since(start).Seconds())
}

// independent counts, as the role, the visible rows that do not match
// sees, and the matching rows (all read by the superuser) it cannot see.
func independent(t *testing.T, c *pgx.Conn, sees string, tenant int) (leaks, hidden int) {
	t.Helper()
	ctx := context.Background()
	var all int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM oracle.t WHERE "+sees).Scan(&all); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var seen int
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE app"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('app.tenant_id', $1, true)", fmt.Sprint(tenant)); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FILTER (WHERE NOT coalesce("+sees+", false)), count(*) FILTER (WHERE "+sees+") FROM oracle.t").Scan(&leaks, &seen); err != nil {
		t.Fatal(err)
	}
	return leaks, all - seen
}

// Rows are named by a composite primary key's columns.
func TestRunCompositeKey(t *testing.T) {
	srv := pgtest.Shared(t)
	c := pgtest.Conn(t, srv, "postgres")
	baseRoles(t, c)
	execAll(t, c,
		"CREATE SCHEMA composite",
		"CREATE TABLE composite.t (tenant_id int, id int, PRIMARY KEY (tenant_id, id))",
		"INSERT INTO composite.t SELECT g % 2, g FROM generate_series(1, 6) g",
		"GRANT USAGE ON SCHEMA composite TO app",
		"GRANT SELECT ON composite.t TO app",
		"ALTER TABLE composite.t ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY everything ON composite.t USING (true)",
	)
	rep := run(t, srv, nil, fileFor("postgres", "composite", []policy.RLSTest{{As: "app", Sees: "tenant_id = 1"}}))
	r := rep.Tests[0]
	if r.Leaks != 3 || strings.Join(r.LeakKeys, " ") != "(tenant_id, id)=(0,2) (tenant_id, id)=(0,4) (tenant_id, id)=(0,6)" {
		t.Errorf("composite: %s", describe(r))
	}
}

// A write refused by privileges proves nothing about the policies: it is
// neither "denied" nor "allowed" but inconclusive, and says so. A read
// the server refuses, a role or table that does not exist are errors
// (the test could not run), with no row counts.
func TestRunPrivilegesNotRLS(t *testing.T) {
	srv := pgtest.Shared(t)
	c := pgtest.Conn(t, srv, "postgres")
	baseRoles(t, c)
	execAll(t, c,
		"CREATE ROLE colonly",
		"CREATE SCHEMA privs",
		"CREATE TABLE privs.t (id serial PRIMARY KEY, tenant_id int NOT NULL, body text)",
		"INSERT INTO privs.t (tenant_id, body) SELECT 1 + g % 3, 'r' FROM generate_series(1, 30) g",
		"ALTER TABLE privs.t OWNER TO app_owner",
		"GRANT USAGE ON SCHEMA privs TO app, colonly",
		// INSERT on the table, no USAGE on its sequence: the default
		// for id is refused before any policy is asked.
		"GRANT SELECT, INSERT ON privs.t TO app",
		"GRANT SELECT (tenant_id) ON privs.t TO colonly",
		"ALTER TABLE privs.t ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY tenant ON privs.t USING ("+tenantPolicy+") WITH CHECK ("+tenantPolicy+")",
	)
	set := map[string]string{"app.tenant_id": "2"}
	f := fileFor("postgres", "privs", []policy.RLSTest{
		{Name: "seq", As: "app", Set: set, Sees: "tenant_id = 2", Insert: []policy.WriteTest{
			{Values: map[string]string{"tenant_id": "3", "body": "'x'"}, Expect: "denied"},
			{Values: map[string]string{"tenant_id": "2", "body": "'x'"}, Expect: "allowed"},
			{Values: map[string]string{"id": "500", "tenant_id": "3"}, Expect: "denied"}, // a real RLS denial
		}},
		{Name: "columns", As: "colonly", Set: set, Sees: "tenant_id = 2"},
		{Name: "nobody", As: "no_such_role", Sees: "true"},
	})
	f.Databases["postgres"].Schemas["privs"].RLS["missing"] = &policy.RLS{Enabled: true, Tests: []policy.RLSTest{{Name: "gone", As: "app", Sees: "true"}}}
	rep := run(t, srv, nil, f)
	byName := map[string]Result{}
	for _, r := range rep.Tests {
		byName[r.Test] = r
		t.Logf("%s: passed=%v compared=%v %s", r.Test, r.Passed, r.Compared, describe(r))
	}
	r := byName["seq"]
	if r.Passed || r.Inconclusive != 2 || r.WronglyAllowed+r.WronglyDenied != 0 || len(r.Writes) != 3 || !r.Compared || len(r.Errors) != 0 {
		t.Errorf("seq: %s inconclusive=%d", describe(r), r.Inconclusive)
	} else {
		for i, w := range r.Writes[:2] {
			if w.Got != "privileges" || w.OK || !strings.Contains(w.Detail, PrivilegesDenial) || !strings.Contains(w.Detail, "permission denied for sequence t_id_seq") {
				t.Errorf("write %d: %+v", i+1, w)
			}
		}
		if w := r.Writes[2]; w.Got != "denied" || !w.OK || !strings.Contains(w.Detail, "violates row-level security policy") {
			t.Errorf("the RLS denial: %+v", w)
		}
	}
	for _, k := range []struct{ name, want string }{
		{"columns", "permission denied for table t"},
		{"nobody", `role "no_such_role" does not exist`},
		{"gone", "table privs.missing does not exist"},
	} {
		r := byName[k.name]
		if r.Passed || r.Compared || !strings.Contains(strings.Join(r.Errors, " "), k.want) {
			t.Errorf("%s: %s, want an error %q and no comparison", k.name, describe(r), k.want)
		}
	}
	if rep.Errored() != 3 || rep.Failed() != 4 {
		t.Errorf("errored %d, failed %d", rep.Errored(), rep.Failed())
	}
}
