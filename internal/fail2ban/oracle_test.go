package fail2ban_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/fail2ban"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

const hba = `local all all trust
host all rejectme 127.0.0.1/32 reject
host all postgres 127.0.0.1/32 scram-sha-256
host postgres all 127.0.0.1/32 scram-sha-256
`

// attempts are the logins each server sees: ok says whether it succeeds.
var attempts = []struct {
	user, db, password string
	ok                 bool
}{
	{"alice", "postgres", "wrong-1", false},   // password authentication failed
	{"alice", "postgres", "right-pw", true},   // success
	{"nosuch", "postgres", "whatever", false}, // unknown role: also "password authentication failed"
	{"alice", "nohba", "right-pw", false},     // no pg_hba.conf entry
	{"rejectme", "postgres", "x", false},      // pg_hba.conf rejects connection
	{"alice", "postgres", "wrong-2", false},
	{"alice", "postgres", "right-pw", true},
}

func fail2banRegex(tb testing.TB) string {
	p, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("fail2ban-regex is required under CI=true: %v", err)
		}
		tb.Skipf("fail2ban-regex not installed: %v", err)
	}
	return p
}

// settings reads what Build needs from the live server, as the CLI does.
func settings(t *testing.T, ctx context.Context, srv *localpg.Server) fail2ban.Settings {
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT name, setting FROM pg_settings WHERE name = ANY($1)", fail2ban.SettingNames)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	s, err := fail2ban.FromMap(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ORACLE: a real server writes the log (its own messages, its own
// prefix expansion, its own csvlog/jsonlog), and the real fail2ban-regex
// runs the generated filter on it: every failed login is matched once,
// with 127.0.0.1, and no successful one.
func TestFilterOnRealLogs(t *testing.T) {
	f2b := fail2banRegex(t)
	cases := []struct {
		name, prefix, dest, want string
		minMajor                 int
	}{
		{"debian-default-plus-host", "%m [%p] %q%u@%d %h ", "stderr", "stderr", 0},
		{"pgbadger-style", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ", "stderr", "stderr", 0},
		{"remote-port", "%m [%p] %r ", "stderr", "stderr", 0},
		{"epoch", "%n %h %u ", "stderr", "stderr", 0},
		{"padded-and-literals", "%-10u|%5p|(%e) %% %h%q [%c] %x %v %b ", "stderr", "stderr", 0},
		{"no-timestamp", "[%p] %h ", "stderr", "stderr", 0},
		{"csvlog", "%m [%p] ", "csvlog", "csvlog", 0},
		// Debian's default prefix has no host: with csvlog beside it the
		// filter reads the csv file, which always has the address.
		{"debian-default-with-csvlog", "%m [%p] %q%u@%d ", "stderr,csvlog", "csvlog", 0},
		{"jsonlog", "%m [%p] ", "jsonlog", "jsonlog", 15},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A server of its own per case: the cases overlap (two at a
			// time by go test's default -parallel on 2 cores), each
			// waiting on its server and fail2ban-regex while the other runs.
			t.Parallel()
			srv := startLogging(t, 0, tc.prefix, tc.dest, tc.minMajor)
			ctx := pgtest.Ctx(t)
			s := settings(t, ctx, srv)
			failures := login(t, ctx, srv)
			checkFilter(t, f2b, s, tc.want, failures)
		})
	}
}

// ORACLE: a role whose name holds a space ("John Smith") fails its
// password; with the host-first prefix the real fail2ban-regex matches it,
// as 127.0.0.1. (The names were \S*, and the failure was missed.)
func TestFilterRoleWithSpace(t *testing.T) {
	f2b := fail2banRegex(t)
	srv := startLogging(t, 0, fail2ban.RecommendedPrefix, "stderr", 0)
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE "John Smith" LOGIN PASSWORD 'right-pw'`); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=disable connect_timeout=30 port=" + strconv.Itoa(srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Database, cfg.Password = "John Smith", "postgres", "wrong-pw"
	if c, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		c.Close(ctx)
		t.Fatal("a wrong password logged in")
	}
	cfg.Password = "right-pw"
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	c.Close(ctx)
	checkFilter(t, f2b, settings(t, ctx, srv), "stderr", 1)
}

// ORACLE: on every major (CI has 13 to 18), one server writes stderr,
// csvlog and (15+) jsonlog at once, and each destination's filter matches
// that major's messages and columns.
func TestFilterEachMajor(t *testing.T) {
	f2b := fail2banRegex(t)
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		dests := "stderr,csvlog"
		if major >= 15 {
			dests += ",jsonlog"
		}
		srv := startLogging(t, major, "%m [%p] %q%u@%d %h ", dests, 0)
		ctx := pgtest.Ctx(t)
		s := settings(t, ctx, srv)
		failures := login(t, ctx, srv)
		for _, d := range strings.Split(dests, ",") {
			s.LogDestination = d
			checkFilter(t, f2b, s, d, failures)
		}
	})
}

// ORACLE: the server's own settings with Debian's default prefix and a
// stderr log: refused, naming the prefix to set.
func TestRealServerWithoutHostRefused(t *testing.T) {
	srv := startLogging(t, 0, "%m [%p] %q%u@%d ", "stderr", 0)
	s := settings(t, pgtest.Ctx(t), srv)
	_, err := fail2ban.Build(s, fail2ban.Defaults())
	var nh *fail2ban.NoHostError
	if !errors.As(err, &nh) || !strings.Contains(err.Error(), fail2ban.RecommendedPrefix) {
		t.Fatalf("Build = %v, want the refusal", err)
	}
}

// checkFilter builds the files for s, finds the log the jail follows and
// runs fail2ban-regex on it.
func checkFilter(t *testing.T, f2b string, s fail2ban.Settings, want string, failures int) {
	t.Helper()
	cfg, err := fail2ban.Build(s, fail2ban.Defaults())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if cfg.Filter.Destination != want {
		t.Fatalf("filter reads %s, want %s", cfg.Filter.Destination, want)
	}
	logFile := waitForFailures(t, cfg.LogPath, failures, want)
	filter := filepath.Join(t.TempDir(), "filter.conf")
	if err := os.WriteFile(filter, []byte(cfg.Filter.Text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(f2b, "--out", "ip", logFile, filter).CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-regex: %v\n%s\nfilter:\n%s", err, out, cfg.Filter.Text)
	}
	ips := strings.Fields(string(out))
	if len(ips) != failures {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("%s: fail2ban-regex matched %d lines (%v), want the %d failures\nfilter:\n%s\nlog:\n%s", want, len(ips), ips, failures, cfg.Filter.Text, log)
	}
	for _, ip := range ips {
		if ip != "127.0.0.1" {
			t.Errorf("%s: matched host %q, want 127.0.0.1", want, ip)
		}
	}
	// The matched lines are the FATAL ones, never a successful login's
	// (log_connections writes "connection authorized").
	msgs, err := exec.Command(f2b, "--out", "msg", logFile, filter).CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-regex --out msg: %v\n%s", err, msgs)
	}
	if strings.Contains(string(msgs), "authorized") || strings.Contains(string(msgs), "authenticated") {
		t.Errorf("%s: a successful login matched:\n%s", want, msgs)
	}
}

// startLogging starts a server logging to files under its data directory.
func startLogging(t *testing.T, major int, prefix, dest string, minMajor int) *localpg.Server {
	conf := []string{
		"logging_collector = on", "log_directory = 'log'", "log_connections = on", "lc_messages = 'C'",
		"log_timezone = 'UTC'", "log_file_mode = 0644", "log_destination = '" + dest + "'",
		"log_line_prefix = '" + strings.ReplaceAll(prefix, "'", "''") + "'",
		"password_encryption = 'scram-sha-256'",
	}
	o := localpg.Options{Conf: conf, HBA: hba}
	if major != 0 {
		o.Version = strconv.Itoa(major)
	}
	srv := pgtest.Start(t, o)
	if srv.Major < minMajor {
		t.Skipf("%s needs PostgreSQL %d+, this is %d", dest, minMajor, srv.Major)
	}
	if err := srv.Exec(pgtest.Ctx(t), "CREATE ROLE alice LOGIN PASSWORD 'right-pw'", "CREATE ROLE rejectme LOGIN PASSWORD 'x'"); err != nil {
		t.Fatal(err)
	}
	return srv
}

// login makes the attempts over TCP, one connection each (no TLS, no
// fallback: one attempt is one log line), and returns how many failed.
func login(t *testing.T, ctx context.Context, srv *localpg.Server) int {
	failures := 0
	for _, a := range attempts {
		cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=disable connect_timeout=30 port=" + strconv.Itoa(srv.Port))
		if err != nil {
			t.Fatal(err)
		}
		cfg.User, cfg.Database, cfg.Password = a.user, a.db, a.password
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			c.Close(ctx)
		}
		if (err == nil) != a.ok {
			t.Fatalf("login %s@%s: err=%v, want ok=%v", a.user, a.db, err, a.ok)
		}
		if !a.ok {
			failures++
		}
	}
	return failures
}

// waitForFailures finds the log the jail's glob names and waits until
// the collector has written every failure (it writes asynchronously).
// The wait is for content, with a deadline generous for a busy machine.
func waitForFailures(t *testing.T, glob string, want int, dest string) string {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		files, _ := filepath.Glob(glob)
		if len(files) == 1 {
			data, _ := os.ReadFile(files[0])
			n := strings.Count(string(data), "FATAL")
			if dest != "stderr" {
				n = strings.Count(string(data), `28P01`) + strings.Count(string(data), `28000`)
			}
			if n >= want {
				return files[0]
			}
		} else if len(files) > 1 {
			t.Fatalf("the jail's logpath %s names %d files: %v", glob, len(files), files)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log %d failures in %s in 2 minutes (files %v)", want, glob, files)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ORACLE: a prefix without the client's address is refused, with the
// prefix to set instead, rather than a filter that misses every guess.
func TestNoHostRefused(t *testing.T) {
	_, err := fail2ban.Build(fail2ban.Settings{LogLinePrefix: "%m [%p] %q%u@%d ", LogDestination: "stderr", LoggingCollector: true, DataDirectory: "/d"}, fail2ban.Defaults())
	if err == nil || !strings.Contains(err.Error(), fail2ban.RecommendedPrefix) {
		t.Fatalf("err = %v, want a refusal recommending %q", err, fail2ban.RecommendedPrefix)
	}
}
