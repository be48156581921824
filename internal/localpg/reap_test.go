package localpg_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// deadPid is the pid of a process that has exited.
func deadPid(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func postmasterOf(t *testing.T, srv *localpg.Server) int {
	b, err := os.ReadFile(filepath.Join(srv.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	return pid
}

func TestReapOrphans(t *testing.T) {
	tmp, err := os.MkdirTemp("", "pgaegis-reap-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(tmp, 0o755) // the server's OS user must reach its directory
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp) // only this test's clusters are candidates

	cases := []struct {
		name    string
		owner   func(t *testing.T) string // marker content; "" keeps ours
		chown   bool                      // marker owned by another uid
		reaped  bool
		stopped bool
	}{
		{name: "owner alive", reaped: false},
		{name: "owner gone, postmaster orphaned", owner: func(t *testing.T) string { return fmt.Sprintf("%d 1\n", deadPid(t)) }, reaped: true, stopped: true},
		{name: "pid reused by another process", owner: func(t *testing.T) string { return fmt.Sprintf("%d 1\n", os.Getpid()) }, reaped: true, stopped: true},
		{name: "marker of another user", owner: func(t *testing.T) string { return fmt.Sprintf("%d 1\n", deadPid(t)) }, chown: true, reaped: false},
		{name: "unreadable marker", owner: func(t *testing.T) string { return "garbage" }, reaped: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.chown && os.Geteuid() != 0 {
				t.Skip("needs root to give the marker to another user")
			}
			srv := pgtest.Start(t, localpg.Options{})
			marker := filepath.Join(srv.Dir, "owner")
			if c.owner != nil {
				if err := os.WriteFile(marker, []byte(c.owner(t)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if c.chown {
				uid, gid := srv.OSUser()
				if err := os.Chown(marker, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
			pm := postmasterOf(t, srv)
			var got *localpg.Reaped
			for _, r := range localpg.ReapOrphans() {
				if r.Dir == srv.Dir {
					got = &r
				}
			}
			_, statErr := os.Stat(srv.Dir)
			if gone := os.IsNotExist(statErr); gone != c.reaped || (got != nil) != c.reaped {
				t.Fatalf("reaped = %v (directory gone %v), want %v", got, gone, c.reaped)
			}
			if got != nil && got.Err != nil {
				t.Errorf("reap error: %v", got.Err)
			}
			if c.stopped && (got == nil || got.Stopped != pm) {
				t.Errorf("the orphaned postmaster %d was not reported stopped: %+v", pm, got)
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pm)); c.stopped && err == nil {
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pm)); !strings.Contains(string(b), ") Z") {
					t.Errorf("postmaster %d still runs", pm)
				}
			}
		})
	}
}
