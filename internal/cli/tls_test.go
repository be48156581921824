package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/tlsca"
)

type probeJSON struct {
	TLSOffered        bool                `json:"tls_offered"`
	PlaintextAccepted bool                `json:"plaintext_accepted"`
	Protocols         map[string]bool     `json:"protocols"`
	Ciphers           map[string][]string `json:"ciphers"`
	Certificate       *struct {
		HostnameOK bool  `json:"hostname_matches"`
		ChainOK    *bool `json:"chains_to_ca"`
		DaysLeft   int   `json:"days_left"`
	} `json:"certificate"`
	ClientCertRequested bool `json:"client_certificate_requested"`
}

func TestTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := func(parts ...string) string { return filepath.Join(append([]string{dir}, parts...)...) }
	run := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
	run("tls", "init-ca", "--name", "db server CA", "--out", p("server-ca"))
	run("tls", "init-ca", "--name", "db client CA", "--out", p("client-ca"))
	run("tls", "init-ca", "--name", "rogue CA", "--out", p("rogue-ca"))
	out := run("tls", "issue", "server", "--ca", p("server-ca"), "--host", "localhost", "--ip", "127.0.0.1", "--out", p("server"))
	if !strings.Contains(out, "ssl_cert_file") || !strings.Contains(out, "hostssl") {
		t.Errorf("issue server should print postgresql.conf and pg_hba.conf lines:\n%s", out)
	}
	out = run("tls", "issue", "client", "--ca", p("client-ca"), "--role", "jane", "--out", p("clients"), "--server-ca", p("server-ca", "ca.crt"))
	if !strings.Contains(out, "sslmode=verify-full") {
		t.Errorf("issue client should print a service file entry:\n%s", out)
	}
	run("tls", "issue", "client", "--ca", p("client-ca"), "--role", "bob", "--out", p("clients"))
	run("tls", "issue", "client", "--ca", p("rogue-ca"), "--role", "jane", "--out", p("rogue"))
	if st, _ := os.Stat(p("clients", "jane.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("client key mode %o", st.Mode().Perm())
	}
	if data, _ := os.ReadFile(p("server", "server.key")); strings.Contains(out, string(data)) {
		t.Error("a private key was printed")
	}

	copyIn := func(s *localpg.Server) error {
		for src, dst := range map[string]string{p("server", "server.crt"): "server.crt", p("server", "server.key"): "server.key",
			p("client-ca", "ca.crt"): "client-ca.crt", p("client-ca", "ca.crl"): "client-ca.crl"} {
			b, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			if err := s.WriteDataFile(dst, string(b)); err != nil {
				return err
			}
		}
		return nil
	}
	srv := pgtest.Start(t, localpg.Options{
		Conf: []string{"ssl = on", "ssl_ca_file = 'client-ca.crt'", "ssl_crl_file = 'client-ca.crl'", "ssl_min_protocol_version = 'TLSv1.2'"},
		HBA:  "host all postgres 127.0.0.1/32 scram-sha-256\nhostssl all all 127.0.0.1/32 cert\n",
		Init: copyIn,
	})
	ctx := pgtest.Ctx(t)
	must(t, srv.Exec(ctx, `CREATE ROLE jane LOGIN`, `CREATE ROLE bob LOGIN`))

	t.Run("psql verify-full with a client certificate", func(t *testing.T) {
		psql := filepath.Join(srv.BinDir, "psql")
		conninfo := fmt.Sprintf("host=localhost hostaddr=127.0.0.1 port=%d user=jane dbname=postgres sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s",
			srv.Port, p("server-ca", "ca.crt"), p("clients", "jane.crt"), p("clients", "jane.key"))
		cmd := exec.Command(psql, "-X", "-At", "-c", "SELECT current_user || ' ' || (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())", conninfo)
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
		b, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(b)) != "jane true" {
			t.Errorf("psql: %v: %s", err, b)
		}
	})

	connect := func(user, cert, key string) error {
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d dbname=postgres connect_timeout=10", srv.Port))
		if err != nil {
			return err
		}
		cfg.User = user
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		caPEM, _ := os.ReadFile(p("server-ca", "ca.crt"))
		pool.AppendCertsFromPEM(caPEM)
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "localhost"}
		cfg.Fallbacks = nil
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}
	t.Run("pgx with the client certificate", func(t *testing.T) {
		if err := connect("jane", p("clients", "jane.crt"), p("clients", "jane.key")); err != nil {
			t.Errorf("jane: %v", err)
		}
	})
	t.Run("certificate from the wrong CA is refused", func(t *testing.T) {
		if err := connect("jane", p("rogue", "jane.crt"), p("rogue", "jane.key")); err == nil {
			t.Error("a rogue-CA certificate was accepted")
		}
	})
	t.Run("certificate for another role is refused", func(t *testing.T) {
		err := connect("jane", p("clients", "bob.crt"), p("clients", "bob.key"))
		if err == nil || !strings.Contains(err.Error(), "certificate authentication failed") {
			t.Errorf("bob's certificate used as jane: %v", err)
		}
	})
	t.Run("revoked certificate is refused", func(t *testing.T) {
		run("tls", "revoke", "--ca", p("client-ca"), p("clients", "bob.crt"))
		b, _ := os.ReadFile(p("client-ca", "ca.crl"))
		must(t, srv.WriteDataFile("client-ca.crl", string(b)))
		must(t, srv.Exec(ctx, "SELECT pg_reload_conf()"))
		time.Sleep(300 * time.Millisecond)
		if err := connect("bob", p("clients", "bob.crt"), p("clients", "bob.key")); err == nil {
			t.Error("a revoked certificate was accepted")
		}
	})

	probe := func(t *testing.T) probeJSON {
		t.Helper()
		code, out, errs := runCLI(t, "tls", "probe", fmt.Sprintf("127.0.0.1:%d", srv.Port), "--ca", p("server-ca", "ca.crt"), "--format", "json", "--timeout", "5s")
		if code == ExitError {
			t.Fatalf("probe: %s", errs)
		}
		var r probeJSON
		must(t, json.Unmarshal([]byte(out), &r))
		return r
	}
	reconfigure := func(t *testing.T, settings ...string) {
		t.Helper()
		var stmts []string
		for _, s := range settings {
			stmts = append(stmts, "ALTER SYSTEM SET "+s)
		}
		stmts = append(stmts, "SELECT pg_reload_conf()")
		must(t, srv.Exec(ctx, stmts...))
		time.Sleep(400 * time.Millisecond)
	}
	want := func(t *testing.T, r probeJSON, v10, v11, v12, v13 bool) {
		t.Helper()
		got := []bool{r.Protocols["TLSv1.0"], r.Protocols["TLSv1.1"], r.Protocols["TLSv1.2"], r.Protocols["TLSv1.3"]}
		if fmt.Sprint(got) != fmt.Sprint([]bool{v10, v11, v12, v13}) {
			t.Errorf("protocols 1.0..1.3: %v, want %v", got, []bool{v10, v11, v12, v13})
		}
	}
	t.Run("probe: TLS 1.2 minimum", func(t *testing.T) {
		r := probe(t)
		if !r.TLSOffered || r.PlaintextAccepted || !r.ClientCertRequested {
			t.Errorf("%+v", r)
		}
		want(t, r, false, false, true, true)
		if c := r.Certificate; c == nil || !c.HostnameOK || c.ChainOK == nil || !*c.ChainOK || c.DaysLeft < 300 {
			t.Errorf("certificate: %+v", r.Certificate)
		}
		if len(r.Ciphers["TLSv1.2"]) == 0 {
			t.Error("no TLS 1.2 cipher enumerated")
		}
	})
	t.Run("probe: TLS 1.3 only", func(t *testing.T) {
		reconfigure(t, "ssl_min_protocol_version = 'TLSv1.3'")
		want(t, probe(t), false, false, false, true)
	})
	t.Run("probe: restricted cipher list", func(t *testing.T) {
		reconfigure(t, "ssl_min_protocol_version = 'TLSv1.2'", "ssl_max_protocol_version = 'TLSv1.2'", "ssl_ciphers = 'ECDHE-ECDSA-AES256-GCM-SHA384'")
		r := probe(t)
		want(t, r, false, false, true, false)
		if strings.Join(r.Ciphers["TLSv1.2"], ",") != "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" {
			t.Errorf("TLS 1.2 ciphers %v, want only ECDHE-ECDSA-AES256-GCM-SHA384", r.Ciphers["TLSv1.2"])
		}
	})
	t.Run("probe: ssl off, plaintext accepted", func(t *testing.T) {
		must(t, srv.WriteDataFile("pg_hba.conf", "host all all 127.0.0.1/32 scram-sha-256\n"))
		reconfigure(t, "ssl = off", "ssl_max_protocol_version = ''", "ssl_ciphers = 'HIGH:!aNULL'")
		// The unencrypted check needs a real login and pg_hba.conf, so that
		// the server logs no failure for it.
		code, out, errs := runCLI(t, "tls", "probe", fmt.Sprintf("127.0.0.1:%d", srv.Port), "--format", "json", "--timeout", "5s",
			"--user", srv.AdminUser, "--hba-file", filepath.Join(srv.DataDir, "pg_hba.conf"))
		if code == ExitError {
			t.Fatalf("probe: %s", errs)
		}
		var r probeJSON
		must(t, json.Unmarshal([]byte(out), &r))
		if r.TLSOffered || !r.PlaintextAccepted {
			t.Errorf("ssl off: %+v", r)
		}
		want(t, r, false, false, false, false)
		rep, _, _ := auditJSON(t, append(connArgs(t, srv, srv.AdminUser, srv.Password), "--no-files")...)
		expectFail(t, rep, "TLS-08", "unencrypted session", "does not offer TLS")
	})
	t.Run("probe against a server that closes early", func(t *testing.T) {
		code, _, errs := runCLI(t, "tls", "probe", "127.0.0.1:1", "--timeout", "2s")
		if code != ExitError || errs == "" {
			t.Errorf("closed port: exit %d %q", code, errs)
		}
	})
}

func TestTLSBadInput(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runCLI(t, "tls", "init-ca", "--name", "x", "--out", filepath.Join(dir, "ca"))
	if code != 0 {
		t.Fatal(errs)
	}
	code, _, errs = runCLI(t, "tls", "init-ca", "--name", "x", "--out", filepath.Join(dir, "ca"))
	if code != ExitError || !strings.Contains(errs, "refusing to overwrite") {
		t.Errorf("second init-ca: %d %s", code, errs)
	}
	runCLI(t, "tls", "init-ca", "--name", "y", "--out", filepath.Join(dir, "other"))
	// A CA whose key is not its certificate's.
	other, _ := os.ReadFile(filepath.Join(dir, "other", "ca.key"))
	must(t, os.WriteFile(filepath.Join(dir, "ca", "ca.key"), other, 0o600))
	code, _, errs = runCLI(t, "tls", "issue", "server", "--ca", filepath.Join(dir, "ca"), "--host", "x", "--out", filepath.Join(dir, "o"))
	if code != ExitError || !strings.Contains(errs, "does not match") || !strings.Contains(errs, "ca.key") {
		t.Errorf("mismatched key: %d %s", code, errs)
	}
	must(t, os.WriteFile(filepath.Join(dir, "other", "ca.key"), []byte("garbage"), 0o600))
	code, _, errs = runCLI(t, "tls", "issue", "client", "--ca", filepath.Join(dir, "other"), "--role", "r", "--out", filepath.Join(dir, "o"))
	if code != ExitError || !strings.Contains(errs, filepath.Join(dir, "other", "ca.key")) {
		t.Errorf("unreadable key: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "tls", "init-ca", "--name", "old", "--out", filepath.Join(dir, "old"), "--days", "0")
	if code == 0 {
		code, _, errs = runCLI(t, "tls", "issue", "client", "--ca", filepath.Join(dir, "old"), "--role", "r", "--out", filepath.Join(dir, "o"))
		if code != ExitError || !strings.Contains(errs, "expired") {
			t.Errorf("expired CA: %d %s", code, errs)
		}
	}
}

func TestTLSPassphraseProtectedServerKey(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	must(t, os.WriteFile(pass, []byte("correct horse battery\n"), 0o600))
	if code, _, errs := runCLI(t, "tls", "init-ca", "--name", "ca", "--out", filepath.Join(dir, "ca")); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := runCLI(t, "tls", "issue", "server", "--ca", filepath.Join(dir, "ca"), "--host", "localhost", "--ip", "127.0.0.1", "--out", filepath.Join(dir, "srv"), "--passphrase-file", pass)
	if code != 0 || !strings.Contains(out, "ssl_passphrase_command") {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "srv", "server.key"))
	if !strings.Contains(string(key), "ENCRYPTED") {
		t.Fatal("the key is not encrypted")
	}
	srv := pgtest.Start(t, localpg.Options{
		Conf: []string{"ssl = on", "ssl_passphrase_command = 'cat server.pass'", "ssl_passphrase_command_supports_reload = on"},
		Init: func(s *localpg.Server) error {
			crt, _ := os.ReadFile(filepath.Join(dir, "srv", "server.crt"))
			p, _ := os.ReadFile(pass)
			if err := s.WriteDataFile("server.crt", string(crt)); err != nil {
				return err
			}
			if err := s.WriteDataFile("server.pass", string(p)); err != nil {
				return err
			}
			return s.WriteDataFile("server.key", string(key))
		},
	})
	r := probeFor(t, srv.Port, filepath.Join(dir, "ca", "ca.crt"))
	if !r.TLSOffered || !r.Protocols["TLSv1.3"] {
		t.Errorf("the server did not come up with the encrypted key: %+v", r)
	}
}

func probeFor(t *testing.T, port int, ca string) probeJSON {
	code, out, errs := runCLI(t, "tls", "probe", fmt.Sprintf("127.0.0.1:%d", port), "--ca", ca, "--format", "json", "--no-ciphers")
	if code == ExitError {
		t.Fatalf("probe: %s", errs)
	}
	var r probeJSON
	must(t, json.Unmarshal([]byte(out), &r))
	return r
}

// TestTLSIssueServerSuggestions: what `tls issue server` prints comes from
// what it was told. Before: `--ip 127.0.0.1` printed `hostssl all all
// 10.0.0.0/8 cert` (a network nobody named) and `ssl_ca_file = '<client
// CA>/ca.crt'` (a file the server would try to open).
func TestTLSIssueServerSuggestions(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"server-ca", "client-ca"} {
		if code, _, errs := runCLI(t, "tls", "init-ca", "--name", name, "--out", filepath.Join(dir, name)); code != 0 {
			t.Fatal(errs)
		}
	}
	clientCA := filepath.Join(dir, "client-ca")
	cases := []struct {
		name      string
		args      []string
		want      []string // lines (or line prefixes, ending in "…") that must be printed
		forbidden []string // substrings that must not appear
	}{
		{name: "loopback address: a loopback line, nothing invented",
			args:      []string{"--ip", "127.0.0.1"},
			want:      []string{"hostssl all all 127.0.0.1/32 scram-sha-256", "hostnossl all all 0.0.0.0/0 reject", "# no ssl_ca_file: …"},
			forbidden: []string{"10.0.0.0/8", "<client CA>", "ssl_ca_file =", "ssl_crl_file =", " cert\n"}},
		{name: "a server address says nothing about its clients: no line",
			args:      []string{"--host", "db.test", "--ip", "10.0.0.5"},
			want:      []string{"# no line suggested: …", "# give --clients CIDR (repeatable) for their networks"},
			forbidden: []string{"hostssl", "hostnossl", "10.0.0.5/32", "10.0.0.0/8"}},
		{name: "DNS name only: no line",
			args:      []string{"--dns", "db.test"},
			want:      []string{"# no line suggested: …"},
			forbidden: []string{"hostssl"}},
		{name: "client networks given",
			args:      []string{"--host", "db.test", "--clients", "10.1.0.0/16", "--clients", "2001:db8::/32", "--clients", "192.0.2.7"},
			want:      []string{"hostssl all all 10.1.0.0/16 scram-sha-256", "hostssl all all 2001:db8::/32 scram-sha-256", "hostssl all all 192.0.2.7/32 scram-sha-256"},
			forbidden: []string{"10.0.0.0/8", "127.0.0.1/32"}},
		{name: "client CA known: ssl_ca_file is its absolute copy, lines use cert",
			args: []string{"--host", "db.test", "--ip", "::1", "--client-ca", clientCA},
			want: []string{"ssl_ca_file = '" + filepath.Join(dir, "out-4", "client-ca.crt") + "'    # …",
				"ssl_crl_file = '" + filepath.Join(dir, "out-4", "client-ca.crl") + "'    # …", "hostssl all all ::1/128 cert"},
			forbidden: []string{"<client CA>", "scram-sha-256\n"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
			args := append([]string{"tls", "issue", "server", "--ca", filepath.Join(dir, "server-ca"), "--out", out}, c.args...)
			code, stdout, errs := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			lines := strings.Split(stdout, "\n")
			for _, w := range c.want {
				found := false
				for _, l := range lines {
					if p, ok := strings.CutSuffix(w, "…"); ok && strings.HasPrefix(l, p) || l == w {
						found = true
					}
				}
				if !found {
					t.Errorf("no line %q in:\n%s", w, stdout)
				}
			}
			for _, f := range c.forbidden {
				if strings.Contains(stdout, f) {
					t.Errorf("%q printed:\n%s", f, stdout)
				}
			}
			// Every file the configuration names exists.
			for _, l := range lines {
				if v, ok := strings.CutPrefix(l, "ssl_ca_file = '"); ok {
					if _, err := os.Stat(v[:strings.IndexByte(v, '\'')]); err != nil {
						t.Errorf("ssl_ca_file names a missing file: %v", err)
					}
				}
			}
		})
	}
}

// TestTLSIssueClientServiceEntry: the printed ~/.pg_service.conf entry is
// complete and its paths absolute. Before: no port, and sslrootcert was
// '<server CA>/ca.crt' or the relative path as given.
func TestTLSIssueClientServiceEntry(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, name := range []string{"server-ca", "client-ca"} {
		if code, _, errs := runCLI(t, "tls", "init-ca", "--name", name, "--out", name); code != 0 {
			t.Fatal(errs)
		}
	}
	abs := func(p string) string { return filepath.Join(dir, p) }
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"defaults", []string{"--role", "jane", "--out", "c1", "--server-ca", "server-ca/ca.crt"},
			"[jane]\nhost=localhost\nport=5432\ndbname=postgres\nuser=jane\nsslmode=verify-full\nsslrootcert=" + abs("server-ca/ca.crt") +
				"\nsslcert=" + abs("c1/jane.crt") + "\nsslkey=" + abs("c1/jane.key") + "\n"},
		{"host, port, database; the CA directory for --server-ca", []string{"--role", "app", "--out", "c2", "--server-ca", "server-ca", "--host", "db.test", "--port", "6543", "--dbname", "shop"},
			"[app]\nhost=db.test\nport=6543\ndbname=shop\nuser=app\nsslmode=verify-full\nsslrootcert=" + abs("server-ca/ca.crt") +
				"\nsslcert=" + abs("c2/app.crt") + "\nsslkey=" + abs("c2/app.key") + "\n"},
		{"no server CA: said so, nothing relative", []string{"--role", "bob", "--out", "c3"},
			"[bob]\nhost=localhost\nport=5432\ndbname=postgres\nuser=bob\nsslmode=verify-full\nsslcert=" + abs("c3/bob.crt") + "\nsslkey=" + abs("c3/bob.key") +
				"\n# no sslrootcert: --server-ca was not given, so libpq reads ~/.postgresql/root.crt to verify the server\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(t, append([]string{"tls", "issue", "client", "--ca", "client-ca"}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			_, entry, _ := strings.Cut(out, "# pg_service.conf\n")
			if entry != c.want+"\n" {
				t.Errorf("entry:\n%s\nwant:\n%s", entry, c.want)
			}
		})
	}
	for _, bad := range [][]string{
		{"--role", "x", "--out", "c4", "--port", "0"},
		{"--role", "x", "--out", "c4", "--server-ca", "missing.crt"},
	} {
		if code, _, errs := runCLI(t, append([]string{"tls", "issue", "client", "--ca", "client-ca"}, bad...)...); code != ExitError || errs == "" {
			t.Errorf("%v: exit %d %q, want an error", bad, code, errs)
		}
	}
}

// TestTLSIssueIntoDataDir: `tls issue server --pgdata` run by root (as
// the tests are) for a cluster run by an unprivileged OS user leaves a pair
// the server can use: ssl = on, a reload and a restart all work, and a
// verify-full connection (server CA from the default CA directory; a client
// certificate through the printed service entry) succeeds. Before, the key
// stayed root's and the server could not read it. A second run changes
// nothing. This is the invocation the planner emits for TLS-01.
func TestTLSIssueIntoDataDir(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	dir := t.TempDir()
	if code, _, errs := runCLI(t, "tls", "init-ca", "--name", "client CA", "--out", filepath.Join(dir, "client-ca")); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := runCLI(t, append(tlsca.ServerCommand(srv.DataDir)[1:], "--client-ca", filepath.Join(dir, "client-ca"))...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	uid, gid := srv.OSUser()
	if uid < 0 {
		uid, gid = os.Getuid(), os.Getgid()
	}
	for name, mode := range map[string]os.FileMode{"server.key": 0o600, "server.crt": 0o644, "client-ca.crt": 0o644, "client-ca.crl": 0o644} {
		st, err := os.Lstat(filepath.Join(srv.DataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if int(sys.Uid) != uid || int(sys.Gid) != gid || st.Mode() != mode {
			t.Errorf("%s: owner %d:%d mode %v, want %d:%d %v", name, sys.Uid, sys.Gid, st.Mode(), uid, gid, mode)
		}
	}
	caCert := filepath.Join(tlsca.DefaultCADir(srv.DataDir), "ca.crt")
	if !strings.Contains(out, "sslrootcert="+caCert) {
		t.Errorf("the new CA's certificate is not named:\n%s", out)
	}
	// The printed settings, as ALTER SYSTEM would be given them.
	settings := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, " = '"); ok && (k == "ssl_cert_file" || k == "ssl_key_file" || k == "ssl_ca_file" || k == "ssl_crl_file") {
			settings[k] = v[:strings.IndexByte(v, '\'')]
		}
	}
	if len(settings) != 4 || settings["ssl_key_file"] != filepath.Join(srv.DataDir, "server.key") {
		t.Fatalf("settings printed: %v\n%s", settings, out)
	}
	stmts := []string{"ALTER SYSTEM SET ssl = on"}
	for k, v := range settings {
		stmts = append(stmts, "ALTER SYSTEM SET "+k+" = "+quote.Literal(v))
	}
	must(t, srv.WriteDataFile("pg_hba.conf", "hostssl all jane 127.0.0.1/32 cert\nhost all all 127.0.0.1/32 scram-sha-256\n"))
	must(t, srv.Exec(ctx, append(stmts, "CREATE ROLE jane LOGIN", "SELECT pg_reload_conf()")...))

	verifyFull := func(t *testing.T) {
		t.Helper()
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d dbname=postgres sslmode=verify-full sslrootcert=%s connect_timeout=10", srv.Port, caCert))
		if err != nil {
			t.Fatal(err)
		}
		cfg.User, cfg.Password = srv.AdminUser, srv.Password
		// A reload is asynchronous: poll (bounded by attempts, not time)
		// until a new backend sees ssl = on.
		for i := 0; ; i++ {
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err == nil {
				var ssl bool
				err = c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
				c.Close(ctx)
				if err == nil && ssl {
					return
				}
			}
			if i == 100 {
				t.Fatalf("no verify-full connection: %v\n%s", err, tailFile(srv.LogFile))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Run("verify-full after the reload", verifyFull)

	t.Run("a client certificate through the printed service entry", func(t *testing.T) {
		code, out, errs := runCLI(t, "tls", "issue", "client", "--ca", filepath.Join(dir, "client-ca"), "--role", "jane", "--out", filepath.Join(dir, "clients"),
			"--server-ca", tlsca.DefaultCADir(srv.DataDir), "--host", "localhost", "--port", fmt.Sprint(srv.Port), "--config-out", filepath.Join(dir, "conf"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, fmt.Sprintf("\nport=%d\n", srv.Port)) {
			t.Errorf("no port in the entry:\n%s", out)
		}
		cmd := exec.Command(filepath.Join(srv.BinDir, "psql"), "-X", "-At", "-c", "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", "service=jane")
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "PG") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		cmd.Env = append(cmd.Env, "PGSERVICEFILE="+filepath.Join(dir, "conf", "pg_service.conf"), "PGCONNECT_TIMEOUT=10")
		b, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(b)) != "jane true" {
			t.Errorf("psql service=jane: %v: %s", err, b)
		}
	})

	t.Run("a second run changes nothing", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(srv.DataDir, "server.key"))
		code, out, errs := runCLI(t, "tls", "issue", "server", "--pgdata", srv.DataDir, "--client-ca", filepath.Join(dir, "client-ca"))
		if code != 0 || !strings.Contains(out, "nothing issued") || strings.Contains(out, "issued server certificate") || strings.Contains(out, "given to") {
			t.Errorf("exit %d: %s%s", code, out, errs)
		}
		if after, _ := os.ReadFile(filepath.Join(srv.DataDir, "server.key")); string(after) != string(before) {
			t.Error("the key was replaced")
		}
		if strings.Contains(out, string(before)) {
			t.Error("the private key was printed")
		}
	})

	t.Run("the server restarts with it", func(t *testing.T) {
		if err := srv.Restart(ctx); err != nil {
			t.Fatalf("restart: %v", err)
		}
		verifyFull(t)
	})
}

// TestTLSIssueServerRefusals: bad or risky --pgdata input is an error that
// names the file, before anything is written.
func TestTLSIssueServerRefusals(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	must(t, os.MkdirAll(data, 0o700))
	if code, _, errs := runCLI(t, "tls", "issue", "server", "--pgdata", data); code != ExitError || !strings.Contains(errs, data+": not a PostgreSQL data directory") {
		t.Errorf("no PG_VERSION: exit %d %q", code, errs)
	}
	must(t, os.WriteFile(filepath.Join(data, "PG_VERSION"), []byte("15\n"), 0o600))
	// Someone else's certificate in place (here: from another CA) is left
	// alone unless --force.
	if code, _, errs := runCLI(t, "tls", "init-ca", "--name", "other", "--out", filepath.Join(dir, "other")); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := runCLI(t, "tls", "issue", "server", "--ca", filepath.Join(dir, "other"), "--out", data, "--host", "elsewhere.test"); code != 0 {
		t.Fatal(errs)
	}
	before, _ := os.ReadFile(filepath.Join(data, "server.crt"))
	code, _, errs := runCLI(t, "tls", "issue", "server", "--pgdata", data)
	if code != ExitError || !strings.Contains(errs, filepath.Join(data, "server.crt")+" does not cover") || !strings.Contains(errs, "--force") {
		t.Errorf("foreign certificate: exit %d %q", code, errs)
	}
	if after, _ := os.ReadFile(filepath.Join(data, "server.crt")); string(after) != string(before) {
		t.Error("a certificate this CA did not sign was replaced")
	}
	if code, out, errs := runCLI(t, "tls", "issue", "server", "--pgdata", data, "--force"); code != 0 || !strings.Contains(out, "issued server certificate") {
		t.Errorf("--force: exit %d %s %s", code, out, errs)
	}
	// Now it is ours: new names replace it without --force (a renewal).
	if code, out, errs := runCLI(t, "tls", "issue", "server", "--pgdata", data, "--host", "db.test"); code != 0 || !strings.Contains(out, "replacing") {
		t.Errorf("renewal of our own: exit %d %s %s", code, out, errs)
	}
	for _, bad := range [][]string{
		{"--pgdata", data, "--out", dir},
		{"--pgdata", data, "--owner", "no-such-user-pgaegis"},
		{"--pgdata", data, "--clients", "10.0.0.0/33"},
		{"--out", dir, "--host", "x"}, // no --ca
	} {
		if code, _, errs := runCLI(t, append([]string{"tls", "issue", "server"}, bad...)...); code != ExitError || errs == "" {
			t.Errorf("%v: exit %d %q, want an error", bad, code, errs)
		}
	}
}

func tailFile(p string) string {
	b, _ := os.ReadFile(p)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// TestTLSIssueServerPlannerCommand: the exact argv the fix planner emits
// for TLS-01 (tlsca.ServerCommand), then nothing but ssl = on: the
// server's default ssl_cert_file/ssl_key_file find the pair, a reload and
// a restart bring TLS up, and running the command again does nothing.
func TestTLSIssueServerPlannerCommand(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	argv := tlsca.ServerCommand(srv.DataDir)
	if code, _, errs := runCLI(t, argv[1:]...); code != 0 {
		t.Fatalf("%v: exit %d: %s", argv, code, errs)
	}
	must(t, srv.Exec(ctx, "ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()"))
	caCert := filepath.Join(tlsca.DefaultCADir(srv.DataDir), tlsca.CACert)
	connect := func(t *testing.T) {
		t.Helper()
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=localhost port=%d dbname=postgres sslmode=verify-full sslrootcert=%s connect_timeout=10", srv.Port, caCert))
		if err != nil {
			t.Fatal(err)
		}
		cfg.User, cfg.Password = srv.AdminUser, srv.Password
		for i := 0; ; i++ { // the reload is asynchronous: bounded attempts
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err == nil {
				c.Close(ctx)
				return
			}
			if i == 100 {
				t.Fatalf("verify-full: %v\n%s", err, tailFile(srv.LogFile))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	connect(t)
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	connect(t)
	code, out, errs := runCLI(t, argv[1:]...)
	if code != 0 || !strings.Contains(out, "nothing issued") {
		t.Errorf("second run: exit %d: %s%s", code, out, errs)
	}
}

// TestTLSIssueOutDirOwner: root issuing into an existing directory of
// another user (a data directory given as --out, as the rules' fix text
// does) gives the pair to that user; a new directory stays the caller's.
func TestTLSIssueOutDirOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files away needs root")
	}
	dir := t.TempDir()
	if code, _, errs := runCLI(t, "tls", "init-ca", "--name", "ca", "--out", filepath.Join(dir, "ca")); code != 0 {
		t.Fatal(errs)
	}
	theirs := filepath.Join(dir, "theirs")
	must(t, os.Mkdir(theirs, 0o700))
	must(t, os.Chown(theirs, 4242, 4343))
	for _, c := range []struct {
		out      string
		uid, gid uint32
		args     []string
	}{
		{theirs, 4242, 4343, nil},
		{filepath.Join(dir, "new"), 0, 0, nil},
		{filepath.Join(dir, "given"), 4444, 4545, []string{"--owner", "4444:4545"}},
	} {
		args := append([]string{"tls", "issue", "server", "--ca", filepath.Join(dir, "ca"), "--out", c.out, "--host", "db.test"}, c.args...)
		code, out, errs := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		st, err := os.Lstat(filepath.Join(c.out, "server.key"))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Uid != c.uid || sys.Gid != c.gid || st.Mode() != 0o600 {
			t.Errorf("%s: key %d:%d %v, want %d:%d 0600", c.out, sys.Uid, sys.Gid, st.Mode(), c.uid, c.gid)
		}
		if hint := strings.Contains(out, "chown postgres"); hint != (c.uid == 0) {
			t.Errorf("%s: chown hint printed %v:\n%s", c.out, hint, out)
		}
	}
	// A renewal by root keeps the files with the user who owned them.
	before, _ := os.ReadFile(filepath.Join(theirs, "server.key"))
	if code, _, errs := runCLI(t, "tls", "renew", "--ca", filepath.Join(dir, "ca"), "--within", "500"); code != 0 {
		t.Fatalf("renew: %s", errs)
	}
	st, _ := os.Lstat(filepath.Join(theirs, "server.key"))
	after, _ := os.ReadFile(filepath.Join(theirs, "server.key"))
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 4242 || sys.Gid != 4343 || st.Mode() != 0o600 || string(after) == string(before) {
		t.Errorf("renewed key: %d:%d %v (replaced: %v)", sys.Uid, sys.Gid, st.Mode(), string(after) != string(before))
	}
}

// TestTLSIssueServerPlantedCA is the trial's attack: another user's
// init-ca in the default CA directory beside the data directory, then
// root's issue server --pgdata --force. Root must refuse that CA, naming
// it and its owner, and issue nothing; its own CA there is used.
func TestTLSIssueServerPlantedCA(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to plant a CA owned by another user")
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres OS user")
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir := t.TempDir()
	data := filepath.Join(dir, "data") // root's: postgres is not its owner here
	must(t, os.MkdirAll(data, 0o700))
	must(t, os.WriteFile(filepath.Join(data, "PG_VERSION"), []byte("15\n"), 0o600))
	caDir := tlsca.DefaultCADir(data)
	if code, _, errs := runCLI(t, "tls", "init-ca", "--name", "evil CA", "--out", caDir); code != 0 {
		t.Fatal(errs)
	}
	for _, f := range []string{"", tlsca.CACert, tlsca.CAKey, tlsca.CRLFile} {
		must(t, os.Chown(filepath.Join(caDir, f), uid, gid))
	}
	code, out, errs := runCLI(t, "tls", "issue", "server", "--pgdata", data, "--force")
	if code != ExitError || !strings.Contains(errs, "CA directory "+caDir+" is owned by postgres") || !strings.Contains(errs, "expected this user") {
		t.Errorf("planted CA: exit %d %q %q", code, out, errs)
	}
	if _, err := os.Lstat(filepath.Join(data, tlsca.ServerCertName)); err == nil {
		t.Error("a certificate was issued from the planted CA")
	}
	must(t, os.RemoveAll(caDir))
	if code, out, errs := runCLI(t, "tls", "issue", "server", "--pgdata", data); code != 0 || !strings.Contains(out, "created CA") {
		t.Errorf("own CA: exit %d %q %q", code, out, errs)
	}
}

// TestTLSProbeTextSSLOff: a server with ssl = off (it answers 'N') is
// shown as "TLS not offered" once, not as four refused versions, and an
// unchecked plaintext answer says "not checked" once.
func TestTLSProbeTextSSLOff(t *testing.T) {
	addr := fakePG(t, func(c net.Conn) {
		first := make([]byte, 8)
		if _, err := io.ReadFull(c, first); err == nil && first[4] == 0x04 {
			c.Write([]byte{'N'})
		}
	})
	code, out, errs := runCLI(t, "tls", "probe", addr, "--timeout", "5s")
	if code != ExitFindings {
		t.Errorf("exit %d, want %d: %s", code, ExitFindings, errs)
	}
	for _, c := range []struct {
		text string
		n    int
	}{{"TLS not offered", 1}, {"not checked", 1}, {"TLSv1.", 0}, {"refused", 0}} {
		if got := strings.Count(out, c.text); got != c.n {
			t.Errorf("%q %d times, want %d:\n%s", c.text, got, c.n, out)
		}
	}
}
