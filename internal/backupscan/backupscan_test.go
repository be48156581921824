package backupscan

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name, head   string
		want, detail string
	}{
		{"custom archive", "PGDMP\x01\x0e\x00\x04\x08\x08\x01", snapshot.ContentPgDump, "PGDMP 1.14.0"},
		{"short custom", "PGDMP", snapshot.ContentPgDump, "PGDMP"},
		{"tar archive", "toc.dat\x00\x00\x00\x00", snapshot.ContentPgDumpTar, "tar with toc.dat"},
		{"plain sql", "--\n-- PostgreSQL database dump\n--\n\n", snapshot.ContentSQLDump, "SQL text"},
		{"pg_dumpall", "--\n-- PostgreSQL database cluster dump\n--\n", snapshot.ContentSQLDump, "SQL text"},
		{"gzip", "\x1f\x8b\x08\x00", snapshot.ContentCompressed, "gzip"},
		{"zstd", "\x28\xb5\x2f\xfd\x04", snapshot.ContentCompressed, "zstd"},
		{"zstd skippable", "\x5a\x2a\x4d\x18\x10\x00", snapshot.ContentCompressed, "zstd (skippable frame)"},
		{"xz", "\xfd7zXZ\x00\x00", snapshot.ContentCompressed, "xz"},
		{"bzip2", "BZh91AY", snapshot.ContentCompressed, "bzip2"},
		{"lz4", "\x04\x22\x4d\x18", snapshot.ContentCompressed, "lz4"},
		{"text", "hello", snapshot.ContentOther, ""},
		{"empty", "", snapshot.ContentOther, ""},
	}
	for _, tc := range cases {
		if c, d := Classify([]byte(tc.head)); c != tc.want || d != tc.detail {
			t.Errorf("%s: %s %q, want %s %q", tc.name, c, d, tc.want, tc.detail)
		}
	}
	for _, h := range []string{"age-encryption.org/v1\n-> X25519 abc", "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl"} {
		if !IsAge([]byte(h)) {
			t.Errorf("%q is an age file", h)
		}
	}
	if IsAge([]byte("age-encryption.org/v2\n")) || IsAge([]byte("PGDMP")) {
		t.Error("not age")
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"PGDMP\x01\x0e\x00", "toc.dat\x00", "\x1f\x8b", "age-encryption.org/v1\n", "\x5a\x2a\x4d\x18", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		if len(head) > HeadSize {
			head = head[:HeadSize]
		}
		c, _ := Classify(head)
		if c == "" {
			t.Fatal("no content kind")
		}
	})
}

func write(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// A directory as a backup script leaves it: an age file (the age CLI's),
// a plaintext SQL dump, a gzip of one, a link and a FIFO. The scan reads
// heads only, follows no link, does not hang on the FIFO, and keeps the
// modes.
func TestScanDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "bk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	sql := []byte("--\n-- PostgreSQL database dump\n--\nCREATE TABLE secret(x text);\n")
	write(t, filepath.Join(dir, "old", "db.sql"), sql, 0o644)
	write(t, filepath.Join(dir, "db.sql.gz"), []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, 0o600)
	if _, err := exec.LookPath("age"); err == nil {
		// ORACLE: the age CLI's own output is recognised as an age file.
		key := filepath.Join(root, "key.txt")
		if out, err := exec.Command("age-keygen", "-o", key).CombinedOutput(); err != nil {
			t.Fatalf("age-keygen: %v %s", err, out)
		}
		cmd := exec.Command("age", "-e", "-i", key, "-o", filepath.Join(dir, "db.sql.age"))
		cmd.Stdin = strings.NewReader(string(sql))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("age: %v %s", err, out)
		}
		os.Chmod(filepath.Join(dir, "db.sql.age"), 0o600)
	} else {
		write(t, filepath.Join(dir, "db.sql.age"), []byte("age-encryption.org/v1\n-> X25519 x\n"), 0o600)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The directory is named through a link.
	named := filepath.Join(root, "backups")
	if err := os.Symlink(dir, named); err != nil {
		t.Fatal(err)
	}
	done := make(chan *snapshot.Backups, 1)
	go func() {
		done <- Scan(Options{Dirs: []string{named}, Now: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)})
	}()
	var b *snapshot.Backups
	select {
	case b = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the scan hung on a FIFO")
	}
	if b.MaxAgeSeconds != int64(DefaultMaxAge/time.Second) || b.RestoreTestMaxAgeSeconds != 8*24*3600 || b.User == "" {
		t.Errorf("%+v", b)
	}
	d := b.Dirs[0]
	if d.Error != "" || !d.Dir.Symlink || d.Resolved != dir || d.Target == nil || d.Target.Mode != 0o755 {
		t.Fatalf("dir %+v target %+v", d, d.Target)
	}
	got := map[string]string{}
	for _, e := range d.Entries {
		rel, _ := filepath.Rel(dir, e.Path)
		got[rel] = e.Content + " " + e.Detail + " " + e.ModeString()
		if e.Symlink {
			got[rel] = "symlink " + e.Error
		}
	}
	want := map[string]string{
		"old":        "  0700",
		"old/db.sql": "sql_dump SQL text 0644",
		"db.sql.gz":  "compressed gzip 0600",
		"db.sql.age": "age  0600",
		"link":       "symlink symlink to /etc/passwd",
		"fifo":       "  0600",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("entries %v", got)
	}
}

func TestScanMissingAndLimit(t *testing.T) {
	b := Scan(Options{Dirs: []string{"/nonexistent/backups"}})
	if d := b.Dirs[0]; !strings.Contains(d.Error, "/nonexistent/backups: no such file or directory") || !d.Missing {
		t.Errorf("%+v", d)
	}
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		write(t, filepath.Join(dir, n), []byte("x"), 0o600)
	}
	if d := Scan(Options{Dirs: []string{dir}, MaxEntries: 2}).Dirs[0]; !d.Truncated || len(d.Entries) != 2 {
		t.Errorf("limit: %+v", d)
	}
	f := filepath.Join(dir, "a")
	if d := Scan(Options{Dirs: []string{f}}).Dirs[0]; !strings.Contains(d.Error, "not a directory") {
		t.Errorf("a file: %+v", d)
	}
}

// What a set's manifest and verification say reaches the snapshot: times,
// databases, files, the keyless verdict, the restore test. (The lister is
// a stand-in for backupset.List: this is the mapping, not the reading.)
func TestScanSets(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)
	m := &backupset.Manifest{Started: start, Finished: start.Add(time.Minute), Globals: &backupset.File{Name: backupset.GlobalsName},
		Databases: []backupset.Database{{Name: "app", Files: []backupset.File{{Name: "app.dump.zst.age"}}}}}
	v := &backupset.Verification{Verified: start.Add(time.Hour), OK: true, RestoreTest: &backupset.RestoreTest{Mismatches: []string{"public.t: dump 10 rows, restored 9"}}}
	list := func(root string) ([]backupset.Set, error) {
		if root != dir {
			t.Errorf("listed %s", root)
		}
		return []backupset.Set{{Dir: filepath.Join(root, "app-1"), Manifest: m, Verification: v}, {Dir: filepath.Join(root, "junk"), Problem: "manifest.json: unexpected EOF"}}, nil
	}
	d := Scan(Options{Dirs: []string{dir}, List: list}).Dirs[0]
	if len(d.Sets) != 2 || d.SetsError != "" {
		t.Fatalf("%+v", d)
	}
	s := d.Sets[0]
	if s.Name != "app-1" || !s.Started.Equal(start) || !s.Finished.Equal(start.Add(time.Minute)) || strings.Join(s.Databases, ",") != "app" ||
		strings.Join(s.Files, ",") != backupset.GlobalsName+",app.dump.zst.age" || !s.VerifyOK || !s.VerifiedAt.Equal(start.Add(time.Hour)) ||
		s.RestoreTested == nil || len(s.RestoreMismatches) != 1 {
		t.Errorf("set %+v", s)
	}
	if j := d.Sets[1]; j.Name != "junk" || j.Problem == "" || j.Started != nil || j.Verified {
		t.Errorf("junk %+v", j)
	}
	d = Scan(Options{Dirs: []string{dir}, List: func(string) ([]backupset.Set, error) { return nil, os.ErrPermission }}).Dirs[0]
	if d.SetsError != "backup sets not listed: permission denied" {
		t.Errorf("%q", d.SetsError)
	}
}
