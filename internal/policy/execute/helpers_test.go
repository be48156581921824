package execute

import (
	"context"
	"fmt"
	"regexp"
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
	`SELECT datname, datdba::regrole::text, ACL(datacl|'d'|datdba), datconnlimit FROM pg_database`,
	`SELECT coalesce(d.datname, '-'), coalesce(r.rolname, '-'), s.setconfig::text FROM pg_db_role_setting s
		LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole`,
}

var dbCatalogs = []string{
	`SELECT nspname, nspowner::regrole::text, ACL(nspacl|'n'|nspowner) FROM pg_namespace`,
	`SELECT c.relnamespace::regnamespace::text, c.relname, c.relkind, c.relowner::regrole::text, ACL(c.relacl|CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END|c.relowner),
		c.relrowsecurity, c.relforcerowsecurity FROM pg_class c WHERE c.relkind IN ('r','p','v','m','f','S')`,
	`SELECT a.attrelid::regclass::text, a.attname, ACL(a.attacl) FROM pg_attribute a WHERE a.attacl IS NOT NULL`,
	`SELECT p.oid::regprocedure::text, p.proowner::regrole::text, ACL(p.proacl|'f'|p.proowner) FROM pg_proc p`,
	`SELECT defaclrole::regrole::text, CASE defaclnamespace WHEN 0 THEN '-' ELSE defaclnamespace::regnamespace::text END,
		defaclobjtype, ACL(defaclacl) FROM pg_default_acl`,
	`SELECT polrelid::regclass::text, polname, polcmd, polpermissive, polroles::regrole[]::text,
		pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy`,
}

// catalogs dumps the catalogs of the cluster and of databases, sorted
// row by row, ACLs as the server stores them.
func catalogs(t *testing.T, srv *localpg.Server, databases ...string) string {
	t.Helper()
	return dumpCatalogs(t, srv, false, databases)
}

// catalogSets is catalogs with each ACL as the set of privileges it
// grants: items sorted (their order is only the order they were granted
// in) and NULL as the built-in default it stands for (a GRANT and a
// REVOKE leave the owner's default spelled out; nothing but a catalog
// update sets it back to NULL). An empty column ACL is no column ACL.
func catalogSets(t *testing.T, srv *localpg.Server, databases ...string) string {
	t.Helper()
	return dumpCatalogs(t, srv, true, databases)
}

// ACL(column[|kind|owner]) in the queries above: an ACL column, with
// the kind and owner acldefault needs where NULL means the default.
var aclColumn = regexp.MustCompile(`ACL\(([a-z.]+)(?:\|([^|]+)\|([a-z.]+))?\)`)

func dumpCatalogs(t *testing.T, srv *localpg.Server, sorted bool, databases []string) string {
	t.Helper()
	acl := func(q string) string {
		if !sorted {
			return aclColumn.ReplaceAllString(q, `$1::text`)
		}
		q = strings.Replace(q, "a.attacl IS NOT NULL", "a.attacl <> '{}'", 1)
		return aclColumn.ReplaceAllStringFunc(q, func(m string) string {
			g := aclColumn.FindStringSubmatch(m)
			col := g[1]
			if g[2] != "" {
				col = fmt.Sprintf(`coalesce(%s, acldefault((%s)::"char", %s))`, g[1], g[2], g[3])
			}
			return fmt.Sprintf(`CASE WHEN %[1]s IS NULL THEN NULL ELSE coalesce((SELECT array_agg(i::text ORDER BY i::text) FROM unnest(%[1]s) i), '{}') END::text`, col)
		})
	}
	ctx := pgtest.Ctx(t)
	var b strings.Builder
	dump := func(db string, qs []string) {
		c := pgtest.Conn(t, srv, db)
		for _, q := range qs {
			var s *string
			if err := c.QueryRow(ctx, `SELECT string_agg(t::text, E'\n' ORDER BY t::text) FROM (`+acl(q)+`) t`).Scan(&s); err != nil {
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
