package localpg_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// A server restarted from outside (pg_ctl restart, as fix --apply does)
// is no child of ours; Reload and Stop must still reach it, and Stop must
// not leave it running.
func TestStopAfterExternalRestart(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	old := s.PostmasterPID()
	if old == 0 {
		t.Fatal("no postmaster pid")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, "pg_ctl"), "restart", "-D", s.DataDir, "-m", "fast", "-w", "-l", filepath.Join(s.Dir, "restart.log"))
	attr := &syscall.SysProcAttr{Setsid: true}
	if uid, gid := s.OSUser(); uid >= 0 {
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	cmd.SysProcAttr, cmd.Dir = attr, "/"
	logf, err := os.Create(filepath.Join(t.TempDir(), "pg_ctl.out")) // a file, not a pipe: the server keeps it open
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("pg_ctl restart: %v\n%s", err, b)
	}
	pm := s.PostmasterPID()
	if pm == 0 || pm == old {
		t.Fatalf("postmaster after restart: %d (was %d)", pm, old)
	}
	if err := s.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if err := s.Reload(); err != nil {
		t.Errorf("reload after an external restart: %v", err)
	}
	s.Stop()
	if _, err := os.Stat("/proc/" + strconv.Itoa(pm)); err == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pm) + "/stat"); len(b) > 0 && !isZombie(b) {
			t.Errorf("postmaster %d still runs after Stop", pm)
		}
	}
	if _, err := os.Stat(s.Dir); err == nil {
		t.Errorf("%s left behind", s.Dir)
	}
}

func isZombie(stat []byte) bool {
	for i := len(stat) - 1; i >= 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] == 'Z'
		}
	}
	return false
}
