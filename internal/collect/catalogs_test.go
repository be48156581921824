package collect

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// readRelations sorts on our side, reads column ACLs and tenant columns
// in one pass over pg_attribute without joins; the server's own answers
// (ORDER BY oid, attacl, array_agg by attnum) are the oracle.
func TestRelationsColumnsAndTenantsAgreeWithServer(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE DATABASE cat_oracle`, `CREATE ROLE cat_reader`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Exec(context.Background(), `DROP DATABASE IF EXISTS cat_oracle`, `DROP ROLE IF EXISTS cat_reader`)
	})
	stmts := []string{`CREATE SCHEMA "s p"`}
	for _, t := range []string{"a", "b", "c", "d", "e"} {
		stmts = append(stmts, `CREATE TABLE "s p".`+t+` (org_id int, x int, tenant_id int, "we""ird" text)`)
	}
	stmts = append(stmts,
		// Grants rewrite pg_class rows: the physical order is no longer OID order.
		`GRANT SELECT ON "s p".c, "s p".a TO cat_reader`,
		`GRANT UPDATE ("we""ird", x) ON "s p".b TO cat_reader`,
		`GRANT SELECT ON "s p".e TO PUBLIC`,
		`ALTER TABLE "s p".d DROP COLUMN org_id`,
		`CREATE VIEW "s p".v AS SELECT tenant_id FROM "s p".a`,
		`ALTER TABLE "s p".e ENABLE ROW LEVEL SECURITY`,
		`CREATE TABLE "s p".plain (y int)`,
		`ALTER TABLE "s p".plain ENABLE ROW LEVEL SECURITY`,
		`GRANT SELECT (x) ON "s p".a TO cat_reader`,
		`REVOKE SELECT (x) ON "s p".a FROM cat_reader`, // attacl '{}' or NULL: whatever the server keeps
	)
	if err := srv.ExecIn(ctx, "cat_oracle", stmts...); err != nil {
		t.Fatal(err)
	}
	// Chunks of two: the relations cross chunk boundaries.
	defer func(n int) { relationChunk = n }(relationChunk)
	relationChunk = 2
	snap, err := Collect(ctx, quick(srv.ConnConfig("postgres")))
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Errors) > 0 {
		t.Fatalf("collection errors: %v", snap.Errors)
	}
	var d *snapshot.Database
	for i := range snap.Databases {
		if snap.Databases[i].Name == "cat_oracle" {
			d = &snap.Databases[i]
		}
	}
	if d == nil || !d.Collected {
		t.Fatal("cat_oracle not collected")
	}
	conn, err := srv.Connect(ctx, "cat_oracle")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND `+userSchemas+` ORDER BY c.oid`)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for rows.Next() {
		var s, n string
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		want = append(want, s+"."+n)
	}
	rows.Close()
	for _, r := range d.Relations {
		got = append(got, r.Schema+"."+r.Name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("relations, in OID order:\n got %q\nwant %q", got, want)
	}

	// Column ACLs: what aclexplode-free attacl says, column by column.
	rows, err = conn.Query(ctx, `SELECT c.relname, a.attname, a.attacl::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND c.relnamespace = '"s p"'::regnamespace ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	want, got = nil, nil
	for rows.Next() {
		var rel, col, a string
		if err := rows.Scan(&rel, &col, &a); err != nil {
			t.Fatal(err)
		}
		items, err := acl.ParseArrayText(a)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, rel+"."+col+" "+aclString(items))
	}
	rows.Close()
	for _, r := range d.Relations {
		for _, c := range r.Columns {
			got = append(got, r.Name+"."+c.Name+" "+aclString(c.ACL))
		}
	}
	if !sameSet(got, want) || len(want) < 2 {
		t.Errorf("column ACLs:\n got %q\nwant %q", got, want)
	}

	// Tenant columns by attnum, tables only, dropped columns left out.
	rows, err = conn.Query(ctx, `SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE a.attname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
		AND c.relnamespace = '"s p"'::regnamespace GROUP BY 1`, tenantColumns)
	if err != nil {
		t.Fatal(err)
	}
	tenants := map[string][]string{}
	for rows.Next() {
		var rel string
		var cols []string
		if err := rows.Scan(&rel, &cols); err != nil {
			t.Fatal(err)
		}
		tenants[rel] = cols
	}
	rows.Close()
	seen := map[string]bool{}
	for _, r := range d.RLSTables {
		seen[r.Name] = true
		if !reflect.DeepEqual(r.TenantColumns, tenants[r.Name]) {
			t.Errorf("%s: tenant columns %q, the server says %q", r.Name, r.TenantColumns, tenants[r.Name])
		}
		if r.Name == "e" && !r.Enabled || r.Name == "plain" && (!r.Enabled || len(r.TenantColumns) > 0) {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	for rel := range tenants {
		if !seen[rel] {
			t.Errorf("table %s with tenant columns %q is not among the RLS candidates", rel, tenants[rel])
		}
	}
	if seen["v"] || !seen["plain"] || !reflect.DeepEqual(tenants["d"], []string{"tenant_id"}) {
		t.Errorf("RLS candidates %v; tenant columns of d %q", seen, tenants["d"])
	}
}

func aclString(items []acl.Item) string {
	var parts []string
	for _, it := range items {
		parts = append(parts, it.String())
	}
	return strings.Join(parts, ",")
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}
