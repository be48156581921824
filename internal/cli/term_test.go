package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// evilName retitles the terminal, clears it and reverses what follows.
const evilName = "evil\x1b]0;owned\x07\x1b[2J\u202etxt.exe"

// assertTerminalSafe fails when out holds a raw control character (other
// than newline and tab) or a bidi override.
func assertTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if i := textsafe.FirstUnsafe(out); i >= 0 {
		t.Errorf("%s: raw control or bidi character at byte %d: %q", what, i, out[max(0, i-40):min(len(out), i+20)])
	}
}

// A client that is not even authenticated picks the user name of its
// failed login; the server logs it; logs scan must not print it raw.
func TestLogsScanEscapesHostileLoginName(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{Conf: []string{"log_connections = on", "log_line_prefix = '%m [%p] %u@%d %r '"}})
	ctx := pgtest.Ctx(t)
	for i := 0; i < 12; i++ { // enough failures to make a brute-force event
		cfg := srv.ConnConfig("postgres")
		cfg.User = evilName
		cfg.Password = "wrong"
		cfg.TLSConfig = nil
		if c, err := pgx.ConnectConfig(ctx, cfg); err == nil {
			c.Close(ctx)
			t.Fatal("a login with a wrong password succeeded")
		}
	}
	must(t, srv.Exec(ctx, "SELECT 1")) // the log is written by now
	_, out, errs := runCLI(t, "logs", "scan", srv.LogFile)
	if !strings.Contains(out, `evil\x1b]0;owned\x07`) {
		t.Fatalf("the failed login's user name is not in the summary:\n%s\n%s", out, errs)
	}
	assertTerminalSafe(t, "logs scan", out)
	assertTerminalSafe(t, "logs scan stderr", errs)
	for _, f := range []string{"markdown", "html"} {
		_, out, _ := runCLI(t, "logs", "scan", srv.LogFile, "--format", f)
		assertTerminalSafe(t, "logs scan --format "+f, out)
	}
}

// Role, schema and table names are chosen by whoever has CREATE: every
// human-readable command over them escapes what it prints.
func TestTextOutputsEscapeHostileNames(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	q := `"` + evilName + `"`
	must(t, srv.Exec(ctx,
		"CREATE ROLE "+q+" LOGIN CREATEROLE",
		"CREATE SCHEMA "+q,
		"CREATE TABLE "+q+"."+q+" (id int)",
		"GRANT SELECT ON "+q+"."+q+" TO "+q,
		"GRANT pg_execute_server_program TO "+q))
	conn := connArgs(t, srv, srv.AdminUser, srv.Password)
	runs := [][]string{
		append([]string{"audit", "--no-probe", "-v"}, conn...),
		append([]string{"audit", "--no-probe", "--format", "markdown"}, conn...),
		append([]string{"access", "--role", evilName}, conn...),
		append([]string{"access", "--object", evilName + "." + evilName}, conn...),
		append([]string{"access", "check", "--role", evilName, "--object", evilName + "." + evilName, "--privilege", "SELECT"}, conn...),
		append([]string{"escalations"}, conn...),
		append([]string{"access", "--role", "nobody" + evilName}, conn...), // an error that quotes the name
	}
	// The same names read back from a snapshot (collect here, audit elsewhere).
	snap := filepath.Join(t.TempDir(), "snap.json")
	if code, _, errs := runCLI(t, append([]string{"collect", "--no-probe", "-o", snap}, conn...)...); code != ExitOK {
		t.Fatalf("collect: exit %d: %s", code, errs)
	}
	runs = append(runs,
		[]string{"audit", "--snapshot", snap, "-v"},
		[]string{"audit", "--snapshot", snap, "--format", "html"},
		[]string{"access", "--snapshot", snap, "--role", evilName},
		[]string{"escalations", "--snapshot", snap},
		[]string{"hba", "matrix", "--snapshot", snap},
	)
	for _, args := range runs {
		_, out, errs := runCLI(t, args...)
		name := strings.Join(args[:2], " ")
		if !strings.Contains(out+errs, `\x1b]0;owned`) {
			t.Errorf("%s: the hostile name is not shown (escaped):\n%s\n%s", name, out, errs)
		}
		assertTerminalSafe(t, name, out)
		assertTerminalSafe(t, name+" (stderr)", errs)
	}
}

// A certificate's subject is whatever the server's owner wrote in it.
func TestTLSProbeEscapesCertificateSubject(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: evilName, Organization: []string{"org\x1b[2J"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	addr := fakePG(t, func(c net.Conn) {
		first := make([]byte, 8)
		if _, err := io.ReadFull(c, first); err != nil || first[4] != 0x04 {
			return
		}
		c.Write([]byte{'S'})
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		tc.Handshake()
		tc.Close()
	})
	_, out, errs := runCLI(t, "tls", "probe", addr, "--no-ciphers", "--timeout", "10s")
	if !strings.Contains(out, `\x07\x1b[2J\u202etxt.exe`) {
		t.Fatalf("the certificate subject is not shown escaped:\n%s\n%s", out, errs)
	}
	assertTerminalSafe(t, "tls probe", out)
	assertTerminalSafe(t, "tls probe (stderr)", errs)
}

// tls probe against a server that says nothing, one that stops after 'S'
// and one that hangs up: each is told apart, and a stall is an error.
func TestTLSProbeReportsStalls(t *testing.T) {
	hold := func(c net.Conn) { io.Copy(io.Discard, c) }
	cases := []struct {
		name   string
		serve  func(net.Conn)
		want   string
		refuse bool // "refused" may appear (it was an answer)
	}{
		{"silent", hold, "STALLED: no answer to SSLRequest within 1s", false},
		{"S then silent", func(c net.Conn) {
			first := make([]byte, 8)
			if _, err := io.ReadFull(c, first); err == nil && first[4] == 0x04 {
				c.Write([]byte{'S'})
			}
			hold(c)
		}, "STALLED: TLS handshake (TLSv1.0) not finished within 1s", false},
		{"closes", func(c net.Conn) {}, "closed the connection without answering SSLRequest", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := fakePG(t, c.serve)
			code, out, errs := runCLI(t, "tls", "probe", addr, "--timeout", "1s")
			if code != ExitError {
				t.Errorf("exit %d, want %d", code, ExitError)
			}
			// A port that answered nothing is an error alone (stderr);
			// a stall is reported in the table and as the error.
			if !strings.Contains(out+errs, c.want) {
				t.Errorf("output lacks %q:\n%s\n%s", c.want, out, errs)
			}
			if !c.refuse && strings.Contains(out, "refused") {
				t.Errorf("a stall is reported as a refusal:\n%s", out)
			}
		})
	}
}

// fakePG listens on loopback and hands each connection to serve; the
// connection is closed when serve returns or the test ends.
func fakePG(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				serve(c)
				c.Close()
			}()
		}
	}()
	return l.Addr().String()
}

// Error messages quote paths, names and file content.
func TestErrorsEscapeHostileText(t *testing.T) {
	missing := filepath.Join(t.TempDir(), evilName)
	runs := [][]string{
		{"audit", "--config-file", missing},
		{"hba", "lint", "--file", missing},
		{"logs", "scan", missing},
		{"tls", "probe", "127.0.0.1:1", "--ca", missing},
		{"audit", "--snapshot", writeFile(t, "snap.json", `{"format_version": 1, "target": {"description": "`+"\x1b[2J"+`"`)},
	}
	for _, args := range runs {
		code, out, errs := runCLI(t, args...)
		name := strings.Join(args[:2], " ")
		if code != ExitError {
			t.Errorf("%s: exit %d, want %d", name, code, ExitError)
		}
		assertTerminalSafe(t, name, out)
		assertTerminalSafe(t, name+" (stderr)", errs)
	}
}

// pg_hba.conf tokens and role names reach the hba commands' text output.
func TestHBATextEscapesHostileNames(t *testing.T) {
	quoted := `"` + evilName + `"`
	old := writeFile(t, "old.conf", "local all all peer\nhost all "+quoted+" 10.0.0.0/8 scram-sha-256\n")
	widened := writeFile(t, "new.conf", "local all all peer\nhost all "+quoted+" 0.0.0.0/0 md5\nhost all all 10.0.0.0/8 trust "+evilName+"\n")
	runs := [][]string{
		{"hba", "explain", "--file", old, "--user", evilName, "--database", "postgres", "--address", "10.1.2.3"},
		{"hba", "explain", "--file", old, "--user", evilName, "--database", "postgres"},
		{"hba", "lint", "--file", widened},
		{"hba", "diff", old, widened},
		{"hba", "matrix", "--file", widened},
	}
	for _, args := range runs {
		_, out, errs := runCLI(t, args...)
		name := strings.Join(args[:2], " ")
		if !strings.Contains(out+errs, `\x1b]0;owned`) {
			t.Errorf("%s: the hostile name is not shown (escaped):\n%s\n%s", name, out, errs)
		}
		assertTerminalSafe(t, name, out)
		assertTerminalSafe(t, name+" (stderr)", errs)
	}
}
