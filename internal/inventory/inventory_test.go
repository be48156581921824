package inventory

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// isolate keeps the caller's PG* variables and ~/.pgpass out of a test.
func isolate(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PG") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("HOME", t.TempDir())
}

// copyTree copies a testdata tree to a temporary directory, making the
// *.pgpass files private (git keeps no modes).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(p, ".pgpass") || strings.HasSuffix(p, ".pw") {
			mode = 0o600
		}
		return os.WriteFile(out, b, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// render is a stable one-line-per-server view of an inventory.
func render(inv *Inventory, root string) string {
	var b strings.Builder
	rel := func(p string) string {
		if p == "" {
			return "-"
		}
		if r, err := filepath.Rel(root, p); err == nil {
			return r
		}
		return p
	}
	fmt.Fprintf(&b, "concurrency %d\n", inv.Concurrency)
	for _, s := range inv.Servers {
		var ls []string
		for k, v := range s.Labels {
			ls = append(ls, k+"="+v)
		}
		sort.Strings(ls)
		sched := "-"
		if s.Schedule != nil {
			sched = s.Schedule.String()
		}
		fmt.Fprintf(&b, "%s @%s:%d:%d\n  labels=%s profile=%s schedule=%q timeout=%s connect_timeout=%s waivers=%s(%v)\n  conninfo=%q service=%q servicefile=%s passfile=%s password_env=%q password_file=%s\n",
			s.Name, rel(s.Pos.File), s.Pos.Line, s.Pos.Col, strings.Join(ls, ","), s.Profile, sched, s.Timeout, s.ConnectTimeout,
			rel(s.WaiversFile), s.Waivers != nil, s.Conninfo, s.Service, rel(s.ServiceFile), rel(s.PassFile), s.PasswordEnv, rel(s.PasswordFile))
	}
	return b.String()
}

func TestLoadGood(t *testing.T) {
	isolate(t)
	dir := copyTree(t, "testdata/good")
	inv, err := Load(filepath.Join(dir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/good.golden", render(inv, dir))
	if len(inv.Servers) != 12 {
		t.Errorf("%d servers, want 12", len(inv.Servers))
	}
}

// TestLoadBad: each file under testdata/bad fails with the messages of
// its .err golden file, and no message shows a secret written in it.
func TestLoadBad(t *testing.T) {
	isolate(t)
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) < 20 {
		t.Fatalf("only %d bad files", len(files))
	}
	secrets := []string{"hunter2", "xyzzy", "s3cr3t", "top-secret", "correct horse"}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			inv, err := Load(f)
			if err == nil {
				t.Fatalf("loaded %d servers, want an error", len(inv.Servers))
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("%T is not Errors: %v", err, err)
			}
			for _, e := range list {
				if e.Pos.File == "" || e.Pos.Line < 1 {
					t.Errorf("no place: %v", e)
				}
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error shows a secret")
				}
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".err", err.Error()+"\n")
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "absent.yaml")); err == nil || !strings.Contains(err.Error(), "absent.yaml:1:1: ") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	// A passfile open to others is refused at load time, as libpq would
	// ignore it (pgx would silently use it).
	open := filepath.Join(dir, "open.pgpass")
	os.WriteFile(open, []byte("*:*:*:*:x\n"), 0o644)
	os.Chmod(open, 0o644)
	inv := filepath.Join(dir, "inv.yaml")
	os.WriteFile(inv, []byte("servers:\n  - name: db1\n    conninfo: host=db1\n    passfile: open.pgpass\n"), 0o644)
	want := inv + ":4:15: passfile " + open + " has mode 0644: group or others may read it; chmod 600 " + open
	if _, err := Load(inv); err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	// A FIFO named as a service file must not hang the load.
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err == nil {
		os.WriteFile(inv, []byte("servers:\n  - name: db1\n    service: x\n    servicefile: fifo\n"), 0o644)
		if _, err := Load(inv); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("FIFO service file: %v", err)
		}
	}
}

func TestErrorsAreCapped(t *testing.T) {
	isolate(t)
	var b strings.Builder
	b.WriteString("servers:\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "  - name: db%d\n    typo: x\n", i)
	}
	p := filepath.Join(t.TempDir(), "inv.yaml")
	os.WriteFile(p, []byte(b.String()), 0o644)
	_, err := Load(p)
	var list Errors
	if !errors.As(err, &list) || len(list) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d and a note", len(list), maxErrors)
	}
	// The first 50 in file order, then a note at the 51st's place.
	for i, e := range list[:maxErrors] {
		if e.Pos.Line != 3+2*i || !strings.Contains(e.Msg, `unknown key "typo"`) {
			t.Errorf("error %d: %v", i, e)
		}
	}
	if last := list[maxErrors]; last.Pos.Line != 3+2*maxErrors || last.Msg != "150 more problems follow (only the first 50 are listed)" {
		t.Errorf("last: %v", last)
	}
}

func TestHomeAndLookup(t *testing.T) {
	isolate(t) // HOME is a fresh directory
	home, _ := os.UserHomeDir()
	os.WriteFile(filepath.Join(home, "fleet.pgpass"), []byte("*:*:*:*:x\n"), 0o600)
	p := filepath.Join(t.TempDir(), "inv.yaml")
	os.WriteFile(p, []byte("servers:\n  - name: db1\n    conninfo: host=db1\n    passfile: ~/fleet.pgpass\n    password_file: ~/db1.pw\n"), 0o644)
	inv, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := inv.Lookup("db1")
	if !ok || s.PassFile != filepath.Join(home, "fleet.pgpass") || s.PasswordFile != filepath.Join(home, "db1.pw") {
		t.Errorf("%v %+v", ok, s)
	}
	if _, ok := inv.Lookup("db2"); ok {
		t.Error("db2 found")
	}
	// The password file is not needed to load, only to connect.
	if _, err := s.ConnConfig(); err == nil || !strings.Contains(err.Error(), "server db1: password_file: "+home+"/db1.pw: no such file") {
		t.Errorf("missing password file: %v", err)
	}
}
