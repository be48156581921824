package rules

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// The generated-names test (issue #10, defect 1): objects with hostile
// names trigger every rule that prints a SQL fix; each fix is executed on
// the real server, in the finding's database and in its own transaction,
// and must leave the canaries alone and change only catalog rows of the
// objects the finding is about.

const runner = "fixrunner" // the superuser running the fixes: no finding names it

var (
	hostileDBs = []string{"z\nDROP TABLE canary; --", `db"; DROP TABLE canary; --`}
	// Login roles; hostileRoles[0] is the one every per-database object uses.
	hostileRoles = []string{"current_user", "1startsdigit", "user", `r"; DROP TABLE canary; --`, "nl\nDROP TABLE canary; --",
		"esc\x1b[2J\u202e", `back\slash'q`}
	hostileSupers = []string{"all", "sup\nDROP TABLE canary; --"}
	hostileSchema = `a"; DROP TABLE x; --`
	hostileTable  = "t\nDROP TABLE canary; --"
)

var qi = quote.Ident

func setupHostile(t *testing.T, srv *localpg.Server) {
	t.Helper()
	ctx := context.Background()
	// md5 verifiers, so that the verifier rule prints its psql fix for
	// every hostile role.
	global := []string{"SET password_encryption = 'md5'"}
	for i, r := range hostileRoles {
		attrs := "LOGIN PASSWORD 'Aa1-not-weak-" + fmt.Sprint(i) + "'"
		switch i {
		case 1:
			attrs += " BYPASSRLS"
		case 2:
			attrs += " CREATEROLE"
		case 3, 4:
			attrs += " REPLICATION"
		}
		global = append(global, "CREATE ROLE "+qi(r)+" "+attrs)
	}
	for _, r := range hostileSupers {
		global = append(global, "CREATE ROLE "+qi(r)+" LOGIN SUPERUSER PASSWORD 'Aa1-not-weak-s'")
	}
	nologinSuper := "nsu\nDROP TABLE canary; --"
	global = append(global,
		"CREATE ROLE "+qi(nologinSuper)+" NOLOGIN SUPERUSER",
		"GRANT "+qi(nologinSuper)+" TO "+qi(hostileRoles[3]),
		"GRANT "+qi(hostileRoles[4])+" TO "+qi(hostileRoles[5])+" WITH ADMIN OPTION",
		"GRANT pg_read_server_files TO "+qi(hostileRoles[6]),
		"ALTER ROLE "+qi(hostileRoles[0])+" SET log_statement = 'none'",
		"GRANT SET ON PARAMETER log_statement TO "+qi(hostileRoles[4]),
		"GRANT ALTER SYSTEM ON PARAMETER archive_command TO "+qi(hostileRoles[5]),
		"GRANT SELECT ON pg_catalog.pg_authid TO "+qi(hostileRoles[6]),
		"ALTER ROLE "+qi(hostileRoles[2])+" SET password_encryption = 'md5'",
	)
	for _, d := range hostileDBs {
		global = append(global, "CREATE DATABASE "+qi(d),
			"GRANT CREATE ON DATABASE "+qi(d)+" TO PUBLIC",
			"ALTER DATABASE "+qi(d)+" SET log_statement = 'none'",
			"ALTER ROLE "+qi(hostileRoles[1])+" IN DATABASE "+qi(d)+" SET log_statement = 'none'")
	}
	if err := srv.Exec(ctx, global...); err != nil {
		t.Fatal(err)
	}
	s, tb, r0, r1, r2 := qi(hostileSchema), qi(hostileTable), qi(hostileRoles[0]), qi(hostileRoles[1]), qi(hostileRoles[2])
	fn := qi("f\nDROP TABLE canary; --")
	per := []string{
		"CREATE TABLE public.canary (i int)", "CREATE TABLE public.x (i int)",
		"CREATE SCHEMA " + s,
		"GRANT CREATE ON SCHEMA " + s + " TO PUBLIC",
		"GRANT USAGE, CREATE ON SCHEMA " + s + " TO " + r0,
		"GRANT CREATE ON SCHEMA public TO " + r1,
		"CREATE TYPE " + s + "." + s + " AS (v int)",
		"CREATE FUNCTION " + s + "." + fn + "(" + qi("p'\n") + " " + s + "." + s + ", VARIADIC " + qi("select") + " int[]) RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN EXECUTE 'SELECT ' || 1; RETURN 1; END$$",
		"CREATE FUNCTION " + s + ".g() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
		"CREATE TABLE " + s + "." + tb + " (tenant_id int, v text)",
		"GRANT SELECT ON " + s + "." + tb + " TO PUBLIC",
		"GRANT SELECT ON " + s + "." + tb + " TO " + r1 + " WITH GRANT OPTION",
		"CREATE TABLE " + s + "." + qi("norls'") + " (v int)",
		"ALTER TABLE " + s + "." + qi("norls'") + " ENABLE ROW LEVEL SECURITY",
		"CREATE TABLE " + s + "." + qi("rls\r") + " (tenant_id int)",
		"ALTER TABLE " + s + "." + qi("rls\r") + " ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY " + qi("p\nDROP TABLE canary; --") + " ON " + s + "." + qi("rls\r") + " USING (true)",
		"CREATE POLICY " + qi("w\"") + " ON " + s + "." + qi("rls\r") + " FOR INSERT",
		"CREATE VIEW " + s + "." + qi("v\n;") + " AS SELECT * FROM " + s + "." + qi("rls\r"),
		"ALTER TABLE " + s + "." + qi("rls\r") + " OWNER TO " + r2,
		"ALTER DEFAULT PRIVILEGES FOR ROLE " + r0 + " IN SCHEMA " + s + " GRANT SELECT ON TABLES TO PUBLIC",
		"CREATE EXTENSION dblink SCHEMA " + s,
		"CREATE EXTENSION postgres_fdw",
		"CREATE SERVER " + qi("fs\n;") + " FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'localhost')",
		"GRANT USAGE ON FOREIGN SERVER " + qi("fs\n;") + " TO PUBLIC",
		"CREATE USER MAPPING FOR " + r0 + " SERVER " + qi("fs\n;") + " OPTIONS (user 'u', password_required 'false')",
		"CREATE EXTENSION plperlu",
		"UPDATE pg_language SET lanpltrusted = true WHERE lanname = 'plperlu'",
		"GRANT USAGE ON LANGUAGE plperlu TO PUBLIC",
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO " + qi(hostileRoles[3]),
	}
	for _, d := range hostileDBs {
		if err := srv.ExecIn(ctx, d, per...); err != nil {
			t.Fatalf("database %s: %v", qi(d), err)
		}
	}
	if err := srv.Exec(ctx, "CREATE TABLE public.canary (i int)", "CREATE TABLE public.x (i int)"); err != nil {
		t.Fatal(err)
	}
}

// ACLs are compared as sorted sets, a NULL ACL as its default: a REVOKE
// and the GRANT that undoes it give back the same privileges, but the
// item may land elsewhere in the array and a default is written out.

// catalogRow is one catalog entry: the names it is known by and its state.
type catalogRow struct {
	names []string
	value string
}

const catalogSQL = `
SELECT 'role', ARRAY[rolname::text], row(rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil)::text FROM pg_roles
UNION ALL SELECT 'member', ARRAY[pg_get_userbyid(roleid)::text, pg_get_userbyid(member)::text], row(admin_option)::text FROM pg_auth_members
UNION ALL SELECT 'database', ARRAY[datname::text], row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(datacl, acldefault('d', datdba))) a), datconnlimit)::text FROM pg_database
UNION ALL SELECT 'namespace', ARRAY[nspname::text, pg_get_userbyid(nspowner)::text], row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(nspacl, acldefault('n', nspowner))) a))::text FROM pg_namespace
UNION ALL SELECT 'class', ARRAY[n.nspname::text, c.relname::text, pg_get_userbyid(c.relowner)::text, coalesce(e.extname::text, '')], row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a), c.relrowsecurity, c.relforcerowsecurity, c.reloptions)::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e' LEFT JOIN pg_extension e ON e.oid = d.refobjid
  WHERE c.relkind IN ('r', 'v', 'm', 'S', 'f', 'p')
UNION ALL SELECT 'proc', ARRAY[n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid), coalesce(e.extname::text, '')], row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) a), p.proconfig)::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  LEFT JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e' LEFT JOIN pg_extension e ON e.oid = d.refobjid
UNION ALL SELECT 'language', ARRAY[lanname::text], row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(lanacl, acldefault('l', lanowner))) a), lanpltrusted)::text FROM pg_language
UNION ALL SELECT 'defacl', ARRAY[pg_get_userbyid(defaclrole)::text, coalesce(n.nspname::text, ''), defaclobjtype::text], row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(defaclacl) a))::text FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
UNION ALL SELECT 'policy', ARRAY[c.relname::text, polname::text], row(pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))::text FROM pg_policy JOIN pg_class c ON c.oid = polrelid
UNION ALL SELECT 'setting', ARRAY[CASE WHEN setrole = 0 THEN '' ELSE pg_get_userbyid(setrole)::text END, coalesce(d.datname::text, '')], row(setconfig)::text FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
UNION ALL SELECT 'paracl', ARRAY[parname::text], row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(paracl) a))::text FROM pg_parameter_acl
UNION ALL SELECT 'fserver', ARRAY[srvname::text], row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(srvacl, acldefault('S', srvowner))) a))::text FROM pg_foreign_server
UNION ALL SELECT 'umapping', ARRAY[srvname::text, usename::text], row(umoptions)::text FROM pg_user_mappings
UNION ALL SELECT 'extension', ARRAY[extname::text], row(extversion)::text FROM pg_extension
UNION ALL SELECT 'canary', ARRAY[n.nspname::text, c.relname::text], 'present' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname IN ('canary', 'x') AND n.nspname = 'public'`

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readCatalogs(t *testing.T, q querier) map[string]catalogRow {
	t.Helper()
	rows, err := q.Query(context.Background(), catalogSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]catalogRow{}
	for rows.Next() {
		var kind, value string
		var names []string
		if err := rows.Scan(&kind, &names, &value); err != nil {
			t.Fatal(err)
		}
		out[kind+"\x00"+strings.Join(names, "\x00")] = catalogRow{names: names, value: value}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// changedRows lists the keys whose rows were added, removed or changed.
func changedRows(before, after map[string]catalogRow) []string {
	var keys []string
	for k, b := range before {
		if a, ok := after[k]; !ok || a.value != b.value {
			keys = append(keys, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// aboutFinding reports whether a changed row is one of the finding's
// objects: one of its names (never the runner's, never empty) appears in
// the finding's object or evidence.
func aboutFinding(row catalogRow, f Finding) bool {
	for _, n := range row.names {
		if n == "" || n == runner || n == "pg_catalog" {
			continue
		}
		// Objects and evidence name things raw or in Go's %q form.
		qn := strings.Trim(strconv.Quote(n), `"`)
		for _, text := range []string{f.Object, f.Evidence} {
			if strings.Contains(text, n) || strings.Contains(text, qn) {
				return true
			}
		}
		// PRIV-13 creates the NOLOGIN owner role named after the login role.
		if base, ok := strings.CutSuffix(n, "_owner"); ok && f.Object == "role "+base {
			return true
		}
	}
	return false
}

func TestHostileNamesFixes(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{AdminUser: runner,
		HBA: "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n"})
	setupHostile(t, srv)
	ctx := context.Background()
	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true, NoProbe: true})
	if err != nil {
		t.Fatal(err)
	}
	findings := Run(snap)
	dbs := append([]string{"postgres"}, hostileDBs...)
	conns := map[string]*pgx.Conn{}
	for _, d := range dbs {
		c, err := srv.Connect(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		conns[d] = c
	}
	ran := map[string]int{}
	manual := map[string]int{}
	for _, f := range findings {
		if f.Status != Fail {
			continue
		}
		// Every failure says what to change: an automatic change or a
		// manual one, never only text the planner cannot place.
		if len(f.Changes) == 0 {
			t.Errorf("%s %s fails with no change attached (automatic or manual)", f.Rule, f.Object)
		}
		if ch, ok := sqlChangeOf(f); ok {
			ran[f.Rule]++
			runHostileChange(t, conns, f, ch)
			continue
		}
		if len(f.Changes) > 0 && f.Changes[0].Manual != "" {
			manual[f.Rule]++
			if strings.ContainsAny(f.Changes[0].Manual, "\n\x1b\u202e") && !strings.Contains(f.Rule, "PRIV-16") {
				t.Errorf("%s: manual text %q carries a raw control character", f.Rule, f.Changes[0].Manual)
			}
			continue
		}
		if f.FixKind != FixSQL {
			continue
		}
		ran[f.Rule]++
		label := fmt.Sprintf("%s on %s: fix %s", f.Rule, quote.Literal(f.Object), quote.Literal(f.Fix))
		if strings.Contains(f.Fix, "in database") && f.Database == "" {
			t.Errorf("%s: says a database in its comment but not in Database", label)
		}
		db := f.Database
		if db == "" {
			db = "postgres"
		}
		c, ok := conns[db]
		if !ok {
			t.Errorf("%s: database %s is not one the test made", label, quote.Literal(db))
			continue
		}
		code := sqlCode(f.Fix)
		template := strings.Contains(code, "<") || strings.Contains(code, "...")
		if strings.Contains(code, "ALTER SYSTEM SET") {
			// Cannot run in a transaction block (a multi-statement query
			// is one): run each statement as psql would, then compare.
			before := readCatalogs(t, c)
			for _, st := range strings.Split(f.Fix, ";") {
				if strings.TrimSpace(st) == "" {
					continue
				}
				if _, err := c.Exec(ctx, st, pgx.QueryExecModeSimpleProtocol); err != nil {
					t.Errorf("%s: %v", label, err)
				}
			}
			for _, k := range changedRows(before, readCatalogs(t, c)) {
				t.Errorf("%s changed %s", label, quote.Literal(k))
			}
			continue
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before := readCatalogs(t, tx)
		_, execErr := tx.Exec(ctx, f.Fix, pgx.QueryExecModeSimpleProtocol)
		switch {
		case template && execErr == nil:
			t.Errorf("%s: a template with placeholders ran", label)
		case template:
			if !strings.Contains(execErr.Error(), "syntax error") {
				t.Errorf("%s: a template failed other than by not parsing: %v", label, execErr)
			}
		case execErr != nil && strings.HasPrefix(code, "DROP EXTENSION") && strings.Contains(execErr.Error(), "2BP01"):
			// "if unused": refused because objects depend on it.
		case execErr != nil:
			t.Errorf("%s: %v", label, execErr)
		default:
			after := readCatalogs(t, tx)
			for _, k := range changedRows(before, after) {
				row, ok := before[k]
				if !ok {
					row = after[k]
				}
				if strings.HasPrefix(k, "canary\x00") || !aboutFinding(row, f) {
					t.Errorf("%s: changed %s, which is not its object", label, quote.Literal(k))
				}
			}
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Every database still has its canaries (a fix outside a transaction
	// would have dropped them for good).
	for _, d := range dbs {
		var n int
		if err := conns[d].QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname IN ('canary', 'x') AND relnamespace = 'public'::regnamespace").Scan(&n); err != nil || n != 2 {
			t.Errorf("database %s: %d canaries (%v)", quote.Literal(d), n, err)
		}
	}
	// The rules with a SQL fix that the hostile objects must have reached.
	for _, id := range sqlFixRules() {
		if ran[id] == 0 {
			t.Errorf("rule %s printed no SQL fix over the hostile objects", id)
		}
	}
	for _, id := range strings.Fields(hostileManualRules) {
		if manual[id] == 0 {
			t.Errorf("rule %s gave no manual step over the hostile objects", id)
		}
	}
	ids := make([]string, 0, len(ran))
	for id := range ran {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	t.Logf("ran SQL fixes of %d rules: %s", len(ran), strings.Join(ids, " "))

	checkHostileHBAFixes(t, findings)
	checkHostileShellFixes(t, findings)
}

// sqlFixRules are the rules the setup is built to trigger.
func sqlFixRules() []string {
	return strings.Fields(hostileSQLRules)
}

// (the rules whose SQL fix carries a name; setting-only fixes run too
// but depend on the test server's configuration).
const hostileSQLRules = "AUTH-13 AUTH-14 EXT-01 EXT-02 EXT-07 EXT-11 LOG-26.overrides NET-05 " +
	"PRIV-01 PRIV-02 PRIV-02.chains PRIV-06 PRIV-08 PRIV-09 PRIV-10 PRIV-11 PRIV-12 PRIV-14 PRIV-15 PRIV-16 " +
	"PRIV-17 PRIV-17.functions PRIV-17.parameters PRIV-18"

// hostileManualRules must come out as manual steps over the same objects
// (a choice only the administrator can make: a password, a policy, an
// owner role, set_user).
const hostileManualRules = "AUTH-11.verifiers AUTH-15 AUTH-19 LOG-30 OTH-04 PRIV-03 PRIV-13 PRIV-16 REPL-01"

// sqlChangeOf returns a finding's SQL change, if it has one.
func sqlChangeOf(f Finding) (*remedy.SQL, bool) {
	for _, c := range f.Changes {
		if c.SQL != nil {
			return c.SQL, true
		}
	}
	return nil, false
}

// runHostileChange runs a finding's SQL change as the planner's step will,
// statement by statement in one transaction in its database, and checks
// that it touched only the finding's objects and that its undo, run
// backwards, restores every catalog row exactly.
func runHostileChange(t *testing.T, conns map[string]*pgx.Conn, f Finding, ch *remedy.SQL) {
	t.Helper()
	ctx := context.Background()
	label := fmt.Sprintf("%s on %s: %s", f.Rule, quote.Literal(f.Object), quote.Literal(strings.Join(ch.Statements, "; ")))
	if len(ch.Undo) != len(ch.Statements) {
		t.Errorf("%s: %d statements, %d undo statements", label, len(ch.Statements), len(ch.Undo))
	}
	db := ch.Database
	if db == "" {
		db = "postgres"
	}
	c, ok := conns[db]
	if !ok {
		t.Errorf("%s: database %s is not one the test made", label, quote.Literal(db))
		return
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	before := readCatalogs(t, tx)
	for _, st := range ch.Statements {
		if _, err := tx.Exec(ctx, st); err != nil {
			t.Errorf("%s: %s: %v", label, quote.Literal(st), err)
			return
		}
	}
	after := readCatalogs(t, tx)
	changed := changedRows(before, after)
	if len(changed) == 0 {
		t.Errorf("%s changed nothing", label)
	}
	for _, k := range changed {
		row, ok := before[k]
		if !ok {
			row = after[k]
		}
		if strings.HasPrefix(k, "canary\x00") || !aboutFinding(row, f) {
			t.Errorf("%s: changed %s, which is not its object", label, quote.Literal(k))
		}
	}
	for i := len(ch.Undo) - 1; i >= 0; i-- {
		if _, err := tx.Exec(ctx, ch.Undo[i]); err != nil {
			t.Errorf("%s: undo %s: %v", label, quote.Literal(ch.Undo[i]), err)
			return
		}
	}
	for _, k := range changedRows(before, readCatalogs(t, tx)) {
		t.Errorf("%s: the undo left %s changed", label, quote.Literal(k))
	}
}

// checkHostileHBAFixes: the pg_hba.conf lines printed for hostile role
// names parse in a scratch server (pg_hba_file_rules) as exactly those
// names; names that cannot be written get an explanation instead.
func checkHostileHBAFixes(t *testing.T, findings []Finding) {
	t.Helper()
	// The lines the planner will insert (remedy.HBAEdit.Before) are what
	// must round-trip; the printed fallback text must say the same.
	var lines, names []string
	for _, f := range findings {
		if f.Status != Fail || f.FixKind != FixConfig || !strings.HasPrefix(f.Object, "role ") {
			continue
		}
		for _, ch := range f.Changes {
			if ch.HBA == nil {
				continue
			}
			if strings.Contains(f.Object, "sup\n") {
				t.Errorf("an hba line for a name with a line break: %q", ch.HBA.Before)
			}
			for _, l := range ch.HBA.Before {
				if !strings.Contains(f.Fix, l) {
					t.Errorf("%s: planned line %q is not in the printed fix %q", f.Rule, l, f.Fix)
				}
				lines = append(lines, l)
				names = append(names, strings.TrimPrefix(f.Object, "role "))
			}
		}
	}
	explained := false
	for _, f := range findings {
		if f.Status != Fail || f.FixKind != FixConfig || !strings.Contains(f.Object, "sup\n") {
			continue
		}
		for _, ch := range f.Changes {
			if ch.HBA == nil && strings.Contains(ch.Manual, "cannot be named in pg_hba.conf") {
				explained = true
			}
		}
	}
	if !explained || len(lines) < 2 {
		t.Fatalf("hba fixes for the hostile superusers: %d lines, explanation %v", len(lines), explained)
	}
	srv := pgtest.Start(t, localpg.Options{})
	if err := srv.WriteDataFile("pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"+strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Connect(context.Background(), "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), "SELECT line_number, user_name, error FROM pg_hba_file_rules WHERE line_number > 2 ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var line int
		var users []string
		var errText *string
		if err := rows.Scan(&line, &users, &errText); err != nil {
			t.Fatal(err)
		}
		want := names[line-3]
		if errText != nil || len(users) != 1 || users[0] != want {
			t.Errorf("hba fix line %q: users %q, error %v; want %q", lines[line-3], users, errText, want)
		}
		seen++
	}
	if seen != len(lines) {
		t.Errorf("%d of %d hba fix lines parsed", seen, len(lines))
	}
}

// checkHostileShellFixes: shell fixes over hostile paths parse (sh -n),
// and each path stays one argument: the command is replaced by printf.
func checkHostileShellFixes(t *testing.T, findings []Finding) {
	t.Helper()
	// The live findings' shell fixes carry role names (psql \password):
	// the -c argument must come back as one word naming exactly the role,
	// and a name psql cannot take gets an explanation, not a command.
	psqlFixes := 0
	for _, f := range findings {
		if f.Status != Fail || f.FixKind != FixShell || !strings.HasPrefix(f.Object, "role ") {
			continue
		}
		role := strings.TrimPrefix(f.Object, "role ")
		if strings.HasPrefix(quote.Ident(role), "U&") {
			if !strings.HasPrefix(f.Fix, "# ") {
				t.Errorf("%s: a command for a role psql cannot name: %q", f.Rule, f.Fix)
			}
			continue
		}
		rest, ok := strings.CutPrefix(f.Fix, "psql -c ")
		if !ok {
			continue
		}
		psqlFixes++
		out, err := exec.Command("sh", "-c", "printf '%s\\0' "+rest).Output()
		if err != nil || string(out) != `\password `+quote.Ident(role)+"\x00" {
			t.Errorf("%s: fix %q passes %q to psql (%v)", f.Rule, f.Fix, out, err)
		}
	}
	if psqlFixes == 0 {
		t.Error("no psql fix for the hostile roles")
	}
	dir := t.TempDir()
	hostile := filepath.Join(dir, "d'ir\n$(touch pwned) `touch pwned2`;rm -rf x #")
	if err := os.MkdirAll(hostile, 0o777); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(hostile, "pg_hba.conf")
	if err := os.WriteFile(file, []byte("x\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion}
	s.Target.DataDir = hostile
	s.Target.OnHost = true
	s.Files = []snapshot.File{
		{Path: hostile, Kind: "data_directory", Exists: true, IsDir: true, Mode: 0o777, UID: 0, Owner: "root"},
		{Path: file, Kind: snapshot.KindHBA, Exists: true, Mode: 0o666, UID: 0, Owner: "root"},
		{Path: file + ".conf", Kind: snapshot.KindConfig, Exists: true, Mode: 0o666, UID: 0, Owner: "root"},
		{Path: hostile + "/log", Kind: snapshot.KindLogDir, Exists: true, IsDir: true, Mode: 0o777, UID: 0, Owner: "root"},
		{Path: hostile + "/sock", Kind: snapshot.KindSocketDir, Exists: true, IsDir: true, Mode: 0o777, UID: 0, Owner: "root"},
		{Path: hostile + "/server.key", Kind: snapshot.KindSSLKey, Exists: true, Mode: 0o644, UID: 0, Owner: "root"},
		{Path: hostile + "/bin", Kind: snapshot.KindBinDir, Exists: true, IsDir: true, Mode: 0o777, UID: 1000, Owner: "u"},
	}
	n := 0
	for _, f := range Run(s) {
		if f.Status != Fail || f.FixKind != FixShell || !strings.Contains(f.Fix, dir) {
			continue
		}
		n++
		if out, err := exec.Command("sh", "-n", "-c", f.Fix).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n %q: %v %s", f.Rule, f.Fix, err, out)
			continue
		}
		// Each word printed on its own: the hostile path must come back
		// whole, and nothing in it may run.
		words := strings.Fields(f.Fix)
		probe := "printf '%s\\0' " + strings.TrimPrefix(f.Fix, words[0]+" ")
		cmd := exec.Command("sh", "-c", probe)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("%s: %q: %v", f.Rule, probe, err)
			continue
		}
		found := false
		for _, w := range strings.Split(string(out), "\x00") {
			if strings.HasPrefix(w, hostile) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: fix %q split the path: %q", f.Rule, f.Fix, out)
		}
	}
	for _, p := range []string{"pwned", "pwned2"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("a shell fix ran code from a path (%s exists)", p)
		}
	}
	if n < 5 {
		t.Errorf("%d shell fixes over the hostile paths, want the mode and ownership rules", n)
	}
}

// sqlCode is sql without its comments and with every quoted identifier
// and string blanked (scan.l: -- to end of line, /* */, "..." with "",
// '...' with ” and, in E”, backslash escapes): what is left is what a
// template placeholder or a statement keyword must be found in.
func sqlCode(sql string) string {
	var b strings.Builder
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			b.WriteByte(' ')
		case c == '"' || c == '\'':
			esc := c == '\'' && i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e')
			for i++; i < len(sql); i++ {
				if esc && sql[i] == '\\' {
					i++
					continue
				}
				if sql[i] == c {
					if i+1 < len(sql) && sql[i+1] == c {
						i++
						continue
					}
					break
				}
			}
			b.WriteString(" q ")
		default:
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}
