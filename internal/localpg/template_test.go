package localpg_test

import (
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// Clusters copied from one template (pgtest turns ReuseInitdb on) are
// separate clusters: what one is told, the other never sees.
// ORACLE: each server answers for its own catalog.
func TestTemplateCopiesAreIndependent(t *testing.T) {
	a := pgtest.Start(t, localpg.Options{})
	b := pgtest.Start(t, localpg.Options{})
	if a.DataDir == b.DataDir || a.Port == b.Port {
		t.Fatalf("two clusters share %s / port %d", a.DataDir, a.Port)
	}
	ctx := pgtest.Ctx(t)
	if err := a.Exec(ctx, "create role only_in_a"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pgtest.Conn(t, b, "postgres").QueryRow(ctx, "select count(*) from pg_roles where rolname = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a role created in one copy shows in the other")
	}
	// A cluster with initdb arguments of its own is a template of its own.
	c := pgtest.Start(t, localpg.Options{InitdbArgs: []string{"--data-checksums"}})
	var on, off string
	if err := pgtest.Conn(t, c, "postgres").QueryRow(ctx, "show data_checksums").Scan(&on); err != nil {
		t.Fatal(err)
	}
	if err := pgtest.Conn(t, a, "postgres").QueryRow(ctx, "show data_checksums").Scan(&off); err != nil {
		t.Fatal(err)
	}
	if on != "on" || off != "off" {
		t.Fatalf("data_checksums: %s with --data-checksums, %s without", on, off)
	}
}
