package backup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgclient"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/sealedfile"
)

func copySet(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(dir))
	if out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst
}

// TestRestore shares one source server (a role owning a table, a large
// object) and one target server across its cases.
// ORACLE: the real pg_restore and psql load the sets; the servers'
// count(*) and catalogs are the truth compared with the manifest.
func TestRestore(t *testing.T) {
	e := newEnv(t)
	ctx := pgtest.Ctx(t)
	setupApp(t, e, "app")
	e.exec(t, "postgres", "create role app_owner nologin")
	e.exec(t, "app", "create table public.owned (x int)", "alter table public.owned owner to app_owner",
		"insert into public.owned select generate_series(1, 77)")
	ids, err := agekeys.ParseIdentitiesFile(e.identity)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Backup(ctx, e.options("app", func(o *Options) { o.Globals = true }))
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	set := res.Dir

	t.Run("RestoreTest", func(t *testing.T) {
		v, err := Verify(ctx, copySet(t, set), VerifyOptions{Identities: ids, RestoreTest: true})
		if err != nil || !v.OK {
			t.Fatalf("Verify: %v %+v", err, v)
		}
		rt := v.RestoreTest
		if rt == nil || rt.Tables != len(res.Manifest.Databases[0].Tables) || rt.Tables == 0 || len(rt.Mismatches) > 0 || !strings.HasPrefix(rt.ServerVersion, "15") {
			t.Fatalf("restore test: %+v", rt)
		}
	})

	t.Run("Parallel", func(t *testing.T) {
		defer func(v int64) { splitMin = v }(splitMin)
		splitMin = 1 << 10
		pres, err := Backup(ctx, e.options("app", func(o *Options) { o.Jobs = 2; o.Out = t.TempDir() }))
		if err != nil {
			t.Fatalf("Backup: %v", err)
		}
		if n := len(pres.Manifest.Databases[0].Files); n < 2 {
			t.Fatalf("parallel set has %d files", n)
		}
		v, err := Verify(ctx, pres.Dir, VerifyOptions{Identities: ids, RestoreTest: true})
		if err != nil || !v.OK || v.RestoreTest.Tables == 0 || len(v.RestoreTest.Mismatches) > 0 {
			t.Fatalf("Verify: %v %+v", err, v.RestoreTest)
		}
	})

	t.Run("All", func(t *testing.T) {
		// An --all set holds postgres, which the throwaway server has too.
		ares, err := Backup(ctx, e.options("postgres", func(o *Options) { o.All = true; o.Out = t.TempDir() }))
		if err != nil {
			t.Fatalf("Backup --all: %v", err)
		}
		v, err := Verify(ctx, ares.Dir, VerifyOptions{Identities: ids, RestoreTest: true})
		if err != nil || !v.OK || len(v.RestoreTest.Mismatches) > 0 {
			t.Fatalf("Verify --restore-test of an --all set: %v %+v", err, v)
		}
	})

	t.Run("Mismatch", func(t *testing.T) {
		// A bad dump: the manifest (re-signed with the set's key) says a
		// row more than the archive restores.
		dir := copySet(t, set)
		m, err := backupset.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		key, err := sealedfile.ReadKey(filepath.Join(dir, m.Databases[0].Files[0].Name), ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, tb := range m.Databases[0].Tables {
			if tb.Name == "users" {
				m.Databases[0].Tables[i].Rows++
			}
		}
		m.Sign(key)
		if err := backupset.WriteManifest(dir, m); err != nil {
			t.Fatal(err)
		}
		// Verify's archive check catches it before any restore...
		if v, err := Verify(ctx, dir, VerifyOptions{Identities: ids, RestoreTest: true}); err == nil || v.OK {
			t.Fatalf("edited counts verified: %+v", v)
		}
		// ...and the restore test on its own reports the restored count.
		rt, err := restoreTest(ctx, dir, m, ids, "")
		if err == nil || rt == nil || len(rt.Mismatches) != 1 || rt.Mismatches[0] != "public.users: dump 1235 rows, restored 1234" {
			t.Fatalf("restore test: %v %+v", err, rt)
		}
	})

	dst := pgtest.Start(t, localpg.Options{})
	target := pgclient.Target{
		Flags:  conninfo.Flags{DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=%s sslmode=prefer", dst.Port, dst.AdminUser)},
		Config: dst.ConnConfig("postgres"),
	}
	hasApp := func() bool {
		var n int
		if err := pgtest.Conn(t, dst, "postgres").QueryRow(ctx, "select count(*) from pg_database where datname = 'app'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	t.Run("Tampered", func(t *testing.T) {
		dir := copySet(t, set)
		f := filepath.Join(dir, res.Manifest.Databases[0].Files[0].Name)
		b, _ := os.ReadFile(f)
		b[len(b)/2] ^= 1
		os.WriteFile(f, b, 0o600)
		err := Restore(ctx, dir, RestoreOptions{Identities: ids, Target: target, Globals: true, Create: true})
		var fault *Fault
		if !errors.As(err, &fault) {
			t.Fatalf("tampered set: %v", err)
		}
		if hasApp() {
			t.Fatal("a tampered set reached the target")
		}
	})

	t.Run("HoldBack", func(t *testing.T) {
		// A file that changes between the passes: the hash is wrong only
		// at the end. The dump is several buffers long, so pg_restore has
		// been fed most of it; it is killed before its input ends and its
		// single transaction never commits.
		bigDatabase(t, e, "bigsrc", 3)
		bres, err := Backup(ctx, e.options("bigsrc", func(o *Options) { o.Out = t.TempDir() }))
		if err != nil {
			t.Fatalf("Backup: %v", err)
		}
		f := bres.Manifest.Databases[0].Files[0]
		if f.PlainBytes < 2<<20 {
			t.Fatalf("dump is only %d bytes: one buffer", f.PlainBytes)
		}
		if err := dst.Exec(ctx, "create database held"); err != nil {
			t.Fatal(err)
		}
		tool, err := pgclient.Find("pg_restore", 15)
		if err != nil {
			t.Fatal(err)
		}
		cmd, closer, err := target.Command(ctx, tool, "held", "--exit-on-error", "--single-transaction")
		if err != nil {
			t.Fatal(err)
		}
		defer closer()
		err = feed(filepath.Join(bres.Dir, f.Name), ids, strings.Repeat("0", 64), cmd)
		if err == nil || !strings.Contains(err.Error(), "the manifest says") {
			t.Fatalf("feed: %v", err)
		}
		var n int
		if err := pgtest.Conn(t, dst, "held").QueryRow(ctx, "select count(*) from pg_tables where tablename = 'blob'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("restored tables after a hash mismatch: %d %v", n, err)
		}
		// The same file with its true hash does restore (the test above
		// is not passing because the restore could never work).
		cmd, closer2, err := target.Command(ctx, tool, "held", "--exit-on-error", "--single-transaction")
		if err != nil {
			t.Fatal(err)
		}
		defer closer2()
		if err := feed(filepath.Join(bres.Dir, f.Name), ids, f.SHA256, cmd); err != nil {
			t.Fatal(err)
		}
		if got := count(t, pgtest.Conn(t, dst, "held"), "public", "blob"); got != bres.Manifest.Databases[0].Tables[0].Rows {
			t.Fatalf("held: %d rows", got)
		}
	})

	t.Run("Restore", func(t *testing.T) {
		if err := Restore(ctx, set, RestoreOptions{Identities: ids, Target: target, Globals: true, Create: true}); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		c := pgtest.Conn(t, dst, "app")
		for _, tb := range res.Manifest.Databases[0].Tables {
			if got := count(t, c, tb.Schema, tb.Name); got != tb.Rows {
				t.Errorf("%s.%s: %d rows, the manifest says %d", tb.Schema, tb.Name, got, tb.Rows)
			}
		}
		var owner string
		var blobs int
		if err := c.QueryRow(ctx, "select tableowner from pg_tables where tablename = 'owned'").Scan(&owner); err != nil || owner != "app_owner" {
			t.Errorf("owner %q %v", owner, err)
		}
		if err := c.QueryRow(ctx, "select count(*) from pg_largeobject_metadata").Scan(&blobs); err != nil || blobs != 1 {
			t.Errorf("large objects %d %v", blobs, err)
		}
		// Again over the restored database: --clean --if-exists replaces
		// it. Without --create it goes into the database -d names.
		intoApp := target
		intoApp.Flags.DSN += " dbname=app"
		if err := Restore(ctx, set, RestoreOptions{Identities: ids, Target: intoApp, Clean: true}); err != nil {
			t.Fatalf("Restore --clean: %v", err)
		}
		c = pgtest.Conn(t, dst, "app")
		for _, tb := range res.Manifest.Databases[0].Tables {
			if got := count(t, c, tb.Schema, tb.Name); got != tb.Rows {
				t.Errorf("after --clean %s.%s: %d rows, the manifest says %d", tb.Schema, tb.Name, got, tb.Rows)
			}
		}
	})
}
