package collect

import (
	"sort"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// The functions collection holds every user function in an untrusted
// language, marked Untrusted, and no more: not the thousands of trusted
// ones, not pgcrypto's C functions (extension members), not the
// built-ins. A plpython3u marked trusted still counts: its handler
// ignores the flag.
func TestUntrustedFunctionsCollected(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, "CREATE DATABASE uf2"); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "postgres",
		"CREATE EXTENSION pgcrypto", "CREATE EXTENSION plpython3u", "CREATE EXTENSION plperlu",
		"CREATE SCHEMA app",
		`DO $$BEGIN FOR i IN 1..500 LOOP EXECUTE format('CREATE FUNCTION app.f%s() RETURNS int LANGUAGE plpgsql AS ''BEGIN RETURN 1; END''', i); END LOOP; END$$`,
		"CREATE FUNCTION app.py() RETURNS int LANGUAGE plpython3u AS 'return 1'",
		"CREATE FUNCTION app.pl(a int) RETURNS int LANGUAGE plperlu AS 'return 1;'",
		"CREATE FUNCTION public.c(bytea, text) RETURNS bytea LANGUAGE c STRICT AS '$libdir/pgcrypto', 'pg_digest'",
		"CREATE FUNCTION app.sd() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
	); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "uf2",
		"CREATE EXTENSION plpython3u",
		"CREATE FUNCTION public.py2() RETURNS int LANGUAGE plpython3u AS 'return 1'",
		"UPDATE pg_language SET lanpltrusted = true WHERE lanname = 'plpython3u'",
	); err != nil {
		t.Fatal(err)
	}
	snap, err := Collect(ctx, quick(srv.ConnConfig("postgres")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"postgres": "app.pl(a integer) plperlu untrusted; app.py() plpython3u untrusted; app.sd() sql; public.c(bytea, text) c untrusted",
		"uf2":      "public.py2() plpython3u untrusted",
	}
	for _, d := range snap.Databases {
		w, ok := want[d.Name]
		if !ok {
			continue
		}
		var got []string
		for _, f := range d.Functions {
			if f.Schema == "pg_catalog" {
				continue // the granted built-ins (DangerousFunctions)
			}
			s := f.Signature() + " " + f.Language
			if f.Untrusted {
				s += " untrusted"
			}
			if f.Extension != "" {
				s += " of " + f.Extension
			}
			got = append(got, s)
		}
		sort.Strings(got)
		if g := strings.Join(got, "; "); g != w {
			t.Errorf("database %s: functions\n%s\nwant\n%s", d.Name, g, w)
		}
		delete(want, d.Name)
	}
	for db := range want {
		t.Errorf("database %s not collected", db)
	}
}
