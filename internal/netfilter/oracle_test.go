package netfilter

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/netns"
	"github.com/pgaegis/pgaegis/internal/netnstest"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

var oracleRulesets, oracleAttempts atomic.Int64

// load replaces the server namespace's ruleset with script (nft -f, or
// iptables-restore / ip6tables-restore input) and reads it back as the
// audit would on a host.
func loadRuleset(t *testing.T, ctx context.Context, p *netnstest.Pair, kind string, scripts ...string) *Ruleset {
	t.Helper()
	run := func(stdin string, argv ...string) string {
		cmd := netns.Command(ctx, p.Server, argv...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s\ninput:\n%s", strings.Join(argv, " "), err, out, stdin)
		}
		return string(out)
	}
	run("", "nft", "flush", "ruleset")
	if kind == "nft" {
		run(scripts[0], "nft", "-f", "-")
		r, err := ParseNFT([]byte(run("", "nft", "-j", "list", "ruleset")))
		if err != nil {
			t.Fatalf("%v\nscript:\n%s", err, scripts[0])
		}
		return r
	}
	run(scripts[0], "iptables-restore")
	run(scripts[1], "ip6tables-restore")
	r4, err := ParseIPTables("iptables-save", []byte(run("", "iptables-save")), false)
	if err != nil {
		t.Fatal(err)
	}
	r6, err := ParseIPTables("ip6tables-save", []byte(run("", "ip6tables-save")), true)
	if err != nil {
		t.Fatal(err)
	}
	// The host collection sees nft's view too; Combine must give the same
	// answers as iptables-save alone.
	nft, err := ParseNFT([]byte(run("", "nft", "-j", "list", "ruleset")))
	if err != nil {
		t.Fatal(err)
	}
	return Combine(nft, r4, r6)
}

type attempt struct {
	src netip.Addr
	dst netip.AddrPort
}

func attempts(ports []int) []attempt {
	var out []attempt
	for _, c := range netnstest.ClientAddrs {
		for _, s := range netnstest.ServerAddrs {
			if c.Addr().Is4() != s.Addr().Is4() {
				continue
			}
			for _, port := range ports {
				out = append(out, attempt{c.Addr(), netip.AddrPortFrom(s.Addr(), uint16(port))})
			}
		}
	}
	return out
}

// compare makes every attempt in parallel and checks each against Eval.
func compare(t *testing.T, ctx context.Context, p *netnstest.Pair, r *Ruleset, ports []int, script string) {
	t.Helper()
	as := attempts(ports)
	got := make([]netnstest.Outcome, len(as))
	errs := make([]error, len(as))
	var wg sync.WaitGroup
	for i, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Generous: a dropped SYN waits it out; nothing is timed.
			got[i], errs[i] = p.Connect(ctx, a.src, a.dst, 3*time.Second)
			if errors.Is(errs[i], syscall.ECONNRESET) {
				// The SYN passed and the server answered; a rule then
				// reset the handshake's established ACK. Eval answers
				// for the SYN: accepted.
				got[i], errs[i] = netnstest.Connected, nil
			}
		}()
	}
	wg.Wait()
	oracleRulesets.Add(1)
	bad := 0
	for i, a := range as {
		if errs[i] != nil {
			t.Errorf("%v -> %v: %v", a.src, a.dst, errs[i])
			bad++
			continue
		}
		oracleAttempts.Add(1)
		v := r.Eval(Packet{Src: a.src, Dst: a.dst.Addr(), DPort: a.dst.Port(), IIf: "eth0"})
		want := map[Kind]netnstest.Outcome{Accept: netnstest.Connected, Drop: netnstest.TimedOut, Reject: netnstest.Refused}[v.Kind]
		if v.Kind == Unknown {
			t.Errorf("%v -> %v: Unknown (%s at %s) for a ruleset of modelled expressions", a.src, a.dst, v.Why, v.Where)
			bad++
			continue
		}
		if got[i] != want {
			t.Errorf("%v -> %v: the kernel: %s; Eval: %s at %s (%s)", a.src, a.dst, got[i], v.Kind, v.Where, v.Why)
			bad++
		}
	}
	if bad > 0 {
		t.Logf("ruleset:\n%s", script)
	}
}

// listen accepts (and closes) connections on every port, on all
// addresses of the server namespace.
func listen(t *testing.T, p *netnstest.Pair, ports []int) {
	noICMPLimit(t, p)
	p.Serve(t, p.Server, ports...)
}

func noICMPLimit(t *testing.T, p *netnstest.Pair) {
	// ICMP errors are rate-limited per peer (6 at once, then one a
	// second): parallel attempts meeting a reject would time out. The
	// limit is the namespace's own.
	for _, kv := range []string{"net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0", "net.ipv4.icmp_msgs_per_sec=100000"} {
		if _, err := p.Run(context.Background(), p.Server, "sysctl", "-qw", kv); err != nil {
			t.Fatal(err)
		}
	}
}

// ORACLE: the kernel's netfilter decides; Eval must agree on every
// client→server pair, for random nft and iptables rulesets loaded into a
// namespace and read back with nft -j / iptables-save.
func TestOracleRandomRulesets(t *testing.T) {
	netnstest.Need(t, "nft", "iptables-restore", "ip6tables-restore")
	n := 24
	if s := os.Getenv("PGAEGIS_NETFILTER_RULESETS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	const workers = 4
	ports := []int{5432, 22, 6005}
	t.Run("group", func(t *testing.T) {
		for w := 0; w < workers; w++ {
			t.Run(fmt.Sprint(w), func(t *testing.T) {
				t.Parallel()
				p := netnstest.New(t)
				listen(t, p, ports)
				ctx := context.Background()
				g := &gen{r: rand.New(rand.NewSource(int64(1000 + w))), ports: ports}
				for i := w; i < n; i += workers {
					if i%2 == 0 {
						s := g.nft()
						compare(t, ctx, p, loadRuleset(t, ctx, p, "nft", s), ports, s)
					} else {
						s4, s6 := g.iptables(false), g.iptables(true)
						compare(t, ctx, p, loadRuleset(t, ctx, p, "iptables", s4, s6), ports, s4+s6)
					}
				}
			})
		}
	})
	t.Logf("compared %d rulesets, %d connection attempts", oracleRulesets.Load(), oracleAttempts.Load())
}

// ORACLE: a real PostgreSQL in the server namespace, behind generated
// rulesets that name its port.
func TestOraclePostgreSQL(t *testing.T) {
	netnstest.Need(t, "nft", "iptables-restore", "ip6tables-restore")
	p := netnstest.New(t)
	srv := pgtest.Start(t, localpg.Options{
		NetNS:  p.Server,
		Listen: "127.0.0.1,192.0.2.1,198.51.100.1,2001:db8:1::1",
		HBA:    "local all all scram-sha-256\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n",
	})
	ctx := pgtest.Ctx(t)
	noICMPLimit(t, p)
	ports := []int{srv.Port}
	g := &gen{r: rand.New(rand.NewSource(7)), ports: ports}
	for i := 0; i < 6; i++ {
		if i%2 == 0 {
			s := g.nft()
			compare(t, ctx, p, loadRuleset(t, ctx, p, "nft", s), ports, s)
		} else {
			s4, s6 := g.iptables(false), g.iptables(true)
			compare(t, ctx, p, loadRuleset(t, ctx, p, "iptables", s4, s6), ports, s4+s6)
		}
	}
}
