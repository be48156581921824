package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// buildPgaegis builds the command: signals must reach a real process.
func buildPgaegis(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pgaegis")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/pgaegis/pgaegis/cmd/pgaegis").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// sandboxTmp is a private TMPDIR for the sandboxes of one test (so other
// tests' clusters are not in the way), traversable by the server's OS user.
func sandboxTmp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgaegis-sandbox-test-")
	must(t, err)
	must(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type runningSandbox struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	dir    string // the cluster directory
	pid    int    // its postmaster
}

// startSandboxAudit runs `pgaegis audit --sandbox` and returns once its
// server accepts connections (postmaster.pid says "ready"): mid-run.
func startSandboxAudit(t *testing.T, bin, tmp string) *runningSandbox {
	t.Helper()
	cmd := exec.Command(bin, "audit", "--sandbox", "--no-probe", "--format", "json")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	// A generous bound only so that a broken start cannot hang the test.
	for i := 0; i < 1200; i++ {
		dirs, _ := filepath.Glob(filepath.Join(tmp, "pgaegis-pg-*"))
		for _, d := range dirs {
			owner, _ := os.ReadFile(filepath.Join(d, "owner"))
			if !strings.HasPrefix(string(owner), strconv.Itoa(cmd.Process.Pid)+" ") {
				continue
			}
			pm, _ := os.ReadFile(filepath.Join(d, "data", "postmaster.pid"))
			lines := strings.Split(string(pm), "\n")
			if len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready" {
				pid, _ := strconv.Atoi(lines[0])
				return &runningSandbox{cmd: cmd, stderr: &stderr, dir: d, pid: pid}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("the sandbox server did not come up:\n%s", stderr.String())
	return nil
}

// postmasterRunning: pid is still the server of data (not a reused pid).
func postmasterRunning(pid int, data string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if i := bytes.LastIndexByte(st, ')'); i > 0 && bytes.HasPrefix(bytes.TrimSpace(st[i+1:]), []byte("Z")) {
		return false
	}
	return bytes.Contains(b, []byte(data))
}

func TestSandboxLeavesNothingBehind(t *testing.T) {
	if _, err := localpg.FindBinDir(pgtest.Version); err != nil {
		pgtest.Unavailable(t, err)
	}
	bin := buildPgaegis(t)
	tmp := sandboxTmp(t)

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run("private while it runs, gone after "+sig.String(), func(t *testing.T) {
			sb := startSandboxAudit(t, bin, tmp)
			for path, want := range map[string]os.FileMode{sb.dir: 0o700, filepath.Join(sb.dir, "data"): 0o700, filepath.Join(sb.dir, "server.log"): 0o600} {
				if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
					t.Errorf("%s: mode %v (err %v), want %v", path, st.Mode().Perm(), err, want)
				}
			}
			must(t, sb.cmd.Process.Signal(sig))
			if err := sb.cmd.Wait(); err == nil {
				t.Error("an interrupted audit exited 0")
			}
			if _, err := os.Stat(sb.dir); !os.IsNotExist(err) {
				t.Errorf("%s is left behind after %v (%v)\n%s", sb.dir, sig, err, sb.stderr)
			}
			if postmasterRunning(sb.pid, sb.dir) {
				t.Errorf("postmaster %d still runs after %v", sb.pid, sig)
				syscall.Kill(sb.pid, syscall.SIGQUIT)
			}
		})
	}

	t.Run("SIGKILL: the next run reaps it", func(t *testing.T) {
		sb := startSandboxAudit(t, bin, tmp)
		must(t, sb.cmd.Process.Kill())
		sb.cmd.Wait()
		if _, err := os.Stat(sb.dir); err != nil {
			t.Fatalf("expected the killed run's directory to be there: %v", err)
		}
		cmd := exec.Command(bin, "audit", "--sandbox", "--no-probe", "--format", "json")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() == ExitError) {
			t.Fatalf("the next sandbox audit failed: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "removed the sandbox an earlier run left behind") {
			t.Errorf("the reaping is not reported:\n%s", stderr.String())
		}
		if _, err := os.Stat(sb.dir); !os.IsNotExist(err) {
			t.Errorf("%s was not reaped (%v)", sb.dir, err)
		}
		if postmasterRunning(sb.pid, sb.dir) {
			t.Errorf("the killed run's postmaster %d still runs", sb.pid)
			syscall.Kill(sb.pid, syscall.SIGQUIT)
		}
		if left, _ := filepath.Glob(filepath.Join(tmp, "pgaegis-pg-*")); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}
