package collect

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// tcpConfig is the admin over plain TCP (no TLS negotiation, so that the
// freezing proxy below sees the protocol from the first byte).
func tcpConfig(t *testing.T, srv *localpg.Server, sslmode string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=" + sslmode + " connect_timeout=10")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = uint16(srv.Port)
	cfg.User, cfg.Password, cfg.Database = srv.AdminUser, srv.Password, "postgres"
	return cfg
}

func quick(cfg *pgx.ConnConfig) Options {
	return Options{Conn: cfg, NoFiles: true, NoProbe: true, StatementTimeout: 10 * time.Second}
}

func findings(snap *snapshot.Snapshot, rule string) []rules.Finding {
	var out []rules.Finding
	for _, f := range rules.Run(snap) {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// Defect 2: rolvaliduntil 'infinity' made the whole pg_roles read fail,
// and with it the memberships: a path to superuser went unseen.
func TestEveryValueTheCatalogAllows(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx,
		`CREATE ROLE inf_boss SUPERUSER NOLOGIN`,
		`CREATE ROLE inf_app LOGIN VALID UNTIL 'infinity'`,
		`CREATE ROLE inf_old LOGIN VALID UNTIL '-infinity'`,
		`CREATE ROLE inf_dated LOGIN VALID UNTIL '2031-02-03 04:05:06+00'`,
		`CREATE ROLE inf_null LOGIN`, // rolvaliduntil and rolconfig NULL
		`CREATE ROLE inf_conf LOGIN CONNECTION LIMIT -1`,
		`ALTER ROLE inf_conf SET work_mem = '1MB'`,
		`GRANT inf_boss TO inf_app`,
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Exec(context.Background(), `DROP ROLE IF EXISTS inf_app`, `DROP ROLE IF EXISTS inf_old`, `DROP ROLE IF EXISTS inf_dated`,
			`DROP ROLE IF EXISTS inf_null`, `DROP ROLE IF EXISTS inf_conf`, `DROP ROLE IF EXISTS inf_boss`)
	})
	// NULL where the catalogs allow it, the largest OID, and names that
	// are not UTF-8 (a SQL_ASCII database stores bytes as given).
	if err := srv.Exec(ctx,
		`CREATE EXTENSION IF NOT EXISTS postgres_fdw`,
		`CREATE SERVER odd_srv FOREIGN DATA WRAPPER postgres_fdw`, // srvacl, srvoptions NULL
		`CREATE USER MAPPING FOR PUBLIC SERVER odd_srv`,           // umoptions NULL
		`ALTER DATABASE postgres SET work_mem = '2MB'`,            // setrole = 0: no role
		`SELECT lo_create(4294967295)`,                            // the largest OID
		`CREATE DATABASE odd_enc ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`,
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Exec(context.Background(), `DROP SERVER IF EXISTS odd_srv CASCADE`, `ALTER DATABASE postgres RESET work_mem`,
			`SELECT lo_unlink(4294967295)`, `DROP DATABASE IF EXISTS odd_enc`)
	})
	if err := srv.ExecIn(ctx, "odd_enc", "CREATE SCHEMA \"caf\xe9\"", "CREATE TABLE \"caf\xe9\".t (tenant_id int)"); err != nil {
		t.Fatal(err)
	}
	snap, err := Collect(ctx, quick(srv.ConnConfig("postgres")))
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Errors) > 0 {
		t.Fatalf("collection errors: %v", snap.Errors)
	}
	var bigLO, oddSchema bool
	for _, d := range snap.Databases {
		for _, lo := range d.LargeObjects {
			bigLO = bigLO || lo.OID == 4294967295
		}
		for _, sc := range d.Schemas {
			oddSchema = oddSchema || sc.Name == "caf\xe9"
		}
	}
	if !bigLO || !oddSchema {
		t.Errorf("large object 4294967295 read: %v; non-UTF-8 schema name read: %v", bigLO, oddSchema)
	}
	for _, tc := range []struct {
		role, want string
	}{
		{"inf_app", "infinity"}, {"inf_old", "-infinity"}, {"inf_dated", "2031-02-03T04:05:06Z"}, {"inf_null", ""}, {"inf_conf", ""},
	} {
		r, ok := snap.Role(tc.role)
		if !ok {
			t.Errorf("role %s missing from the snapshot", tc.role)
			continue
		}
		got := ""
		if r.ValidUntil != nil {
			got = r.ValidUntil.String()
		}
		if got != tc.want {
			t.Errorf("%s: valid_until %q, want %q", tc.role, got, tc.want)
		}
	}
	// The infinities survive the JSON form.
	var buf bytes.Buffer
	if err := snap.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"valid_until": "infinity"`) || !strings.Contains(buf.String(), `"valid_until": "-infinity"`) {
		t.Errorf("snapshot JSON lost the infinities")
	}
	var back snapshot.Snapshot
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("snapshot does not read back: %v", err)
	}
	if r, _ := back.Role("inf_app"); r == nil || r.ValidUntil == nil || r.ValidUntil.Infinity != 1 {
		t.Errorf("inf_app valid_until after a JSON round trip: %+v", r)
	}
	// The membership path to superuser is seen.
	var failed bool
	for _, f := range findings(snap, "PRIV-02") {
		if f.Status == rules.Fail && strings.Contains(f.Object+f.Evidence, "inf_app") {
			failed = true
		}
	}
	if !failed {
		t.Errorf("PRIV-02 does not report inf_app's membership path to superuser: %+v", findings(snap, "PRIV-02"))
	}
}

// Defect 2 (second half): a read that breaks makes the rules that need it
// not checked with the error, never a pass, and the report incomplete.
// Permission gaps of a non-superuser stay gaps.
func TestFailedReadIsNeverAPass(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	for _, tc := range []struct {
		name, match, key, rule string
	}{
		{"roles", "FROM pg_roles ORDER BY rolname", snapshot.GapRoles, "PRIV-02"},
		{"memberships", "FROM pg_auth_members", snapshot.GapMemberships, "PRIV-02"},
		{"hba", "FROM pg_hba_file_rules", snapshot.GapHBA, "AUTH-01"},
		{"relations", "c.relrowsecurity, c.relforcerowsecurity", snapshot.GapDatabases + ".postgres", "PRIV-02.chains"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			QueryFault = func(sql string) error {
				if strings.Contains(sql, tc.match) {
					return errors.New("injected failure")
				}
				return nil
			}
			defer func() { QueryFault = nil }()
			snap, err := Collect(ctx, quick(srv.ConnConfig("postgres")))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(snap.Errors[tc.key], "injected failure") {
				t.Fatalf("collection_errors[%s] = %q; all: %v", tc.key, snap.Errors[tc.key], snap.Errors)
			}
			fs := findings(snap, tc.rule)
			if len(fs) == 0 {
				t.Fatalf("no %s finding", tc.rule)
			}
			for _, f := range fs {
				if f.Status == rules.Pass {
					t.Errorf("%s passes on a failed read: %+v", tc.rule, f)
				}
			}
			rep := report.Build(snap, rules.Run(snap), rules.High)
			if !rep.Incomplete() || rep.Summary.Result == "pass" {
				t.Errorf("report result %q (incomplete %v) with a collection error", rep.Summary.Result, rep.Incomplete())
			}
		})
	}

	t.Run("non-superuser gaps are not errors", func(t *testing.T) {
		if err := srv.Exec(ctx, `CREATE ROLE gap_auditor LOGIN PASSWORD 'gap-auditor-pw-1' IN ROLE pg_monitor`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Exec(context.Background(), `DROP ROLE IF EXISTS gap_auditor`) })
		cfg := tcpConfig(t, srv, "disable")
		cfg.User, cfg.Password = "gap_auditor", "gap-auditor-pw-1"
		snap, err := Collect(ctx, quick(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Errors) > 0 {
			t.Errorf("permission gaps reported as errors: %v", snap.Errors)
		}
		if snap.Gap(snapshot.GapHBA) == "" || snap.Gap(snapshot.GapPasswords) == "" {
			t.Errorf("expected permission gaps for hba and passwords: %v", snap.Gaps)
		}
		if rep := report.Build(snap, rules.Run(snap), rules.Critical); rep.Incomplete() {
			t.Errorf("a non-superuser audit is incomplete: %s", rep.Summary.IncompleteReason)
		}
	})
}

// freezer forwards TCP to a real server and stops forwarding the server's
// answers after its n-th ReadyForQuery of each connection (n = 0: before
// the login completes), like a server or middlebox that stops answering.
type freezer struct {
	ln     net.Listener
	target string
	n      int
	mu     sync.Mutex
	conns  []net.Conn
}

func startFreezer(t *testing.T, port, n int) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), n: n}
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) port() uint16 { return uint16(f.ln.Addr().(*net.TCPAddr).Port) }

func (f *freezer) close() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, s)
		f.mu.Unlock()
		go io.Copy(s, c)
		go f.relay(c, s)
	}
}

// relay copies server messages (type byte, int32 length) to the client
// until the n-th 'Z', then holds everything back.
func (f *freezer) relay(client, server net.Conn) {
	seen := 0
	hdr := make([]byte, 5)
	for seen < f.n {
		if _, err := io.ReadFull(server, hdr); err != nil {
			return
		}
		body := make([]byte, int(binary.BigEndian.Uint32(hdr[1:]))-4)
		if _, err := io.ReadFull(server, body); err != nil {
			return
		}
		if _, err := client.Write(append(append([]byte(nil), hdr...), body...)); err != nil {
			return
		}
		if hdr[0] == 'Z' {
			seen++
		}
	}
	io.Copy(io.Discard, server) // frozen: the client hears nothing more
}

// Defect 7: a server that stops answering hung every command forever.
func TestStalledServerEndsWithTheStep(t *testing.T) {
	srv := pgtest.Shared(t)
	for _, tc := range []struct {
		name  string
		after int
		run   func(ctx context.Context, cfg *pgx.ConnConfig) error
		want  string
	}{
		{"audit, login", 0, func(ctx context.Context, cfg *pgx.ConnConfig) error {
			o := quick(cfg)
			o.StatementTimeout = time.Second
			_, err := Collect(ctx, o)
			return err
		}, "did not complete the login"},
		{"audit, BEGIN", 1, func(ctx context.Context, cfg *pgx.ConnConfig) error {
			o := quick(cfg)
			o.StatementTimeout = time.Second
			_, err := Collect(ctx, o)
			return err
		}, "starting a read-only transaction"},
		{"audit, a catalog read", 4, func(ctx context.Context, cfg *pgx.ConnConfig) error {
			o := quick(cfg)
			o.StatementTimeout = time.Second
			_, err := Collect(ctx, o)
			return err
		}, "stopped answering"},
		{"log settings", 2, func(ctx context.Context, cfg *pgx.ConnConfig) error {
			// The same one-second bound as the audit cases: the test
			// asserts that the deadline is there, not its length.
			old := settingsTimeout
			settingsTimeout = time.Second
			defer func() { settingsTimeout = old }()
			_, err := ServerLogSettings(ctx, cfg)
			return err
		}, "stopped answering"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fz := startFreezer(t, srv.Port, tc.after)
			cfg := tcpConfig(t, srv, "disable")
			cfg.Port = fz.port()
			cfg.ConnectTimeout = 2 * time.Second
			// Generous: the test asserts that the call returns, not when.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tc.run(ctx, cfg) }()
			var err error
			select {
			case err = <-done:
			case <-ctx.Done():
				t.Fatal("the call did not return: no client-side deadline")
			}
			if ctx.Err() != nil {
				t.Fatal("returned only because the test's own context ended")
			}
			if err == nil {
				t.Fatal("no error from a frozen server")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the stalled step (%q)", err, tc.want)
			}
			if strings.Contains(err.Error(), srv.Password) {
				t.Error("the error carries the password")
			}
		})
	}
}

// Defect 5: verifiers were fetched over any connection, plain TCP included.
func TestVerifiersOnlyOverSocketOrVerifiedTLS(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{Conf: []string{"ssl = on"}, Init: pgtest.SelfSignedTLS})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `SET password_encryption = 'scram-sha-256'`, `CREATE ROLE weakling LOGIN PASSWORD 'weakling'`); err != nil {
		t.Fatal(err)
	}
	cert := srv.DataDir + "/server.crt"
	for _, tc := range []struct {
		name, conn string
		found      bool
		reason     string
	}{
		{"unix socket", "host=" + srv.SocketDir + " sslmode=disable", true, ""},
		{"tcp, sslmode=disable", "host=127.0.0.1 sslmode=disable", false, "unencrypted TCP"},
		{"tcp, sslmode=require", "host=127.0.0.1 sslmode=require", false, "TLS without verification"},
		{"tcp, sslmode=prefer", "host=127.0.0.1 sslmode=prefer", false, "TLS without verification"},
		{"tcp, sslmode=verify-full", "host=127.0.0.1 sslmode=verify-full sslrootcert=" + cert, true, ""},
		{"tcp, sslmode=verify-ca", "host=localhost sslmode=verify-ca sslrootcert=" + cert, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := pgx.ParseConfig(tc.conn + " connect_timeout=10")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Port = uint16(srv.Port)
			cfg.User, cfg.Password, cfg.Database = srv.AdminUser, srv.Password, "postgres"
			o := quick(cfg)
			o.PasswordBudget = 20 * time.Second
			snap, err := Collect(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := snap.Role("weakling")
			if r == nil {
				t.Fatal("role weakling missing")
			}
			if got := r.WeakPassword != ""; got != tc.found {
				t.Errorf("weak password found: %v, want %v (gap: %s)", got, tc.found, snap.Gap(snapshot.GapWeakPasswords))
			}
			if g := snap.Gap(snapshot.GapWeakPasswords); tc.reason != "" && !strings.Contains(g, tc.reason) {
				t.Errorf("weak-password gap %q does not say %q", g, tc.reason)
			}
			var buf bytes.Buffer
			snap.Write(&buf)
			if strings.Contains(buf.String(), "SCRAM-SHA-256$") {
				t.Error("the snapshot carries a verifier")
			}
		})
	}
}
