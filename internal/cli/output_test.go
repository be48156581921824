package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Issue #10, defect 12: -o replaced whatever was at the path (a device
// node, a symlink's target became regular files).
func TestOutputTargets(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "postgresql.conf")
	must(t, os.WriteFile(conf, []byte("port = 5432\n"), 0o600))
	audit := func(o string) (int, string, string) {
		return runCLI(t, "audit", "--config-file", conf, "--format", "json", "-o", o)
	}
	isReport := func(s string) bool { return strings.Contains(s, `"findings"`) }

	t.Run("new file is 0600", func(t *testing.T) {
		p := filepath.Join(dir, "new.json")
		if code, _, errs := audit(p); code == ExitError {
			t.Fatalf("exit %d: %s", code, errs)
		}
		st, err := os.Stat(p)
		b, _ := os.ReadFile(p)
		if err != nil || st.Mode().Perm() != 0o600 || !isReport(string(b)) {
			t.Errorf("mode %v, err %v", st.Mode(), err)
		}
	})
	t.Run("existing regular file keeps its mode", func(t *testing.T) {
		p := filepath.Join(dir, "old.json")
		must(t, os.WriteFile(p, []byte("old"), 0o640))
		must(t, os.Chmod(p, 0o640))
		if code, _, errs := audit(p); code == ExitError {
			t.Fatalf("exit %d: %s", code, errs)
		}
		st, _ := os.Stat(p)
		b, _ := os.ReadFile(p)
		if st.Mode().Perm() != 0o640 || !isReport(string(b)) {
			t.Errorf("mode %v, content %.40q", st.Mode(), b)
		}
	})
	t.Run("streams", func(t *testing.T) {
		for _, p := range []string{"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"} {
			code, out, errs := audit(p)
			if code == ExitError || !isReport(out) {
				t.Errorf("-o %s: exit %d, stdout %.60q, stderr %s", p, code, out, errs)
			}
		}
		code, out, errs := audit("/dev/stderr")
		if code == ExitError || out != "" || !isReport(errs) {
			t.Errorf("-o /dev/stderr: exit %d, stdout %.60q", code, out)
		}
		if st, err := os.Lstat("/dev/stdout"); err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("/dev/stdout was replaced: %v %v", st, err)
		}
	})

	target := filepath.Join(dir, "target")
	must(t, os.WriteFile(target, []byte("precious"), 0o600))
	link := filepath.Join(dir, "link.json")
	must(t, os.Symlink(target, link))
	fifo := filepath.Join(dir, "fifo")
	must(t, syscall.Mkfifo(fifo, 0o600))
	sub := filepath.Join(dir, "sub")
	must(t, os.Mkdir(sub, 0o700))
	for _, c := range []struct{ path, want string }{
		{link, "symbolic link"},
		{fifo, "FIFO"},
		{sub, "directory"},
		{"/dev/zero", "character device"},
	} {
		code, _, errs := audit(c.path)
		if code != ExitError || !strings.Contains(errs, c.path) || !strings.Contains(errs, c.want) {
			t.Errorf("-o %s: exit %d: %s", c.path, code, errs)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "precious" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if st, _ := os.Lstat(link); st.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced")
	}
	if code, out, errs := audit("/dev/null"); code == ExitError || out != "" {
		t.Errorf("-o /dev/null: exit %d: %s", code, errs)
	}
	for _, p := range []string{"/dev/null", "/dev/zero"} {
		if st, _ := os.Stat(p); st.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("%s is no longer a device", p)
		}
	}
	if st, _ := os.Lstat(fifo); st.Mode()&os.ModeNamedPipe == 0 {
		t.Error("the FIFO was replaced")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".pgaegis-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
