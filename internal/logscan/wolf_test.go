package logscan

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

const pgauditLib = "/usr/lib/postgresql/15/lib/pgaudit.so"

// loginFrom logs in over TCP from a loopback source address (the log's
// client address), returning the server's refusal if any.
func loginFrom(ctx context.Context, srv *localpg.Server, src, user, pw string, sql ...string) error {
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d dbname=postgres sslmode=disable connect_timeout=30", srv.Port))
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = user, pw
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	cfg.DialFunc = d.DialContext
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	for _, q := range sql {
		// Errors are part of some scripts (a statement that fails on
		// purpose); the log is what is checked.
		c.Exec(ctx, q).ReadAll()
	}
	return nil
}

// waitForLog returns once every file holds marker (the collector writes
// asynchronously): polled, bounded.
func waitForLog(t *testing.T, marker string, files ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, f := range files {
		for {
			b, _ := os.ReadFile(f)
			if bytes.Contains(b, []byte(marker)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no %q after 30s", f, marker)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

type evKey struct{ kind, source, role string }

func eventsByKey(evs []Event) map[evKey]Event {
	m := map[evKey]Event{}
	for _, e := range evs {
		m[evKey{e.Kind, e.Source, e.Role}] = e
	}
	return m
}

func eventList(m map[evKey]Event) string {
	var out []string
	for k, e := range m {
		out = append(out, fmt.Sprintf("%s/%s/%s=%d(%s)", k.kind, k.source, k.role, e.Count, e.Severity))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestFalseAlarms plays, against a real server logging stderr, csvlog and
// jsonlog with the default prefix "%m [%p] " (no source in it),
// log_statement = all and pgaudit, what made earlier scans cry wolf or
// miss: pgaegis's own audit and TLS-probe logins, SCRAM's unknown-role
// failures, statements logged twice, repeated successes after one round
// of failures, a password in a failing statement. Every format must give
// the same events, with sources taken from "connection received".
func TestFalseAlarms(t *testing.T) {
	if _, err := os.Stat(pgauditLib); err != nil && os.Getenv("CI") != "true" {
		t.Skip("needs Debian's PostgreSQL 15 with pgaudit")
	}
	conf := []string{"logging_collector = on", "log_destination = 'stderr,csvlog,jsonlog'", "log_directory = 'log'",
		"log_filename = 'pg.log'", "log_line_prefix = '%m [%p] '", "log_connections = on", "log_statement = 'all'",
		"shared_preload_libraries = 'pgaudit'", "pgaudit.log = 'ddl,role,function,read'"}
	hba := "local all all trust\nhost all pgaegis_probe 127.0.0.5/32 trust\nhost all all 127.0.0.0/8 scram-sha-256\n"
	srv := pgtest.Start(t, localpg.Options{Version: "15", Conf: conf, HBA: hba})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE app LOGIN PASSWORD 'app-right-1'`, `CREATE ROLE ops LOGIN SUPERUSER PASSWORD 'ops-right-1'`); err != nil {
		t.Fatal(err)
	}
	// pgaegis's own audit (superuser, PostgreSQL 15: its event_triggers
	// login is refused first, a FATAL of its own).
	if _, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true, NoProbe: true, StatementTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// The TLS probe's refusals, then a good login from the same source.
	for i := 0; i < 4; i++ {
		loginFrom(ctx, srv, "127.0.0.5", "pgaegis_probe", "")
	}
	if err := loginFrom(ctx, srv, "127.0.0.5", "app", "app-right-1"); err != nil {
		t.Fatal(err)
	}
	// Unknown roles under SCRAM: "password authentication failed" with
	// the truth in a DETAIL line.
	for _, u := range []string{"ghost1", "ghost2"} {
		loginFrom(ctx, srv, "127.0.0.6", u, "x")
	}
	// Two rounds of failures, each followed by several successes.
	for round := 0; round < 2; round++ {
		for i := 0; i < 3; i++ {
			loginFrom(ctx, srv, "127.0.0.4", "app", "wrong")
		}
		for i := 0; i < 3; i++ {
			if err := loginFrom(ctx, srv, "127.0.0.4", "app", "app-right-1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Statements from a session whose source only "connection received"
	// names; each logged by log_statement and pgaudit.
	if err := loginFrom(ctx, srv, "127.0.0.7", "ops", "ops-right-1",
		`ALTER SYSTEM SET work_mem = '5MB'`, `SELECT pg_ls_dir('.')`, `ALTER ROLE app PASSWORD 'Secret123!'`,
		`CREATE ROLE leak PASSWORD 'hunter2-leak' BOGUS`, // a syntax error: the password is on the STATEMENT line
		`SELECT 'logwolf-end'`); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(srv.DataDir, "log")
	files := []string{filepath.Join(dir, "pg.log"), filepath.Join(dir, "pg.csv"), filepath.Join(dir, "pg.json")}
	waitForLog(t, "logwolf-end", files...)

	if b, _ := os.ReadFile(files[0]); !bytes.Contains(b, []byte(`FATAL:  unrecognized configuration parameter "event_triggers"`)) {
		t.Error("the audit's own refused first login is not in the log: the case is not tested")
	}
	var first map[evKey]Event
	for _, f := range files {
		an, st, err := Scan([]string{f}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ev := eventsByKey(an.Events())
		t.Logf("%s: %s", st.Format, eventList(ev))
		for k, e := range ev {
			switch {
			case k.kind == "brute-force" || k.kind == "password-spraying" || (k.kind == "unknown-role" && k.source != "127.0.0.6"):
				// pgaegis's refused event_triggers login and the probe are no attack
				t.Errorf("%s: %+v", st.Format, e)
			case k.kind == "success-after-failures" && k.source != "127.0.0.4":
				t.Errorf("%s: success after failures from %s: %+v", st.Format, k.source, e)
			case (k.kind == "credential-read" || k.kind == "server-file-access") && k.source != "127.0.0.7" && e.Severity != "low":
				t.Errorf("%s: pgaegis's own audit read raised %+v", st.Format, e)
			case strings.Contains(e.Sample, "Secret123!") || strings.Contains(e.Sample, "hunter2-leak"):
				t.Errorf("%s: a password is in the output: %+v", st.Format, e)
			}
		}
		want := []struct {
			key   evKey
			count int
		}{
			{evKey{"success-after-failures", "127.0.0.4", "app"}, 2}, // once per round
			{evKey{"unknown-role", "127.0.0.6", "ghost1"}, 2},
			{evKey{"pgaegis-probe", "127.0.0.5", "pgaegis_probe"}, 4},
			{evKey{"alter-system", "127.0.0.7", "ops"}, 1}, // log_statement and pgaudit: once
			{evKey{"server-file-access", "127.0.0.7", "ops"}, 1},
			{evKey{"secret-in-log", "127.0.0.7", "ops"}, 2}, // ALTER ROLE, and the failing CREATE ROLE
		}
		for _, w := range want {
			e, ok := ev[w.key]
			if !ok || e.Count != w.count {
				t.Errorf("%s: %v: count %d (present %v), want %d", st.Format, w.key, e.Count, ok, w.count)
			}
		}
		if e, ok := ev[evKey{"server-file-access", "127.0.0.7", "ops"}]; ok && e.Severity != "high" {
			t.Errorf("%s: an attacker's pg_ls_dir was lowered: %+v", st.Format, e)
		}
		if first == nil {
			first = ev
		} else if a, b := eventList(first), eventList(ev); a != b {
			t.Errorf("%s disagrees with stderr:\n%s\n%s", st.Format, b, a)
		}
		if len(st.Errors) > 0 {
			t.Errorf("%s: unparsed: %v", st.Format, st.Errors)
		}
	}

	// Without log_connections or %a, pgaegis's statements are known by
	// their text: every statement of its session that a read rule matches
	// must be in ownStatements (csvlog names the application per record).
	b, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	missing := map[string]bool{}
	for _, s := range parseCSV(b, nil) {
		if s.kind == sigStatement && s.rule >= 0 && s.rec.App == ownApp && ownReadKinds[statementRules[s.rule].kind] && !s.own {
			missing[s.rec.Message] = true
		}
	}
	for m := range missing {
		t.Errorf("pgaegis's own statement not in ownStatements: %q", strings.Join(strings.Fields(m), " "))
	}
}

// TestEmptyPrefix: a server with an empty log_line_prefix writes lines that
// start with the severity; the empty prefix, given or detected, reads them.
func TestEmptyPrefix(t *testing.T) {
	t.Parallel()
	conf := []string{"logging_collector = on", "log_directory = 'log'", "log_filename = 'pg.log'", "log_line_prefix = ''",
		"log_connections = on", "log_statement = 'ddl'"}
	srv := pgtest.Start(t, localpg.Options{Conf: conf, HBA: "local all all trust\nhost all all 127.0.0.0/8 trust\n"})
	ctx := pgtest.Ctx(t)
	for _, u := range []string{"nobody1", "nobody2"} {
		loginFrom(ctx, srv, "127.0.0.2", u, "")
	}
	if err := srv.Exec(ctx, `ALTER SYSTEM SET work_mem = '5MB'`, `CREATE TABLE logwolf_end ()`); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(srv.DataDir, "log", "pg.log")
	waitForLog(t, "logwolf_end", path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if p := DetectPrefix(b[:min(len(b), 4096)]); p.spec != "" {
		t.Errorf("detected %q, want the empty prefix", p.spec)
	}
	empty, _ := CompilePrefix("")
	for _, p := range []*Prefix{empty, nil} {
		an, st, err := Scan([]string{path}, Options{Prefix: p})
		if err != nil {
			t.Fatal(err)
		}
		ev := eventsByKey(an.Events())
		if e, ok := ev[evKey{"unknown-role", "", "nobody1"}]; !ok || e.Count != 2 {
			t.Errorf("prefix %v: no unknown-role x2 in %s", p != nil, eventList(ev))
		}
		if _, ok := ev[evKey{"alter-system", "", ""}]; !ok {
			t.Errorf("prefix %v: no alter-system in %s", p != nil, eventList(ev))
		}
		if len(st.Errors) > 0 {
			t.Errorf("prefix %v: unparsed: %v", p != nil, st.Errors)
		}
	}
}

// TestOwnAuditAsNonSuperuser17: on 17+ a non-superuser may not set
// event_triggers, so the audit's first login is refused with "permission
// denied to set parameter": pgaegis's own, and no event. Its read of
// pg_authid fails too, and the error's STATEMENT line is no secret.
func TestOwnAuditAsNonSuperuser17(t *testing.T) {
	t.Parallel()
	conf := []string{"logging_collector = on", "log_directory = 'log'", "log_filename = 'pg.log'", "log_connections = on"}
	srv := pgtest.StartMajor(t, 17, localpg.Options{Conf: conf, HBA: "local all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n"})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE auditor LOGIN PASSWORD 'auditor-pw-1'`); err != nil {
		t.Fatal(err)
	}
	cfg := srv.ConnConfig("postgres")
	cfg.User, cfg.Password = "auditor", "auditor-pw-1"
	if _, err := collect.Collect(ctx, collect.Options{Conn: cfg, NoFiles: true, NoProbe: true}); err != nil {
		t.Fatal(err)
	}
	loginFrom(ctx, srv, "127.0.0.9", "logwolf_end", "x")
	path := filepath.Join(srv.DataDir, "log", "pg.log")
	waitForLog(t, "logwolf_end", path)
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte(`permission denied to set parameter "event_triggers"`)) {
		t.Fatal("the audit's refused first login is not in the log: the case is not tested")
	}
	an, _, err := Scan([]string{path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range an.Events() {
		// Its reads stay visible, lowered (see ownReadKinds).
		if e.Source != "127.0.0.9" && !(ownReadKinds[e.Kind] && e.Severity == "low") {
			t.Errorf("pgaegis's own audit raised %+v", e)
		}
	}
}
