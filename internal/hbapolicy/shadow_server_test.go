package hbapolicy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TestShadowedServerOracle loads generated files into a real server with
// every claimed-unreachable line set to reject and every other line to
// trust: no connection may then be rejected, so each attempt the
// simulator says a claimed line would take must be let in by an earlier
// line. Over TCP loopback (IPv4 and IPv6), with and without TLS.
func TestShadowedServerOracle(t *testing.T) {
	start := time.Now()
	srv := pgtest.Start(t, localpg.Options{Listen: "127.0.0.1,::1", Init: pgtest.SelfSignedTLS,
		Conf: []string{"ssl = on", "log_connections = off"}})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE g NOLOGIN`, `CREATE ROLE u1 LOGIN`, `CREATE ROLE u2 LOGIN IN ROLE g`,
		`CREATE ROLE sentinel LOGIN`, `CREATE DATABASE d1`, `CREATE DATABASE d2`, `CREATE DATABASE u1`); err != nil {
		t.Fatal(err)
	}
	hbaPath := filepath.Join(srv.DataDir, "pg_hba.conf")
	exists := map[string]bool{"g": true, "u1": true, "u2": true}
	env := hba.Env{Version: 15, RoleExists: func(r string) bool { return exists[r] },
		IsMember: func(r, g string) bool { return exists[r] && (r == g || r == "u2" && g == "g") }}
	ifaces, _ := net.InterfaceAddrs()
	for _, a := range ifaces {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			env.HostAddrs = append(env.HostAddrs, p)
		}
	}

	// attempt: "ok" (let in), "reject", or "none" (no line matched).
	attempt := func(user, db string, local, ssl bool, addr netip.Addr) (string, error) {
		cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable connect_timeout=30", srv.Port))
		if err != nil {
			return "", err
		}
		cfg.User, cfg.Database, cfg.Fallbacks = user, db, nil
		if ssl {
			cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
		}
		switch {
		case local:
			cfg.Host = srv.SocketDir
		case addr.Is6():
			cfg.Host = "::1"
		}
		cctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		conn, err := pgconn.ConnectConfig(cctx, cfg)
		if err == nil {
			conn.Close(cctx)
			return "ok", nil
		}
		var pgErr *pgconn.PgError
		switch {
		case !errors.As(err, &pgErr):
			return "", err
		case strings.Contains(pgErr.Message, "pg_hba.conf rejects"):
			return "reject", nil
		case strings.Contains(pgErr.Message, "no pg_hba.conf entry"):
			return "none", nil
		}
		return "", err
	}
	// Each version of the file lets the sentinel in by socket or not, in
	// turn: the flip shows the server has loaded the new file.
	version := 0
	load := func(body string) {
		version++
		method := []string{"reject", "trust"}[version%2]
		if err := srv.WriteFile(hbaPath, "local all sentinel "+method+"\n"+body, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := srv.Reload(); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"reject": "reject", "trust": "ok"}[method]
		for deadline := time.Now().Add(20 * time.Second); ; {
			if got, err := attempt("sentinel", "postgres", true, false, netip.Addr{}); err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("server did not load file version %d", version)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	rng := rand.New(rand.NewSource(16))
	loop := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	files, cases, disagreements, multi, multiCases := 0, 0, 0, 0, 0
	// The cases first, then generated files.
	fixed := []string{
		"host all all 0.0.0.0/0 trust\nhost all all ::/0 trust\nhost all all all trust\nhost all all samenet trust\nhost all all samehost trust\n",
		"hostssl all all all trust\nhostnossl all all all trust\nhost all all 127.0.0.0/8 trust\nhost all all ::1/128 trust\n",
		"hostgssenc all all all trust\nhostnogssenc all all all trust\nhost all all all trust\n",
		"host all u1 all trust\nhost all +g all trust\nhost all u1,+g all trust\nhost d1 all all trust\nhost d2 all all trust\nhost d1,d2 u1,u2 all trust\n",
	}
	for k := 0; files < 30; k++ {
		gen := unionHBA(rng, 6+rng.Intn(8))
		if k < len(fixed) {
			gen = fixed[k]
		}
		var body strings.Builder
		for _, l := range strings.Split(gen, "\n") {
			if l != "" && !strings.HasPrefix(l, "local") && !strings.Contains(l, "example.com") {
				body.WriteString(l + "\n")
			}
		}
		f := hba.Parse("pg_hba.conf", []byte(body.String()), hba.Options{SSL: true, Version: 15})
		if len(f.Errors) > 0 || len(f.Rules) == 0 {
			continue
		}
		sh := Shadowed(f.Rules)
		dead := map[*hba.Rule]bool{}
		for _, s := range sh {
			dead[s.Rule] = true
			if len(s.Covers) > 1 {
				multi++
			}
		}
		if len(sh) == 0 {
			continue
		}
		files++
		var out strings.Builder
		for i := range f.Rules {
			r := &f.Rules[i]
			method := "trust"
			if dead[r] {
				method = "reject"
			}
			fields := strings.Fields(r.Text)
			out.WriteString(strings.Join(append(fields[:len(fields)-1], method), " ") + "\n")
		}
		load(out.String())
		for _, user := range []string{"u1", "u2"} {
			for _, db := range []string{"d1", "d2", "u1"} {
				for _, addr := range loop {
					for _, ssl := range []bool{false, true} {
						c := hba.Conn{User: user, Database: db, Addr: addr, SSL: ssl}
						hit, hitMulti := false, false
						for _, s := range sh {
							if hba.Match([]hba.Rule{*s.Rule}, c, env).Matched {
								hit, hitMulti = true, hitMulti || len(s.Covers) > 1
							}
						}
						if !hit {
							continue
						}
						cases++
						if hitMulti {
							multiCases++
						}
						got, err := attempt(user, db, false, ssl, addr)
						if err != nil {
							t.Fatalf("%s: %v", c, err)
						}
						if got != "ok" {
							disagreements++
							t.Errorf("file:\n%s%s was %s: a claimed-unreachable line decided it", out.String(), c, got)
						}
					}
				}
			}
		}
	}
	t.Logf("ORACLE hba-shadow-union pg15: cases=%d disagreements=%d seconds=%.1f (files=%d, multi-line claims=%d hit by %d)",
		cases, disagreements, time.Since(start).Seconds(), files, multi, multiCases)
	if cases < 40 || multiCases == 0 {
		t.Fatalf("only %d connections hit a claimed-unreachable line", cases)
	}
}
