// Package netnstest gives a test two network namespaces of its own joined
// by a veth pair: a "server" side and a "client" side, with
// documentation-range addresses (192.0.2.0/24, 198.51.100.0/24,
// 2001:db8::/32) that exist only inside them. Nothing a test sends there
// can leave the machine, and the host's own network is never touched.
//
// Under CI=true a machine that cannot make namespaces fails the test;
// elsewhere the test skips and says why.
package netnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/netns"
)

// Server-side and client-side addresses. Each subnet is on the one veth
// link, so every client address reaches every server address directly.
var (
	ServerAddrs = []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/24"),
		netip.MustParsePrefix("198.51.100.1/24"),
		netip.MustParsePrefix("2001:db8:1::1/64"),
	}
	ClientAddrs = []netip.Prefix{
		netip.MustParsePrefix("192.0.2.10/24"),
		netip.MustParsePrefix("192.0.2.77/24"),
		netip.MustParsePrefix("192.0.2.200/24"),
		netip.MustParsePrefix("198.51.100.10/24"),
		netip.MustParsePrefix("198.51.100.130/24"),
		netip.MustParsePrefix("2001:db8:1::10/64"),
		netip.MustParsePrefix("2001:db8:1::8000:10/64"),
	}
)

// Pair is two namespaces joined by a veth pair.
type Pair struct {
	Server, Client string // namespace names
}

var seq, probeSeq atomic.Int32

const prefix = "pgaegis-t"

// Available says why namespaces cannot be made here, or nil. It probes
// once per process: parallel tests probing at once collided on the
// probe's name and skipped (or, under CI=true, failed) with "File exists".
func Available() error { return available() }

var available = sync.OnceValue(probe)

func probe() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("no ip command (apt-get install iproute2)")
	}
	// Parallel tests probe at once: each probe has its own name.
	name := fmt.Sprintf("%s%d-probe%d", prefix, os.Getpid(), probeSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	exec.Command("ip", "netns", "del", name).Run()
	return nil
}

// Need skips the test (or fails it under CI=true) when namespaces cannot
// be made, and when a tool the test needs is missing.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	err := Available()
	for _, tool := range tools {
		if err != nil {
			break
		}
		if _, e := exec.LookPath(tool); e != nil {
			err = fmt.Errorf("no %s command", tool)
		}
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("network namespace tests are required under CI=true: %v", err)
	}
	t.Skipf("network namespaces unavailable: %v", err)
}

// New makes the two namespaces and removes them when the test ends.
func New(t testing.TB) *Pair {
	t.Helper()
	Need(t)
	reap()
	n := seq.Add(1)
	p := &Pair{
		Server: fmt.Sprintf("%s%d-%d-s", prefix, os.Getpid(), n),
		Client: fmt.Sprintf("%s%d-%d-c", prefix, os.Getpid(), n),
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", p.Server).Run()
		exec.Command("ip", "netns", "del", p.Client).Run()
	})
	veth := fmt.Sprintf("pgv%d-%d", os.Getpid()%100000, n)
	steps := [][]string{
		{"ip", "netns", "add", p.Server},
		{"ip", "netns", "add", p.Client},
		{"ip", "link", "add", veth + "s", "netns", p.Server, "type", "veth", "peer", "name", veth + "c", "netns", p.Client},
		{"ip", "-n", p.Server, "link", "set", "lo", "up"},
		{"ip", "-n", p.Client, "link", "set", "lo", "up"},
		{"ip", "-n", p.Server, "link", "set", veth + "s", "name", "eth0"},
		{"ip", "-n", p.Client, "link", "set", veth + "c", "name", "eth0"},
	}
	for _, a := range ServerAddrs {
		steps = append(steps, addrCmd(p.Server, a))
	}
	for _, a := range ClientAddrs {
		steps = append(steps, addrCmd(p.Client, a))
	}
	steps = append(steps,
		[]string{"ip", "-n", p.Server, "link", "set", "eth0", "up"},
		[]string{"ip", "-n", p.Client, "link", "set", "eth0", "up"})
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return p
}

func addrCmd(ns string, a netip.Prefix) []string {
	c := []string{"ip", "-n", ns, "addr", "add", a.String(), "dev", "eth0"}
	if a.Addr().Is6() {
		c = append(c, "nodad") // usable at once, not after duplicate detection
	}
	return c
}

// reap removes namespaces left by test processes that died without
// cleaning up (SIGKILL, a timeout), so they do not pile up on a machine.
func reap() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // still running
		}
		exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// Run runs argv inside namespace ns and returns its combined output.
func (p *Pair) Run(ctx context.Context, ns string, argv ...string) (string, error) {
	out, err := netns.Command(ctx, ns, argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %v: %s", strings.Join(argv, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Outcome is what a TCP connection attempt met.
type Outcome string

const (
	Connected Outcome = "connected" // the handshake completed
	Refused   Outcome = "refused"   // a RST or an ICMP unreachable came back (closed port, reject)
	TimedOut  Outcome = "timed out" // nothing came back (dropped)
)

// Connect tries a TCP connection from src in the client namespace to dst
// in the server namespace. A dropped SYN waits out timeout; callers run
// many attempts in parallel rather than shortening it.
func (p *Pair) Connect(ctx context.Context, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := netns.Dial(ctx, p.Client, "tcp", src.String(), dst.String())
	if err == nil {
		c.Close()
		return Connected, nil
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return Refused, nil
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return TimedOut, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return TimedOut, nil
	}
	return "", err
}

// DialFunc is a pgx/pgconn dial function that connects from src in the
// client namespace, for real PostgreSQL logins from a chosen address.
func (p *Pair) DialFunc(src netip.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return netns.Dial(ctx, p.Client, network, src.String(), addr)
	}
}

// Serve accepts, and at once closes, TCP connections on each port on every
// address of namespace ns (IPv4 and IPv6) until the test ends: a stand-in
// for sshd or PostgreSQL where only the handshake matters.
func (p *Pair) Serve(t testing.TB, ns string, ports ...int) {
	t.Helper()
	for _, port := range ports {
		l, err := netns.Listen(ns, "tcp", net.JoinHostPort("", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("listening on %d in %s: %v", port, ns, err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
}
