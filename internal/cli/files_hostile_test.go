package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Issue #10, defects 8 and 16(c): every file the user names is refused
// with exit 2 and a message naming it when it is a directory, missing, a
// FIFO, a device or oversized; nothing is waited on or read without end.
func TestNamedFilesMustBeRegularAndBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	must(t, syscall.Mkfifo(fifo, 0o600))
	sparse := filepath.Join(dir, "sparse.conf")
	f, err := os.Create(sparse)
	must(t, err)
	must(t, f.Truncate(2<<30)) // 2 GiB of holes: no disk, endless for a reader
	f.Close()
	long := filepath.Join(dir, "long.conf")
	must(t, os.WriteFile(long, []byte("port = 5432\nshared_buffers = '"+strings.Repeat("x", 2<<20)+"'\n"), 0o600))
	conf := filepath.Join(dir, "postgresql.conf")
	must(t, os.WriteFile(conf, []byte("port = 5432\n"), 0o600))
	missing := filepath.Join(dir, "missing.conf")

	type c struct {
		args []string
		name string // what the message must name
		want string
	}
	var cases []c
	for _, flag := range []string{"--config-file", "--hba-file", "--ident-file"} {
		cases = append(cases,
			c{[]string{"audit", flag, "."}, ".", "directory"},
			c{[]string{"audit", flag, dir}, dir, "directory"},
			c{[]string{"audit", flag, missing}, missing, "no such file"},
			c{[]string{"audit", flag, fifo}, fifo, "FIFO"},
			c{[]string{"audit", flag, "/dev/zero"}, "/dev/zero", "character device"},
			c{[]string{"audit", flag, sparse}, sparse, "larger than"},
			c{[]string{"audit", flag, long}, long + ":2", "line is longer"},
		)
	}
	for _, p := range []struct{ path, want string }{{fifo, "FIFO"}, {"/dev/zero", "character device"}, {dir, "directory"}, {missing, "no such file"}} {
		cases = append(cases,
			c{[]string{"audit", "--snapshot", p.path}, p.path, p.want},
			c{[]string{"audit", "--config-file", conf, "--waivers", p.path}, p.path, p.want},
			c{[]string{"audit", "--config-file", conf, "--baseline", p.path}, p.path, p.want},
			c{[]string{"access", "policy", "check", p.path, "--snapshot", p.path}, p.path, p.want},
		)
		if p.path != dir {
			cases = append(cases, c{[]string{"collect", "--pgdata", p.path}, p.path, ""})
		}
	}
	cases = append(cases, c{[]string{"audit", "--snapshot", sparse}, sparse, "not a pgaegis snapshot"})
	for _, tc := range cases {
		code, _, errs := runCLI(t, tc.args...)
		if code != ExitError || !strings.Contains(errs, tc.name) || !strings.Contains(errs, tc.want) {
			t.Errorf("pgaegis %s: exit %d, want 2 and a message naming %s (%s): %s", strings.Join(tc.args, " "), code, tc.name, tc.want, errs)
		}
	}
	if os.Geteuid() != 0 {
		unreadable := filepath.Join(dir, "unreadable.conf")
		must(t, os.WriteFile(unreadable, []byte("port = 5432\n"), 0o000))
		if code, _, errs := runCLI(t, "audit", "--config-file", unreadable); code != ExitError || !strings.Contains(errs, "permission denied") {
			t.Errorf("unreadable --config-file: exit %d: %s", code, errs)
		}
	}
}

// Includes of postgresql.conf: hostile targets are errors of the including
// line, and the included file's content is never quoted.
func TestConfigIncludesOfHostileFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.conf")
	must(t, syscall.Mkfifo(fifo, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "private"), []byte("PrivateToken:$6$hash\n"), 0o600))
	must(t, os.Mkdir(filepath.Join(dir, "conf.d"), 0o700))
	must(t, os.Symlink("/dev/zero", filepath.Join(dir, "conf.d", "zero.conf")))
	conf := filepath.Join(dir, "postgresql.conf")
	must(t, os.WriteFile(conf, []byte("port = 5432\ninclude 'fifo.conf'\ninclude 'private'\ninclude_dir 'conf.d'\n"), 0o600))
	for _, format := range []string{"text", "json", "sarif"} {
		code, out, errs := runCLI(t, "audit", "--config-file", conf, "--format", format)
		if code == ExitError {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if strings.Contains(out+errs, "PrivateToken") || strings.Contains(out+errs, "$6$") {
			t.Errorf("%s: an included file's content was printed", format)
		}
		for _, want := range []string{"FIFO", "private:1", "conf.d"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no error about %s", format, want)
			}
		}
	}
}
