package inspect

import (
	"slices"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/policy"
)

// TestExportManagesEmptyKinds: an export names every kind of every
// schema it read, also where the schema has none of the kind, so an
// authoritative plan of the export revokes what a table or function
// created later hands out (a table with SELECT for PUBLIC, a function
// with the built-in EXECUTE for PUBLIC, a column grant on a table that
// had none or on one that had others), and the server says it is gone.
func TestExportManagesEmptyKinds(t *testing.T) {
	t.Run("pg15", func(t *testing.T) { exportManagesEmptyKinds(t, pgtest.Shared(t)) })
	// The trial that found column grants unseen ran 17: once there too,
	// when it is installed.
	if slices.ContainsFunc(localpg.Installed(), func(in localpg.Install) bool { return in.Major == 17 }) {
		t.Run("pg17", func(t *testing.T) { exportManagesEmptyKinds(t, pgtest.StartMajor(t, 17, localpg.Options{})) })
	}
}

func exportManagesEmptyKinds(t *testing.T, srv *localpg.Server) {
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE exp2_owner`, `CREATE DATABASE exp2db OWNER exp2_owner`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Exec(ctx, `DROP DATABASE IF EXISTS exp2db`, `DROP ROLE IF EXISTS exp2_owner`) })
	if err := srv.ExecIn(ctx, "exp2db", `CREATE SCHEMA empty AUTHORIZATION exp2_owner`, `REVOKE ALL ON SCHEMA public FROM PUBLIC`,
		// Columns: one table with a column grant (an exception to "*"),
		// one without (covered by "*"'s columns: {}).
		`CREATE TABLE public.invoice (id int, customer text)`, `GRANT SELECT (id) ON public.invoice TO PUBLIC`,
		`CREATE TABLE public.plain (id int, customer text)`); err != nil {
		t.Fatal(err)
	}
	read := func() *policy.Live {
		t.Helper()
		live, err := Read(ctx, srv.ConnConfig("postgres"), Options{Databases: []string{"exp2db"}})
		if err != nil {
			t.Fatal(err)
		}
		return live
	}
	diff := func(f *policy.File) *plan.Plan {
		t.Helper()
		p, _, err := policy.Diff(f, read(), policy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	data, err := Marshal(Export(read(), ExportOptions{Databases: []string{"exp2db"}}), []string{"scope"})
	if err != nil {
		t.Fatal(err)
	}
	file, err := policy.Parse("export.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"      empty:\n        owner: exp2_owner\n        grants: {}\n        tables:\n          \"*\":\n            grants: {}\n            columns: {}\n        sequences:\n"} {
		if !strings.Contains(string(data), want) {
			t.Fatalf("export lacks %q:\n%s", want, data)
		}
	}
	if p := diff(file); len(sqlOf(p)) != 0 {
		t.Fatalf("the export plans changes on the state it was read from: %q", sqlOf(p))
	}

	if err := srv.ExecIn(ctx, "exp2db",
		`CREATE TABLE empty.later (id int)`, `GRANT SELECT ON empty.later TO PUBLIC`,
		`CREATE SEQUENCE empty.later_seq`, `GRANT USAGE ON SEQUENCE empty.later_seq TO PUBLIC`,
		`CREATE FUNCTION empty.later_f() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		`CREATE TABLE public.later2 (id int)`, `GRANT INSERT ON public.later2 TO PUBLIC`,
		`GRANT UPDATE (customer) ON public.invoice TO PUBLIC`, `GRANT SELECT (id, customer), UPDATE (customer) ON public.plain TO PUBLIC`); err != nil {
		t.Fatal(err)
	}
	p := diff(file)
	sql := sqlOf(p)
	t.Logf("plan: %q", sql)
	for _, want := range []string{"empty.later ", "empty.later_seq ", "empty.later_f()", "public.later2 ",
		"REVOKE UPDATE (customer) ON TABLE public.invoice FROM PUBLIC", // one statement per table for its columns
		"REVOKE SELECT (customer, id), UPDATE (customer) ON TABLE public.plain FROM PUBLIC"} {
		if !strings.Contains(strings.Join(sql, "\n")+" ", want) {
			t.Errorf("the plan does not touch %s: %q", want, sql)
		}
	}
	conn := pgtest.Conn(t, srv, "exp2db")
	for _, s := range p.Steps {
		if s.Database != "exp2db" || s.Autocommit {
			t.Fatalf("step %s runs in %q (autocommit %v): want one transaction in exp2db", s.ID, s.Database, s.Autocommit)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range s.SQL {
			if _, err := tx.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`has_table_privilege('public', 'empty.later', 'SELECT')`,
		`has_sequence_privilege('public', 'empty.later_seq', 'USAGE')`,
		`has_function_privilege('public', 'empty.later_f()', 'EXECUTE')`,
		`has_table_privilege('public', 'public.later2', 'INSERT')`,
		`has_column_privilege('public', 'public.invoice', 'customer', 'UPDATE')`,
		`has_column_privilege('public', 'public.plain', 'id', 'SELECT')`,
		`has_column_privilege('public', 'public.plain', 'customer', 'UPDATE')`,
		`NOT has_column_privilege('public', 'public.invoice', 'id', 'SELECT')`, // the exported one is kept
	} {
		var held bool
		if err := conn.QueryRow(ctx, "SELECT "+q).Scan(&held); err != nil {
			t.Fatal(err)
		}
		if held {
			t.Errorf("after the plan, %s is still true", q)
		}
	}
	if p := diff(file); len(sqlOf(p)) != 0 {
		t.Errorf("after the plan ran, it plans again: %q", sqlOf(p))
	}
}

func sqlOf(p *plan.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.SQL...)
	}
	return out
}
