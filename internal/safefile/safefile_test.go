package safefile

import (
	"errors"
	"io"
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

func TestCheckLinesAndOpenLimited(t *testing.T) {
	for _, c := range []struct {
		data string
		line int // 0: no error
	}{
		{"", 0}, {"abc\n", 0}, {"abcd", 0}, {"abcde", 1}, {"a\nb\nabcde\n", 3}, {"abcd\nabcd", 0},
	} {
		err := CheckLines("f.conf", []byte(c.data), 4)
		var le *LineError
		if (c.line == 0) != (err == nil) || (err != nil && (!errors.As(err, &le) || le.Line != c.line || !strings.HasPrefix(err.Error(), "f.conf:"))) {
			t.Errorf("CheckLines(%q) = %v, want line %d", c.data, err, c.line)
		}
	}
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact")
	os.WriteFile(exact, []byte("12345678"), 0o600)
	for _, c := range []struct {
		max     int64
		wantErr bool
	}{{8, false}, {100, false}, {7, true}} {
		r, err := OpenLimited(exact, c.max)
		if err == nil {
			var b []byte
			b, err = io.ReadAll(r)
			r.Close()
			if err == nil && string(b) != "12345678" {
				t.Errorf("max %d: read %q", c.max, b)
			}
		}
		if (err != nil) != c.wantErr {
			t.Errorf("OpenLimited(max %d) = %v", c.max, err)
		}
	}
	if _, err := OpenLimited("/dev/zero", 10); !errors.Is(err, ErrNotRegular) {
		t.Errorf("OpenLimited(/dev/zero) = %v", err)
	}
}
