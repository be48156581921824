package queue

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/store"
)

var dbSeq atomic.Int64

// storeURL makes a fresh store database on the shared server.
func storeURL(t *testing.T) string {
	srv := pgtest.Shared(t)
	name := fmt.Sprintf("queue_%d_%d", os.Getpid(), dbSeq.Add(1))
	if err := srv.Exec(pgtest.Ctx(t), `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() { _ = srv.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password='%s' dbname=%s sslmode=disable",
		srv.Port, srv.AdminUser, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(srv.Password), name)
}

// oracle is a plain connection to the store's database: river's tables
// and the scans as PostgreSQL holds them.
func oracle(t *testing.T, url string) *pgx.Conn {
	c, err := pgx.Connect(pgtest.Ctx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// target is a server to scan, with its admin password in a 0600 file
// for the inventory.
type target struct {
	srv    *localpg.Server
	pwFile string
}

func startTarget(t *testing.T, dir string) target {
	srv := pgtest.Start(t, localpg.Options{})
	p := filepath.Join(dir, fmt.Sprintf("pw-%d", srv.Port))
	if err := os.WriteFile(p, []byte(srv.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return target{srv, p}
}

func (tg target) entry(name string, timeout time.Duration) string {
	return fmt.Sprintf("  - name: %s\n    conninfo: host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable connect_timeout=5\n    password_file: %s\n    timeout: %s\n",
		name, tg.srv.Port, tg.srv.AdminUser, tg.pwFile, timeout)
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

// proc is a worker process.
type proc struct {
	id       string
	cmd      *exec.Cmd
	out      bytes.Buffer
	exited   chan struct{}
	exitedAs error
}

type workerOpts struct {
	url, inventory, mode string
	concurrency          int
	rescue, backoff      time.Duration
}

// startWorker re-executes the test binary as a worker (TestMain).
func startWorker(t *testing.T, id string, o workerOpts) *proc {
	p := &proc{id: id, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Env = append(os.Environ(), workerEnv+"=1",
		"PGAEGIS_QT_ID="+id, "PGAEGIS_QT_MODE="+o.mode, "PGAEGIS_QT_STORE="+o.url, "PGAEGIS_QT_INVENTORY="+o.inventory,
		fmt.Sprintf("PGAEGIS_QT_CONCURRENCY=%d", o.concurrency), "PGAEGIS_QT_RESCUE="+o.rescue.String(),
		"PGAEGIS_QT_BACKOFF="+o.backoff.String())
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exitedAs = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("worker %s output:\n%s", p.id, p.out.String())
		}
	})
	return p
}

// waitFor polls the database until cond holds; the deadline only stops
// a hung test, it measures nothing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func count(t *testing.T, c *pgx.Conn, q string, args ...any) int {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestWorkersShareQueue: three worker processes (one killed mid-scan)
// and one that dies between writing a scan and completing its job share
// 32 jobs: 30 plain scans, one server that fails twice, one that is
// never reached.
// ORACLE: river's job rows (state, attempt, attempted_by) and the scans
// table in PostgreSQL, the targets' pg_stat_activity for "mid-scan", and
// the targets' advisory locks for "one worker per job".
func TestWorkersShareQueue(t *testing.T) {
	ctx := pgtest.Ctx(t)
	dir := t.TempDir()
	url := storeURL(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	q, err := Open(ctx, url, st)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.MaxAttempts = 4
	db := oracle(t, url)

	a, b := startTarget(t, dir), startTarget(t, dir)
	for _, tg := range []target{a, b} {
		if err := tg.srv.Exec(ctx, `CREATE SEQUENCE flaky`, `CREATE TABLE lock_clashes (server text, worker text)`); err != nil {
			t.Fatal(err)
		}
	}
	// The timeout bounds the hanging scans; the rescue time must exceed
	// it plus the margin, and is what a killed worker's job waits for.
	const timeout = 8 * time.Second
	var inv strings.Builder
	inv.WriteString("servers:\n")
	var names []string
	for i := range 30 {
		name := fmt.Sprintf("slow-%02d", i)
		names = append(names, name)
		inv.WriteString([]target{a, b}[i%2].entry(name, timeout))
	}
	inv.WriteString(a.entry("flaky-1", timeout))
	inv.WriteString(fmt.Sprintf("  - name: dead-1\n    conninfo: host=127.0.0.1 port=%d user=x dbname=postgres sslmode=disable connect_timeout=2\n    timeout: %s\n", closedPort(t), timeout))
	invPath := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	o := workerOpts{url: url, inventory: invPath, mode: "normal", concurrency: 2,
		rescue: timeout + timeoutMargin + 2*time.Second, backoff: 200 * time.Millisecond}

	// The victim and the self-killer start first, so they get jobs.
	victimOpts, dieOpts := o, o
	victimOpts.mode, victimOpts.concurrency = "hang", 1
	dieOpts.mode, dieOpts.concurrency = "diewrite", 1
	victim := startWorker(t, "w3-victim", victimOpts)
	dier := startWorker(t, "w4-dies-after-write", dieOpts)
	if _, err := q.Enqueue(ctx, append(names, "flaky-1", "dead-1")); err != nil {
		t.Fatal(err)
	}

	// Mid-scan, as the target sees it: the victim's session sleeping.
	waitFor(t, "the victim to be mid-scan", func() bool {
		n := 0
		for _, tg := range []target{a, b} {
			c := pgtest.Conn(t, tg.srv, "postgres")
			n += count(t, c, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'w3-victim' AND query LIKE '%pg_sleep(3600)%' AND state = 'active'`)
			c.Close(ctx)
		}
		return n > 0
	})
	var victimJob int64
	if err := db.QueryRow(ctx, `SELECT id FROM pgaegis.river_job WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = 'w3-victim'`).Scan(&victimJob); err != nil {
		t.Fatalf("the victim's running job: %v", err)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	// A dead client's backend sleeps on; the server's statement_timeout
	// would end it in production. Release its advisory-lock-free session.
	for _, tg := range []target{a, b} {
		tg.srv.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'w3-victim'`)
	}
	<-dier.exited // it killed itself after its first write
	var dierJob int64
	if err := db.QueryRow(ctx, `SELECT id FROM pgaegis.river_job WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = 'w4-dies-after-write'`).Scan(&dierJob); err != nil {
		t.Fatalf("the self-killed worker's job: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM pgaegis.scans WHERE job_key LIKE $1`, fmt.Sprintf("river:%d@%%", dierJob)); n != 1 {
		t.Fatalf("the self-killed worker's job %d has %d scans before its retry, want the 1 it wrote", dierJob, n)
	}

	startWorker(t, "w1", o)
	startWorker(t, "w2", o)
	waitFor(t, "every job to finish", func() bool {
		return count(t, db, `SELECT count(*) FROM pgaegis.river_job WHERE state NOT IN ('completed', 'discarded', 'cancelled')`) == 0
	})

	// Every job exactly once: 32 jobs, one scan each, keyed by its job.
	if n := count(t, db, `SELECT count(*) FROM pgaegis.river_job`); n != 32 {
		t.Fatalf("%d jobs, want 32", n)
	}
	if n := count(t, db, `SELECT count(*) FROM pgaegis.scans`); n != 32 {
		t.Errorf("%d scans, want 32 (one per job)", n)
	}
	rows, err := db.Query(ctx, `SELECT j.id, j.args->>'server', j.state, j.attempt, j.attempted_by, j.created_at,
		(SELECT count(*) FROM pgaegis.scans s WHERE s.job_key LIKE 'river:' || j.id || '@%'),
		(SELECT string_agg(s.status, ',') FROM pgaegis.scans s WHERE s.job_key LIKE 'river:' || j.id || '@%')
		FROM pgaegis.river_job j ORDER BY j.id`)
	if err != nil {
		t.Fatal(err)
	}
	type job struct {
		id            int64
		server, state string
		attempt       int
		by            []string
		created       time.Time
		scans         int
		status        *string
	}
	byServer := map[string]job{}
	for rows.Next() {
		var j job
		if err := rows.Scan(&j.id, &j.server, &j.state, &j.attempt, &j.by, &j.created, &j.scans, &j.status); err != nil {
			t.Fatal(err)
		}
		byServer[j.server] = j
		if j.scans != 1 {
			t.Errorf("job %d (%s, %s): %d scans, want 1", j.id, j.server, j.state, j.scans)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if j := byServer[name]; j.state != "completed" || j.status == nil || *j.status != "ok" {
			t.Errorf("%s: job %+v, want completed with an ok scan", name, j)
		}
	}
	for _, id := range []int64{victimJob, dierJob} {
		var j job
		for _, x := range byServer {
			if x.id == id {
				j = x
			}
		}
		last := j.by[len(j.by)-1]
		if j.state != "completed" || len(j.by) < 2 || (last != "w1" && last != "w2") {
			t.Errorf("killed worker's job %d (%s): %s, attempted by %v: want completed by w1 or w2", id, j.server, j.state, j.by)
		}
	}
	if j := byServer["flaky-1"]; j.state != "completed" || j.attempt < 3 || *j.status != "ok" {
		t.Errorf("flaky-1: %s after %d attempts (scan %v), want completed after at least 3", j.state, j.attempt, *j.status)
	}
	if j := byServer["dead-1"]; j.state != "discarded" || j.attempt != 4 || *j.status != "unreachable" {
		t.Errorf("dead-1: %s after %d attempts (scan %v), want discarded after 4 with its unreachable scan recorded", j.state, j.attempt, *j.status)
	}
	for _, tg := range []target{a, b} {
		c := pgtest.Conn(t, tg.srv, "postgres")
		if n := count(t, c, `SELECT count(*) FROM lock_clashes`); n != 0 {
			t.Errorf("target %d: %d scans found their job's lock held by another worker", tg.srv.Port, n)
		}
		c.Close(ctx)
	}
}
