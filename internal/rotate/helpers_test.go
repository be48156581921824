package rotate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/scram"
	"github.com/pgaegis/pgaegis/internal/secretsink"
)

// The package's tests share one server configured to keep everything a
// leaky rotation would leave behind: every statement logged (stderr and
// the collector's files), pgaudit logging all classes, pg_stat_statements
// tracking utility statements. TestLeak reads all of it at the end.
var (
	loudOnce sync.Once
	loud     *localpg.Server
	loudErr  error
)

const testHBA = `local all all scram-sha-256
host all rej_app 127.0.0.1/32 reject
host all trust_app 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
`

// loudConf is the configuration that keeps statement text; pgaudit only
// where it is installed (Debian's 15).
func loudConf(binDir string) []string {
	libs := "pg_stat_statements"
	conf := []string{}
	if hasPgaudit(binDir) {
		libs = "pgaudit,pg_stat_statements"
		conf = append(conf, "pgaudit.log = 'all'", "pgaudit.log_parameter = on")
	}
	return append(conf,
		"shared_preload_libraries = '"+libs+"'",
		"logging_collector = on",
		"log_directory = 'log'",
		"log_statement = 'all'",
		"log_min_duration_statement = 0",
		"log_connections = on",
		"pg_stat_statements.track = 'all'",
		"pg_stat_statements.track_utility = on",
	)
}

func hasPgaudit(binDir string) bool {
	_, err := os.Stat(filepath.Join(filepath.Dir(binDir), "lib", "pgaudit.so"))
	return err == nil
}

func startLoud(t *testing.T, major string) *localpg.Server {
	t.Helper()
	bin, err := localpg.FindBinDir(major)
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := localpg.Start(ctx, localpg.Options{BinDir: bin, Conf: loudConf(bin), HBA: testHBA})
	if err != nil {
		t.Fatalf("starting PostgreSQL %s: %v", major, err)
	}
	quietExec(t, srv, "postgres", "CREATE EXTENSION pg_stat_statements")
	return srv
}

func shared(t *testing.T) *localpg.Server {
	t.Helper()
	loudOnce.Do(func() {
		bin, err := localpg.FindBinDir(pgtest.Version)
		if err != nil {
			loudErr = err
			return
		}
		ctx := context.Background()
		loud, loudErr = localpg.Start(ctx, localpg.Options{BinDir: bin, Conf: loudConf(bin), HBA: testHBA})
		if loudErr == nil {
			loudErr = quietExecErr(loud, "postgres", "CREATE EXTENSION pg_stat_statements")
		}
	})
	if loudErr != nil {
		if loud == nil {
			pgtest.Unavailable(t, loudErr)
		}
		t.Fatal(loudErr)
	}
	return loud
}

func TestMain(m *testing.M) {
	code := m.Run()
	if loud != nil {
		loud.Stop()
	}
	os.Exit(code)
}

// socketAdmin is the admin over the server's unix socket (the transport
// rotate accepts without TLS).
func socketAdmin(srv *localpg.Server, db string) *pgx.ConnConfig {
	cfg := srv.ConnConfig(db)
	cfg.Host, cfg.TLSConfig, cfg.Fallbacks = srv.SocketDir, nil, nil
	return cfg
}

// tcpPlain is user over TCP without TLS.
func tcpPlain(t *testing.T, srv *localpg.Server, db, user, pw string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable connect_timeout=30", srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password, cfg.Database = user, pw, db
	return cfg
}

// quietSQL are the settings the test's own setup turns off, so the
// passwords it sets do not end up in the log the leak test reads.
var quietSQL = []string{
	"SET log_statement = 'none'", "SET log_min_duration_statement = -1", "SET log_min_error_statement = 'panic'",
	"SET pg_stat_statements.track_utility = off",
}

func quietExecErr(srv *localpg.Server, db string, sql ...string) error {
	ctx := context.Background()
	c, err := pgx.ConnectConfig(ctx, socketAdmin(srv, db))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	pre := quietSQL
	var audit *string
	if err := c.QueryRow(ctx, "SELECT current_setting('pgaudit.log', true)").Scan(&audit); err == nil && audit != nil {
		pre = append(pre, "SET pgaudit.log = 'none'")
	}
	for _, q := range append(pre, sql...) {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func quietExec(t *testing.T, srv *localpg.Server, db string, sql ...string) {
	t.Helper()
	if err := quietExecErr(srv, db, sql...); err != nil {
		t.Fatal(err)
	}
}

// loginRole creates a LOGIN role with a password (set as a verifier,
// quietly) and returns the password.
func loginRole(t *testing.T, srv *localpg.Server, name string, extra ...string) string {
	t.Helper()
	pw := "old-" + name + "-" + strconv.FormatInt(int64(os.Getpid()), 36) + "-Xq7pLm2v"
	v, err := scram.Verifier([]byte(pw), 0)
	if err != nil {
		t.Fatal(err)
	}
	attrs := strings.Join(append([]string{"LOGIN"}, extra...), " ")
	dropRoles(t, srv, name)
	quietExec(t, srv, "postgres", "CREATE ROLE "+quote.Ident(name)+" "+attrs+" PASSWORD "+quote.Literal(v))
	usedSecrets.add(pw)
	return pw
}

// dropRoles drops roles a previous run (go test -count) left.
func dropRoles(t *testing.T, srv *localpg.Server, names ...string) {
	t.Helper()
	for _, n := range names {
		quietExec(t, srv, "postgres", "DROP ROLE IF EXISTS "+quote.Ident(n))
	}
}

// usedSecrets are every password the tests set or received, for the
// leak test's search.
var usedSecrets secretSet

type secretSet struct {
	mu sync.Mutex
	s  []string
}

func (s *secretSet) add(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s = append(s.s, v)
}

func (s *secretSet) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.s...)
}

// ORACLE: libpq's own login (psql), over TCP and the socket.
func psqlLogin(t *testing.T, srv *localpg.Server, host, user, pw string) error {
	t.Helper()
	dir := t.TempDir()
	pass := filepath.Join(dir, "pgpass")
	// The password goes through a pgpass file, never argv or the
	// environment of the child.
	line := "*:*:*:*:" + strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(pw) + "\n"
	if err := os.WriteFile(pass, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := pgtest.Ctx(t)
	cmd := exec.CommandContext(ctx, filepath.Join(srv.BinDir, "psql"), "-X", "-At", "-w",
		"-d", fmt.Sprintf("host=%s port=%d dbname=postgres user=%s sslmode=disable connect_timeout=30", host, srv.Port, user),
		"-c", "SELECT current_user")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PGPASSFILE="+pass)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("psql as %s at %s: %v: %s", user, host, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// ORACLE: a pgx login with the password given explicitly.
func pgxLogin(t *testing.T, cfg *pgx.ConnConfig) error {
	t.Helper()
	ctx := pgtest.Ctx(t)
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var one int
	return c.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// authid reads a role's rolpassword and rolvaliduntil.
func authid(t *testing.T, srv *localpg.Server, name string) (verifier, until *string) {
	t.Helper()
	c := pgtest.Conn(t, srv, "postgres")
	err := c.QueryRow(pgtest.Ctx(t), "SELECT rolpassword, rolvaliduntil::text FROM pg_authid WHERE rolname = $1", name).Scan(&verifier, &until)
	if err != nil {
		t.Fatal(err)
	}
	return verifier, until
}

// secretFile is a JSON file sink's content.
type secretFile struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func readSecret(t testing.TB, path string) secretFile {
	t.Helper()
	s, err := readSecretErr(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readSecretErr(path string) (secretFile, error) {
	var s secretFile
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %v", path, err)
	}
	return s, nil
}

func fileSink(t *testing.T, path, format string) secretsink.Sink {
	t.Helper()
	s, err := secretsink.NewFile(path, format)
	if err == nil {
		return s
	}
	if !strings.Contains(err.Error(), "not built yet") {
		t.Fatal(err)
	}
	return &standInFile{path: path, format: format}
}

func execSink(command string) secretsink.Sink {
	if s := secretsink.NewExec(command, 0); s != nil {
		return s
	}
	return &standInExec{command: command}
}

// progressLog collects Progress lines for the leak test.
type progressLog struct {
	mu    sync.Mutex
	lines []string
}

func (p *progressLog) f(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, fmt.Sprintf(format, args...))
}

// outputs is everything rotate returned or printed, for the leak test.
var outputs secretSet

func record(p *progressLog, v ...any) {
	for _, x := range v {
		if x == nil {
			continue
		}
		outputs.add(fmt.Sprintf("%+v", x))
	}
	if p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, l := range p.lines {
			outputs.add(l)
		}
	}
}
