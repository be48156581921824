package rotate

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/secretsink"
)

// app is an application that, every ~50 ms, reads the current secret
// from the file rotate delivers to, opens a new connection with it,
// creates a table and reads every table made so far.
type app struct {
	srv      *localpg.Server
	db, path string
	mu       sync.Mutex
	tables   []string
	loops    int
	failures []string
	users    map[string]int
}

func (a *app) run(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		a.once(ctx, i)
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (a *app) fail(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failures = append(a.failures, fmt.Sprintf(format, args...))
}

func (a *app) once(ctx context.Context, i int) {
	sec, err := readSecretErr(a.path) // replaced by a rename: never half a file
	if err != nil {
		a.fail("%v", err)
		return
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable connect_timeout=30", a.srv.Port))
	if err != nil {
		a.fail("%v", err)
		return
	}
	cfg.User, cfg.Password, cfg.Database = sec.User, sec.Password, a.db
	// Its own bound, not the loop's: a query cut short by the end of
	// the test is not a failure of the rotation.
	qctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.ConnectConfig(qctx, cfg)
	if err != nil {
		a.fail("login as %s: %v", sec.User, err)
		return
	}
	defer c.Close(context.Background())
	name := fmt.Sprintf("t_%03d", i)
	if _, err := c.Exec(qctx, "CREATE TABLE "+name+" (x int)"); err != nil {
		a.fail("as %s: create %s: %v", sec.User, name, err)
		return
	}
	a.mu.Lock()
	a.tables = append(a.tables, name)
	tables := append([]string(nil), a.tables...)
	a.loops++
	a.users[sec.User]++
	a.mu.Unlock()
	for _, t := range tables {
		var n int
		if err := c.QueryRow(qctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			a.fail("as %s: select from %s: %v", sec.User, t, err)
		}
	}
}

// ORACLE: a running application's logins and queries (pgx), psql logins
// with each delivered password, pg_class owners, the roles' comments.
func TestAlternateUnderLoad(t *testing.T) {
	srv := shared(t)
	quietExec(t, srv, "postgres", "DROP DATABASE IF EXISTS alt_db")
	dropRoles(t, srv, "alt_own_a", "alt_own_b", "alt_own")
	quietExec(t, srv, "postgres", "CREATE ROLE alt_own NOLOGIN", "CREATE DATABASE alt_db OWNER alt_own")
	dir := t.TempDir()
	path := filepath.Join(dir, "app.json")
	root := filepath.Join(dir, "journal")
	verify := tcpPlain(t, srv, "alt_db", "ignored", "")
	var lastPlan string
	rot := func() *Result {
		t.Helper()
		var prog progressLog
		res, err := Rotate(pgtest.Ctx(t), socketAdmin(srv, "postgres"), Options{Role: "alt_own", Strategy: Alternate, Verify: verify,
			JournalRoot: root, Progress: prog.f, Sinks: []secretsink.Sink{fileSink(t, path, secretsink.FormatJSON)}})
		record(&prog, res, err)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		lastPlan = res.PlanID
		return res
	}
	first := rot()
	if len(first.Created) != 2 || first.User != "alt_own_a" || first.Previous != "" {
		t.Fatalf("first rotation: %+v", first)
	}
	a := &app{srv: srv, db: "alt_db", path: path, users: map[string]int{}}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.run(ctx) }()
	defer func() { stop(); wg.Wait() }()

	users := []string{first.User}
	passwords := []string{readSecret(t, path).Password}
	for k := 1; k <= 5; k++ {
		time.Sleep(300 * time.Millisecond) // the application works with the current secret
		res := rot()
		t.Logf("rotation %d: %s (previous %s) in %s: %v", k, res.User, res.Previous, res.Duration.Round(time.Millisecond), res.Stages)
		want := []string{"alt_own_a", "alt_own_b"}[k%2]
		sec := readSecret(t, path)
		if res.User != want || sec.User != want || res.Previous != users[len(users)-1] {
			t.Errorf("rotation %d: user %s (file %s), previous %s; want %s after %s", k, res.User, sec.User, res.Previous, want, users[len(users)-1])
		}
		users, passwords = append(users, sec.User), append(passwords, sec.Password)
		n := len(users) - 1
		if err := psqlLogin(t, srv, "127.0.0.1", users[n], passwords[n]); err != nil {
			t.Errorf("rotation %d: the new current: %v", k, err)
		}
		// The idle one keeps its password until the next rotation.
		if err := psqlLogin(t, srv, "127.0.0.1", users[n-1], passwords[n-1]); err != nil {
			t.Errorf("rotation %d: the previous login role lost its password: %v", k, err)
		}
		if n >= 2 {
			if err := psqlLogin(t, srv, "127.0.0.1", users[n-2], passwords[n-2]); err == nil {
				t.Errorf("rotation %d: the password from two rotations ago still logs in as %s", k, users[n-2])
			}
		}
		c := pgtest.Conn(t, srv, "postgres")
		var cur string
		if err := c.QueryRow(pgtest.Ctx(t), `SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1`, want).Scan(&cur); err != nil || !strings.HasPrefix(cur, "pgaegis rotate: current since") {
			t.Errorf("rotation %d: comment of %s: %q %v", k, want, cur, err)
		}
	}
	// Rolling the last rotation back makes the previous login role
	// current again (its secret back in the file) while the application
	// runs, and puts the older password back on the role it changed.
	last := users[len(users)-1]
	// A rollback takes the current password away by design: an application
	// that read the secret just before may fail once, so only the five
	// rotations count towards "no failed query".
	a.mu.Lock()
	failedBefore := append([]string(nil), a.failures...)
	a.mu.Unlock()
	rb, err := Rollback(pgtest.Ctx(t), socketAdmin(srv, "postgres"), root, lastPlan)
	record(nil, rb, err)
	if err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	n := len(users) - 1
	if sec := readSecret(t, path); sec.User != users[n-1] || sec.Password != passwords[n-1] {
		t.Errorf("after the rollback the file holds %s, want %s's secret back", sec.User, users[n-1])
	}
	if err := psqlLogin(t, srv, "127.0.0.1", last, passwords[n-2]); err != nil {
		t.Errorf("after the rollback %s's older password: %v", last, err)
	}
	if err := psqlLogin(t, srv, "127.0.0.1", last, passwords[n]); err == nil {
		t.Errorf("after the rollback %s's rolled-back password still logs in", last)
	}
	c0 := pgtest.Conn(t, srv, "postgres")
	var cur string
	if err := c0.QueryRow(pgtest.Ctx(t), `SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1`, users[n-1]).Scan(&cur); err != nil || !strings.HasPrefix(cur, "pgaegis rotate: current since") {
		t.Errorf("after the rollback the comment of %s: %q %v", users[n-1], cur, err)
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	t.Logf("application: %d loops, %d tables, logins by user %v", a.loops, len(a.tables), a.users)
	if len(failedBefore) > 0 {
		t.Errorf("%d failed application steps during the rotations, first: %s", len(failedBefore), strings.Join(failedBefore[:min(5, len(failedBefore))], "; "))
	}
	if n := len(a.failures) - len(failedBefore); n > 0 {
		t.Logf("%d application steps failed around the rollback (allowed: it takes the current password away): %s", n, a.failures[len(failedBefore)])
	}
	if a.loops < 10 || len(a.users) != 2 {
		t.Errorf("the application ran %d loops as %v: too little to prove anything", a.loops, a.users)
	}
	c := pgtest.Conn(t, srv, "alt_db")
	var notOwned, total int
	if err := c.QueryRow(pgtest.Ctx(t), `SELECT count(*) FILTER (WHERE relowner <> 'alt_own'::regrole), count(*) FROM pg_class WHERE relname LIKE 't\_%' AND relkind = 'r'`).Scan(&notOwned, &total); err != nil {
		t.Fatal(err)
	}
	if notOwned != 0 || total != len(a.tables) {
		t.Errorf("%d of %d tables not owned by alt_own (application made %d)", notOwned, total, len(a.tables))
	}
}
