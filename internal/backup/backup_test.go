package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgclient"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/sealedfile"
)

const pg15bin = "/usr/lib/postgresql/15/bin"

// env is a server, a key pair made by age-keygen and a backup root.
type env struct {
	srv       *localpg.Server
	identity  string // age identity file
	recipient []agekeys.Recipient
	out       string
}

func needTools(t *testing.T) {
	t.Helper()
	for _, p := range []string{"age", "age-keygen", "zstd", "bash"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(pg15bin, "pg_restore")); err != nil {
		t.Skipf("no PostgreSQL 15 client programs: %v", err)
	}
}

func newEnv(t *testing.T) *env {
	return newEnvOn(t, pgtest.Start(t, localpg.Options{}))
}

func newEnvOn(t *testing.T, srv *localpg.Server) *env {
	t.Helper()
	needTools(t)
	e := &env{srv: srv}
	keys := t.TempDir()
	e.identity = filepath.Join(keys, "id.txt")
	if out, err := exec.Command("age-keygen", "-o", e.identity).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v: %s", err, out)
	}
	os.Chmod(e.identity, 0o600)
	pub, err := exec.Command("age-keygen", "-y", e.identity).Output()
	if err != nil {
		t.Fatalf("age-keygen -y: %v", err)
	}
	rf := filepath.Join(keys, "recipients.txt")
	if err := os.WriteFile(rf, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if e.recipient, err = agekeys.ParseRecipientsFile(rf); err != nil {
		t.Fatalf("recipients: %v", err)
	}
	e.out = filepath.Join(t.TempDir(), "backups")
	return e
}

// target connects as the admin; the child programs get the password
// only through pgclient (the DSN has none).
func (e *env) target(db string) pgclient.Target {
	return pgclient.Target{
		Flags:  conninfo.Flags{DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=%s sslmode=prefer dbname=%s", e.srv.Port, e.srv.AdminUser, db)},
		Config: e.srv.ConnConfig(db),
	}
}

func (e *env) options(db string, mod ...func(*Options)) Options {
	o := Options{Target: e.target(db), Recipients: e.recipient, Out: e.out, Name: "test"}
	for _, f := range mod {
		f(&o)
	}
	return o
}

func (e *env) exec(t *testing.T, db string, sql ...string) {
	t.Helper()
	if err := e.srv.ExecIn(pgtest.Ctx(t), db, sql...); err != nil {
		t.Fatal(err)
	}
}

// pipeline runs a bash pipeline with pipefail: every stage's status counts.
func pipeline(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"-c", "set -o pipefail; " + script, "pipeline"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v: %s", script, args, err, stderr.String())
	}
	return out
}

// plain decrypts and decompresses a sealed file with the age and zstd CLIs.
func (e *env) plain(t *testing.T, file string) []byte {
	return pipeline(t, `age -d -i "$1" "$2" | zstd -d -c`, e.identity, file)
}

// toc is `pg_restore -l -v` of a sealed dump, without comment lines
// (-v: every entry, also ENCODING, STDSTRINGS, SEARCHPATH and DATABASE,
// which a plain -l leaves out).
func (e *env) toc(t *testing.T, file string) []string {
	out := pgRestore(t, e.plain(t, file), "-l", "-v")
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, ";") {
			lines = append(lines, l)
		}
	}
	return lines
}

// pgRestore runs pg_restore on an archive given on its stdin (from
// memory: pg_restore -l stops reading early, which a pipeline's
// pipefail would call a failure of the stage before it).
func pgRestore(t *testing.T, archive []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(filepath.Join(pg15bin, "pg_restore"), args...)
	cmd.Stdin = bytes.NewReader(archive)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg_restore %v: %v: %s", args, err, stderr.String())
	}
	return out
}

// restore loads a sealed dump into db with pg_restore (from memory, as
// pgRestore: a --section run stops reading early).
func (e *env) restore(t *testing.T, file, db string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(pg15bin, "pg_restore"), append([]string{"--exit-on-error",
		"-h", "127.0.0.1", "-p", strconv.Itoa(e.srv.Port), "-U", e.srv.AdminUser, "-d", db}, args...)...)
	cmd.Stdin = bytes.NewReader(e.plain(t, file))
	cmd.Env = append(os.Environ(), "PGPASSWORD="+e.srv.Password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_restore %s into %s %v: %v: %s", filepath.Base(file), db, args, err, out)
	}
}

func (e *env) key(t *testing.T, file string) [32]byte {
	t.Helper()
	ids, err := agekeys.ParseIdentitiesFile(e.identity)
	if err != nil {
		t.Fatal(err)
	}
	r, err := sealedfile.Open(file, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Key()
}

func count(t *testing.T, c *pgx.Conn, schema, table string) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(context.Background(), "select count(*) from "+pgx.Identifier{schema, table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// setupApp is a database with several schemas, odd names, an unanalyzed
// table and a large object.
func setupApp(t *testing.T, e *env, db string) {
	e.exec(t, "postgres", "create database "+pgx.Identifier{db}.Sanitize())
	e.exec(t, db,
		"create schema billing",
		`create schema "Odd Schema"`,
		"create table public.users (id int primary key, name text)",
		"create table billing.invoices (id int primary key, user_id int references public.users, total numeric)",
		`create table "Odd Schema"."We*ird.T?able" (x text)`,
		"create table public.empty (x int)",
		"insert into public.users select g, 'user-' || g from generate_series(1, 1234) g",
		"insert into billing.invoices select g, 1 + g % 1234, g * 1.5 from generate_series(1, 4321) g",
		`insert into "Odd Schema"."We*ird.T?able" values ('needle-in-the-dump'), (E'tab\there'), (null)`,
		"analyze public.users, billing.invoices",
		"select lo_from_bytea(0, 'a large object')",
	)
}

// TestBackup runs the flows against one server (its start and the 20 MB
// database are most of the time): each case has its own backup root.
func TestBackup(t *testing.T) {
	base := newEnv(t)
	setupApp(t, base, "app")
	haveBig := false
	for _, c := range []struct {
		name string
		fn   func(*testing.T, *env)
		big  bool // needs the database "big"
	}{
		{"RoundTrip", testRoundTrip, false},
		{"Globals", testGlobals, false}, // --all: before "big" exists
		{"MissingDatabase", testMissingDatabase, false},
		{"ParallelRoundTrip", testParallelRoundTrip, false},
		{"TablePatternPgDump", testTablePatternPgDump, false},
		{"KilledHalfway", testKilledHalfway, true},
		{"Cancelled", testCancelled, true},
		{"NoPlaintextOnDisk", testNoPlaintextOnDisk, true},
		{"PruneWhileRunning", testPruneWhileRunning, true},
		{"DiskFull", testDiskFull, true},
	} {
		if c.big && !haveBig {
			bigDatabase(t, base, "big", 14) // > pipe + queues (9 MiB) in flight
			haveBig = true
		}
		t.Run(c.name, func(t *testing.T) {
			e := *base
			e.out = filepath.Join(t.TempDir(), "backups")
			c.fn(t, &e)
		})
	}
}

// ORACLE: the age and zstd CLIs decrypt the file, the real pg_restore
// lists its table of contents and writes its script, and the server's
// count(*) is the truth for every table's row count.
func testRoundTrip(t *testing.T, e *env) {
	var lines []string
	var mu sync.Mutex
	o := e.options("app", func(o *Options) {
		o.Progress = func(f string, a ...any) { mu.Lock(); lines = append(lines, fmt.Sprintf(f, a...)); mu.Unlock() }
	})
	fixed := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	o.Now = func() time.Time { return fixed }
	// The password is in no child's argv or environment.
	var leaks []string
	startHook = func(cmd *exec.Cmd) {
		for _, s := range append(append([]string{}, cmd.Args...), cmd.Env...) {
			if strings.Contains(s, e.srv.Password) {
				leaks = append(leaks, strings.SplitN(s, "=", 2)[0])
			}
		}
	}
	res, err := Backup(pgtest.Ctx(t), o)
	startHook = nil
	if len(leaks) > 0 {
		t.Errorf("the password is in a child's argv or environment (%v)", leaks)
	}
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if want := filepath.Join(e.out, "test-20261203T100000Z"); res.Dir != want {
		t.Errorf("set dir %s, want %s", res.Dir, want)
	}
	for _, p := range []string{e.out, res.Dir} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v (%v), want 0700", p, st.Mode(), err)
		}
	}
	dumpName := backupset.DumpFileName("app", 0)
	ents, _ := os.ReadDir(res.Dir)
	var names []string
	for _, de := range ents {
		names = append(names, de.Name())
		st, _ := de.Info()
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", de.Name(), st.Mode())
		}
	}
	if strings.Join(names, ",") != strings.Join(sortStrings(dumpName, backupset.ManifestName), ",") {
		t.Errorf("set holds %v, want the dump and the manifest only", names)
	}
	file := filepath.Join(res.Dir, dumpName)
	head := make([]byte, len(sealedfile.AgeHeader))
	f, _ := os.Open(file)
	io.ReadFull(f, head)
	f.Close()
	if string(head) != sealedfile.AgeHeader {
		t.Errorf("%s does not start with the age header: %q", file, head)
	}

	m := res.Manifest
	if err := m.VerifyMAC(e.key(t, file)); err != nil {
		t.Errorf("manifest MAC: %v", err)
	}
	onDisk, err := backupset.ReadManifest(res.Dir)
	if err != nil {
		t.Fatalf("ReadManifest: %v", err)
	}
	if err := onDisk.VerifyMAC(e.key(t, file)); err != nil {
		t.Errorf("manifest on disk, MAC: %v", err)
	}
	if m.Server.VersionNum/10000 != 15 || m.Server.Version == "" || m.Server.SystemIdentifier == "" {
		t.Errorf("server %+v", m.Server)
	}
	if want := fmt.Sprintf("127.0.0.1:%d/app", e.srv.Port); m.Server.Target != want {
		t.Errorf("target %q, want %q", m.Server.Target, want)
	}
	if !strings.HasPrefix(m.PgDump.Version, "15") || !strings.HasSuffix(m.PgDump.Path, "pg_dump") {
		t.Errorf("pg_dump %+v", m.PgDump)
	}
	if len(m.Recipients) != 1 || !strings.HasPrefix(m.Recipients[0], "age1") || m.Compression != "zstd" || m.Encryption != "age" || m.Globals != nil {
		t.Errorf("manifest %+v", m)
	}
	if len(m.Databases) != 1 || m.Databases[0].Name != "app" {
		t.Fatalf("databases %+v", m.Databases)
	}
	d := m.Databases[0]
	if len(d.Files) != 1 || d.Files[0].Name != dumpName {
		t.Fatalf("files %+v", d.Files)
	}
	st, _ := os.Stat(file)
	if d.Files[0].CipherBytes != st.Size() || d.Files[0].PlainBytes <= d.Files[0].CompressedBytes || d.Files[0].SHA256 == "" {
		t.Errorf("file %+v, size on disk %d", d.Files[0], st.Size())
	}
	sum := pipeline(t, `sha256sum "$1"`, file)
	if !strings.HasPrefix(string(sum), d.Files[0].SHA256+" ") {
		t.Errorf("sha256 %s, sha256sum says %s", d.Files[0].SHA256, sum)
	}

	toc := e.toc(t, file)
	if len(toc) != d.TOCEntries {
		t.Errorf("pg_restore -l lists %d entries, manifest %d:\n%s", len(toc), d.TOCEntries, strings.Join(toc, "\n"))
	}
	script := string(pgRestore(t, e.plain(t, file), "-f", "-"))
	for _, want := range []string{"needle-in-the-dump", "user-1234", "CREATE TABLE billing.invoices", "lo_open"} {
		if !strings.Contains(script, want) {
			t.Errorf("pg_restore -f - script has no %q", want)
		}
	}

	c := pgtest.Conn(t, e.srv, "app")
	want := map[string]int64{}
	for _, tb := range [][2]string{{"public", "users"}, {"billing", "invoices"}, {"Odd Schema", "We*ird.T?able"}, {"public", "empty"}} {
		want[tb[0]+"."+tb[1]] = count(t, c, tb[0], tb[1])
	}
	got := map[string]int64{}
	for _, tb := range d.Tables {
		got[tb.Schema+"."+tb.Name] = tb.Rows
		switch tb.Schema + "." + tb.Name {
		case "public.users":
			if tb.Estimate != 1234 {
				t.Errorf("users estimate %d, want 1234 (analyzed)", tb.Estimate)
			}
		case "public.empty":
			if tb.Estimate != -1 {
				t.Errorf("empty estimate %d, want -1 (never analyzed)", tb.Estimate)
			}
		}
		if tb.Part != 0 {
			t.Errorf("%s: part %d in a serial dump", tb.Name, tb.Part)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("manifest rows %v, count(*) %v", got, want)
	}
	if d.Blobs != 1 {
		t.Errorf("blobs %d, want 1", d.Blobs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), `"app"`) || !strings.Contains(strings.Join(lines, "\n"), "/s") {
		t.Errorf("progress lines %q", lines)
	}

	// The same second again: the set exists, and is refused.
	if _, err := Backup(pgtest.Ctx(t), o); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second Backup into the same set: %v", err)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, backupset.ManifestName)); err != nil {
		t.Errorf("the refused second run touched the first set: %v", err)
	}
}

func sortStrings(s ...string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// ORACLE: the age CLI decrypts pg_dumpall's script; the server's pg_authid
// holds the verifier the script must (or must not) carry.
func testGlobals(t *testing.T, e *env) {
	e.exec(t, "postgres",
		"create database other",
		"create database closed",
		"update pg_database set datallowconn = false where datname = 'closed'",
		"create role alice login password 'alice-secret-pw'",
		"create role bob nologin",
	)
	var want []string
	if err := pgtest.Conn(t, e.srv, "postgres").QueryRow(pgtest.Ctx(t),
		"select array_agg(datname order by datname) from pg_database where datname not in ('template0', 'template1', 'closed')").Scan(&want); err != nil {
		t.Fatal(err)
	}
	// --all without passwords; one database with --globals and passwords.
	for _, with := range []bool{false, true} {
		t.Run(fmt.Sprintf("with_passwords=%v", with), func(t *testing.T) {
			res, err := Backup(pgtest.Ctx(t), e.options("postgres", func(o *Options) {
				o.All = !with
				o.Globals = with
				o.WithPasswords = with
				o.Out = t.TempDir()
			}))
			if err != nil {
				t.Fatalf("Backup: %v", err)
			}
			m := res.Manifest
			var dbs []string
			for _, d := range m.Databases {
				dbs = append(dbs, d.Name)
			}
			if !with && strings.Join(dbs, ",") != strings.Join(want, ",") {
				t.Errorf("--all dumped %v, want %v (no templates, none closed to connections)", dbs, want)
			}
			if with && strings.Join(dbs, ",") != "postgres" {
				t.Errorf("--globals dumped %v, want the target's database only", dbs)
			}
			if m.Globals == nil || m.Globals.Name != backupset.GlobalsName || m.WithPasswords != with {
				t.Fatalf("globals %+v, with_passwords %v", m.Globals, m.WithPasswords)
			}
			script := string(e.plain(t, filepath.Join(res.Dir, backupset.GlobalsName)))
			if !strings.Contains(script, "CREATE ROLE alice;") || !strings.Contains(script, "CREATE ROLE bob;") {
				t.Errorf("globals script lacks the roles:\n%s", script)
			}
			if !strings.HasSuffix(script, GlobalsComplete) {
				t.Errorf("globals script ends %q", script[max(0, len(script)-100):])
			}
			if int64(len(script)) != m.Globals.PlainBytes {
				t.Errorf("globals plain bytes %d, decrypted %d", m.Globals.PlainBytes, len(script))
			}
			var verifier string
			if err := pgtest.Conn(t, e.srv, "postgres").QueryRow(pgtest.Ctx(t), "select rolpassword from pg_authid where rolname = 'alice'").Scan(&verifier); err != nil {
				t.Fatal(err)
			}
			has := strings.Contains(script, "SCRAM-SHA-256$")
			if has != with || strings.Contains(script, verifier) != with {
				t.Errorf("with_passwords=%v: script carries a SCRAM verifier: %v", with, has)
			}
			if strings.Contains(script, "alice-secret-pw") {
				t.Error("the cleartext password is in the globals")
			}
			for _, d := range m.Databases {
				if len(d.Files) != 1 {
					t.Errorf("%s: %d files", d.Name, len(d.Files))
				}
			}
		})
	}
}

// A database that is not there is refused before anything is written.
func testMissingDatabase(t *testing.T, e *env) {
	_, err := Backup(pgtest.Ctx(t), e.options("postgres", func(o *Options) { o.Databases = []string{"postgres", "no_such_db"} }))
	var f *Fault
	if !errors.As(err, &f) || !strings.Contains(f.Problem, `"no_such_db"`) {
		t.Fatalf("Backup of a missing database: %v, want a Fault naming it", err)
	}
	if ents, _ := os.ReadDir(e.out); len(ents) != 0 {
		t.Errorf("backup root holds %d entries after the refusal", len(ents))
	}
	if strings.Contains(err.Error(), e.srv.Password) {
		t.Error("the password is in the error")
	}
}

// bigDatabase fills db with about mb megabytes of poorly compressible rows.
func bigDatabase(t *testing.T, e *env, db string, mb int) {
	e.exec(t, "postgres", "create database "+db)
	rows := mb * 1024 * 1024 / 140
	e.exec(t, db,
		"create table blob (id int, a text, b text, c text, d text)",
		fmt.Sprintf("insert into blob select g, md5(g::text), md5((g+1)::text), md5((g*7)::text), md5(random()::text) from generate_series(1, %d) g", rows),
	)
}

// pg_dump killed halfway: a Fault naming the signal, and no trace in the
// backup root.
func testKilledHalfway(t *testing.T, e *env) {
	// Killed at 256 kB: the dump is larger than everything that can be
	// in flight behind the hook (pipe and queues), so pg_dump is mid-stream.
	var once sync.Once
	byteHook = func(cmd *exec.Cmd, n int64) {
		if n > 256<<10 {
			once.Do(func() { cmd.Process.Signal(syscall.SIGKILL) })
		}
	}
	defer func() { byteHook = nil }()
	_, err := Backup(pgtest.Ctx(t), e.options("big"))
	var f *Fault
	if !errors.As(err, &f) {
		t.Fatalf("Backup with pg_dump killed: %v, want a Fault", err)
	}
	if !strings.Contains(f.Problem, `pg_dump of "big" was killed by signal killed after`) {
		t.Errorf("fault %q", f.Problem)
	}
	ents, _ := os.ReadDir(e.out)
	if len(ents) != 0 {
		t.Errorf("backup root holds %v after the fault", ents)
	}
	t.Logf("fault: %v", err)
}

// Cancelling the context stops pg_dump and leaves nothing.
func testCancelled(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(pgtest.Ctx(t))
	defer cancel()
	byteHook = func(_ *exec.Cmd, n int64) {
		if n > 256<<10 {
			cancel()
		}
	}
	defer func() { byteHook = nil }()
	_, err := Backup(ctx, e.options("big"))
	var f *Fault
	if !errors.As(err, &f) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Backup: %v, want a Fault wrapping context.Canceled", err)
	}
	if ents, _ := os.ReadDir(e.out); len(ents) != 0 {
		t.Errorf("backup root holds %v after cancelling", ents)
	}
}

// No plaintext at any moment: while a backup runs, every file in the
// backup root and in the temporary directory (TMPDIR, which the children
// inherit) is age ciphertext from its first byte, or the manifest.
func testNoPlaintextOnDisk(t *testing.T, e *env) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	stop := make(chan struct{})
	var problems []string
	var seen, checks int
	done := make(chan struct{})
	go func() {
		defer close(done)
		seenFiles := map[string]bool{}
		for {
			select {
			case <-stop:
				seen = len(seenFiles)
				return
			default:
			}
			checks++
			for _, root := range []string{e.out, tmp} {
				filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
					if err != nil || !fi.Mode().IsRegular() {
						return nil
					}
					seenFiles[p] = true
					// The manifest (and backupset's temporary file for it) is
					// metadata, written after every dump.
					if fi.Name() == backupset.ManifestName || strings.HasPrefix(fi.Name(), "."+backupset.ManifestName+".tmp") {
						return nil
					}
					head := make([]byte, len(sealedfile.AgeHeader))
					f, err := os.Open(p)
					if err != nil {
						return nil // renamed or removed meanwhile
					}
					n, _ := io.ReadFull(f, head)
					f.Close()
					if !strings.HasPrefix(sealedfile.AgeHeader, string(head[:n])) {
						problems = append(problems, fmt.Sprintf("%s starts %q", p, head[:n]))
					}
					return nil
				})
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	res, err := Backup(pgtest.Ctx(t), e.options("postgres", func(o *Options) { o.Databases = []string{"big", "app"}; o.Globals = true }))
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	for _, p := range problems {
		t.Error("plaintext on disk: " + p)
	}
	if seen < 3 {
		t.Errorf("the watcher saw %d files in %d passes: it did not watch the run", seen, checks)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("TMPDIR holds %d entries after the backup", len(ents))
	}
	t.Logf("%d passes, %d files seen, set %s", checks, seen, res.Dir)
}

// ORACLE: pg_dump 15 dumping 13 and 14 servers; the manifest names the
// server's version and the client's, and pg_restore lists the archive.
func TestBackupOlderMajors(t *testing.T) {
	for _, major := range []int{13, 14} {
		t.Run("pg"+strconv.Itoa(major), func(t *testing.T) {
			t.Parallel()
			if _, err := localpg.FindBinDir(strconv.Itoa(major)); err != nil {
				t.Skipf("PostgreSQL %d not installed: %v", major, err)
			}
			e := newEnvOn(t, pgtest.StartMajor(t, major, localpg.Options{}))
			setupApp(t, e, "app")
			res, err := Backup(pgtest.Ctx(t), e.options("app"))
			if err != nil {
				t.Fatalf("Backup: %v", err)
			}
			m := res.Manifest
			if m.Server.VersionNum/10000 != major || !strings.HasPrefix(m.PgDump.Version, "15") {
				t.Errorf("server %+v, pg_dump %+v", m.Server, m.PgDump)
			}
			d := m.Databases[0]
			if toc := e.toc(t, filepath.Join(res.Dir, d.Files[0].Name)); len(toc) != d.TOCEntries {
				t.Errorf("pg_restore -l: %d entries, manifest %d", len(toc), d.TOCEntries)
			}
			for _, tb := range d.Tables {
				if tb.Schema == "public" && tb.Name == "users" && tb.Rows != 1234 {
					t.Errorf("users: %d rows", tb.Rows)
				}
			}
		})
	}
}

func TestTailWriter(t *testing.T) {
	w := &tailWriter{max: 5}
	for _, s := range []string{"ab", "cd", "efg", "", "0123456789", "x"} {
		w.Write([]byte(s))
	}
	if string(w.buf) != "6789x" {
		t.Fatalf("tail %q", w.buf)
	}
}

type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, f.err
	}
	return len(p), nil
}

func TestPump(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	var a, b bytes.Buffer
	n, err := pump(bytes.NewReader(data), nil, &a, &b)
	if err != nil || n != int64(len(data)) || !bytes.Equal(a.Bytes(), data) || !bytes.Equal(b.Bytes(), data) {
		t.Fatalf("pump: %d, %v; copies equal: %v %v", n, err, bytes.Equal(a.Bytes(), data), bytes.Equal(b.Bytes(), data))
	}
	boom := errors.New("disk full")
	stopped := 0
	var c bytes.Buffer
	_, err = pump(io.MultiReader(bytes.NewReader(data), bytes.NewReader(data)), func() { stopped++ }, &c, &failAfter{n: 1 << 20, err: boom})
	if !errors.Is(err, boom) || stopped != 1 {
		t.Fatalf("pump with a failing writer: %v, stop called %d times", err, stopped)
	}
	readErr := errors.New("pipe broke")
	_, err = pump(io.MultiReader(bytes.NewReader(data), &errReader{readErr}), nil, io.Discard)
	if !errors.Is(err, readErr) {
		t.Fatalf("pump with a failing reader: %v", err)
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{"db.example.com": "db.example.com", "../x": "_x", "": "backup", "a/b c": "a_b_c", "...": "backup", "::1": "__1"} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A prune that runs while a backup writes its set (an overlapping cron
// job) leaves the set alone, and the backup still finishes; a set a
// killed backup left (ciphertext partials, lock free) is pruned.
func testPruneWhileRunning(t *testing.T, e *env) {
	// One database finishes before "big" starts: the set then holds a
	// sealed file but no manifest, what prune once deleted.
	var once sync.Once
	var decisions []backupset.Decision
	var pruneErr error
	byteHook = func(cmd *exec.Cmd, n int64) {
		if n > 256<<10 {
			once.Do(func() {
				decisions, pruneErr = Prune(e.out, PruneOptions{Keep: backupset.Keep{Last: 1}})
			})
		}
	}
	defer func() { byteHook = nil }()
	res, err := Backup(pgtest.Ctx(t), e.options("app", func(o *Options) { o.Databases = []string{"app", "big"} }))
	if err != nil {
		t.Fatalf("backup with a prune beside it: %v", err)
	}
	if pruneErr != nil {
		t.Fatalf("prune: %v", pruneErr)
	}
	if len(decisions) != 1 || !decisions[0].Keep || !strings.Contains(decisions[0].Reason, "in use") {
		t.Fatalf("prune's decisions during the backup: %+v, want the one set kept as in use", decisions)
	}
	if _, err := backupset.ReadManifest(res.Dir); err != nil {
		t.Fatalf("the set after the backup: %v", err)
	}

	// A set a SIGKILLed backup left: a partial, its lock free.
	dead := filepath.Join(e.out, "dead-20200101T000000Z")
	if err := os.Mkdir(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{".app.dump.zst.age.partial-0011223344556677"} {
		if err := os.WriteFile(filepath.Join(dead, n), []byte("age-encryption.org/v1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sets, err := backupset.List(e.out)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, s := range sets {
		if s.Dir == dead {
			found = true
			if s.InUse || !strings.Contains(s.Problem, "unfinished backup") {
				t.Errorf("the dead set is listed as %+v", s)
			}
		}
	}
	if !found {
		t.Fatalf("the dead set is not listed: %+v", sets)
	}
	if _, err := Prune(e.out, PruneOptions{Keep: backupset.Keep{Last: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead set survived prune: %v", err)
	}
	if _, err := os.Stat(res.Dir); err != nil {
		t.Errorf("the finished set is gone: %v", err) // unverified, newer than any verified: kept
	}
}

// A full disk is reported as what it is, not as pg_dump's death (pg_dump
// is stopped because nothing can take its output), and nothing is left.
func testDiskFull(t *testing.T, e *env) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: this test mounts a small tmpfs and needs root")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "pgaegis-full", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	e.out = filepath.Join(dir, "backups")
	_, err := Backup(pgtest.Ctx(t), e.options("big"))
	var f *Fault
	if !errors.As(err, &f) {
		t.Fatalf("backup onto a full disk: %v, want a Fault", err)
	}
	if !strings.Contains(f.Problem, "no space left on device") || strings.Contains(f.Problem, "killed by signal") {
		t.Errorf("fault %q: want the full disk named, not pg_dump's kill", f.Problem)
	}
	if ents, _ := os.ReadDir(e.out); len(ents) != 0 {
		t.Errorf("backup root holds %v after the fault", ents)
	}
}
