package fail2ban

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteRollback(t *testing.T) {
	dir, journal := t.TempDir(), t.TempDir()
	c, err := Build(Settings{LogLinePrefix: "%m %h ", LoggingCollector: true, LogDirectory: "/l", LogFilename: "pg.log", Port: 5432}, Defaults())
	if err != nil {
		t.Fatal(err)
	}
	ts, err := Targets(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Write(journal, ts, false)
	if err != nil {
		t.Fatal(err)
	}
	fp, jp := Files()
	for _, f := range []string{fp, jp} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	// Edited since: the rollback leaves it and says so.
	os.WriteFile(filepath.Join(dir, jp), []byte(Marker+"\n# mine\n"), 0o644)
	if _, err := Rollback(journal, id); err == nil || !strings.Contains(err.Error(), "changed since") || strings.Contains(err.Error(), "old copy") || !strings.Contains(err.Error(), "no file before") {
		t.Fatalf("rollback over an edit: %v", err)
	}
	os.WriteFile(filepath.Join(dir, jp), []byte(c.Jail), 0o644)
	done, err := Rollback(journal, id)
	if err != nil || len(done) != 2 {
		t.Fatalf("rollback: %v %v", done, err)
	}
	for _, f := range []string{fp, jp} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Fatalf("%s left after the rollback of its creation", f)
		}
	}
	if _, err := Rollback(journal, id); !errors.Is(err, ErrNothing) {
		t.Fatalf("a second rollback: %v, want nothing to roll back", err)
	}
	// A symbolic link is never written through.
	os.MkdirAll(filepath.Join(dir, "filter.d"), 0o755)
	os.Symlink("/etc/passwd", filepath.Join(dir, fp))
	if _, err := Targets(dir, c); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlink: %v", err)
	}
}
