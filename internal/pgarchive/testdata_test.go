package pgarchive

import (
	"os"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TestWriteTestdata rewrites the fuzz seeds from a real pg_dump 15 when
// PGARCHIVE_WRITE_TESTDATA=1.
func TestWriteTestdata(t *testing.T) {
	if os.Getenv("PGARCHIVE_WRITE_TESTDATA") != "1" {
		t.Skip("set PGARCHIVE_WRITE_TESTDATA=1 to rewrite testdata/")
	}
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	if err := srv.ExecIn(ctx, "postgres",
		`CREATE TABLE t (id int, s text)`,
		`INSERT INTO t VALUES (1, E'a\nb'), (2, NULL), (3, '\')`,
		`CREATE TABLE e ()`,
		`SELECT lo_from_bytea(0, 'lo')`); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{"testdata/pg15-z0.dump": {"-Z", "0"}, "testdata/pg15-gzip.dump": nil} {
		b, _, err := dump(t, srv, "postgres", args...)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
