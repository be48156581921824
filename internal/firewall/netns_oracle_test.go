package firewall

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/netns"
	"github.com/pgaegis/pgaegis/internal/netnstest"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

const listenAddrs = "127.0.0.1,192.0.2.1,198.51.100.1,2001:db8:1::1"

// Networks the generated files draw from: subsets that split the client
// addresses (192.0.2.10, .77, .200, 198.51.100.10, .130, 2001:db8:1::10,
// 2001:db8:1::8000:10) in different ways.
var oracleNets = []string{
	"192.0.2.0/24", "192.0.2.0/25", "192.0.2.128/25", "192.0.2.64/26", "192.0.2.10/32", "192.0.2.77/32", "192.0.2.200/32",
	"198.51.100.0/24", "198.51.100.0/25", "198.51.100.128/25", "198.51.100.130/32",
	"2001:db8:1::/64", "2001:db8:1::/112", "2001:db8:1::8000:0/112", "2001:db8:1::10/128",
	"0.0.0.0/0", "::/0",
}

// oracleHBA is a random pg_hba.conf over the test networks, with reject
// lines and lines shadowed by earlier ones. The first lines keep the admin
// (unix socket) and loopback in.
func oracleHBA(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString("local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n")
	users := []string{"all", "all", "app", "other", "+grp", "app,other"}
	dbs := []string{"all", "all", "postgres", "shop", "replication", "sameuser", "samerole", "replication,postgres"}
	methods := []string{"scram-sha-256", "scram-sha-256", "md5", "reject", "reject", "trust"}
	for i, n := 0, 3+rng.Intn(7); i < n; i++ {
		// No hostssl: the test server has no certificate, and its
		// hostssl lines could never match (the server says so).
		typ := []string{"host", "host", "hostnossl"}[rng.Intn(3)]
		fmt.Fprintf(&b, "%s %s %s %s %s\n", typ, dbs[rng.Intn(len(dbs))], users[rng.Intn(len(users))],
			oracleNets[rng.Intn(len(oracleNets))], methods[rng.Intn(len(methods))])
	}
	return b.String()
}

// counts are the cases the oracle compared with the plan.
type counts struct {
	mu                                      sync.Mutex
	allowed, denied, logins, others, truths int
	truthLogins                             int
}

// ORACLE: the kernel and a real PostgreSQL are the judges. A server in
// its own namespace listens on documentation addresses; for each of
// several generated pg_hba.conf files (checked against the server's own
// pg_hba_file_rules) the plan is derived, rendered, loaded into the
// server's namespace (nft; iptables and ip6tables in a fresh pair), and
// from every client address a TCP connection to the PostgreSQL port must
// succeed exactly where the plan allows and time out (dropped) where it
// does not; where allowed, a real login must reach pg_hba.conf (success
// or an authentication error, never a network error); port 22 stays
// reachable from everywhere.
func TestOracleNetns(t *testing.T) {
	netnstest.Need(t, "nft", "iptables-restore", "ip6tables-restore")
	files := 8
	if testing.Short() {
		files = 2
	}
	var total counts
	// Logged once both backends are done (they run in parallel).
	t.Cleanup(func() {
		t.Logf("compared with the plan: %d sources judged by the server's pg_hba.conf (%d logins), %d allowed and %d denied TCP attempts to the PostgreSQL port, %d real logins where allowed, %d attempts to port 22",
			total.truths, total.truthLogins, total.allowed, total.denied, total.logins, total.others)
	})
	for _, backend := range []string{"nft", "iptables"} {
		t.Run(backend, func(t *testing.T) {
			// Each backend has namespaces and a server of its own: the
			// two overlap on 2 cores, each waiting out dropped SYNs.
			t.Parallel()
			p := netnstest.New(t)
			srv := pgtest.Start(t, localpg.Options{NetNS: p.Server, Listen: listenAddrs,
				HBA: "local all all scram-sha-256\n"})
			ctx := pgtest.Ctx(t)
			if err := srv.Exec(ctx, "CREATE ROLE app LOGIN PASSWORD 'app-secret-1'", "CREATE ROLE other LOGIN PASSWORD 'other-secret-1'",
				"CREATE ROLE grp NOLOGIN", "GRANT grp TO app"); err != nil {
				t.Fatal(err)
			}
			p.Serve(t, p.Server, 22)
			rng := rand.New(rand.NewSource(int64(len(backend)) * 7919))
			for i := 0; i < files; i++ {
				text := oracleHBA(rng)
				t.Run(strconv.Itoa(i), func(t *testing.T) {
					oracleCase(t, p, srv, backend, text, &total)
				})
			}
		})
	}
}

func oracleCase(t *testing.T, p *netnstest.Pair, srv *localpg.Server, backend, text string, total *counts) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := srv.WriteDataFile("pg_hba.conf", text); err != nil {
		t.Fatal(err)
	}
	// A reload, not a restart: pg_hba.conf is read on SIGHUP, and a
	// line the server refuses shows in pg_hba_file_rules below.
	pgtest.Reload(t, ctx, srv)
	f := hba.Parse(filepath.Join(srv.DataDir, "pg_hba.conf"), []byte(text), hba.Options{Version: srv.Major})
	if len(f.Errors) > 0 {
		t.Fatalf("%v", f.Errors)
	}
	checkFileRules(t, ctx, srv, f.Rules)
	roles := []string{srv.AdminUser, "app", "other", "grp"}
	env := hba.Env{Version: srv.Major,
		RoleExists: func(r string) bool { return slices.Contains(roles, r) },
		IsMember:   func(r, g string) bool { return slices.Contains(roles, r) && (r == g || r == "app" && g == "grp") }}
	plan, err := Derive(Input{Rules: f.Rules, Env: env, Roles: roles,
		Listen: strings.Split(listenAddrs, ","), Port: srv.Port, NoTLS: true, NoGSS: true})
	if err != nil {
		t.Fatal(err)
	}
	unload(t, ctx, p)
	// Before any firewall: the server's own answers say from where some
	// user and database gets past pg_hba.conf; the plan must agree.
	var wg sync.WaitGroup
	for _, ca := range netnstest.ClientAddrs {
		src := ca.Addr()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ord, repl, n := hbaTruth(t, ctx, p, srv, src, dstFor(src))
			inPlan := func(l []Source) bool {
				for _, s := range l {
					if s.Network.Contains(src) {
						return true
					}
				}
				return false
			}
			if ord != inPlan(append(plan.Allow4, plan.Allow6...)) || repl != inPlan(append(plan.Replication4, plan.Replication6...)) {
				t.Errorf("%s: pg_hba.conf accepts ordinary=%v replication=%v, the plan disagrees\n%s\n%s",
					src, ord, repl, text, summary(plan))
			}
			total.mu.Lock()
			total.truths++
			total.truthLogins += n
			total.mu.Unlock()
		}()
	}
	wg.Wait()
	load(t, ctx, p, plan, backend)
	port := uint16(srv.Port)
	for _, ca := range netnstest.ClientAddrs {
		src := ca.Addr()
		dst := dstFor(src)
		allowed := plan.Allows(src)
		wg.Add(2)
		go func() {
			defer wg.Done()
			out, err := p.Connect(ctx, src, netip.AddrPortFrom(dst, port), 3*time.Second)
			want := netnstest.TimedOut
			if allowed {
				want = netnstest.Connected
			}
			if err != nil || out != want {
				t.Errorf("%s -> port %d: %v %v, the plan says allowed=%v\n%s", src, port, out, err, allowed, text)
			}
			total.mu.Lock()
			if allowed {
				total.allowed++
			} else {
				total.denied++
			}
			total.mu.Unlock()
			if allowed {
				login(t, ctx, p, srv, src, dst, text)
				total.mu.Lock()
				total.logins++
				total.mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			out, err := p.Connect(ctx, src, netip.AddrPortFrom(dst, 22), 3*time.Second)
			if err != nil || out != netnstest.Connected {
				t.Errorf("%s -> port 22: %v %v: the plan must never touch another port", src, out, err)
			}
			total.mu.Lock()
			total.others++
			total.mu.Unlock()
		}()
	}
	wg.Wait()
}

// login makes a real login from src: the server must answer (it got past
// the firewall to pg_hba.conf), whether it lets the user in or not.
func login(t *testing.T, ctx context.Context, p *netnstest.Pair, srv *localpg.Server, src, dst netip.Addr, text string) {
	cfg := srv.ConnConfig("postgres")
	cfg.Host, cfg.Port, cfg.User, cfg.Password = dst.String(), uint16(srv.Port), "app", "app-secret-1"
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.ConnectTimeout = 20 * time.Second
	cfg.DialFunc = p.DialFunc(src)
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		c.Close(ctx)
		return
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Errorf("login from %s: no answer from the server (%v): the firewall stopped an allowed source\n%s", src, err, text)
	}
}

// checkFileRules compares the parse with the server's own reading.
func checkFileRules(t *testing.T, ctx context.Context, srv *localpg.Server, rules []hba.Rule) {
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT line_number, type, coalesce(address, ''), coalesce(netmask, ''), coalesce(auth_method, ''), coalesce(error, '')
		FROM pg_hba_file_rules ORDER BY line_number`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var line int
		var typ, addr, mask, method, e string
		if err := rows.Scan(&line, &typ, &addr, &mask, &method, &e); err != nil {
			t.Fatal(err)
		}
		if e != "" {
			t.Fatalf("the server rejects line %d: %s", line, e)
		}
		got = append(got, fmt.Sprintf("%d %s %s %s %s", line, typ, addr, mask, method))
	}
	var want []string
	for _, r := range rules {
		want = append(want, fmt.Sprintf("%d %s %s %s %s", r.Line, r.Type, hba.FormatAddr(r.Addr), hba.FormatAddr(r.Mask), r.Method))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("pg_hba_file_rules:\n%s\nparsed:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// load puts the rendering into the server namespace. nft is loaded twice
// (idempotence: the same ruleset); iptables and ip6tables get their chain
// from the restore file and the jump once, as the script's comment says.
func load(t *testing.T, ctx context.Context, p *netnstest.Pair, plan *Policy, backend string) {
	dir := t.TempDir()
	write := func(format string) string {
		s, err := plan.Render(format)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, format)
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if backend == "nft" {
		path := write("nft")
		var rulesets []string
		for range 2 {
			if _, err := p.Run(ctx, p.Server, "nft", "-f", path); err != nil {
				t.Fatal(err)
			}
			out, err := p.Run(ctx, p.Server, "nft", "list", "ruleset")
			if err != nil {
				t.Fatal(err)
			}
			rulesets = append(rulesets, out)
		}
		if rulesets[0] != rulesets[1] {
			t.Fatalf("loading the nft script twice changed the ruleset:\n%s\n---\n%s", rulesets[0], rulesets[1])
		}
		if !strings.Contains(rulesets[0], "table inet pgaegis") {
			t.Fatalf("no table inet pgaegis:\n%s", rulesets[0])
		}
		return
	}
	j4, j6 := plan.Jumps()
	for _, tool := range []struct {
		name  string
		jumps [][]string
	}{{"iptables", j4}, {"ip6tables", j6}} {
		path := write(tool.name)
		// The restore reads the file on stdin.
		cmd := netns.Command(ctx, p.Server, tool.name+"-restore", "--noflush", path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s-restore: %v: %s", tool.name, err, out)
		}
		for _, j := range tool.jumps {
			check := append([]string{tool.name, "-C", "INPUT"}, j...)
			if _, err := p.Run(ctx, p.Server, check...); err != nil {
				if _, err := p.Run(ctx, p.Server, append([]string{tool.name, "-I", "INPUT"}, j...)...); err != nil {
					t.Fatal(err)
				}
			}
		}
		out, err := p.Run(ctx, p.Server, tool.name+"-save")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, "-A INPUT -p tcp -m tcp --dport "+strconv.Itoa(plan.Port)+" -j "+Chain); n != 1 {
			t.Fatalf("%s: %d jumps to %s after loading again:\n%s", tool.name, n, Chain, out)
		}
	}
}

func dstFor(src netip.Addr) netip.Addr {
	if src.Is6() {
		return netip.MustParseAddr("2001:db8:1::1")
	}
	return netip.MustParseAddr("192.0.2.1")
}

// hbaTruth asks the server whether some ordinary, and some physical
// replication, connection from src gets past pg_hba.conf: every user
// class of the generated files (app, other, a role nobody names) and
// every database class (postgres, shop, one no line names, the users'
// own names for sameuser, the group's for samerole). Past it means
// anything but the two refusals pg_hba.conf itself gives.
func hbaTruth(t *testing.T, ctx context.Context, p *netnstest.Pair, srv *localpg.Server, src, dst netip.Addr) (ordinary, replication bool, logins int) {
	for _, user := range []string{"app", "other", "ghost"} {
		for _, db := range []string{"postgres", "shop", "template1", "app", "other", "grp", "replication"} {
			// One login past pg_hba.conf settles its kind: more of the
			// same could not change either answer.
			if db == "replication" && replication || db != "replication" && ordinary {
				continue
			}
			logins++
			cfg := srv.ConnConfig("postgres").Config
			cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = dst.String(), uint16(srv.Port), user, user+"-secret-1", db
			cfg.TLSConfig, cfg.Fallbacks = nil, nil
			cfg.RuntimeParams = map[string]string{}
			if db == "replication" {
				cfg.Database = ""
				cfg.RuntimeParams["replication"] = "true"
			}
			cfg.ConnectTimeout = 20 * time.Second
			cfg.DialFunc = p.DialFunc(src)
			c, err := pgconn.ConnectConfig(ctx, &cfg)
			past := err == nil
			if err == nil {
				c.Close(ctx)
			} else {
				var pe *pgconn.PgError
				if !errors.As(err, &pe) {
					t.Errorf("login %s/%s from %s without a firewall: %v", user, db, src, err)
				}
				past = pe != nil && !strings.Contains(pe.Message, "no pg_hba.conf entry") && !strings.Contains(pe.Message, "pg_hba.conf rejects")
			}
			if past && db == "replication" {
				replication = true
			} else if past {
				ordinary = true
			}
		}
	}
	return ordinary, replication, logins
}

// unload removes what load put in the server namespace, so that the
// server can be asked without a firewall in the way.
func unload(t *testing.T, ctx context.Context, p *netnstest.Pair) {
	p.Run(ctx, p.Server, "nft", "delete", "table", "inet", "pgaegis")
	p.Run(ctx, p.Server, "iptables", "-F", Chain)
	p.Run(ctx, p.Server, "ip6tables", "-F", Chain)
}
