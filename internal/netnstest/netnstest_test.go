package netnstest

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// ORACLE: the server sees the client address the harness chose: a real
// login from each client address, over the veth pair, to a PostgreSQL
// server running inside the server namespace.
func TestLoginFromChosenAddress(t *testing.T) {
	p := New(t)
	ctx := pgtest.Ctx(t)
	srv := pgtest.Start(t, localpg.Options{
		NetNS:  p.Server,
		Listen: "127.0.0.1,192.0.2.1,198.51.100.1,2001:db8:1::1",
		HBA:    "local all all scram-sha-256\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n",
	})
	for _, c := range []struct{ src, dst string }{
		{"192.0.2.10", "192.0.2.1"},
		{"198.51.100.130", "198.51.100.1"},
		{"192.0.2.77", "198.51.100.1"},
		{"2001:db8:1::8000:10", "2001:db8:1::1"},
	} {
		cfg := srv.ConnConfig("postgres")
		cfg.Host = c.dst
		cfg.TLSConfig = nil
		cfg.DialFunc = p.DialFunc(netip.MustParseAddr(c.src))
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("%s -> %s: %v", c.src, c.dst, err)
		}
		var got string
		if err := conn.QueryRow(ctx, "SELECT host(inet_client_addr())").Scan(&got); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if got != c.src {
			t.Errorf("%s -> %s: the server saw %s", c.src, c.dst, got)
		}
	}
	// A port nobody listens on answers with a reset.
	out, err := p.Connect(ctx, netip.MustParseAddr("192.0.2.10"), netip.MustParseAddrPort("192.0.2.1:1"), 10*time.Second)
	if err != nil || out != Refused {
		t.Errorf("closed port: %v %v", out, err)
	}
	// The host's own namespace never gets these addresses.
	if b, _ := os.ReadFile("/proc/net/fib_trie"); len(b) > 0 && strings.Contains(string(b), "192.0.2.1") {
		t.Errorf("192.0.2.1 is configured in the test process's namespace")
	}
}
