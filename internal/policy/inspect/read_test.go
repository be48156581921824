package inspect

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/policy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// estate is the planted state the real-server tests read: every kind of
// thing Read must see, with hostile names.
func estate(major int) (cluster []string, appdb []string) {
	cluster = []string{
		`CREATE ROLE owner_r NOLOGIN`,
		`CREATE ROLE app LOGIN CONNECTION LIMIT 20 PASSWORD 'x-secret-1'`,
		`CREATE ROLE "we""ird.role
nl" CREATEDB VALID UNTIL '2031-01-02 03:04:05+00'`,
		`CREATE ROLE ro NOINHERIT BYPASSRLS`,
		`CREATE ROLE grp`,
		`CREATE ROLE grp2`,
		`GRANT grp TO app`,
		`GRANT grp2 TO ro WITH ADMIN OPTION`,
		`GRANT pg_read_all_settings TO ro`,
		`ALTER ROLE app SET search_path = 'public'`,
		`CREATE DATABASE appdb OWNER owner_r`,
		`CREATE DATABASE closed`,
		`REVOKE CONNECT ON DATABASE closed FROM PUBLIC`,
		`REVOKE TEMPORARY ON DATABASE appdb FROM PUBLIC`,
		`GRANT CONNECT ON DATABASE appdb TO app`,
		`ALTER ROLE app IN DATABASE appdb SET work_mem = '8MB'`,
	}
	if major >= 16 {
		cluster = append(cluster,
			`GRANT grp TO ro WITH INHERIT TRUE, SET FALSE`,
			`GRANT grp2 TO app WITH INHERIT FALSE GRANTED BY ro`)
	}
	appdb = []string{
		`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`,
		`CREATE SCHEMA s AUTHORIZATION owner_r`,
		`CREATE SCHEMA "x.y""z" AUTHORIZATION app`,
		`GRANT USAGE ON SCHEMA s TO app, ro`,
		`CREATE TABLE s.t1 (id int, secret text, tenant int)`,
		`CREATE TABLE s.t2 (id int)`,
		`CREATE TABLE "x.y""z"."t.
3" (id int)`,
		`CREATE VIEW s.v AS SELECT id FROM s.t1`,
		`CREATE SEQUENCE s.q`,
		`ALTER TABLE s.t1 OWNER TO owner_r`,
		`GRANT SELECT, INSERT ON s.t1 TO app WITH GRANT OPTION`,
		`GRANT SELECT ON s.t2, s.v TO ro`,
		`GRANT SELECT (id, tenant), UPDATE (tenant) ON s.t1 TO ro`,
		`REVOKE DELETE ON s.t2 FROM CURRENT_USER`,
		`GRANT USAGE ON SEQUENCE s.q TO app`,
		`CREATE FUNCTION s.f(a int, "b c" text) RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		`CREATE FUNCTION s.g() RETURNS int LANGUAGE sql AS 'SELECT 2'`,
		`REVOKE EXECUTE ON FUNCTION s.g() FROM PUBLIC`,
		`GRANT EXECUTE ON FUNCTION s.g() TO app`,
		`CREATE PROCEDURE s.p(int) LANGUAGE sql AS 'SELECT 1'`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE owner_r GRANT SELECT ON TABLES TO ro`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE owner_r REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE owner_r IN SCHEMA s GRANT INSERT, UPDATE ON TABLES TO app`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA s GRANT USAGE ON SEQUENCES TO ro`,
		`ALTER TABLE s.t1 ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE s.t2 ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE s.t2 FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY tenant ON s.t1 FOR SELECT TO app, ro USING (tenant = current_setting('app.tenant', true)::int)`,
		`CREATE POLICY "w""p" ON s.t1 AS RESTRICTIVE FOR UPDATE USING (true) WITH CHECK (tenant > 0)`,
		`CREATE POLICY allp ON s.t2 USING (id > 0)`,
	}
	if major >= 17 {
		appdb = append(appdb, `GRANT MAINTAIN ON s.t2 TO app`)
	}
	return cluster, appdb
}

func plant(t *testing.T, major int, srvExec func(ctx context.Context, db string, sql ...string) error) {
	t.Helper()
	cl, app := estate(major)
	ctx := pgtest.Ctx(t)
	if err := srvExec(ctx, "postgres", cl...); err != nil {
		t.Fatal(err)
	}
	if err := srvExec(ctx, "appdb", app...); err != nil {
		t.Fatal(err)
	}
}

// effective is what a File's grants say is held: the listed grantees,
// plus the owner's full default set when the owner is not listed (full
// nil: no implicit owner, as for columns and IN SCHEMA defaults).
func effective(g policy.Grants, owner string, full map[string]bool, into map[string]bool) {
	for who, privs := range g {
		for _, p := range privs {
			base, opt := strings.CutSuffix(p, " WITH GRANT OPTION")
			into[who+"\x01"+base+"\x01"+strconv.FormatBool(opt)] = true
		}
	}
	if _, listed := g[owner]; full != nil && !listed {
		for p := range full {
			into[owner+"\x01"+p+"\x01false"] = true
		}
	}
}

// ourState flattens a Live database into object key -> held privileges
// (and "owner=" entries), the same keys the server query below builds.
func ourState(d *policy.Database, dbName string, major int) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(key string) map[string]bool {
		if out[key] == nil {
			out[key] = map[string]bool{}
		}
		return out[key]
	}
	m := add("db\x01" + dbName)
	m["owner="+d.Owner] = true
	effective(d.Grants, d.Owner, ownerFull(acl.KindDatabase, major), m)
	defacl := func(prefix, role string, dp *policy.DefaultPrivileges, global bool) {
		for typ, g := range map[string]policy.Grants{"r": dp.Tables, "S": dp.Sequences, "f": dp.Functions, "T": dp.Types, "n": dp.Schemas} {
			if g == nil {
				continue
			}
			var full map[string]bool
			if global {
				full = ownerFull(map[string]byte{"r": 'r', "S": 's', "f": 'f', "T": 'T', "n": 'n'}[typ], major)
			}
			effective(g, role, full, add(prefix+"\x01"+role+"\x01"+typ))
		}
	}
	for role, dp := range d.DefaultPrivileges {
		defacl("defacl\x01", role, dp, true)
	}
	for sn, s := range d.Schemas {
		m := add("schema\x01" + sn)
		m["owner="+s.Owner] = true
		effective(s.Grants, s.Owner, ownerFull(acl.KindSchema, major), m)
		for role, dp := range s.DefaultPrivileges {
			defacl("defacl\x01"+sn, role, dp, false)
		}
		for kind, objs := range map[string]policy.Objects{"table": s.Tables, "seq": s.Sequences, "func": s.Functions} {
			k := map[string]byte{"table": 'r', "seq": 's', "func": 'f'}[kind]
			for on, o := range objs {
				m := add(kind + "\x01" + sn + "\x01" + on)
				m["owner="+o.Owner] = true
				effective(o.Grants, o.Owner, ownerFull(k, major), m)
				for col, g := range o.Columns {
					effective(g, "", nil, add("col\x01"+sn+"\x01"+on+"\x01"+col))
				}
			}
		}
	}
	return out
}

// serverState asks the server the same: aclexplode over the catalogs, the
// built-in defaults from acldefault, extension members left out.
func serverState(t *testing.T, conn *pgx.Conn) map[string]map[string]bool {
	t.Helper()
	const user = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`
	const notExt = ` AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.deptype = 'e' AND e.classid = '%s'::regclass AND e.objid = %s.oid)`
	q := func(sel, from, acl string) string {
		return `SELECT ` + sel + `, coalesce(r.rolname, 'PUBLIC'), a.privilege_type, a.is_grantable FROM ` + from +
			` LEFT JOIN LATERAL aclexplode(` + acl + `) a ON true LEFT JOIN pg_roles r ON r.oid = a.grantee`
	}
	queries := []string{
		q(`'db' || chr(1) || d.datname, pg_get_userbyid(d.datdba)`, `pg_database d`, `coalesce(d.datacl, acldefault('d', d.datdba))`) +
			` WHERE d.datname = current_database()`,
		q(`'schema' || chr(1) || n.nspname, pg_get_userbyid(n.nspowner)`, `pg_namespace n`, `coalesce(n.nspacl, acldefault('n', n.nspowner))`) +
			` WHERE ` + user + fmt.Sprintf(notExt, "pg_namespace", "n"),
		q(`CASE WHEN c.relkind = 'S' THEN 'seq' ELSE 'table' END || chr(1) || n.nspname || chr(1) || c.relname, pg_get_userbyid(c.relowner)`,
			`pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace`,
			`coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))`) +
			` WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND ` + user + fmt.Sprintf(notExt, "pg_class", "c"),
		q(`'func' || chr(1) || n.nspname || chr(1) || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', pg_get_userbyid(p.proowner)`,
			`pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace`, `coalesce(p.proacl, acldefault('f', p.proowner))`) +
			` WHERE ` + user + fmt.Sprintf(notExt, "pg_proc", "p"),
		q(`'col' || chr(1) || n.nspname || chr(1) || c.relname || chr(1) || t.attname, NULL`,
			`pg_attribute t JOIN pg_class c ON c.oid = t.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace`, `t.attacl`) +
			` WHERE t.attacl IS NOT NULL AND t.attacl <> '{}' AND t.attnum > 0 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ` + user,
		q(`'defacl' || chr(1) || coalesce((SELECT nspname FROM pg_namespace WHERE oid = d.defaclnamespace), '') || chr(1) || pg_get_userbyid(d.defaclrole) || chr(1) || d.defaclobjtype::text, NULL`,
			`pg_default_acl d`, `d.defaclacl`) + ` WHERE d.defaclobjtype IN ('r', 'S', 'f', 'T', 'n')`,
	}
	out := map[string]map[string]bool{}
	ctx := pgtest.Ctx(t)
	for _, qq := range queries {
		rows, err := conn.Query(ctx, qq)
		if err != nil {
			t.Fatalf("%s: %v", qq, err)
		}
		for rows.Next() {
			var key string
			var owner, grantee, priv *string
			var opt *bool
			if err := rows.Scan(&key, &owner, &grantee, &priv, &opt); err != nil {
				t.Fatal(err)
			}
			m := out[key]
			if m == nil {
				m = map[string]bool{}
				out[key] = m
			}
			if owner != nil {
				m["owner="+*owner] = true
			}
			if priv != nil {
				m[*grantee+"\x01"+*priv+"\x01"+strconv.FormatBool(*opt)] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	// One privilege with and without grant option (two grantors) is held
	// with it.
	for _, m := range out {
		for k := range m {
			if base, ok := strings.CutSuffix(k, "\x01false"); ok && m[base+"\x01true"] {
				delete(m, k)
			}
		}
	}
	return out
}

// compareStates counts the objects on which ours and the server's differ.
func compareStates(t *testing.T, label string, ours, server map[string]map[string]bool) (cases, bad int) {
	t.Helper()
	keys := map[string]bool{}
	for k := range ours {
		keys[k] = true
	}
	for k := range server {
		keys[k] = true
	}
	for k := range keys {
		cases++
		a, b := sortedKeys(ours[k]), sortedKeys(server[k])
		if !slices.Equal(a, b) {
			bad++
			t.Errorf("%s %q:\n ours   %q\n server %q", label, k, a, b)
		}
	}
	return cases, bad
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestReadAgreesWithServer plants the estate on every major and compares
// what Read says is held with what the server's catalogs say (aclexplode,
// acldefault, pg_auth_members, pg_roles), then reads again as a
// non-superuser.
func TestReadAgreesWithServer(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		start := time.Now()
		srv := pgtest.StartMajor(t, major, localpg.Options{})
		plant(t, major, srv.ExecIn)
		ctx := pgtest.Ctx(t)
		live, err := Read(ctx, srv.ConnConfig("postgres"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if live.Major != major || !live.Superuser || live.Bootstrap != srv.AdminUser || len(live.Unreadable) != 0 {
			t.Fatalf("major %d superuser %v bootstrap %q unreadable %v", live.Major, live.Superuser, live.Bootstrap, live.Unreadable)
		}
		conn := pgtest.Conn(t, srv, "appdb")
		cases, bad := compareStates(t, "object", ourState(live.File.Databases["appdb"], "appdb", major), serverState(t, conn))
		c, b := compareRoles(t, conn, live)
		cases, bad = cases+c, bad+b

		// Things the estate planted that must be seen as such.
		s := live.File.Databases["appdb"].Schemas["s"]
		checks := map[string]bool{
			"extension objects left out":     live.File.Databases["appdb"].Schemas["public"].Tables["pg_stat_statements"] == nil,
			"NULL proacl is PUBLIC EXECUTE":  slices.Equal(s.Functions["f(a integer, \"b c\" text)"].Grants["PUBLIC"], []string{"EXECUTE"}),
			"revoked PUBLIC EXECUTE":         s.Functions["g()"].Grants["PUBLIC"] == nil,
			"owner revoked from itself":      s.Tables["t2"].Grants[srv.AdminUser] != nil,
			"owner's full set implicit":      s.Tables["t1"].Grants["owner_r"] == nil,
			"column grants":                  slices.Equal(s.Tables["t1"].Columns["tenant"]["ro"], []string{"SELECT", "UPDATE"}),
			"grant option":                   slices.Contains(s.Tables["t1"].Grants["app"], "SELECT WITH GRANT OPTION"),
			"RLS forced":                     s.RLS["t2"] != nil && s.RLS["t2"].Force && s.RLS["t2"].Enabled,
			"restrictive policy":             s.RLS["t1"] != nil && s.RLS["t1"].Policies[`w"p`] != nil && s.RLS["t1"].Policies[`w"p`].Restrictive,
			"hostile table name":             live.File.Databases["appdb"].Schemas[`x.y"z`].Tables["t.\n3"] != nil,
			"global default revokes EXECUTE": live.File.Databases["appdb"].DefaultPrivileges["owner_r"].Functions != nil && len(live.File.Databases["appdb"].DefaultPrivileges["owner_r"].Functions) == 0,
			"password known, never read":     live.HasPassword["app"] && !live.HasPassword["ro"],
			"database settings":              live.File.Roles["app"].DatabaseSettings["appdb"]["work_mem"] == "8MB",
		}
		if major >= 17 {
			checks["MAINTAIN"] = slices.Contains(s.Tables["t2"].Grants["app"], "MAINTAIN")
		}
		for what, ok := range checks {
			cases++
			if !ok {
				bad++
				t.Errorf("%s: not as planted", what)
			}
		}

		// A non-superuser reads what it may and names the rest.
		if err := srv.Exec(ctx, `CREATE ROLE reader LOGIN PASSWORD 'reader-pw-9'`, `GRANT CONNECT ON DATABASE appdb TO reader`); err != nil {
			t.Fatal(err)
		}
		cfg := srv.ConnConfig("postgres")
		cfg.User, cfg.Password = "reader", "reader-pw-9"
		nl, err := Read(ctx, cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		cases++
		if nl.Superuser || nl.HasPassword != nil || nl.Unreadable[UnreadablePasswords] == "" || nl.Unreadable["closed"] == "" || nl.File.Databases["closed"] != nil {
			bad++
			t.Errorf("non-superuser: superuser %v passwords %v unreadable %q", nl.Superuser, nl.HasPassword, nl.Unreadable)
		}
		c, b = compareStates(t, "non-superuser object", ourState(nl.File.Databases["appdb"], "appdb", major), serverState(t, conn))
		cases, bad = cases+c, bad+b
		t.Logf("ORACLE inspect-read pg%d: cases=%d disagreements=%d seconds=%.1f", major, cases, bad, time.Since(start).Seconds())
	})
}

// compareRoles checks attributes against pg_roles and memberships,
// expanded back to all their options, against pg_auth_members.
func compareRoles(t *testing.T, conn *pgx.Conn, live *policy.Live) (cases, bad int) {
	t.Helper()
	ctx := pgtest.Ctx(t)
	rows, err := conn.Query(ctx, `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit,
		coalesce(to_char(rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', '') FROM pg_roles WHERE rolname NOT LIKE 'pg\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var n, vu string
		var a [7]bool
		var limit int
		if err := rows.Scan(&n, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &limit, &vu); err != nil {
			t.Fatal(err)
		}
		seen++
		cases++
		r := live.File.Roles[n]
		if r == nil || *r.Superuser != a[0] || *r.Inherit != a[1] || *r.CreateRole != a[2] || *r.CreateDB != a[3] || *r.Login != a[4] ||
			*r.Replication != a[5] || *r.BypassRLS != a[6] || *r.ConnectionLimit != limit || r.ValidUntil != vu || r.Password != "" {
			bad++
			t.Errorf("role %q: read %+v, server %v %d %q", n, r, a, limit, vu)
		}
	}
	rows.Close()
	cases++
	if seen != len(live.File.Roles) {
		bad++
		t.Errorf("%d roles read, %d on the server", len(live.File.Roles), seen)
	}
	q := `SELECT r.rolname, m.rolname, g.rolname, a.admin_option, m.rolinherit, true FROM pg_auth_members a
		JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member JOIN pg_roles g ON g.oid = a.grantor WHERE m.rolname NOT LIKE 'pg\_%'`
	if live.Major >= 16 {
		q = strings.Replace(q, "m.rolinherit, true", "a.inherit_option, a.set_option", 1)
	}
	server := map[string]bool{}
	rows, err = conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var role, member, grantor string
		var admin, inh, set bool
		if err := rows.Scan(&role, &member, &grantor, &admin, &inh, &set); err != nil {
			t.Fatal(err)
		}
		if live.Major < 16 {
			grantor = live.Bootstrap // not recorded as a dependency before 16: not read
		}
		server[fmt.Sprint(member, "|", role, "|", grantor, admin, inh, set)] = true
	}
	rows.Close()
	ours := map[string]bool{}
	for member, r := range live.File.Roles {
		for _, m := range r.MemberOf {
			g := m.Grantor
			if g == "" {
				g = live.Bootstrap
			}
			inh := *r.Inherit
			if m.Inherit != nil {
				inh = *m.Inherit
			}
			ours[fmt.Sprint(member, "|", m.Role, "|", g, m.Admin != nil && *m.Admin, inh, m.Set == nil || *m.Set)] = true
		}
	}
	c, b := compareStates(t, "memberships", map[string]map[string]bool{"all": ours}, map[string]map[string]bool{"all": server})
	return cases + c + len(server) - 1, bad + b
}
