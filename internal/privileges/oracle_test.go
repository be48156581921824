package privileges

import (
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func q(s string) string { return pgx.Identifier{s}.Sanitize() }

// TestAgreesWithHasPrivilege builds a random role graph and random grants
// on a real server, collects it like an audit does, and compares our
// answers with has_table_privilege & co on thousands of triples.
func TestAgreesWithHasPrivilege(t *testing.T) {
	for _, seed := range []int64{515, 2026} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { agreeWithServer(t, seed) })
	}
}

func agreeWithServer(t *testing.T, seed int64) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	rng := rand.New(rand.NewSource(seed))
	var stmts []string
	exec := func(s string, args ...any) { stmts = append(stmts, fmt.Sprintf(s, args...)) }

	const nRoles = 24
	roles := make([]string, nRoles)
	for i := range roles {
		roles[i] = fmt.Sprintf("r%02d", i)
		if i == 7 {
			roles[i] = `Weird "Role"`
		}
		attrs := "NOLOGIN"
		if rng.Intn(2) == 0 {
			attrs = "LOGIN"
		}
		if rng.Intn(4) == 0 {
			attrs += " NOINHERIT"
		}
		if i == 3 {
			attrs += " SUPERUSER"
		}
		exec("CREATE ROLE %s %s", q(roles[i]), attrs)
	}
	// Memberships only towards lower numbers: no cycles, chains up to ~6 deep.
	for i := 1; i < nRoles; i++ {
		for k := 0; k < 1+rng.Intn(2); k++ {
			j := rng.Intn(i)
			opt := ""
			if rng.Intn(5) == 0 {
				opt = " WITH ADMIN OPTION"
			}
			exec("GRANT %s TO %s%s", q(roles[j]), q(roles[i]), opt)
		}
	}
	exec("GRANT pg_read_all_data TO %s", q(roles[5]))
	exec("GRANT pg_write_all_data TO %s", q(roles[9]))
	exec("CREATE SCHEMA s1 AUTHORIZATION %s", q(roles[1]))
	exec("CREATE SCHEMA s2")
	exec("GRANT USAGE ON SCHEMA s2 TO %s", q(roles[2]))
	exec("GRANT CREATE ON SCHEMA s2 TO PUBLIC")
	privs := []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
	grantee := func() string {
		if rng.Intn(6) == 0 {
			return "PUBLIC"
		}
		return q(roles[rng.Intn(nRoles)])
	}
	var tables, seqs, funcs []string
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("s%d.t%02d", 1+i%2, i)
		tables = append(tables, name)
		exec("CREATE TABLE %s (id int, secret text, note text)", name)
		if rng.Intn(3) > 0 {
			exec("ALTER TABLE %s OWNER TO %s", name, q(roles[rng.Intn(nRoles)]))
		}
		for k := 0; k < rng.Intn(4); k++ {
			p := privs[rng.Intn(len(privs))]
			opt := ""
			if rng.Intn(4) == 0 {
				opt = " WITH GRANT OPTION"
			}
			g := grantee()
			if g == "PUBLIC" {
				opt = ""
			}
			exec("GRANT %s ON %s TO %s%s", p, name, g, opt)
		}
		if rng.Intn(6) == 0 {
			exec("REVOKE SELECT ON %s FROM CURRENT_USER", name) // the owner may give up its own rights (no-op unless owner)
		}
		if rng.Intn(3) == 0 {
			exec("GRANT SELECT (note), UPDATE (note) ON %s TO %s", name, grantee())
		}
	}
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("s1.q%02d", i)
		seqs = append(seqs, name)
		exec("CREATE SEQUENCE %s", name)
		if rng.Intn(2) == 0 {
			exec("GRANT USAGE ON SEQUENCE %s TO %s", name, grantee())
		}
		if rng.Intn(2) == 0 {
			exec("ALTER SEQUENCE %s OWNER TO %s", name, q(roles[rng.Intn(nRoles)]))
		}
	}
	for i := 0; i < 12; i++ {
		name := fmt.Sprintf("s2.f%02d(integer)", i)
		funcs = append(funcs, name)
		exec("CREATE FUNCTION %s RETURNS int LANGUAGE sql AS 'SELECT 1'", name)
		if rng.Intn(2) == 0 {
			exec("REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC", name)
			exec("GRANT EXECUTE ON FUNCTION %s TO %s", name, q(roles[rng.Intn(nRoles)]))
		}
		if rng.Intn(3) == 0 {
			exec("ALTER FUNCTION %s OWNER TO %s", name, q(roles[rng.Intn(nRoles)]))
		}
	}
	exec("CREATE DATABASE privdb")
	exec("REVOKE CONNECT, TEMPORARY ON DATABASE privdb FROM PUBLIC")
	exec("GRANT CONNECT ON DATABASE privdb TO %s", q(roles[4]))
	exec("GRANT CREATE ON DATABASE privdb TO %s WITH GRANT OPTION", q(roles[6]))
	for _, s := range stmts {
		if err := srv.Exec(ctx, s); err != nil {
			if strings.Contains(err.Error(), "CREATE DATABASE") {
				t.Fatal(err)
			}
			t.Fatalf("%s: %v", s, err)
		}
	}

	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	m := Build(snap)
	db := findDB(snap, "postgres")
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	type triple struct{ role, object, priv string }
	var cases []triple
	var kinds []string
	add := func(kind string, role, obj, priv string) {
		cases = append(cases, triple{role, obj, priv})
		kinds = append(kinds, kind)
	}
	allRoles := append(append([]string{}, roles...), "pg_read_all_data")
	for i := 0; i < 4000; i++ {
		role := allRoles[rng.Intn(len(allRoles))]
		switch rng.Intn(9) {
		case 0, 1, 2:
			p := privs[rng.Intn(len(privs))]
			if rng.Intn(5) == 0 {
				p += " WITH GRANT OPTION"
			}
			add("table", role, tables[rng.Intn(len(tables))], p)
		case 3:
			add("column", role, tables[rng.Intn(len(tables))]+".note", []string{"SELECT", "UPDATE", "INSERT"}[rng.Intn(3)])
		case 4:
			add("sequence", role, seqs[rng.Intn(len(seqs))], []string{"USAGE", "SELECT", "UPDATE"}[rng.Intn(3)])
		case 5:
			add("function", role, funcs[rng.Intn(len(funcs))], "EXECUTE")
		case 6:
			add("schema", role, []string{"s1", "s2", "public"}[rng.Intn(3)], []string{"USAGE", "CREATE"}[rng.Intn(2)])
		case 7:
			add("database", role, []string{"privdb", "postgres"}[rng.Intn(2)], []string{"CONNECT", "TEMPORARY", "CREATE", "CREATE WITH GRANT OPTION"}[rng.Intn(4)])
		case 8:
			add("role", role, allRoles[rng.Intn(len(allRoles))], []string{"MEMBER", "USAGE"}[rng.Intn(2)])
		}
	}
	var rs, os_, ps, ks []string
	for i, c := range cases {
		rs, os_, ps, ks = append(rs, c.role), append(os_, c.object), append(ps, c.priv), append(ks, kinds[i])
	}
	rows, err := conn.Query(ctx, `SELECT CASE k
		WHEN 'table' THEN has_table_privilege(r, o, p)
		WHEN 'column' THEN has_column_privilege(r, regexp_replace(o, '\.[^.]*$', ''), regexp_replace(o, '^.*\.', ''), p)
		WHEN 'sequence' THEN has_sequence_privilege(r, o, p)
		WHEN 'function' THEN has_function_privilege(r, o, p)
		WHEN 'schema' THEN has_schema_privilege(r, o, p)
		WHEN 'database' THEN has_database_privilege(r, o, p)
		WHEN 'role' THEN pg_has_role(r, o, p) END
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS x(r, o, p, k)`, rs, os_, ps, ks)
	if err != nil {
		t.Fatal(err)
	}
	var server []bool
	for rows.Next() {
		var b bool
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		server = append(server, b)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	disagree, allowed := 0, 0
	for i, c := range cases {
		if server[i] {
			allowed++
		}
		got, why := ours(t, m, snap, db, kinds[i], c.role, c.object, c.priv)
		if got != server[i] {
			disagree++
			if disagree <= 12 {
				t.Errorf("%s %s on %s %s: server %v, we %v (%s)", c.role, c.priv, kinds[i], c.object, server[i], got, why)
			}
		}
	}
	t.Logf("privileges: %d (role, object, privilege) triples compared with has_*_privilege/pg_has_role (%d allowed, %d refused), %d disagreements", len(cases), allowed, len(cases)-allowed, disagree)
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

// ours answers one triple from the model.
func ours(t *testing.T, m *Model, s *snapshot.Snapshot, db *snapshot.Database, kind, role, object, priv string) (bool, string) {
	ri, ok := m.RoleIndex(role)
	if !ok {
		t.Fatalf("role %s not in snapshot", role)
	}
	grantOpt := strings.HasSuffix(priv, " WITH GRANT OPTION")
	p := strings.TrimSuffix(priv, " WITH GRANT OPTION")
	if kind == "role" {
		ti, _ := m.RoleIndex(object)
		ok, _ := m.HasRole(ri, ti, p)
		return ok, ""
	}
	bits, err := ParsePrivilege(p)
	if err != nil {
		t.Fatal(err)
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
			a := m.Compile(k, r.Owner, r.ACL, r.ACLDefault)
			if kind == "column" {
				for _, c := range r.Columns {
					if c.Name == col {
						res := m.CheckColumn(ri, a, m.Compile(ColumnKind, r.Owner, c.ACL, false), true, bits, grantOpt)
						return res.Allowed, res.Text
					}
				}
				res := m.CheckColumn(ri, a, ACL{}, false, bits, grantOpt)
				return res.Allowed, res.Text
			}
			res := m.Check(ri, k, a, bits, grantOpt)
			return res.Allowed, res.Text
		}
		t.Fatalf("relation %s not collected", name)
	case "function":
		schema, rest, _ := strings.Cut(object, ".")
		name, _, _ := strings.Cut(rest, "(")
		for _, f := range db.Routines {
			if f.Schema == schema && f.Name == name {
				res := m.Check(ri, Function, m.Compile(Function, f.Owner, f.ACL, f.ACLDefault), bits, grantOpt)
				return res.Allowed, res.Text
			}
		}
		t.Fatalf("function %s not collected", object)
	case "schema":
		for _, sc := range db.Schemas {
			if sc.Name == object {
				res := m.Check(ri, Schema, m.Compile(Schema, sc.Owner, sc.ACL, sc.ACLDefault), bits, grantOpt)
				return res.Allowed, res.Text
			}
		}
	case "database":
		for _, d := range s.Databases {
			if d.Name == object {
				res := m.Check(ri, Database, m.Compile(Database, d.Owner, d.ACL, d.ACLDefault), bits, grantOpt)
				return res.Allowed, res.Text
			}
		}
	}
	t.Fatalf("%s %s not found", kind, object)
	return false, ""
}
