package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// SIGTERM (systemd stopping a unit, a CI timeout) ends a backup the way
// Ctrl-C does: pg_dump stopped, the partial set removed, exit 2 with a
// message. pg_dump is stopped (SIGSTOP) once it runs, so the signal
// provably arrives while the set is being written.
func TestBackupSIGTERM(t *testing.T) {
	for _, p := range []string{"age-keygen", "pgrep"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed: %v", p, err)
		}
	}
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, "CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "app", "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 3000000)"); err != nil {
		t.Fatal(err)
	}
	_, rec := backupKey(t, t.TempDir(), "k")
	root := filepath.Join(t.TempDir(), "backups")
	cmd := asCommand("backup", "--recipients", rec, "--out", root, "--name", "term",
		"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=app", srv.Port, srv.AdminUser))
	cmd.Env = append(cmd.Env, "PGPASSWORD="+srv.Password)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Wait for pg_dump, stop it, and for the sealed file's partial: the
	// set is being written and cannot finish.
	parent := fmt.Sprint(cmd.Process.Pid)
	deadline := time.Now().Add(2 * time.Minute)
	stopped := false
	for {
		select {
		case err := <-exited:
			t.Fatalf("backup ended before the signal: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no pg_dump with a partial set within two minutes\n%s", stderr.String())
		}
		// The partial first: before it, a pg_dump child is only
		// 'pg_dump --version'.
		if m, _ := filepath.Glob(filepath.Join(root, "*", ".*.partial-*")); len(m) == 0 {
			continue
		}
		if out, _ := exec.Command("pgrep", "-P", parent, "-x", "pg_dump").Output(); len(bytes.TrimSpace(out)) > 0 {
			stopped = exec.Command("pkill", "-STOP", "-P", parent, "-x", "pg_dump").Run() == nil
		}
		if stopped {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("backup still running two minutes after SIGTERM\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitError {
		t.Fatalf("backup after SIGTERM: %v, want exit %d (not killed by the signal)\n%s", err, ExitError, stderr.String())
	}
	if !strings.Contains(stderr.String(), "no set was kept") {
		t.Errorf("stderr after SIGTERM: %q", stderr.String())
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("backup root holds %v after SIGTERM", ents)
	}
	// pg_dump went with it (not left stopped).
	for i := 0; ; i++ {
		if out, _ := exec.Command("pgrep", "-x", "-f", "pg_dump.*dbname=app.*").Output(); len(bytes.TrimSpace(out)) == 0 || !stillChildOf(out, parent) {
			break
		}
		if i == 200 {
			t.Fatal("pg_dump still runs after pgaegis ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stillChildOf: pgrep's pids, any of them still a child of parent (a
// pg_dump of another test is not ours).
func stillChildOf(pids []byte, parent string) bool {
	for _, p := range strings.Fields(string(pids)) {
		b, err := os.ReadFile("/proc/" + p + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == parent {
			return true
		}
	}
	return false
}
