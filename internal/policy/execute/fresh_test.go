package execute

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/inspect"
)

var md5Column = regexp.MustCompile(`,[0-9a-f]{32},`)

// freshDDL is the objects both servers have: a policy file never creates
// tables, so the fresh server gets the schema the way a deploy would
// (pg_dump --schema-only --no-owner --no-privileges).
func freshDDL(t *testing.T, srv *localpg.Server) {
	t.Helper()
	exec(t, srv, "postgres", "CREATE DATABASE shop", "CREATE DATABASE crm")
	for _, db := range []string{"shop", "crm"} {
		exec(t, srv, db, `CREATE SCHEMA app`, `CREATE SCHEMA "odd ""name"""`,
			`CREATE TABLE app.orders (id serial PRIMARY KEY, tenant int, email text, note text)`,
			`CREATE TABLE app.items (id int, sku text)`, `CREATE VIEW app.v AS SELECT id FROM app.items`,
			`CREATE TABLE "odd ""name""".t (x int)`, `CREATE SEQUENCE app.counter`,
			`CREATE FUNCTION app.add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b'`,
			`CREATE PROCEDURE app.touch() LANGUAGE sql AS 'SELECT 1'`)
	}
}

// freshEstate is what only the first server has: roles, memberships,
// settings, owners, grants (with grant option, on columns), default
// privileges (database-wide and per schema) and RLS.
func freshEstate(t *testing.T, srv *localpg.Server) {
	t.Helper()
	exec(t, srv, "postgres",
		`CREATE ROLE owner_role`, `CREATE ROLE app LOGIN CONNECTION LIMIT 20`, `CREATE ROLE app_rw`,
		`CREATE ROLE report LOGIN NOINHERIT VALID UNTIL 'infinity'`, `CREATE ROLE "we""ird role" LOGIN`,
		`CREATE ROLE ops CREATEDB CREATEROLE`, `GRANT app_rw TO app`, `GRANT app_rw TO ops WITH ADMIN OPTION`,
		`GRANT pg_monitor TO report`, `ALTER ROLE app SET statement_timeout = '5s'`,
		`ALTER ROLE report IN DATABASE shop SET work_mem = '8MB'`,
		`ALTER DATABASE shop OWNER TO owner_role`, `REVOKE ALL ON DATABASE shop FROM PUBLIC`,
		`GRANT CONNECT ON DATABASE shop TO app, report`, `GRANT TEMPORARY ON DATABASE crm TO "we""ird role"`)
	for _, db := range []string{"shop", "crm"} {
		exec(t, srv, db,
			`ALTER SCHEMA app OWNER TO owner_role`, `ALTER TABLE app.orders OWNER TO owner_role`,
			`ALTER TABLE app.items OWNER TO owner_role`, `ALTER FUNCTION app.add(int, int) OWNER TO owner_role`,
			`REVOKE ALL ON SCHEMA public FROM PUBLIC`, `GRANT USAGE ON SCHEMA app TO app_rw, report`,
			`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO app_rw`,
			`GRANT SELECT ON app.orders TO report WITH GRANT OPTION`, `GRANT SELECT (id, sku) ON app.items TO "we""ird role"`,
			`GRANT UPDATE (note) ON app.orders TO report`, `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA app TO app_rw`,
			`REVOKE EXECUTE ON FUNCTION app.add(int, int) FROM PUBLIC`, `GRANT EXECUTE ON FUNCTION app.add(int, int) TO app_rw`,
			`GRANT ALL ON "odd ""name""".t TO report`,
			`ALTER DEFAULT PRIVILEGES FOR ROLE owner_role IN SCHEMA app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_rw`,
			`ALTER DEFAULT PRIVILEGES FOR ROLE owner_role IN SCHEMA app GRANT SELECT ON TABLES TO report`,
			`ALTER DEFAULT PRIVILEGES FOR ROLE owner_role REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC`,
			`ALTER TABLE app.orders ENABLE ROW LEVEL SECURITY`, `ALTER TABLE app.orders FORCE ROW LEVEL SECURITY`,
			`CREATE POLICY tenant ON app.orders TO app_rw USING (tenant = NULLIF(current_setting('app.tenant', true), '')::int)`,
			`CREATE POLICY reads ON app.orders AS RESTRICTIVE FOR SELECT TO report USING (tenant > 0)`)
	}
}

// An export applied to a fresh server with the same objects gives the
// same ACLs, owners, memberships, settings, default ACLs and RLS,
// compared catalog row by row; a second plan there is empty.
func TestExportAppliedToFreshServer(t *testing.T) {
	t.Parallel()
	for _, major := range []int{15, 17} { // 17: per-grant INHERIT/SET, MAINTAIN
		t.Run(fmt.Sprint("pg", major), func(t *testing.T) {
			t.Parallel()
			exportToFresh(t, major)
		})
	}
}

func exportToFresh(t *testing.T, major int) {
	ctx := pgtest.Ctx(t)
	a := pgtest.StartMajor(t, major, localpg.Options{})
	b := pgtest.StartMajor(t, major, localpg.Options{})
	freshDDL(t, a)
	freshDDL(t, b)
	freshEstate(t, a)
	if major >= 17 {
		exec(t, a, "postgres", `GRANT app_rw TO report WITH INHERIT FALSE, SET TRUE`, `GRANT ops TO app WITH INHERIT TRUE, SET FALSE`)
		exec(t, a, "shop", `GRANT MAINTAIN ON app.items TO ops`)
	}
	dbs := []string{"postgres", "shop", "crm"}

	la, err := inspect.Read(ctx, a.ConnConfig("postgres"), inspect.Options{Databases: dbs})
	if err != nil {
		t.Fatal(err)
	}
	text, err := inspect.Marshal(inspect.Export(la, inspect.ExportOptions{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	desired, err := policy.Parse("export.yaml", text)
	if err != nil {
		t.Fatalf("the export does not load: %v", err)
	}

	cfg := b.ConnConfig("postgres")
	diff := func(ctx context.Context) (*policy.Live, int) {
		lb, err := inspect.Read(ctx, cfg, inspect.Options{Databases: dbs})
		if err != nil {
			t.Fatal(err)
		}
		p, notes, err := policy.Diff(desired, lb, policy.Options{ConnectDatabase: "postgres"})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range notes {
			t.Logf("note: %s %s: %s", n.Level, n.Object, n.Text)
		}
		if !p.Empty() {
			r, err := Apply(ctx, cfg, p, Before(desired, lb), Options{JournalRoot: t.TempDir()})
			if err != nil {
				t.Fatalf("apply on the fresh server: %v (%+v)", err, r)
			}
		}
		return lb, len(p.Steps)
	}
	if _, steps := diff(ctx); steps == 0 {
		t.Fatal("the export plans nothing on a fresh server")
	}
	if _, steps := diff(ctx); steps != 0 {
		t.Fatalf("a second plan on the fresh server has %d step(s)", steps)
	}
	// Passwords are never exported: the test servers' own superuser
	// passwords differ, and no other role has one.
	noPasswords := func(s string) string { return md5Column.ReplaceAllString(s, ",password,") }
	sameCatalogs(t, "export applied to a fresh server", noPasswords(catalogSets(t, a, "shop", "crm")), noPasswords(catalogSets(t, b, "shop", "crm")))
}
