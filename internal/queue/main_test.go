package queue

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/store"
)

// workerEnv turns the test binary into a worker process (see workerMain).
const workerEnv = "PGAEGIS_QUEUE_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" {
		os.Exit(workerMain())
	}
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// workerMain runs one worker as its own process, configured by
// PGAEGIS_QT_* variables, until SIGTERM (or SIGKILL). Its mode:
//   - "normal": scans as testScan does;
//   - "hang": every scan sleeps on the target until cancelled, so the
//     worker is provably mid-scan when the test kills it;
//   - "diewrite": the worker kills itself right after its first scan is
//     written, before the job is marked done.
func workerMain() int {
	env := func(k string) string { return os.Getenv("PGAEGIS_QT_" + k) }
	dur := func(k string) time.Duration { d, _ := time.ParseDuration(env(k)); return d }
	num := func(k string) int { n, _ := strconv.Atoi(env(k)); return n }
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	inv, err := inventory.Load(env("INVENTORY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	st, err := store.Open(ctx, env("STORE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer st.Close()
	id, mode := env("ID"), env("MODE")
	if mode == "diewrite" {
		afterWrite = func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	}
	w, err := StartWorker(ctx, WorkerConfig{
		URL: env("STORE"), Store: st, Inventory: inv, ID: id, Concurrency: num("CONCURRENCY"),
		RescueAfter: dur("RESCUE"), Backoff: dur("BACKOFF"), Log: os.Stdout,
		Scan: func(ctx context.Context, srv inventory.Server) store.NewScan { return testScan(ctx, srv, id, mode) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w.Stop(sctx)
	return 0
}

// testScan is a real, small scan: it logs in to the target (as worker
// id, in application_name), takes the job's server advisory lock there
// (held by another session: two workers on one job, recorded in the
// target's table lock_clashes), and reads the server's version. Servers named
// flaky-* fail until the target's sequence says it is their third try.
func testScan(ctx context.Context, srv inventory.Server, id, mode string) store.NewScan {
	res := store.NewScan{StartedAt: time.Now().UTC(), Status: store.OK}
	done := func(s store.Status, err error) store.NewScan {
		res.Status, res.FinishedAt = s, time.Now().UTC()
		if err != nil {
			res.Message = err.Error()
			if ctx.Err() != nil {
				res.Status = store.Timeout
			}
		}
		return res
	}
	c, err := srv.ConnConfig()
	if err != nil {
		return done(store.Error, err)
	}
	c.Config.RuntimeParams["application_name"] = id
	conn, err := pgx.ConnectConfig(ctx, c.Config)
	if err != nil {
		return done(store.Unreachable, err)
	}
	defer conn.Close(context.Background())
	if mode == "hang" {
		_, err := conn.Exec(ctx, `SELECT pg_sleep(3600)`)
		return done(store.Error, err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, srv.Name).Scan(&got); err != nil {
		return done(store.Error, err)
	}
	if !got {
		conn.Exec(ctx, `INSERT INTO lock_clashes (server, worker) VALUES ($1, $2)`, srv.Name, id)
	}
	if len(srv.Name) > 6 && srv.Name[:6] == "flaky-" {
		var n int
		if err := conn.QueryRow(ctx, `SELECT nextval('flaky')`).Scan(&n); err != nil {
			return done(store.Error, err)
		}
		if n < 3 {
			return done(store.Error, fmt.Errorf("flaky: try %d fails", n))
		}
	}
	// Long enough that the workers overlap, short against the timeout.
	if _, err := conn.Exec(ctx, `SELECT pg_sleep(0.2)`); err != nil {
		return done(store.Error, err)
	}
	var v string
	if err := conn.QueryRow(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return done(store.Error, err)
	}
	res.Snapshot = &snapshot.Snapshot{Server: &snapshot.Server{Version: v}}
	return done(store.OK, nil)
}
