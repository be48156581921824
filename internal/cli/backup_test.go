package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TestBackupUsage: mistakes are exit 2 with a clear message and the
// --help hint, before any file is read or any connection is made.
func TestBackupUsage(t *testing.T) {
	dir := t.TempDir()
	noServer := []string{"-h", filepath.Join(dir, "no-socket-here"), "-p", "1"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no recipients", []string{"backup", "--out", dir}, "--recipients FILE is needed"},
		{"no out", []string{"backup", "--recipients", "r"}, "--out DIR is needed"},
		{"all and database", []string{"backup", "--recipients", "r", "--out", dir, "--all", "--database", "x"}, "contradict"},
		{"passwords without globals", []string{"backup", "--recipients", "r", "--out", dir, "--with-passwords"}, "give --globals or --all"},
		{"jobs", []string{"backup", "--recipients", "r", "--out", dir, "--jobs", "0"}, "--jobs 0"},
		{"level", []string{"backup", "--recipients", "r", "--out", dir, "--level", "9"}, "--level 9"},
		{"name", []string{"backup", "--recipients", "r", "--out", dir, "--name", "../x"}, "--name"},
		{"format", []string{"backup", "--recipients", "r", "--out", dir, "--format", "yaml"}, `unknown --format "yaml"`},
		{"stray argument", []string{"backup", "vrify"}, "unexpected argument"},
		{"prune no rule", []string{"backup", "prune", dir}, "give --keep-days N, --keep-last N or both"},
		{"prune no dir", []string{"backup", "prune", "--keep-last", "1"}, "needs the backup root DIR"},
		{"verify no identity", []string{"backup", "verify", dir}, "--identity FILE is needed"},
		{"rekey no recipients", []string{"backup", "rekey", dir, "--identity", "i"}, "--recipients FILE is needed"},
		{"restore no set", []string{"restore"}, "needs one backup set directory"},
		{"restore no identity", []string{"restore", dir}, "--identity FILE is needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args[0] == "restore" || len(args) > 1 && !strings.HasPrefix(args[1], "prune") && args[1] != "verify" && args[1] != "rekey" {
				args = append(args, noServer...)
			}
			code, out, errs := runCLI(t, args...)
			if code != ExitError || out != "" || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "--help") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errs, tc.want)
			}
		})
	}
}

// backupKey makes an age identity with age-keygen and its recipients file.
func backupKey(t *testing.T, dir, name string) (identity, recipients string) {
	t.Helper()
	identity = filepath.Join(dir, name+".key")
	if out, err := exec.Command("age-keygen", "-o", identity).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v: %s", err, out)
	}
	if err := os.Chmod(identity, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := exec.Command("age-keygen", "-y", identity).Output()
	if err != nil {
		t.Fatalf("age-keygen -y: %v", err)
	}
	recipients = filepath.Join(dir, name+".pub")
	if err := os.WriteFile(recipients, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	return identity, recipients
}

// copySet copies the set directory src into a new backup root, so that a
// fault can be made in it without touching the others.
func copySet(t *testing.T, src string) (root, set string) {
	t.Helper()
	root = t.TempDir()
	set = filepath.Join(root, filepath.Base(src))
	if out, err := exec.Command("cp", "-a", src, set).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return root, set
}

// listOf is 'backup list ROOT --format json'.
func listOf(t *testing.T, root string) []setLine {
	t.Helper()
	code, out, errs := runCLI(t, "backup", "list", root, "--format", "json")
	if code != ExitOK {
		t.Fatalf("backup list: exit %d: %s", code, errs)
	}
	var lines []setLine
	if err := json.Unmarshal([]byte(out), &lines); err != nil {
		t.Fatalf("backup list output is not JSON: %v\n%s", err, out)
	}
	return lines
}

// TestBackupEndToEnd drives backup, list, verify, prune and rekey through
// the CLI on one server, with the real pg_dump 15 and the age CLI's keys,
// and checks the connection's password shows in nothing printed.
func TestBackupEndToEnd(t *testing.T) {
	for _, p := range []string{"age", "age-keygen", "zstd", "cp"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed: %v", p, err)
		}
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/pg_dump"); err != nil {
		t.Skipf("no PostgreSQL 15 client programs: %v", err)
	}
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	const secret = "Distinctive-Backup-Pw-7731xq"
	if err := srv.Exec(ctx, "CREATE ROLE dumper LOGIN SUPERUSER PASSWORD '"+secret+"'", "CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "app", "CREATE TABLE t (id int PRIMARY KEY, v text)",
		"INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
		"CREATE TABLE empty (x int)"); err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	id1, rec1 := backupKey(t, keys, "one")
	id2, rec2 := backupKey(t, keys, "two")
	root := filepath.Join(t.TempDir(), "backups")
	// The password reaches pgaegis in the connection string only; pg_dump
	// gets it through pgclient's in-memory pgpass.
	conn := []string{"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=dumper dbname=app sslmode=prefer password=%s", srv.Port, secret)}

	var printed []string
	run := func(args ...string) (int, string, string) {
		t.Helper()
		code, out, errs := runCLI(t, args...)
		printed = append(printed, out, errs)
		return code, out, errs
	}
	defer func() {
		for _, s := range printed {
			if strings.Contains(s, secret) {
				t.Errorf("the connection's password was printed: %q", s)
			}
		}
	}()

	code, out, errs := run(append([]string{"backup", "--recipients", rec1, "--out", root, "--name", "first", "--format", "json"}, conn...)...)
	if code != ExitOK {
		t.Fatalf("backup: exit %d: %s%s", code, out, errs)
	}
	var res struct {
		Dir string `json:"dir"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Dir == "" {
		t.Fatalf("backup output: %v\n%s", err, out)
	}
	set := res.Dir
	// ORACLE: the age CLI, zstd CLI and pg_restore read the whole dump.
	dump := filepath.Join(set, backupset.DumpFileName("app", 0))
	sh := exec.Command("bash", "-c", "set -o pipefail; age -d -i \"$1\" \"$2\" | zstd -dc | /usr/lib/postgresql/15/bin/pg_restore -f -", "x", id1, dump)
	if sql, err := sh.Output(); err != nil || !strings.Contains(string(sql), "COPY public.t (id, v) FROM stdin;") {
		t.Fatalf("age -d | zstd -d | pg_restore -f -: %v\n%.2000s", err, sql)
	}

	if b, err := os.ReadFile(filepath.Join(set, backupset.ManifestName)); err != nil || strings.Contains(string(b), secret) {
		t.Fatalf("manifest.json: %v, or it holds the password", err)
	}
	lines := listOf(t, root)
	if len(lines) != 1 || lines[0].Dir != set || lines[0].Verified || lines[0].Verification != "never" {
		t.Fatalf("list after backup: %+v", lines)
	}

	// Fault copies are made before the original is verified.
	type fault struct {
		name, want string
		identity   string
		spoil      func(t *testing.T, set string)
	}
	spoilDump := func(f func(b []byte) []byte) func(*testing.T, string) {
		return func(t *testing.T, set string) {
			p := filepath.Join(set, backupset.DumpFileName("app", 0))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f(b), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	faults := []fault{
		{"truncated file", "app.dump.zst.age is ", id1, spoilDump(func(b []byte) []byte { return b[:len(b)/2] })},
		{"flipped byte", "app.dump.zst.age: sealedfile", id1, spoilDump(func(b []byte) []byte { b[len(b)-100] ^= 0x01; return b })},
		{"wrong identity", "none of the given identities opens app.dump.zst.age", id2, func(*testing.T, string) {}},
		{"manifest edited", "manifest.json was changed after the backup (MAC mismatch)", id1, func(t *testing.T, set string) {
			p := filepath.Join(set, backupset.ManifestName)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			edited := strings.Replace(string(b), `"rows": 5000`, `"rows": 4999`, 1)
			if edited == string(b) {
				t.Fatalf("no \"rows\": 5000 in the manifest:\n%s", b)
			}
			if err := os.WriteFile(p, []byte(edited), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	roots := map[string][2]string{}
	for _, f := range faults {
		r, s := copySet(t, set)
		roots[f.name] = [2]string{r, s}
	}
	_, rekeySet := copySet(t, set)

	code, out, errs = run("backup", "verify", set, "--identity", id1)
	if code != ExitOK || !strings.Contains(out, "verified "+set) {
		t.Fatalf("verify: exit %d: %s%s", code, out, errs)
	}
	if lines := listOf(t, root); len(lines) != 1 || !lines[0].Verified || lines[0].Verification != "ok" {
		t.Fatalf("list after verify: %+v", lines)
	}

	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			r, s := roots[f.name][0], roots[f.name][1]
			f.spoil(t, s)
			code, out, errs := run("backup", "verify", s, "--identity", f.identity)
			if code != ExitError || !strings.Contains(errs, "NOT verified") || !strings.Contains(out+errs, f.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2, NOT verified and %q", code, out, errs, f.want)
			}
			if lines := listOf(t, r); len(lines) != 1 || lines[0].Verified {
				t.Fatalf("list shows a spoilt set verified: %+v", lines)
			}
		})
	}

	t.Run("prune dry run", func(t *testing.T) {
		// This time the password comes from PGPASSWORD.
		t.Setenv("PGPASSWORD", secret)
		code, out, errs := run("backup", "--recipients", rec1, "--out", root, "--name", "second",
			"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=dumper dbname=app sslmode=prefer", srv.Port))
		if code != ExitOK {
			t.Fatalf("second backup: exit %d: %s%s", code, out, errs)
		}
		lines := listOf(t, root)
		if len(lines) != 2 {
			t.Fatalf("list: %+v", lines)
		}
		var second string
		for _, l := range lines {
			if l.Dir != set {
				second = l.Dir
			}
		}
		if code, out, errs := run("backup", "verify", second, "--identity", id1); code != ExitOK {
			t.Fatalf("verify second: exit %d: %s%s", code, out, errs)
		}
		code, out, errs = run("backup", "prune", root, "--keep-last", "1", "--dry-run")
		if code != ExitOK || strings.Count(out, "\nwould delete ")+strings.Count("\n"+out, "\nkept ") != 2 || strings.Count(out, "would delete") != 1 {
			t.Fatalf("prune --dry-run: exit %d: %s%s", code, out, errs)
		}
		for _, d := range []string{set, second} {
			if _, err := os.Stat(filepath.Join(d, backupset.ManifestName)); err != nil {
				t.Fatalf("--dry-run deleted %s: %v", d, err)
			}
		}
	})

	t.Run("restore", func(t *testing.T) {
		// Restore writes each database under its own name: app is dropped
		// and made again with --create.
		if err := srv.Exec(ctx, "DROP DATABASE app"); err != nil {
			t.Fatal(err)
		}
		into := []string{"--create", "-d", fmt.Sprintf("host=127.0.0.1 port=%d user=dumper dbname=postgres sslmode=prefer password=%s", srv.Port, secret)}
		appExists := func() bool {
			c, err := srv.Connect(ctx, "postgres")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			var n int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = 'app'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		}
		// A spoilt set is refused before pg_restore runs: nothing lands.
		code, out, errs := run(append([]string{"restore", roots["flipped byte"][1], "--identity", id1}, into...)...)
		if code != ExitError || !strings.Contains(errs, "not restored") || !strings.Contains(errs, "app.dump.zst.age") {
			t.Fatalf("restore of a spoilt set: exit %d: %s%s; want exit 2 naming the file", code, out, errs)
		}
		if appExists() {
			t.Fatal("a refused restore created the database")
		}
		code, out, errs = run(append([]string{"restore", set, "--identity", id1}, into...)...)
		if code != ExitOK || !strings.Contains(out, `database "app": restored into "app"`) {
			t.Fatalf("restore: exit %d: %s%s", code, out, errs)
		}
		// ORACLE: the server counts the restored rows.
		c, err := srv.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var n int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM public.t").Scan(&n); err != nil || n != 5000 {
			t.Fatalf("restored public.t has %d rows (%v), want 5000", n, err)
		}
	})

	t.Run("rekey", func(t *testing.T) {
		code, out, errs := run("backup", "rekey", rekeySet, "--identity", id1, "--recipients", rec2)
		if code != ExitOK || !strings.Contains(out, "re-encrypted") {
			t.Fatalf("rekey: exit %d: %s%s", code, out, errs)
		}
		if code, out, errs := run("backup", "verify", rekeySet, "--identity", id2); code != ExitOK {
			t.Fatalf("verify with the new key: exit %d: %s%s", code, out, errs)
		}
		if code, out, errs := run("backup", "verify", rekeySet, "--identity", id1); code != ExitError || !strings.Contains(errs, "NOT verified") {
			t.Fatalf("verify with the old key: exit %d: %s%s; want exit 2", code, out, errs)
		}
	})
}

// A failed verification that names the problem the listing also found
// (a missing file) shows it once in the PROBLEMS column.
func TestDescribeSetSaysEachProblemOnce(t *testing.T) {
	s := backupset.Set{Dir: "/b/set1", Problem: "db-app.dump.zst.age is missing",
		Verification: &backupset.Verification{OK: false, Problems: []string{"db-app.dump.zst.age is missing", "globals.sql.zst.age: sha256 differs"}}}
	got := describeSet(s).Problems
	want := []string{"db-app.dump.zst.age is missing", "globals.sql.zst.age: sha256 differs"}
	if !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
}
