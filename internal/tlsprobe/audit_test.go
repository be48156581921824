package tlsprobe_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/tlsprobe"
)

// The audit's own probe call: a live collection over TCP probes the port
// with the audit's login and pg_hba.conf, and the server's log shows no
// failure from it, for each pg_hba.conf shape. One server, the file
// rewritten and reloaded between shapes, per major.
func TestAuditProbeLeavesNoFailureInTheLog(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		auditProbeOn(t, pgtest.StartMajor(t, major, localpg.Options{Conf: []string{"ssl = on"}, Init: pgtest.SelfSignedTLS}))
	})
}

func auditProbeOn(t *testing.T, s *localpg.Server) {
	local := "local all all scram-sha-256\n"
	shapes := []struct {
		name, hba, answer string
		accepted          bool
	}{
		{"scram", "host all all 127.0.0.1/32 scram-sha-256", "asked for SCRAM authentication", true},
		{"trust", "host all all 127.0.0.1/32 trust", "accepted without authentication (trust)", true},
		{"hostssl only", "hostssl all all 127.0.0.1/32 scram-sha-256", "rejected: no pg_hba.conf entry", false},
		{"reject without TLS", "hostnossl all all all reject\nhostssl all all all scram-sha-256", "rejected: pg_hba.conf rejects connection", false},
	}
	for _, sh := range shapes {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		reload(ctx, t, s, local+sh.hba+"\n")
		st, err := os.Stat(s.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		// TLS only: pgx's sslmode=prefer would retry without TLS, and that
		// retry's own rejection is not the probe's.
		cfg := s.ConnConfig("postgres")
		cfg.Fallbacks = nil
		snap, err := collect.Collect(ctx, collect.Options{Conn: cfg, NoFiles: true})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", sh.name, err)
		}
		p := snap.Probe
		if p == nil || !strings.HasPrefix(p.PlaintextAnswer, sh.answer) || p.PlaintextAccepted != sh.accepted {
			t.Errorf("%s: probe = %+v, want plaintext %v %q", sh.name, p, sh.accepted, sh.answer)
		}
		noFailures(t, s, st.Size(), sh.name)
	}
	// A login role without a password (one that gets in by trust, peer or
	// a certificate elsewhere) gets a mock challenge: hanging up on it
	// must stay unlogged too.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Exec(ctx, "CREATE ROLE probe_nopw LOGIN"); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"scram-sha-256", "md5", "password"} {
		line := "host all all 127.0.0.1/32 " + method
		reload(ctx, t, s, local+line+"\n")
		st, err := os.Stat(s.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		f := hba.Parse("pg_hba.conf", []byte(line+"\n"), hba.Options{SSL: true})
		r := tlsprobe.Probe(ctx, tlsprobe.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), SkipCiphers: true, Timeout: time.Minute,
			User: "probe_nopw", Database: "postgres", HBA: f.Rules})
		if !r.PlaintextAccepted || !strings.HasPrefix(r.PlaintextAnswer, "asked for") {
			t.Errorf("%s, no password: %v %q", method, r.PlaintextAccepted, r.PlaintextAnswer)
		}
		noFailures(t, s, st.Size(), method+" without a password")
	}
}

// noFailures fails on FATAL and ERROR lines logged after from.
func noFailures(t *testing.T, s *localpg.Server, from int64, what string) {
	t.Helper()
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b[from:]), "\n") {
		// The collector's own first try with event_triggers = off fails
		// before 17 (a connection option the server does not know): not a
		// login failure, and not the probe's.
		if strings.Contains(l, `unrecognized configuration parameter "event_triggers"`) {
			continue
		}
		if strings.Contains(l, "FATAL:") || strings.Contains(l, "ERROR:") {
			t.Errorf("%s: a failure in the server log: %s", what, l)
		}
	}
}

// reload writes pg_hba.conf and waits until new backends run with it
// (pg_conf_load_time moves on).
func reload(ctx context.Context, t *testing.T, s *localpg.Server, hbaFile string) {
	t.Helper()
	before := loadTime(ctx, t, s)
	if err := s.WriteDataFile("pg_hba.conf", hbaFile); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	for i := 0; !loadTime(ctx, t, s).After(before); i++ {
		if i > 600 {
			t.Fatal("reload not seen")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loadTime is when the server last read its configuration, as a new
// backend sees it.
func loadTime(ctx context.Context, t *testing.T, s *localpg.Server) time.Time {
	t.Helper()
	conn, err := s.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var at time.Time
	if err := conn.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// A direct TLS handshake to a server before 17 is read as a startup
// packet and logged ("invalid length of startup packet"): with the major
// known the probe does not try it; without, the server shows the line.
func TestProbeSkipsDirectTLSBefore17(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	if pgtest.Version >= "17" {
		t.Skipf("the reference major %s has direct TLS", pgtest.Version)
	}
	major, _ := strconv.Atoi(pgtest.Version)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := os.Stat(s.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	o := tlsprobe.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), SkipCiphers: true, Timeout: 30 * time.Second}
	count := func() int {
		b, err := os.ReadFile(s.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b[st.Size():]), "invalid length of startup packet")
	}
	known := o
	known.HBAEnv.Version = major
	if r := tlsprobe.Probe(ctx, known); r.DirectTLS || len(r.Errors) > 0 {
		t.Fatalf("major known: %+v", r)
	}
	// Then the unknown major: its one line is the only one logged.
	if r := tlsprobe.Probe(ctx, o); r.DirectTLS || len(r.Errors) > 0 {
		t.Fatalf("major unknown: %+v", r)
	}
	for i := 0; count() == 0; i++ {
		if i > 600 {
			t.Fatal("the direct TLS attempt left no line in the log")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A connection after both: the server has logged what came before.
	if err := s.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Errorf("%d lines logged, want 1 (the probe that knew the major tried direct TLS)", n)
	}
}
