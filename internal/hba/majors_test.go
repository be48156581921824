package hba

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// One server per major serves every oracle of the package: starting six
// clusters once costs less than starting them per test on a busy
// machine. The tests that use them run one after the other (top-level
// tests are not parallel), and each puts pg_hba.conf, pg_ident.conf and
// the settings it changes back.

type majorServer struct {
	once sync.Once
	srv  *localpg.Server
	err  error
}

var (
	majorMu      sync.Mutex
	majorServers = map[int]*majorServer{}
)

func serverFor(t *testing.T, major int) *localpg.Server {
	t.Helper()
	majorMu.Lock()
	ms := majorServers[major]
	if ms == nil {
		ms = &majorServer{}
		majorServers[major] = ms
	}
	majorMu.Unlock()
	ms.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		ms.srv, ms.err = localpg.Start(ctx, localpg.Options{
			Version: strconv.Itoa(major), Listen: "127.0.0.1,::1", Init: pgtest.SelfSignedTLS,
			Conf: []string{"ssl = on", "log_connections = off"},
		})
	})
	if ms.err != nil {
		t.Fatalf("starting PostgreSQL %d: %v", major, ms.err)
	}
	return ms.srv
}

func stopMajorServers() {
	majorMu.Lock()
	defer majorMu.Unlock()
	for _, ms := range majorServers {
		if ms.srv != nil {
			ms.srv.Stop()
		}
	}
}

// reloadUntilAdminConnects reloads the restored pg_hba.conf and waits
// until the admin's login works again: SIGHUP is asynchronous, and the
// next test's first connection could otherwise still meet this test's
// last rules.
func reloadUntilAdminConnects(t *testing.T, srv *localpg.Server) {
	if err := srv.Reload(); err != nil {
		t.Errorf("reloading: %v", err)
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := srv.Connect(ctx, "postgres")
		if err == nil {
			c.Close(ctx)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			t.Errorf("the admin cannot log in after restoring pg_hba.conf: %v", err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restoreFile puts a server file back as it was when the test ends.
func restoreFile(t *testing.T, srv *localpg.Server, path string) {
	orig, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.WriteFile(path, string(orig), 0o600); err != nil {
			t.Errorf("restoring %s: %v", path, err)
		}
	})
}

// summary prints the line the lead collects from every oracle.
func summary(t *testing.T, oracle string, major, cases, disagree int, start time.Time) {
	t.Logf("ORACLE %s pg%d: cases=%d disagreements=%d seconds=%.1f", oracle, major, cases, disagree, time.Since(start).Seconds())
}
