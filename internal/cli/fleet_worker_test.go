package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestFleetWorkerRefusesSQLite(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "fleet.yaml")
	must(t, os.WriteFile(inv, []byte("servers:\n  - name: a\n    conninfo: host=127.0.0.1\n"), 0o644))
	t.Setenv("PGAEGIS_STORE", "")
	t.Setenv("PGAEGIS_INVENTORY", "")
	t.Chdir(t.TempDir())
	for _, cmd := range [][]string{{"fleet", "worker"}, {"fleet", "schedule", "--once"}, {"fleet", "enqueue", "--all"}} {
		code, _, errs := runCLI(t, append(cmd, "--inventory", inv, "--store", filepath.Join(t.TempDir(), "fleet.db"))...)
		if code != ExitError || !strings.Contains(errs, "needs a PostgreSQL store") {
			t.Errorf("%v on SQLite: exit %d, %s", cmd, code, errs)
		}
		code, _, errs = runCLI(t, append(cmd, "--inventory", inv)...)
		if code != ExitError || !strings.Contains(errs, "needs --store postgres://") {
			t.Errorf("%v without --store: exit %d, %s", cmd, code, errs)
		}
	}
	// The same inventory and store as fleet scan: $PGAEGIS_INVENTORY, then
	// ./pgaegis-inventory.yaml; $PGAEGIS_STORE. Reaching the SQLite refusal
	// means both were found.
	t.Setenv("PGAEGIS_STORE", filepath.Join(t.TempDir(), "env.db"))
	for _, cmd := range [][]string{{"fleet", "worker"}, {"fleet", "schedule", "--once"}, {"fleet", "enqueue", "--all"}} {
		code, _, errs := runCLI(t, cmd...)
		if code != ExitError || !strings.Contains(errs, "no inventory") {
			t.Errorf("%v with no inventory anywhere: exit %d, %s", cmd, code, errs)
		}
		t.Setenv("PGAEGIS_INVENTORY", inv)
		code, _, errs = runCLI(t, cmd...)
		if code != ExitError || !strings.Contains(errs, "needs a PostgreSQL store") {
			t.Errorf("%v from the environment: exit %d, %s", cmd, code, errs)
		}
		t.Setenv("PGAEGIS_INVENTORY", "")
	}
}

// TestFleetWorkersEndToEnd runs the commands as a user would: schedule
// and enqueue into a PostgreSQL store, two worker processes drain the
// queue, SIGTERM stops them.
// ORACLE: the store's scans table and river's jobs in PostgreSQL; the
// target's own server_version.
func TestFleetWorkersEndToEnd(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	must(t, srv.Exec(ctx, `DROP DATABASE IF EXISTS fleet_cli WITH (FORCE)`, `CREATE DATABASE fleet_cli`))
	t.Cleanup(func() { srv.Exec(context.Background(), `DROP DATABASE IF EXISTS fleet_cli WITH (FORCE)`) })
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	must(t, os.WriteFile(pw, []byte(srv.Password+"\n"), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	inv := filepath.Join(dir, "fleet.yaml")
	must(t, os.WriteFile(inv, []byte(fmt.Sprintf(`servers:
  - name: live
    conninfo: host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable
    password_file: %s
    schedule: every 1m
    timeout: 20s
  - name: gone
    conninfo: host=127.0.0.1 port=%d user=x dbname=postgres sslmode=disable connect_timeout=2
    timeout: 20s
`, srv.Port, srv.AdminUser, pw, closed)), 0o644))
	// The store's password travels in PGPASSWORD, never in argv.
	t.Setenv("PGPASSWORD", srv.Password)
	storeURL := fmt.Sprintf("postgres://%s@127.0.0.1:%d/fleet_cli?sslmode=disable", srv.AdminUser, srv.Port)
	args := []string{"--inventory", inv, "--store", storeURL}

	code, out, errs := runCLI(t, append([]string{"fleet", "schedule", "--once"}, args...)...)
	if code != ExitOK || strings.Count(out, "\tqueued") != 2 {
		t.Fatalf("schedule: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"fleet", "schedule", "--once"}, args...)...)
	if code != ExitOK || strings.Contains(out, "\tqueued") {
		t.Fatalf("schedule again queued anew: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"fleet", "enqueue", "--all", "--max-attempts", "2"}, args...)...)
	if code != ExitOK || strings.Count(out, "\tqueued") != 2 {
		t.Fatalf("enqueue: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, append([]string{"fleet", "enqueue", "nosuch"}, args...)...); code != ExitError || !strings.Contains(errs, `"nosuch" is not in`) {
		t.Errorf("enqueue of an unknown server: exit %d, %s", code, errs)
	}

	var logs [2]bytes.Buffer
	var cmds [2]*exec.Cmd
	for i := range cmds {
		cmds[i] = asCommand(append([]string{"fleet", "worker", "--id", fmt.Sprintf("cli-w%d", i+1), "--backoff", "100ms"}, args...)...)
		cmds[i].Stdout, cmds[i].Stderr = &logs[i], &logs[i]
		must(t, cmds[i].Start())
		c := cmds[i]
		t.Cleanup(func() { c.Process.Kill() })
	}
	db, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=%s password='%s' dbname=fleet_cli sslmode=disable",
		srv.Port, srv.AdminUser, strings.ReplaceAll(srv.Password, `'`, `\'`)))
	must(t, err)
	defer db.Close(context.Background())
	// The due slot of "live" and both ad hoc jobs finish; the next slot
	// waits for its minute (and may run too, should the test cross it).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n int
		must(t, db.QueryRow(ctx, `SELECT count(*) FROM pgaegis.river_job WHERE state IN ('completed', 'discarded')`).Scan(&n))
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained\nw1:\n%s\nw2:\n%s", logs[0].String(), logs[1].String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("worker %d after SIGTERM: %v\n%s", i+1, err, logs[i].String())
		}
	}
	var want string
	must(t, db.QueryRow(ctx, `SHOW server_version`).Scan(&want))
	rows, err := db.Query(ctx, `SELECT v.name, s.status, s.server_version, count(*) OVER (PARTITION BY s.job_key)
		FROM pgaegis.scans s JOIN pgaegis.servers v ON v.id = s.server_id ORDER BY v.name, s.id`)
	must(t, err)
	var got []string
	for rows.Next() {
		var name, status, version string
		var perJob int
		must(t, rows.Scan(&name, &status, &version, &perJob))
		if perJob != 1 {
			t.Errorf("%s: %d scans for one job", name, perJob)
		}
		if name == "live" && version != want {
			t.Errorf("live scanned as version %q, the server says %q", version, want)
		}
		got = append(got, name+":"+status)
	}
	must(t, rows.Err())
	// live: the due slot and the ad hoc scan (and perhaps the next slot);
	// gone: its ad hoc scan, recorded unreachable after its 2 attempts.
	var finished int
	must(t, db.QueryRow(ctx, `SELECT count(*) FROM pgaegis.river_job WHERE state IN ('completed', 'discarded')`).Scan(&finished))
	if all := strings.Join(got, " "); len(got) != finished || !strings.HasPrefix(all, "gone:unreachable live:ok live:ok") || strings.Count(all, "gone") != 1 {
		t.Errorf("scans: %v for %d finished jobs\nw1:\n%s\nw2:\n%s", got, finished, logs[0].String(), logs[1].String())
	}
	if strings.Contains(logs[0].String()+logs[1].String(), srv.Password) {
		t.Error("a worker printed the store's password")
	}
}

// A password in --store is warned about, without echoing it.
func TestStorePasswordWarning(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		url  string
		warn bool
	}{
		{"postgres://u:Sekr3tPw@127.0.0.1:1/x?connect_timeout=1", true},
		{"host=127.0.0.1 port=1 password=Sekr3tPw connect_timeout=1", true},
		{"host=127.0.0.1 port=1 connect_timeout=1", false},
		{filepath.Join(dir, "fleet.db"), false},
	} {
		_, out, errs := runCLI(t, "fleet", "report", "--no-evidence", "--store", c.url)
		if got := strings.Contains(errs, "--store holds a password"); got != c.warn {
			t.Errorf("%q: warned %v, want %v: %s", c.url, got, c.warn, errs)
		}
		if strings.Contains(errs+out, "Sekr3tPw") {
			t.Errorf("%q: the password is shown: %s", c.url, errs)
		}
	}
}
