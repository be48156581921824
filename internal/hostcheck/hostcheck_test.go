package hostcheck

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Home directories and drop-in directories are writable by users other
// than root: a FIFO or a link to /dev/zero planted there must not hang or
// exhaust a root audit, and the real secrets beside them are still found.
func TestHostileHostFilesDoNotHang(t *testing.T) {
	root := t.TempDir()
	mk := func(p, content string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("etc/profile", "# system profile\nexport PGPASSWORD=hunter2\n")
	mk("home/alice/.psql_history", "select 1;\n")
	if err := os.MkdirAll(filepath.Join(root, "root"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "root/.bashrc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(root, "home/alice/.bash_history")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "etc/sudoers.d"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(root, "etc/sudoers.d/planted"), 0o600); err != nil {
		t.Fatal(err)
	}

	done := make(chan []string, 1)
	go func() {
		h := Collect(Options{Root: root})
		var got []string
		for _, l := range h.SecretLines {
			got = append(got, l.File+":"+l.What)
		}
		done <- got
	}()
	select {
	case got := <-done:
		if !strings.Contains(strings.Join(got, "\n"), "/etc/profile:PGPASSWORD set in a shell profile") {
			t.Errorf("the PGPASSWORD export in /etc/profile was not found beside the planted files: %v", got)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("host checks hung on a FIFO or /dev/zero planted in a home or drop-in directory")
	}
}
