package privileges

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	for _, e := range servers {
		if e.srv != nil {
			e.srv.Stop()
		}
	}
	os.Exit(code)
}

// servers holds one server per major for the package's oracle tests
// (each test uses its own role and object names), stopped by TestMain:
// starting six servers once, not once per test, keeps the package fast.
var (
	serversMu sync.Mutex
	servers   = map[int]*majorEntry{}
)

type majorEntry struct {
	once sync.Once
	srv  *localpg.Server
	err  error
}

func majorServer(t *testing.T, major int) *localpg.Server {
	t.Helper()
	serversMu.Lock()
	e, ok := servers[major]
	if !ok {
		e = &majorEntry{}
		servers[major] = e
	}
	serversMu.Unlock()
	v := strconv.Itoa(major)
	if _, err := localpg.FindBinDir(v); err != nil {
		pgtest.Unavailable(t, err)
	}
	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		e.srv, e.err = localpg.Start(ctx, localpg.Options{Version: v})
	})
	if e.err != nil {
		t.Fatalf("starting PostgreSQL %d: %v", major, e.err)
	}
	return e.srv
}

func q(s string) string { return pgx.Identifier{s}.Sanitize() }

// TestAgreesWithHasPrivilege builds a random role graph of a few hundred
// roles and random grants on a real server of every major, collects it
// like an audit does, and compares our answers with has_*_privilege and
// pg_has_role on thousands of triples, inside a database owned by a
// generated role (pg_database_owner applies there).
func TestAgreesWithHasPrivilege(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		srv := majorServer(t, major)
		for _, seed := range []int64{515, 2026} {
			t.Run(fmt.Sprint(seed), func(t *testing.T) { agreeWithServer(t, srv, major, seed) })
		}
	})
}

// graph is one generated role graph and its objects, all in database db.
type graph struct {
	db                                        string
	roles, extra                              []string // generated; predefined and admin roles also asked about
	tables, seqs, funcs, schemas, langs, srvs []string
	params                                    []string
	los                                       []uint32
}

func generate(t *testing.T, ctx context.Context, srv *localpg.Server, major int, seed int64, rng *rand.Rand) *graph {
	g := &graph{db: fmt.Sprintf("privdb_%d", seed)}
	p := fmt.Sprintf("s%d_", seed) // role names unique per seed: roles are cluster-wide
	admin, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	run := func(c *pgx.Conn, s string, args ...any) {
		st := fmt.Sprintf(s, args...)
		if _, err := c.Exec(ctx, st); err != nil {
			t.Fatalf("pg%d: %s: %v", major, st, err)
		}
	}
	const nRoles = 160
	g.roles = make([]string, nRoles)
	for i := range g.roles {
		g.roles[i] = fmt.Sprintf("%sr%03d", p, i)
		if i == 7 {
			g.roles[i] = p + `Weird "Role"`
		}
		attrs := "NOLOGIN"
		if rng.Intn(2) == 0 {
			attrs = "LOGIN"
		}
		if rng.Intn(4) == 0 {
			attrs += " NOINHERIT"
		}
		if i == 3 || i == 90 {
			attrs += " SUPERUSER"
		}
		run(admin, "CREATE ROLE %s %s", q(g.roles[i]), attrs)
	}
	var predefined []string
	for _, r := range []struct {
		name string
		from int
	}{{"pg_signal_backend", 13}, {"pg_monitor", 13}, {"pg_read_all_settings", 13}, {"pg_read_server_files", 13},
		{"pg_execute_server_program", 13}, {"pg_read_all_data", 14}, {"pg_write_all_data", 14}, {"pg_maintain", 17}} {
		if major >= r.from {
			predefined = append(predefined, r.name)
		}
	}
	g.extra = append(append([]string{}, predefined...), srv.AdminUser)
	if major >= 14 {
		g.extra = append(g.extra, "pg_database_owner")
	}
	// directAdmin[j] lists roles granted role j WITH ADMIN OPTION: the
	// grantors 16 accepts in GRANTED BY.
	directAdmin := map[string][]string{}
	options := func() (string, bool) {
		adm := rng.Intn(5) == 0
		if major < 16 {
			if adm {
				return " WITH ADMIN OPTION", true
			}
			return "", false
		}
		var o []string
		if adm {
			o = append(o, "ADMIN TRUE")
		}
		if rng.Intn(3) == 0 {
			o = append(o, "INHERIT "+[]string{"TRUE", "FALSE"}[rng.Intn(2)])
		}
		if rng.Intn(3) == 0 {
			o = append(o, "SET "+[]string{"TRUE", "FALSE"}[rng.Intn(2)])
		}
		if len(o) == 0 {
			return "", false
		}
		return " WITH " + strings.Join(o, ", "), adm
	}
	grant := func(role, member string) {
		opt, adm := options()
		by := ""
		if as := directAdmin[role]; len(as) > 0 && rng.Intn(2) == 0 {
			if gr := as[rng.Intn(len(as))]; gr != member {
				by = " GRANTED BY " + q(gr)
			}
		}
		run(admin, "GRANT %s TO %s%s%s", q(role), q(member), opt, by)
		if adm {
			directAdmin[role] = append(directAdmin[role], member)
		}
	}
	// Memberships only towards lower numbers: no cycles, chains ~6 deep.
	for i := 1; i < nRoles; i++ {
		for k := 0; k < 1+rng.Intn(2); k++ {
			j := rng.Intn(i)
			grant(g.roles[j], g.roles[i])
			if major >= 16 && rng.Intn(4) == 0 {
				grant(g.roles[j], g.roles[i]) // a second grant: another grantor or changed options
			}
		}
	}
	for _, pr := range predefined {
		for k := 0; k < 3; k++ {
			grant(pr, g.roles[rng.Intn(nRoles)])
		}
	}
	owner := g.roles[rng.Intn(nRoles)]
	for owner == g.roles[3] || owner == g.roles[90] {
		owner = g.roles[rng.Intn(nRoles)]
	}
	run(admin, "CREATE DATABASE %s OWNER %s", q(g.db), q(owner))
	run(admin, "REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC", q(g.db))
	run(admin, "GRANT CONNECT ON DATABASE %s TO %s", q(g.db), q(g.roles[4]))
	run(admin, "GRANT CREATE ON DATABASE %s TO %s WITH GRANT OPTION", q(g.db), q(g.roles[6]))
	if major >= 14 {
		run(admin, "GRANT TEMPORARY ON DATABASE %s TO pg_database_owner", q(g.db))
	}
	if major >= 15 {
		g.params = []string{"work_mem", "archive_command", "log_statement"}
		for _, pa := range g.params {
			for k := 0; k < 4; k++ {
				priv := []string{"SET", "ALTER SYSTEM"}[rng.Intn(2)]
				opt := []string{"", " WITH GRANT OPTION"}[rng.Intn(2)]
				run(admin, "GRANT %s ON PARAMETER %s TO %s%s", priv, pa, q(g.roles[rng.Intn(nRoles)]), opt)
			}
		}
		g.params = append(g.params, "shared_buffers") // never granted: no ACL row
	}

	c, err := srv.Connect(ctx, g.db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	grantee := func() string {
		switch rng.Intn(12) {
		case 0, 1:
			return "PUBLIC"
		case 2:
			if major >= 14 {
				return "pg_database_owner"
			}
		}
		return q(g.roles[rng.Intn(nRoles)])
	}
	ownerRole := func() string {
		if major >= 14 && rng.Intn(8) == 0 {
			return "pg_database_owner"
		}
		return q(g.roles[rng.Intn(nRoles)])
	}
	g.schemas = []string{"s1", "s2", "public"}
	run(c, "CREATE SCHEMA s1 AUTHORIZATION %s", q(g.roles[1]))
	run(c, "CREATE SCHEMA s2")
	run(c, "GRANT USAGE ON SCHEMA s2 TO %s", q(g.roles[2]))
	run(c, "GRANT CREATE ON SCHEMA s2 TO PUBLIC")
	if major >= 14 {
		g.schemas = append(g.schemas, "s3")
		run(c, "CREATE SCHEMA s3 AUTHORIZATION pg_database_owner")
	}
	privs := []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
	if major >= 17 {
		privs = append(privs, "MAINTAIN")
	}
	for i := 0; i < 60; i++ {
		name := fmt.Sprintf("s%d.t%02d", 1+i%2, i)
		g.tables = append(g.tables, name)
		run(c, "CREATE TABLE %s (id int, secret text, note text)", name)
		if rng.Intn(3) > 0 {
			run(c, "ALTER TABLE %s OWNER TO %s", name, ownerRole())
		}
		for k := 0; k < rng.Intn(4); k++ {
			opt := ""
			gr := grantee()
			if rng.Intn(4) == 0 && gr != "PUBLIC" {
				opt = " WITH GRANT OPTION"
			}
			run(c, "GRANT %s ON %s TO %s%s", privs[rng.Intn(len(privs))], name, gr, opt)
		}
		if rng.Intn(6) == 0 {
			run(c, "REVOKE SELECT ON %s FROM CURRENT_USER", name) // the owner may give up its own rights (no-op unless owner)
		}
		if rng.Intn(3) == 0 {
			run(c, "GRANT SELECT (note), UPDATE (note) ON %s TO %s", name, grantee())
		}
	}
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("s1.q%02d", i)
		g.seqs = append(g.seqs, name)
		run(c, "CREATE SEQUENCE %s", name)
		if rng.Intn(2) == 0 {
			run(c, "GRANT USAGE ON SEQUENCE %s TO %s", name, grantee())
		}
		if rng.Intn(2) == 0 {
			run(c, "ALTER SEQUENCE %s OWNER TO %s", name, ownerRole())
		}
	}
	for i := 0; i < 12; i++ {
		name := fmt.Sprintf("s2.f%02d(integer)", i)
		g.funcs = append(g.funcs, name)
		run(c, "CREATE FUNCTION %s RETURNS int LANGUAGE sql AS 'SELECT 1'", name)
		if rng.Intn(2) == 0 {
			run(c, "REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC", name)
			run(c, "GRANT EXECUTE ON FUNCTION %s TO %s", name, grantee())
		}
		if rng.Intn(3) == 0 {
			run(c, "ALTER FUNCTION %s OWNER TO %s", name, ownerRole())
		}
	}
	g.langs = []string{"plpgsql", "sql"}
	run(c, "REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC")
	for k := 0; k < 4; k++ {
		run(c, "GRANT USAGE ON LANGUAGE plpgsql TO %s", grantee())
	}
	run(c, "CREATE FOREIGN DATA WRAPPER w")
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("srv%d", i)
		g.srvs = append(g.srvs, name)
		run(c, "CREATE SERVER %s FOREIGN DATA WRAPPER w", name)
		if i > 0 {
			run(c, "ALTER SERVER %s OWNER TO %s", name, ownerRole())
			run(c, "GRANT USAGE ON FOREIGN SERVER %s TO %s", name, grantee())
		}
	}
	if major >= 18 { // has_largeobject_privilege is 18's
		for i := 0; i < 4; i++ {
			var oid uint32
			if err := c.QueryRow(ctx, "SELECT lo_create(0)").Scan(&oid); err != nil {
				t.Fatal(err)
			}
			g.los = append(g.los, oid)
			run(c, "ALTER LARGE OBJECT %d OWNER TO %s", oid, ownerRole())
			run(c, "GRANT SELECT ON LARGE OBJECT %d TO %s", oid, grantee())
		}
	}
	return g
}

func agreeWithServer(t *testing.T, srv *localpg.Server, major int, seed int64) {
	ctx := pgtest.Ctx(t)
	start := time.Now()
	rng := rand.New(rand.NewSource(seed))
	g := generate(t, ctx, srv, major, seed, rng)

	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	m := Build(snap)
	db := findDB(snap, g.db)
	if db == nil || !db.Collected {
		t.Fatalf("database %s not collected", g.db)
	}
	conn, err := srv.Connect(ctx, g.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	type triple struct{ kind, role, object, priv string }
	var cases []triple
	allRoles := append(append([]string{}, g.roles...), g.extra...)
	privs := []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
	if major >= 17 {
		privs = append(privs, "MAINTAIN")
	}
	roleModes := []string{"MEMBER", "USAGE", "MEMBER WITH ADMIN OPTION", "USAGE WITH GRANT OPTION"}
	if major >= 16 {
		roleModes = append(roleModes, "SET", "SET")
	}
	for i := 0; i < 5000; i++ {
		role := allRoles[rng.Intn(len(allRoles))]
		add := func(kind, obj, priv string) { cases = append(cases, triple{kind, role, obj, priv}) }
		switch rng.Intn(14) {
		case 0, 1, 2:
			p := privs[rng.Intn(len(privs))]
			if rng.Intn(5) == 0 {
				p += " WITH GRANT OPTION"
			}
			add("table", g.tables[rng.Intn(len(g.tables))], p)
		case 3:
			add("column", g.tables[rng.Intn(len(g.tables))]+".note", []string{"SELECT", "UPDATE", "INSERT"}[rng.Intn(3)])
		case 4:
			add("sequence", g.seqs[rng.Intn(len(g.seqs))], []string{"USAGE", "SELECT", "UPDATE"}[rng.Intn(3)])
		case 5:
			add("function", g.funcs[rng.Intn(len(g.funcs))], "EXECUTE")
		case 6:
			add("schema", g.schemas[rng.Intn(len(g.schemas))], []string{"USAGE", "CREATE", "CREATE WITH GRANT OPTION"}[rng.Intn(3)])
		case 7:
			add("database", []string{g.db, "postgres"}[rng.Intn(2)], []string{"CONNECT", "TEMPORARY", "CREATE", "CREATE WITH GRANT OPTION"}[rng.Intn(4)])
		case 8, 9, 10:
			add("role", allRoles[rng.Intn(len(allRoles))], roleModes[rng.Intn(len(roleModes))])
		case 11:
			if rng.Intn(2) == 0 {
				add("language", g.langs[rng.Intn(len(g.langs))], "USAGE")
			} else {
				add("server", g.srvs[rng.Intn(len(g.srvs))], []string{"USAGE", "USAGE WITH GRANT OPTION"}[rng.Intn(2)])
			}
		case 12:
			if len(g.params) > 0 {
				add("parameter", g.params[rng.Intn(len(g.params))], []string{"SET", "ALTER SYSTEM", "SET WITH GRANT OPTION"}[rng.Intn(3)])
			}
		case 13:
			if len(g.los) > 0 {
				add("large object", fmt.Sprint(g.los[rng.Intn(len(g.los))]), []string{"SELECT", "UPDATE"}[rng.Intn(2)])
			}
		}
	}
	var rs, os_, ps, ks []string
	for _, c := range cases {
		rs, os_, ps, ks = append(rs, c.role), append(os_, c.object), append(ps, c.priv), append(ks, c.kind)
	}
	// Functions that a major lacks are left out of the SQL text itself:
	// the server resolves every function of a CASE at parse time.
	extra := ""
	if major >= 15 {
		extra += "\n\t\tWHEN 'parameter' THEN has_parameter_privilege(r, o, p)"
	}
	if major >= 18 {
		extra += "\n\t\tWHEN 'large object' THEN has_largeobject_privilege(r, o::oid, p)"
	}
	rows, err := conn.Query(ctx, `SELECT CASE k
		WHEN 'table' THEN has_table_privilege(r, o, p)
		WHEN 'column' THEN has_column_privilege(r, regexp_replace(o, '\.[^.]*$', ''), regexp_replace(o, '^.*\.', ''), p)
		WHEN 'sequence' THEN has_sequence_privilege(r, o, p)
		WHEN 'function' THEN has_function_privilege(r, o, p)
		WHEN 'schema' THEN has_schema_privilege(r, o, p)
		WHEN 'database' THEN has_database_privilege(r, o, p)
		WHEN 'language' THEN has_language_privilege(r, o, p)
		WHEN 'server' THEN has_server_privilege(r, o, p)
		WHEN 'role' THEN pg_has_role(r, o, p)`+extra+` END
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS x(r, o, p, k, n) ORDER BY n`, rs, os_, ps, ks)
	if err != nil {
		t.Fatal(err)
	}
	server, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil {
		t.Fatal(err)
	}
	dm := m.InDatabase(g.db)
	disagree, allowed, roleCases, roleDisagree := 0, 0, 0, 0
	for i, c := range cases {
		if server[i] {
			allowed++
		}
		got, why := ours(t, m, dm, snap, db, c.kind, c.role, c.object, c.priv)
		if c.kind == "role" {
			roleCases++
		}
		if got != server[i] {
			disagree++
			if c.kind == "role" {
				roleDisagree++
			}
			if disagree <= 12 {
				t.Errorf("pg%d: %s %s on %s %s: server %v, we %v (%s)", major, c.role, c.priv, c.kind, c.object, server[i], got, why)
			}
		}
	}
	secs := time.Since(start).Seconds()
	t.Logf("ORACLE privileges pg%d: cases=%d disagreements=%d seconds=%.1f", major, len(cases)-roleCases, disagree-roleDisagree, secs)
	t.Logf("ORACLE roles pg%d: cases=%d disagreements=%d seconds=%.1f", major, roleCases, roleDisagree, secs)
	if allowed < len(cases)/10 || allowed > len(cases)*9/10 {
		t.Errorf("the generated graph is too one-sided to test much: %d of %d allowed", allowed, len(cases))
	}
}

func findDB(s *snapshot.Snapshot, name string) *snapshot.Database {
	for i := range s.Databases {
		if s.Databases[i].Name == name {
			return &s.Databases[i]
		}
	}
	return nil
}

// ours answers one triple from the model; dm is the model inside db,
// where checks run (pg_database_owner), m the cluster's.
func ours(t *testing.T, m, dm *Model, s *snapshot.Snapshot, db *snapshot.Database, kind, role, object, priv string) (bool, string) {
	ri, ok := m.RoleIndex(role)
	if !ok {
		t.Fatalf("role %s not in snapshot", role)
	}
	if kind == "role" {
		ti, ok := m.RoleIndex(object)
		if !ok {
			t.Fatalf("role %s not in snapshot", object)
		}
		ok, err := dm.HasRole(ri, ti, priv)
		if err != nil {
			t.Fatal(err)
		}
		return ok, ""
	}
	grantOpt := strings.HasSuffix(priv, " WITH GRANT OPTION")
	p := strings.TrimSuffix(priv, " WITH GRANT OPTION")
	bits, err := ParsePrivilege(p)
	if err != nil {
		t.Fatal(err)
	}
	check := func(k Kind, owner string, items []acl.Item, isDefault bool) (bool, string) {
		res := dm.Check(ri, k, dm.Compile(k, owner, items, isDefault), bits, grantOpt)
		return res.Allowed, res.Text
	}
	switch kind {
	case "table", "sequence", "column":
		name := object
		col := ""
		if kind == "column" {
			i := strings.LastIndex(object, ".")
			name, col = object[:i], object[i+1:]
		}
		schema, rel, _ := strings.Cut(name, ".")
		for _, r := range db.Relations {
			if r.Schema != schema || r.Name != rel {
				continue
			}
			k := Table
			if r.Kind == "S" {
				k = Sequence
			}
			a := dm.Compile(k, r.Owner, r.ACL, r.ACLDefault)
			if kind == "column" {
				for _, c := range r.Columns {
					if c.Name == col {
						res := dm.CheckColumn(ri, a, dm.Compile(ColumnKind, r.Owner, c.ACL, false), true, bits, grantOpt)
						return res.Allowed, res.Text
					}
				}
				res := dm.CheckColumn(ri, a, ACL{}, false, bits, grantOpt)
				return res.Allowed, res.Text
			}
			res := dm.Check(ri, k, a, bits, grantOpt)
			return res.Allowed, res.Text
		}
		t.Fatalf("relation %s not collected", name)
	case "function":
		schema, rest, _ := strings.Cut(object, ".")
		name, _, _ := strings.Cut(rest, "(")
		for _, f := range db.Routines {
			if f.Schema == schema && f.Name == name {
				return check(Function, f.Owner, f.ACL, f.ACLDefault)
			}
		}
		t.Fatalf("function %s not collected", object)
	case "schema":
		for _, sc := range db.Schemas {
			if sc.Name == object {
				return check(Schema, sc.Owner, sc.ACL, sc.ACLDefault)
			}
		}
	case "database":
		for _, d := range s.Databases {
			if d.Name == object {
				return check(Database, d.Owner, d.ACL, d.ACLDefault)
			}
		}
	case "language":
		for _, l := range db.Languages {
			if l.Name == object {
				return check(Language, l.Owner, l.ACL, l.ACLDefault)
			}
		}
	case "server":
		for _, fs := range db.ForeignServers {
			if fs.Name == object {
				return check(FDWServer, fs.Owner, fs.ACL, len(fs.ACL) == 0)
			}
		}
	case "parameter":
		for _, pa := range s.ParamACLs {
			if pa.Name == object {
				return check(Parameter, "", pa.ACL, false)
			}
		}
		return check(Parameter, "", nil, false) // no pg_parameter_acl row
	case "large object":
		for _, lo := range db.LargeObjects {
			if fmt.Sprint(lo.OID) == object {
				return check(LargeObj, lo.Owner, lo.ACL, lo.ACLDefault)
			}
		}
	}
	t.Fatalf("%s %s not found", kind, object)
	return false, ""
}
