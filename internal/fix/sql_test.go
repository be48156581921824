package fix_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/fixtest"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func sqlFinding(rule, object string, sev rules.Severity, c remedy.Change) rules.Finding {
	return rules.Finding{Rule: rule, Object: object, Status: rules.Fail, Severity: sev, Changes: []remedy.Change{c}}
}

func sqlCh(db string, super bool, breaks string, pairs ...string) remedy.Change {
	s := &remedy.SQL{Database: db, Superuser: super}
	for i := 0; i+1 < len(pairs); i += 2 {
		s.Statements = append(s.Statements, pairs[i])
		s.Undo = append(s.Undo, pairs[i+1])
	}
	return remedy.Change{SQL: s, Breaks: breaks}
}

// One step per database, a statement two findings share run once, drops
// after revokes, undo paired with the statements, each finding's own text.
func TestPlanSQLMergesAndOrders(t *testing.T) {
	snap := &snapshot.Snapshot{Server: &snapshot.Server{CurrentUser: "admin", Superuser: true}}
	pin, unpin := "ALTER FUNCTION public.f() SET search_path = pg_catalog, pg_temp", "ALTER FUNCTION public.f() RESET search_path"
	rev, grant := "REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC", "GRANT EXECUTE ON FUNCTION public.f() TO PUBLIC"
	drop, create := "DROP EXTENSION dblink", "CREATE EXTENSION dblink WITH SCHEMA public VERSION '1.2'"
	fsRev, fsGrant := "REVOKE USAGE ON FOREIGN SERVER s FROM PUBLIC", "GRANT USAGE ON FOREIGN SERVER s TO PUBLIC"
	dbRev, dbGrant := "REVOKE CREATE ON DATABASE d1 FROM PUBLIC", "GRANT CREATE ON DATABASE d1 TO PUBLIC"
	fs := []rules.Finding{
		sqlFinding("PRIV-06", "function d1.public.f()", rules.High, sqlCh("d1", false, "roles that relied on the PUBLIC grant lose it: f", pin, unpin, rev, grant)),
		sqlFinding("PRIV-02.chains", "role app via function d1.public.f()", rules.Critical, sqlCh("d1", false, "roles that relied on the PUBLIC grant lose it: f", pin, unpin, rev, grant)),
		sqlFinding("EXT-01", "extension d1.dblink", rules.Medium, sqlCh("d1", true, "calls to dblink fail", drop, create)),
		sqlFinding("PRIV-08", "foreign server d1.s", rules.Medium, sqlCh("d1", false, "", fsRev, fsGrant)),
		sqlFinding("PRIV-12", "database d1", rules.High, sqlCh("", false, "", dbRev, dbGrant)),
	}
	res := fix.Build(snap, fs, fix.Options{})
	steps := sqlSteps(res.Plan)
	if len(steps) != 2 {
		t.Fatalf("%d SQL steps, want 2 (cluster-wide and d1): %+v", len(steps), steps)
	}
	if steps[0].Database != "" || !strings.Contains(steps[0].Summary, "connection's database") {
		t.Errorf("first step %q in %q, want the cluster-wide one saying where it runs", steps[0].Summary, steps[0].Database)
	}
	d1 := steps[1]
	want := []string{pin, rev, fsRev, drop}
	if strings.Join(d1.SQL, "\n") != strings.Join(want, "\n") {
		t.Errorf("d1 statements:\n%s\nwant:\n%s", strings.Join(d1.SQL, "\n"), strings.Join(want, "\n"))
	}
	wantUndo := []string{unpin, grant, fsGrant, create}
	if strings.Join(d1.Undo, "\n") != strings.Join(wantUndo, "\n") {
		t.Errorf("d1 undo:\n%s\nwant:\n%s", strings.Join(d1.Undo, "\n"), strings.Join(wantUndo, "\n"))
	}
	if len(d1.Closes) != 4 || !d1.Superuser {
		t.Errorf("d1 closes %d findings (want 4), superuser %v (want true)", len(d1.Closes), d1.Superuser)
	}
	if len(d1.Breaks) != 2 {
		t.Errorf("d1 breaks %q, want the two distinct notes", d1.Breaks)
	}
	if got := res.Texts[fs[3].Key()]; !strings.Contains(got, fsRev) || strings.Contains(got, drop) {
		t.Errorf("PRIV-08 text %q: want its own statement only", got)
	}
	if got := res.Texts[fs[1].Key()]; !strings.Contains(got, rev+";") || !strings.Contains(got, "step "+d1.ID) {
		t.Errorf("chain text %q", got)
	}
}

// The operator's own role is never changed; superuser-only changes are
// held for an operator who is not one.
func TestPlanSQLHoldsOwnAccess(t *testing.T) {
	for _, tc := range []struct {
		name     string
		server   snapshot.Server
		finding  rules.Finding
		heldWhy  string
		wantStep bool
	}{
		{"own superuser", snapshot.Server{CurrentUser: "my admin", Superuser: true},
			sqlFinding("PRIV-01", "role my admin", rules.High, sqlCh("", true, "", `ALTER ROLE "my admin" NOSUPERUSER`, `ALTER ROLE "my admin" SUPERUSER`)), "would remove your own access", false},
		{"own membership", snapshot.Server{CurrentUser: "ops", Superuser: true},
			sqlFinding("PRIV-02", "role ops", rules.Critical, sqlCh("", true, "", "REVOKE admins FROM ops", "GRANT admins TO ops")), "would remove your own access", false},
		{"own login", snapshot.Server{CurrentUser: "ops", Superuser: true},
			sqlFinding("AUTH-19", "role ops", rules.Medium, sqlCh("", false, "", "ALTER ROLE ops NOLOGIN", "ALTER ROLE ops LOGIN")), "would remove your own access", false},
		{"own grant, revoked as its grantor", snapshot.Server{CurrentUser: "ops", Superuser: true},
			sqlFinding("PRIV-17.functions", "function d.pg_catalog.pg_read_file(text)", rules.High, sqlCh("d", true, "", "SET ROLE g; REVOKE EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) FROM ops; RESET ROLE", "SET ROLE g; GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO ops; RESET ROLE")), "would remove your own access", false},
		{"a name that only starts like it", snapshot.Server{CurrentUser: "ops", Superuser: true},
			sqlFinding("PRIV-02", "role opsx", rules.Critical, sqlCh("", true, "", "REVOKE admins FROM opsx", "GRANT admins TO opsx")), "", true},
		{"not a superuser", snapshot.Server{CurrentUser: "ops"},
			sqlFinding("PRIV-11", "catalog pg_catalog.pg_authid", rules.Critical, sqlCh("", true, "", "REVOKE SELECT ON TABLE pg_catalog.pg_authid FROM app", "GRANT SELECT ON TABLE pg_catalog.pg_authid TO app")), "needs a superuser", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.server
			res := fix.Build(&snapshot.Snapshot{Server: &srv}, []rules.Finding{tc.finding}, fix.Options{})
			if got := len(sqlSteps(res.Plan)) > 0; got != tc.wantStep {
				t.Errorf("step: %v, want %v", got, tc.wantStep)
			}
			if tc.heldWhy == "" {
				if len(res.Plan.Held) != 0 {
					t.Errorf("held: %+v", res.Plan.Held)
				}
				return
			}
			if len(res.Plan.Held) != 1 || !strings.Contains(res.Plan.Held[0].Why, tc.heldWhy) {
				t.Errorf("held %+v, want one saying %q", res.Plan.Held, tc.heldWhy)
			}
		})
	}
}

const sqlRunner = "fixrunner"

// sqlWeaknesses plants one weakness per automatic SQL fix (and a few
// manual ones) on a throwaway server.
func sqlWeaknesses(t *testing.T, srv *localpg.Server) {
	t.Helper()
	ctx := context.Background()
	if err := srv.Exec(ctx,
		"CREATE ROLE p01 LOGIN CREATEROLE",
		"CREATE ROLE replicator LOGIN REPLICATION", // the role REPL-04 asks for: PRIV-01 must leave it alone
		"CREATE ROLE p02su NOLOGIN SUPERUSER", "CREATE ROLE p02 LOGIN", "GRANT p02su TO p02",
		"CREATE ROLE p17 LOGIN", "GRANT pg_read_server_files TO p17",
		"CREATE ROLE p17f LOGIN",
		"CREATE ROLE p17p LOGIN", "GRANT SET ON PARAMETER log_statement TO p17p", "GRANT ALTER SYSTEM ON PARAMETER archive_command TO p17p",
		"CREATE ROLE p10 LOGIN", "CREATE ROLE p10grp NOLOGIN", "GRANT p10grp TO p10 WITH ADMIN OPTION",
		"CREATE ROLE p11 LOGIN", "GRANT SELECT ON pg_catalog.pg_authid TO p11",
		"CREATE ROLE p14 LOGIN", "CREATE ROLE p15 NOLOGIN", "CREATE ROLE p16 LOGIN", "CREATE ROLE p16b LOGIN BYPASSRLS",
		"CREATE ROLE p19 LOGIN PASSWORD 'Expired-but-long-19' VALID UNTIL '2001-01-01'",
		"CREATE ROLE p11m LOGIN",
		"SET password_encryption = 'md5'", "CREATE ROLE pmd5 LOGIN PASSWORD 'Aa1-not-weak-md5'",
		"CREATE DATABASE fixdb", "GRANT CREATE ON DATABASE fixdb TO PUBLIC", "CREATE DATABASE fixdb2",
	); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "fixdb",
		"CREATE SCHEMA s09", "GRANT CREATE ON SCHEMA s09 TO PUBLIC",
		"CREATE FUNCTION public.f06() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
		"CREATE FUNCTION public.fchain(q text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN EXECUTE q; END$$",
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO p17f",
		"CREATE SCHEMA s08", "CREATE TABLE s08.t (i int)", "CREATE TABLE s08.quiet (i int)", "CREATE SEQUENCE s08.q",
		"GRANT SELECT, INSERT ON s08.t TO PUBLIC", "GRANT USAGE ON SEQUENCE s08.q TO PUBLIC", "GRANT SELECT ON s08.quiet TO p14",
		"CREATE EXTENSION postgres_fdw", "CREATE SERVER fs08 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'localhost')",
		"GRANT USAGE ON FOREIGN SERVER fs08 TO PUBLIC",
		"CREATE USER MAPPING FOR p11m SERVER fs08 OPTIONS (user 'x', password_required 'false')",
		// A grant to PUBLIC made by a role with the grant option, not the
		// owner: revoked (and restored) as that role.
		"CREATE ROLE p08g LOGIN", "CREATE SCHEMA s08g", "CREATE TABLE s08g.t (i int)", "GRANT USAGE ON SCHEMA s08g TO p08g",
		"GRANT SELECT ON s08g.t TO p08g WITH GRANT OPTION", "SET ROLE p08g", "GRANT SELECT ON s08g.t TO PUBLIC", "RESET ROLE",
		"CREATE SCHEMA s10", "CREATE TABLE s10.t (i int)", "GRANT SELECT ON s10.t TO p10 WITH GRANT OPTION",
		"CREATE SCHEMA s14", "GRANT USAGE, CREATE ON SCHEMA s14 TO p14",
		"CREATE SCHEMA s15", "ALTER DEFAULT PRIVILEGES FOR ROLE p15 IN SCHEMA s15 GRANT SELECT ON TABLES TO PUBLIC",
		"CREATE SCHEMA s16", "CREATE TABLE s16.t (v int)", "ALTER TABLE s16.t ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY own ON s16.t USING (v > 0)", "ALTER TABLE s16.t OWNER TO p16",
		"CREATE VIEW s16.v AS SELECT * FROM s16.t",
		"CREATE TABLE s16.tenants (tenant_id bigint, v text)",
		"CREATE TABLE s16.open (v int)", "ALTER TABLE s16.open ENABLE ROW LEVEL SECURITY", "CREATE POLICY open_all ON s16.open USING (true)",
		"CREATE EXTENSION plperlu", "UPDATE pg_language SET lanpltrusted = true WHERE lanname = 'plperlu'",
		"CREATE EXTENSION dblink",
	); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "fixdb2",
		"CREATE EXTENSION plperlu",
		"UPDATE pg_language SET lanpltrusted = true WHERE lanname = 'plperlu'",
		"GRANT USAGE ON LANGUAGE plperlu TO PUBLIC",
		"UPDATE pg_language SET lanpltrusted = false WHERE lanname = 'plperlu'",
	); err != nil {
		t.Fatal(err)
	}
}

// Every automatic SQL fix, proven on a real server: applied as its plan
// step runs (one transaction per database), the finding is gone, nothing
// that passed now fails, a second plan has nothing left for the rule, and
// the undo restores the catalogs exactly (and with them the findings).
func TestSQLFixesOnServer(t *testing.T) {
	// Each proof has its own server: they run side by side.
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{AdminUser: sqlRunner})
	sqlWeaknesses(t, srv)
	dbs := []string{"postgres", "fixdb", "fixdb2"}
	snap, findings := fixtest.Audit(t, srv)
	before := failingKeys(findings)
	catalogs := catalogState(t, srv, dbs...)

	t.Run("PRIV-01 leaves a dedicated replication role alone", func(t *testing.T) {
		for _, f := range before {
			if f.Rule == "PRIV-01" && f.Object == "role replicator" {
				t.Errorf("PRIV-01 flags the dedicated replication role: %s", f.Evidence)
			}
		}
	})

	t.Run("manual fixes", func(t *testing.T) {
		res := fix.Build(snap, findings, fix.Options{})
		manual := map[string]string{}
		for _, m := range res.Plan.Manual {
			manual[m.Rule+" "+m.Object] = m.What
		}
		for _, tc := range []struct{ key, want, not string }{
			{"PRIV-16 table fixdb.s16.tenants", "current_setting('app.tenant_id', true)", "current_setting('app.tenant_id')"},
			{"PRIV-16 table fixdb.s16.tenants", "sees no rows", ""},
			{"PRIV-16 table fixdb.s16.open", "USING (true)", ""},
			{"AUTH-11.verifiers role pmd5", `\password pmd5`, ""},
			{"PRIV-13 role p16", "REASSIGN OWNED BY p16", ""},
			{"AUTH-19 role pmd5", "rotation policy", ""},
		} {
			got, ok := manual[tc.key]
			if !ok {
				t.Errorf("%s is not a manual step (manual: %v)", tc.key, manual)
				continue
			}
			if !strings.Contains(got, tc.want) || tc.not != "" && strings.Contains(got, tc.not) {
				t.Errorf("%s: manual text %q, want %q", tc.key, got, tc.want)
			}
		}
		for _, s := range res.Plan.Steps {
			for _, c := range s.Closes {
				if c.Object == "table fixdb.s16.tenants" || c.Object == "table fixdb.s16.open" && c.Rule == "PRIV-16" {
					if s.Kind == plan.KindSQL && strings.Contains(strings.Join(s.SQL, " "), "POLICY") {
						t.Errorf("step %s writes a policy automatically: %q", s.ID, s.SQL)
					}
				}
			}
		}
	})

	for _, tc := range []struct {
		rule    string
		only    []string // the rules planned; nil for rule alone
		objects []string // findings the plan must close
		check   func(t *testing.T, st []plan.Step, diff []string)
	}{
		{rule: "PRIV-01", objects: []string{"role p01", "role p02su", "role p16b"}},
		{rule: "PRIV-02", objects: []string{"role p02"}},
		{rule: "PRIV-17", objects: []string{"role p17"}},
		{rule: "PRIV-09", objects: []string{"schema fixdb.s09"}},
		{rule: "PRIV-12", objects: []string{"database fixdb"}},
		{rule: "PRIV-06", objects: []string{"function fixdb.public.f06()"}},
		{rule: "PRIV-02.chains", objects: []string{"role p01 via role p01", "every login role via function fixdb.public.fchain(q text)", "role p17p via parameter archive_command"}},
		{rule: "PRIV-17.functions", objects: []string{"function fixdb.pg_catalog.pg_read_file(text)"}},
		{rule: "PRIV-17.parameters", objects: []string{"parameter log_statement", "parameter archive_command"}},
		{rule: "PRIV-08", objects: []string{"schema fixdb.s08 (SELECT)", "schema fixdb.s08 (INSERT)", "schema fixdb.s08 (USAGE)", "schema fixdb.s08g (SELECT)", "foreign server fixdb.fs08", "language fixdb2.plperlu"},
			check: func(t *testing.T, st []plan.Step, diff []string) {
				all := ""
				for _, s := range st {
					all += strings.Join(s.SQL, "\n") + "\n"
				}
				// Issue #12: USAGE ON ALL TABLES does not parse; each
				// relation gets exactly what PUBLIC holds on it.
				for _, want := range []string{"REVOKE SELECT ON TABLE s08.t FROM PUBLIC", "REVOKE INSERT ON TABLE s08.t FROM PUBLIC", "REVOKE USAGE ON SEQUENCE s08.q FROM PUBLIC"} {
					if !strings.Contains(all, want) {
						t.Errorf("plan lacks %q:\n%s", want, all)
					}
				}
				if strings.Contains(all, "ALL TABLES") || strings.Contains(all, "ALL SEQUENCES") || strings.Contains(all, "s08.quiet") {
					t.Errorf("plan reaches beyond the granted relations:\n%s", all)
				}
				if mentions(diff, "s08.quiet") {
					t.Errorf("applying changed s08.quiet: %q", diff)
				}
			}},
		{rule: "PRIV-10", objects: []string{"role p10", "role p08g"}},
		{rule: "PRIV-11", objects: []string{"catalog pg_catalog.pg_authid"}},
		{rule: "PRIV-14", objects: []string{"schema fixdb.s14"}},
		{rule: "PRIV-15", objects: []string{"default privileges of p15 in fixdb"}},
		{rule: "PRIV-16", objects: []string{"table fixdb.s16.t", "role p16b"}},
		{rule: "PRIV-18", objects: []string{"view fixdb.s16.v"}},
		{rule: "EXT-02", objects: []string{"language fixdb.plperlu", "language fixdb2.plperlu"}},
		{rule: "EXT-01", objects: []string{"extension fixdb.dblink"}},
		{rule: "EXT-11", objects: []string{"user mapping fs08 for p11m in fixdb"}},
		{rule: "AUTH-19", objects: []string{"role p19"},
			check: func(t *testing.T, st []plan.Step, _ []string) {
				if len(st) == 0 || !strings.Contains(strings.Join(st[0].Breaks, " "), "can no longer log in") {
					t.Errorf("NOLOGIN of an expired role does not say what it breaks: %+v", st)
				}
			}},
		// Every rule at once: the statements of all findings merged per
		// database (shared ones once, revokes before drops) still apply
		// in one transaction each, and the undo still restores all.
		{rule: "all", only: strings.Fields(sqlRules), objects: nil,
			check: func(t *testing.T, st []plan.Step, _ []string) {
				seen := map[string]bool{}
				for _, s := range st {
					for _, q := range s.SQL {
						if seen[s.Database+"\x00"+q] {
							t.Errorf("statement twice in database %q: %s", s.Database, q)
						}
						seen[s.Database+"\x00"+q] = true
					}
				}
				if len(st) != 3 {
					t.Errorf("%d SQL steps, want one per database (cluster-wide, fixdb, fixdb2)", len(st))
				}
			}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			only := tc.only
			if only == nil {
				only = []string{tc.rule}
			}
			res := fix.Build(snap, findings, fix.Options{Only: only})
			steps := sqlSteps(res.Plan)
			closes := map[string]bool{}
			for _, s := range steps {
				if s.Undo == nil || len(s.SQL) == 0 {
					t.Errorf("step %s has no statements or no undo", s.ID)
				}
				for _, c := range s.Closes {
					closes[c.Rule+"\x00"+c.Object] = true
				}
			}
			for _, o := range tc.objects {
				if !closes[tc.rule+"\x00"+o] {
					t.Errorf("no SQL step closes %s %s (held %+v, manual %+v, failing %v)", tc.rule, o, res.Plan.Held, res.Plan.Manual, ruleKeys(before, tc.rule))
				}
			}
			if t.Failed() {
				return
			}
			// Applied as written, restarted, re-audited: what the step
			// closes is gone, nothing newly fails, a second plan is empty.
			fixtest.Verify(t, srv, findings, res.Plan, only, fixtest.Options{})
			diff := catalogDiff(catalogs, catalogState(t, srv, dbs...))
			if tc.check != nil {
				tc.check(t, steps, diff)
			}
			undoSQL(t, srv, res.Plan)
			for _, d := range catalogDiff(catalogs, catalogState(t, srv, dbs...)) {
				t.Errorf("the undo left: %s", d)
			}
		})
	}

	// The server still reloads and restarts, and the admin gets in.
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Connect(context.Background(), "fixdb")
	if err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
}

// sqlRules are the rules with automatic SQL fixes planted above.
const sqlRules = "PRIV-01 PRIV-02 PRIV-17 PRIV-09 PRIV-12 PRIV-06 PRIV-02.chains PRIV-17.functions PRIV-17.parameters PRIV-08 PRIV-10 PRIV-11 PRIV-14 PRIV-15 PRIV-16 PRIV-18 EXT-02 EXT-01 EXT-11 AUTH-19"

func ruleKeys(fs map[string]rules.Finding, rule string) []string {
	var out []string
	for _, f := range fs {
		if f.Rule == rule {
			out = append(out, f.Object)
		}
	}
	return out
}

// Hostile names through the whole planner: applying the merged plan
// touches only the objects the findings name (canaries intact, no other
// catalog row changed), and its undo restores every row.
func TestSQLPlanHostileNames(t *testing.T) {
	// Each proof has its own server: they run side by side.
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{AdminUser: sqlRunner})
	ctx := context.Background()
	db, schema := "z\nDROP TABLE canary; --", `a"; DROP TABLE x; --`
	roleCU, roleNL := "current_user", "nl\nDROP TABLE canary; --"
	qi := quote.Ident
	s := qi(schema)
	if err := srv.Exec(ctx,
		"CREATE ROLE "+qi(roleCU)+" LOGIN CREATEROLE",
		"CREATE ROLE "+qi(roleNL)+" LOGIN BYPASSRLS",
		"CREATE DATABASE "+qi(db), "GRANT CREATE ON DATABASE "+qi(db)+" TO PUBLIC",
		"CREATE TABLE public.canary (i int)", "CREATE TABLE public.x (i int)",
	); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, db,
		"CREATE TABLE public.canary (i int)", "CREATE TABLE public.x (i int)",
		"CREATE SCHEMA "+s, "GRANT CREATE ON SCHEMA "+s+" TO PUBLIC",
		"CREATE TABLE "+s+"."+qi("t\nDROP TABLE canary; --")+" (i int)",
		"GRANT SELECT, UPDATE ON "+s+"."+qi("t\nDROP TABLE canary; --")+" TO PUBLIC",
		"CREATE SEQUENCE "+s+"."+qi("q'"), "GRANT USAGE ON SEQUENCE "+s+"."+qi("q'")+" TO PUBLIC",
		"CREATE FUNCTION "+s+"."+qi("f\n;")+"("+qi("p'")+" int) RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
		"ALTER DEFAULT PRIVILEGES FOR ROLE "+qi(roleCU)+" IN SCHEMA "+s+" GRANT SELECT ON TABLES TO PUBLIC",
		"CREATE EXTENSION dblink SCHEMA "+s,
	); err != nil {
		t.Fatal(err)
	}
	dbs := []string{"postgres", db}
	snap, findings := fixtest.Audit(t, srv)
	catalogs := catalogState(t, srv, dbs...)
	only := strings.Fields(sqlRules)
	res := fix.Build(snap, findings, fix.Options{Only: only})
	if n := len(sqlSteps(res.Plan)); n != 2 {
		t.Fatalf("%d SQL steps, want 2 (cluster-wide and the hostile database)", n)
	}
	fixtest.Verify(t, srv, findings, res.Plan, only, fixtest.Options{})
	named := []string{schema, strings.ReplaceAll(schema, `"`, `""`), roleCU, roleNL, db, "extension dblink"}
	diff := catalogDiff(catalogs, catalogState(t, srv, dbs...))
	if len(diff) == 0 {
		t.Fatal("the plan changed nothing")
	}
	for _, d := range diff {
		_, key, _ := strings.Cut(d, ": ")
		ok := false
		for _, n := range named {
			if strings.Contains(key, n) {
				ok = true
			}
		}
		if !ok || strings.HasPrefix(key, "class canary") || strings.HasPrefix(key, "class x") {
			t.Errorf("the plan changed a row no finding names: %s", quote.Literal(d))
		}
	}
	for _, d := range dbs {
		c, err := srv.Connect(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname IN ('canary', 'x') AND relnamespace = 'public'::regnamespace").Scan(&n); err != nil || n != 2 {
			t.Errorf("database %s: %d canaries (%v)", quote.Literal(d), n, err)
		}
		c.Close(ctx)
	}
	undoSQL(t, srv, res.Plan)
	for _, d := range catalogDiff(catalogs, catalogState(t, srv, dbs...)) {
		t.Errorf("the undo left: %s", quote.Literal(d))
	}
}
