package privileges

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// TestPolicySQLHostileNames: the GRANT/REVOKE statements `access policy`
// prints for a database, schema, tables and role with hostile names run
// as printed (comment included) and do exactly what the policy says. The
// comment used to carry the raw database name, so a name with a line break
// ran whatever followed it; and the table name was cut at the first dot.
func TestPolicySQLHostileNames(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := context.Background()
	db, schema, role := "z\nDROP TABLE canary; --", "s.x\"; DROP TABLE canary; --", "current_user"
	q := quote.Ident
	if err := srv.Exec(ctx, "CREATE DATABASE "+q(db), "CREATE ROLE "+q(role)+" LOGIN", "CREATE ROLE other LOGIN"); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, db, "CREATE TABLE public.canary (i int)", "CREATE SCHEMA "+q(schema),
		"CREATE TABLE "+q(schema)+"."+q("t.1\n")+" (i int)", "CREATE TABLE "+q(schema)+"."+q("u'")+" (i int)",
		"GRANT SELECT ON "+q(schema)+"."+q("u'")+" TO other"); err != nil {
		t.Fatal(err)
	}
	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true, NoProbe: true})
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{Database: db, Schemas: []string{schema}, Grants: map[string]PolicyRole{role: {Tables: []string{"SELECT"}}}, Exclusive: true}
	_, sql := CheckPolicy(p, snap)
	if len(sql) == 0 {
		t.Fatal("no SQL for the policy")
	}
	c, err := srv.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, s := range sql {
		if strings.ContainsAny(s, "\n\r") {
			t.Errorf("statement on more than one line: %q", s)
		}
		if _, err := c.Exec(ctx, s, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	var canary bool
	if err := c.QueryRow(ctx, "SELECT to_regclass('public.canary') IS NOT NULL").Scan(&canary); err != nil || !canary {
		t.Fatalf("the canary is gone (%v)", err)
	}
	for _, tc := range []struct {
		role, table string
		want        bool
	}{{role, "t.1\n", true}, {role, "u'", true}, {"other", "u'", false}} {
		var got bool
		if err := c.QueryRow(ctx, "SELECT has_table_privilege($1, c.oid, 'SELECT') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $2 AND c.relname = $3", tc.role, schema, tc.table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s SELECT on %q: %v, want %v (statements %q)", tc.role, tc.table, got, tc.want, sql)
		}
	}
}
