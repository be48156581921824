package fleet

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/store"
)

func closedPorts(t *testing.T, n int) []int { return pgtest.ClosedPorts(t, n) }

// silentListener accepts connections and never answers: a server that
// hangs after the TCP handshake (a stuck process, a black-holing proxy).
func silentListener(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// writeInventory writes an inventory of one entry per port (name
// prefix-N) and loads it.
func writeInventory(t *testing.T, entries []string) *inventory.Inventory {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	body := "servers:\n" + strings.Join(entries, "")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func entry(name string, port int, extra string) string {
	return fmt.Sprintf("  - name: %s\n    conninfo: host=127.0.0.1 port=%d user=scanner dbname=postgres sslmode=disable\n    password_env: FLEET_TEST_PW\n%s", name, port, extra)
}

const testSecret = "s3cret-fleet-password-XYZ"

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestFiveHundredMostlyClosed: 499 closed loopback ports and one silent
// listener. Every entry is recorded with the right status, the silent one
// holds one job slot for its connect timeout and no more, and no message
// holds the password.
// ORACLE: the kernel refuses the closed ports (bound, never listening); the silent listener is a
// real socket that accepts and never answers.
func TestFiveHundredMostlyClosed(t *testing.T) {
	t.Setenv("FLEET_TEST_PW", testSecret)
	ports := closedPorts(t, 499)
	var entries []string
	for i, p := range ports {
		entries = append(entries, entry(fmt.Sprintf("closed-%03d", i), p, ""))
	}
	silent := silentListener(t)
	entries = append(entries, entry("silent", silent, "    connect_timeout: 2s\n    timeout: 30s\n"))
	inv := writeInventory(t, entries)
	st := openSQLite(t)
	start := time.Now()
	sum, err := Scan(context.Background(), inv.Servers, st, Options{Jobs: 8, NoProbe: true, NoFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("500-entry inventory (499 closed ports, 1 silent listener) scanned in %s with 8 jobs", time.Since(start).Round(time.Millisecond))
	if sum.Servers != 500 || sum.ByStatus[store.Unreachable] != 499 || sum.ByStatus[store.Timeout] != 1 {
		t.Errorf("summary: %d servers, by status %v; want 499 unreachable and 1 timeout", sum.Servers, sum.ByStatus)
	}
	servers, err := st.Servers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 500 {
		t.Fatalf("%d servers recorded, want 500", len(servers))
	}
	for _, s := range servers {
		if s.Latest == nil || s.LatestOK != nil {
			t.Errorf("%s: latest %v, latest ok %v", s.Name, s.Latest, s.LatestOK)
			continue
		}
		want := store.Unreachable
		if s.Name == "silent" {
			want = store.Timeout
		}
		if s.Latest.Status != want {
			t.Errorf("%s: status %s (%s), want %s", s.Name, s.Latest.Status, s.Latest.Message, want)
		}
		if s.Latest.Message == "" || strings.Contains(s.Latest.Message, testSecret) {
			t.Errorf("%s: message %q: empty or holding the password", s.Name, s.Latest.Message)
		}
	}
}

// TestCancelRecordsOnlyFinishedScans: Ctrl-C while a silent server holds
// a scan. The finished scans are in the store, the interrupted one is not
// (not even as an error), and Scan returns promptly with the context's
// error.
func TestCancelRecordsOnlyFinishedScans(t *testing.T) {
	t.Setenv("FLEET_TEST_PW", testSecret)
	ports := closedPorts(t, 3)
	entries := []string{entry("silent", silentListener(t), "    connect_timeout: 10m\n    timeout: 20m\n")}
	for i, p := range ports {
		entries = append(entries, entry(fmt.Sprintf("closed-%d", i), p, ""))
	}
	inv := writeInventory(t, entries)
	st := openSQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := Options{Jobs: 4, NoProbe: true, NoFiles: true, Progress: func(done, total int, s store.NewScan) {
		if done == 3 {
			cancel() // the three closed ports are recorded; the silent one hangs
		}
	}}
	sum, err := Scan(ctx, inv.Servers, st, opts)
	if err == nil || ctx.Err() == nil {
		t.Fatalf("Scan returned %v after cancellation", err)
	}
	if sum.Interrupted != 1 {
		t.Errorf("interrupted %d, want 1", sum.Interrupted)
	}
	servers, err := st.Servers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range servers {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "closed-0,closed-1,closed-2" {
		t.Errorf("recorded %v, want the three closed servers only", names)
	}
}

// TestScanOneBadCredentialReference: a password_env that is not set is
// an error naming the variable, recorded without connecting.
func TestScanOneBadCredentialReference(t *testing.T) {
	inv := writeInventory(t, []string{entry("nopw", 1, "")})
	t.Setenv("FLEET_TEST_PW", "") // empty counts as unset
	ns := ScanOne(context.Background(), inv.Servers[0], Options{})
	if ns.Status != store.Error || !strings.Contains(ns.Message, "FLEET_TEST_PW") {
		t.Errorf("status %s, message %q", ns.Status, ns.Message)
	}
}

func TestClassify(t *testing.T) {
	for msg, want := range map[string]store.Status{
		"connecting to host=x: dial tcp 127.0.0.1:5: connect: connection refused":                  store.Unreachable,
		"connecting to host=x: the server did not complete the login in time (connect timeout 2s)": store.Timeout,
		"connecting to host=x: password authentication failed for user \"a\" (SQLSTATE 28P01)":     store.Error,
		"connecting to host=nowhere.invalid: hostname resolving error: lookup nowhere.invalid":     store.Unreachable,
	} {
		if got := classify(msg); got != want {
			t.Errorf("classify(%q) = %s, want %s", msg, got, want)
		}
	}
}
