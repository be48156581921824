package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "a.conf")
	os.WriteFile(reg, []byte("port = 5432\n"), 0o600)
	big := filepath.Join(dir, "big.conf")
	os.WriteFile(big, make([]byte, 2048), 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.conf")
	os.Symlink(reg, link)

	if b, err := ReadFile(reg, 1024); err != nil || string(b) != "port = 5432\n" {
		t.Fatalf("regular file: %q, %v", b, err)
	}
	if _, err := ReadFile(link, 1024); err != nil {
		t.Fatalf("symlink to a regular file: %v", err)
	}
	for _, c := range []struct{ path, want string }{
		{big, "larger than 1 KiB"},
		{fifo, "FIFO"},
		{dir, "directory"},
		{"/dev/zero", "character device"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		_, err := ReadFile(c.path, 1024)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("ReadFile(%s) = %v, want an error naming the path and %q", c.path, err, c.want)
		}
	}
	if _, err := Open(fifo); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Open(fifo) = %v, want ErrNotRegular", err)
	}
}
