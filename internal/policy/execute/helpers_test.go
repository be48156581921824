package execute

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
)

// clusterCatalogs and dbCatalogs are the catalogs a policy apply can
// change, each as canonical text (names, not OIDs, so a role dropped and
// created again compares equal when everything about it is the same).
var clusterCatalogs = []string{
	`SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
		rolconnlimit, md5(rolpassword), rolvaliduntil FROM pg_authid`,
	`SELECT roleid::regrole::text, member::regrole::text, grantor::regrole::text, to_jsonb(m) - 'oid' - 'roleid' - 'member' - 'grantor'
		FROM pg_auth_members m`,
	`SELECT datname, datdba::regrole::text, datacl::text, datconnlimit FROM pg_database`,
	`SELECT coalesce(d.datname, '-'), coalesce(r.rolname, '-'), s.setconfig::text FROM pg_db_role_setting s
		LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole`,
}

var dbCatalogs = []string{
	`SELECT nspname, nspowner::regrole::text, nspacl::text FROM pg_namespace`,
	`SELECT c.relnamespace::regnamespace::text, c.relname, c.relkind, c.relowner::regrole::text, c.relacl::text,
		c.relrowsecurity, c.relforcerowsecurity FROM pg_class c WHERE c.relkind IN ('r','p','v','m','f','S')`,
	`SELECT a.attrelid::regclass::text, a.attname, a.attacl::text FROM pg_attribute a WHERE a.attacl IS NOT NULL`,
	`SELECT p.oid::regprocedure::text, p.proowner::regrole::text, p.proacl::text FROM pg_proc p`,
	`SELECT defaclrole::regrole::text, CASE defaclnamespace WHEN 0 THEN '-' ELSE defaclnamespace::regnamespace::text END,
		defaclobjtype, defaclacl::text FROM pg_default_acl`,
	`SELECT polrelid::regclass::text, polname, polcmd, polpermissive, polroles::regrole[]::text,
		pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy`,
}

// catalogs dumps the catalogs of the cluster and of databases, sorted
// row by row.
func catalogs(t *testing.T, srv *localpg.Server, databases ...string) string {
	t.Helper()
	ctx := pgtest.Ctx(t)
	var b strings.Builder
	dump := func(db string, qs []string) {
		c := pgtest.Conn(t, srv, db)
		for _, q := range qs {
			var s *string
			if err := c.QueryRow(ctx, `SELECT string_agg(t::text, E'\n' ORDER BY t::text) FROM (`+q+`) t`).Scan(&s); err != nil {
				t.Fatalf("dumping in %s: %s: %v", db, q, err)
			}
			fmt.Fprintf(&b, "== %s: %s\n", db, strings.Fields(q)[1])
			if s != nil {
				b.WriteString(*s + "\n")
			}
		}
		c.Close(ctx)
	}
	dump("postgres", clusterCatalogs)
	for _, db := range databases {
		dump(db, dbCatalogs)
	}
	return b.String()
}

// sameCatalogs fails with the first differing lines.
func sameCatalogs(t *testing.T, what, before, after string) {
	t.Helper()
	if before == after {
		return
	}
	bl, al := strings.Split(before, "\n"), strings.Split(after, "\n")
	for i := 0; i < max(len(bl), len(al)); i++ {
		var b, a string
		if i < len(bl) {
			b = bl[i]
		}
		if i < len(al) {
			a = al[i]
		}
		if a != b {
			t.Fatalf("%s: catalogs differ at line %d:\nbefore: %s\nafter:  %s", what, i+1, b, a)
		}
	}
}

// sqlStep is a KindSQL step of a hand-built plan.
func sqlStep(id, db string, cluster bool, stmts ...string) plan.Step {
	return plan.Step{ID: id, Kind: plan.KindSQL, Summary: "step " + id, Database: db, Cluster: cluster, SQL: stmts}
}

func newPlan(steps ...plan.Step) *plan.Plan {
	return &plan.Plan{FormatVersion: plan.FormatVersion, Target: "test server", Steps: steps}
}

// exec runs statements as the admin in db, failing the test on error.
func exec(t *testing.T, srv *localpg.Server, db string, stmts ...string) {
	t.Helper()
	if err := srv.ExecIn(pgtest.Ctx(t), db, stmts...); err != nil {
		t.Fatal(err)
	}
}

// yes asks the server a boolean question in db.
func yes(t *testing.T, c *pgx.Conn, q string, args ...any) bool {
	t.Helper()
	var ok bool
	if err := c.QueryRow(context.Background(), q, args...).Scan(&ok); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return ok
}
