package cli

import (
	"bytes"
	"encoding/json"
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
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// asClusterUser runs the built command as the OS user that owns the
// cluster, the way an administrator runs `pgaegis fix` on the database
// host, with a private HOME and no client settings from the test.
func asClusterUser(t *testing.T, srv *localpg.Server, bin, home string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "LC_ALL=C"}
	cmd.Dir = home
	if os.Geteuid() == 0 {
		uid, gid := srv.OSUser()
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// privateHome is a directory the cluster's OS user owns, for the command
// itself, its journal and its HOME.
func privateHome(t *testing.T, srv *localpg.Server) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgaegis-fix-home-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		uid, gid := srv.OSUser()
		must(t, os.Chown(dir, uid, gid))
	}
	must(t, os.Chmod(dir, 0o700))
	return dir
}

// The issue's "done": on the weak test server, `pgaegis fix --apply
// --yes` as the cluster's OS user closes every critical and high finding
// that has an automatic fix, the server restarts, the admin still
// connects, a second plan is empty for critical/high, and `fix rollback`
// restores pg_hba.conf and postgresql.auto.conf byte for byte.
func TestFixApplyWeakServer(t *testing.T) {
	srv := startWeak(t)
	home := privateHome(t, srv)
	bin := filepath.Join(home, "pgaegis")
	src := buildPgaegis(t)
	data, err := os.ReadFile(src)
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	if os.Geteuid() == 0 {
		uid, gid := srv.OSUser()
		must(t, os.Chown(bin, uid, gid))
	}
	hbaPath := filepath.Join(srv.DataDir, "pg_hba.conf")
	autoPath := filepath.Join(srv.DataDir, "postgresql.auto.conf")
	hbaBefore, err := os.ReadFile(hbaPath)
	must(t, err)
	autoBefore, err := os.ReadFile(autoPath)
	must(t, err)

	// The operator's own path: the local socket, as the cluster's OS
	// user (peer once trust is gone).
	conn := []string{"-d", fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", srv.SocketDir, srv.Port, srv.AdminUser)}
	journal := filepath.Join(home, "journal")

	// The test (root) audits over TCP with the admin's password: peer on
	// the socket is for the cluster's OS user.
	tcp := append([]string{"--no-probe", "--pgdata", srv.DataDir}, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	before, _, _ := auditJSON(t, tcp...)
	highBefore := countHigh(before.Findings)

	code, out, errs := asClusterUser(t, srv, bin, home, append([]string{"fix", "--format", "json", "--journal-dir", journal}, conn...)...)
	if code == ExitError {
		t.Fatalf("fix (dry run) exit %d: %s", code, errs)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("fix --format json is not a plan: %v\n%s", err, out)
	}
	closes := map[string]bool{}
	for _, s := range p.Steps {
		for _, c := range s.Closes {
			closes[c.Rule+"\x00"+c.Object] = true
		}
	}
	if !p.NeedsRestart() {
		t.Errorf("the weak server's plan needs no restart (shared_preload_libraries, unix_socket_permissions, logging_collector do)")
	}

	start := time.Now()
	code, out, errs = asClusterUser(t, srv, bin, home, append([]string{"fix", "--apply", "--yes", "--journal-dir", journal}, conn...)...)
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("fix --apply --yes exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	t.Logf("fix --apply on the weak server: %d steps in %s", len(p.Steps), took.Round(time.Millisecond))

	// The admin still connects over TCP (now hostssl + scram-sha-256).
	ctx := pgtest.Ctx(t)
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatalf("the admin no longer connects over TCP after the fix: %v", err)
	}
	c.Close(ctx)

	after, _, _ := auditJSON(t, tcp...)
	left := 0
	for _, f := range after.Findings {
		if f.Status == rules.Fail && f.Severity >= rules.High && closes[f.Key()] {
			t.Errorf("still failing after the fix that claimed it: %s %s (%s)", f.Rule, f.Object, f.Evidence)
		}
		if f.Status == rules.Fail && f.Severity >= rules.High {
			left++
		}
	}
	t.Logf("critical/high failing findings: %d before, %d after (the rest are manual)", highBefore, left)

	code, out, errs = asClusterUser(t, srv, bin, home, append([]string{"fix", "--format", "json", "--min-severity", "high", "--journal-dir", journal}, conn...)...)
	var second plan.Plan
	if err := json.Unmarshal([]byte(out), &second); err != nil {
		t.Fatalf("second fix: exit %d %v\n%s\n%s", code, err, out, errs)
	}
	for _, s := range second.Steps {
		t.Errorf("second plan is not empty: step %s %s closes %v", s.ID, s.Summary, s.Closes)
	}

	// Every severity: what is left after the fix is manual, or held with a reason.
	code, out, errs = asClusterUser(t, srv, bin, home, append([]string{"fix", "--format", "json", "--journal-dir", journal}, conn...)...)
	var rest plan.Plan
	if err := json.Unmarshal([]byte(out), &rest); err != nil {
		t.Fatalf("third fix: exit %d %v\n%s\n%s", code, err, out, errs)
	}
	for _, s := range rest.Steps {
		t.Errorf("plan after the fix is not empty: step %s %s closes %v", s.ID, s.Summary, s.Closes)
	}
	t.Logf("after the fix: %d manual, %d held", len(rest.Manual), len(rest.Held))
	for _, h := range rest.Held {
		t.Logf("held: %s %s: %s", h.Rule, h.Object, h.Why)
	}

	code, out, errs = asClusterUser(t, srv, bin, home, "fix", "history", "--format", "json", "--journal-dir", journal)
	if code != 0 || !strings.Contains(out, p.ID[:8]) {
		t.Errorf("fix history: exit %d\n%s\n%s", code, out, errs)
	}
	var hist []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &hist); err != nil || len(hist) == 0 {
		t.Fatalf("fix history --format json: %v\n%s", err, out)
	}
	code, out, errs = asClusterUser(t, srv, bin, home, append([]string{"fix", "rollback", hist[0].ID, "--journal-dir", journal}, conn...)...)
	if code != 0 {
		t.Fatalf("fix rollback exit %d\n%s\n%s", code, out, errs)
	}
	hbaAfter, _ := os.ReadFile(hbaPath)
	autoAfter, _ := os.ReadFile(autoPath)
	if !bytes.Equal(hbaAfter, hbaBefore) {
		t.Errorf("pg_hba.conf after rollback differs:\n%s\nwant:\n%s", hbaAfter, hbaBefore)
	}
	if !bytes.Equal(autoAfter, autoBefore) {
		t.Errorf("postgresql.auto.conf after rollback differs:\n%s\nwant:\n%s", autoAfter, autoBefore)
	}
	if c, err := srv.Connect(ctx, "postgres"); err != nil {
		t.Errorf("the admin does not connect after the rollback: %v", err)
	} else {
		c.Close(ctx)
	}
}

func countHigh(fs []rules.Finding) int {
	n := 0
	for _, f := range fs {
		if f.Status == rules.Fail && f.Severity >= rules.High {
			n++
		}
	}
	return n
}
