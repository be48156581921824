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

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(victim, link)
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o700)

	for _, c := range []struct{ path, want string }{
		{link, "symbolic link"},
		{fifo, "a FIFO"},
		{sub, "a directory"},
		{"/dev/null", "a character device"},
	} {
		if err := WriteFile(c.path, []byte("x"), 0o600); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("WriteFile(%s) = %v, want a refusal naming %q", c.path, err, c.want)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced")
	}

	for _, p := range []string{filepath.Join(dir, "new"), victim} {
		if err := WriteFile(p, []byte("data"), 0o600); err != nil {
			t.Fatalf("WriteFile(%s): %v", p, err)
		}
		st, _ := os.Stat(p)
		if b, _ := os.ReadFile(p); string(b) != "data" || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %q mode %v", p, b, st.Mode().Perm())
		}
	}
}
