package pgquiet

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// suset are the settings a non-superuser needs GRANT SET ON PARAMETER for
// (the others are user-settable) on the test servers.
var suset = []string{"log_statement", "log_min_duration_statement", "log_min_duration_sample", "log_min_error_statement",
	"log_transaction_sample_rate", "log_min_messages", "log_parameter_max_length", "track_activities"}

// leakMajors: 15 (Debian's, with pgaudit) and the newest installed of
// 17 and 18, whose pg_stat_statements normalizes utility constants.
func leakMajors(t *testing.T) []int {
	have := map[int]bool{}
	for _, in := range localpg.Installed() {
		have[in.Major] = true
	}
	var ms []int
	if have[15] {
		ms = append(ms, 15)
	}
	switch {
	case have[18]:
		ms = append(ms, 18)
	case have[17]:
		ms = append(ms, 17)
	}
	if len(ms) == 0 {
		pgtest.Unavailable(t, localpg.ErrNoServer)
	}
	return ms
}

// After Quiet, an ALTER ROLE ... PASSWORD with a verifier, and one that
// fails, leave the verifier nowhere, as a superuser and as a CREATEROLE
// non-superuser granted SET on the settings; without the grants the
// non-superuser is warned about each, and the verifier is indeed kept
// (which shows the oracles see it, and that pg_stat_statements keeps the
// verifier verbatim on 15 and on 17/18).
// ORACLE: the server log, pg_stat_statements and pg_stat_activity.
func TestQuietKeepsVerifierOut(t *testing.T) {
	t.Parallel()
	for _, major := range leakMajors(t) {
		t.Run("pg"+strconv.Itoa(major), func(t *testing.T) {
			t.Parallel()
			testQuiet(t, major)
		})
	}
}

func testQuiet(t *testing.T, major int) {
	libs := "pg_stat_statements"
	conf := []string{"log_statement = 'all'", "log_min_duration_statement = 0", "log_min_duration_sample = 0",
		"log_statement_sample_rate = 1", "log_transaction_sample_rate = 1", "log_min_error_statement = 'error'",
		"debug_print_parse = on", "log_parameter_max_length_on_error = -1", "pg_stat_statements.track_utility = on"}
	if major == 15 {
		libs = "pgaudit,pg_stat_statements"
		conf = append(conf, "pgaudit.log = 'all'")
	}
	srv := pgtest.StartMajor(t, major, localpg.Options{Conf: append(conf, "shared_preload_libraries = '"+libs+"'")})
	ctx := pgtest.Ctx(t)
	admin := pgtest.Conn(t, srv, "postgres")
	run(t, admin, "CREATE EXTENSION pg_stat_statements", "SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE q_admin LOGIN CREATEROLE PASSWORD 'q-admin-only-in-a-test'",
		"CREATE ROLE q_granted LOGIN CREATEROLE PASSWORD 'q-granted-only-in-a-test'")
	pgaudit := major == 15
	if pgaudit {
		var v *string
		if err := admin.QueryRow(ctx, "SELECT current_setting('pgaudit.log', true)").Scan(&v); err != nil || v == nil || *v != "all" {
			t.Fatalf("pgaudit is not loaded on Debian's 15: %v", err)
		}
	}
	for _, name := range suset {
		run(t, admin, "GRANT SET ON PARAMETER "+name+" TO q_granted")
	}
	if pgaudit {
		run(t, admin, "GRANT SET ON PARAMETER pgaudit.log TO q_granted")
	}
	run(t, admin, "GRANT SET ON PARAMETER pg_stat_statements.track_utility TO q_granted")

	cases := []struct {
		name, user, password string
		leaks                bool     // no privilege to quiet anything: the verifier is kept, and warned of
		warn                 []string // settings warned about
	}{
		{"superuser", srv.AdminUser, srv.Password, false, nil},
		{"granted", "q_granted", "q-granted-only-in-a-test", false, nil},
		{"not granted", "q_admin", "q-admin-only-in-a-test", true, []string{"log_statement", "log_min_duration_statement",
			"log_min_duration_sample", "log_min_error_statement", "log_transaction_sample_rate", "pg_stat_statements.track_utility", "track_activities"}},
	}
	if pgaudit {
		cases[2].warn = append(cases[2].warn, "pgaudit.log")
	}
	for i, tc := range cases {
		// Sequential: they share the server's log.
		target := fmt.Sprintf("q_target_%d", i)
		verifier := newVerifier(t, admin, fmt.Sprintf("q_v_%d", i))
		cfg := srv.ConnConfig("postgres")
		cfg.User, cfg.Password = tc.user, tc.password
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: connecting: %v", tc.name, err)
		}
		run(t, c, "CREATE ROLE "+target+" LOGIN")
		logStart := size(t, srv.LogFile)
		warns, err := BeforeBegin(ctx, c, tc.user)
		if err != nil {
			t.Fatalf("%s: BeforeBegin: %v", tc.name, err)
		}
		run(t, c, "BEGIN")
		qw, err := Quiet(ctx, c, tc.user)
		if err != nil {
			t.Fatalf("%s: Quiet: %v", tc.name, err)
		}
		warns = append(warns, qw...)
		run(t, c, "ALTER ROLE "+target+" PASSWORD '"+verifier+"'")
		var pid int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		var activity string
		// A failing one: the error must not log it.
		if _, err := c.Exec(ctx, "ALTER ROLE q_missing PASSWORD '"+verifier+"'"); err == nil {
			t.Fatalf("%s: ALTER ROLE of a missing role succeeded", tc.name)
		}
		run(t, c, "ROLLBACK")
		run(t, c, "BEGIN")
		if _, err := Quiet(ctx, c, tc.user); err != nil {
			t.Fatal(err)
		}
		run(t, c, "ALTER ROLE "+target+" PASSWORD '"+verifier+"'")
		// Idle in the transaction, pg_stat_activity shows the last statement.
		if err := admin.QueryRow(ctx, "SELECT coalesce(query, '') FROM pg_stat_activity WHERE pid = $1", pid).Scan(&activity); err != nil {
			t.Fatal(err)
		}
		run(t, c, "COMMIT")
		c.Close(ctx)

		log := readFrom(t, srv.LogFile, logStart)
		// The error is logged even when its statement is not: the log read
		// is the right one.
		if !strings.Contains(log, `role "q_missing" does not exist`) {
			t.Fatalf("%s: the server log does not show the failed statement's error, so it proves nothing:\n%s", tc.name, log)
		}
		inLog := strings.Count(log, verifier)
		inStat := statementsHolding(t, admin, verifier)
		inActivity := strings.Contains(activity, verifier)
		if tc.leaks {
			if inLog == 0 || inStat == 0 || !inActivity {
				t.Errorf("%s: without the privilege the verifier should be kept (log %d, pg_stat_statements %d, pg_stat_activity %v): the oracle sees nothing", tc.name, inLog, inStat, inActivity)
			}
		} else if inLog > 0 || inStat > 0 || inActivity {
			for _, l := range strings.Split(log, "\n") {
				if i := strings.Index(l, "SCRAM-SHA-256$"); i >= 0 {
					t.Log(l[:i])
				}
			}
			t.Errorf("%s: the verifier was kept: %d time(s) in the server log, %d pg_stat_statements entries, pg_stat_activity %v", tc.name, inLog, inStat, inActivity)
		}
		got := map[string]bool{}
		for _, w := range warns {
			got[w.Setting] = true
			if strings.Contains(w.Text, verifier) {
				t.Errorf("%s: a warning holds the verifier", tc.name)
			}
			if tc.leaks && w.Grant != "GRANT SET ON PARAMETER "+w.Setting+" TO "+tc.user {
				t.Errorf("%s: warning %q: Grant is %q", tc.name, w.Text, w.Grant)
			}
			if !strings.Contains(w.Text, w.Setting+" is "+w.Value) && !strings.Contains(w.Text, "is "+w.Value) {
				t.Errorf("%s: warning %q does not give the value %q", tc.name, w.Text, w.Value)
			}
		}
		for _, s := range tc.warn {
			if !got[s] {
				t.Errorf("%s: no warning about %s; got %v", tc.name, s, keys(got))
			}
		}
		// BeforeBegin and Quiet both warn of log_transaction_sample_rate.
		if len(got) != len(tc.warn) {
			t.Errorf("%s: warnings about %v, want %v", tc.name, keys(got), tc.warn)
		}
	}
}

// Quiet outside a transaction says so.
func TestQuietNeedsTransaction(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{Conf: []string{"log_statement = 'all'"}})
	c := pgtest.Conn(t, srv, "postgres")
	_, err := Quiet(pgtest.Ctx(t), c, srv.AdminUser)
	if err == nil || !strings.Contains(err.Error(), "inside a transaction") {
		t.Fatalf("Quiet outside a transaction: %v", err)
	}
}

func TestSettingsPredicates(t *testing.T) {
	byName := map[string]setting{}
	for _, s := range all {
		byName[s.Name] = s
	}
	for _, tc := range []struct {
		name, value string
		keeps       bool
	}{
		{"log_statement", "none", false},
		{"log_statement", "ddl", true},
		{"log_statement", "mod", true},
		{"log_statement", "all", true},
		{"log_min_duration_statement", "-1", false},
		{"log_min_duration_statement", "0", true},
		{"log_min_duration_statement", "250ms", true},
		{"log_min_duration_statement", "1s", true},
		{"log_min_error_statement", "panic", false},
		{"log_min_error_statement", "error", true},
		{"log_transaction_sample_rate", "0", false},
		{"log_transaction_sample_rate", "0.01", true},
		{"log_min_messages", "warning", false},
		{"log_min_messages", "debug1", false},
		{"log_min_messages", "debug2", true},
		{"log_min_messages", "debug5", true},
		{"track_activities", "on", true},
		{"track_activities", "off", false},
		{"pgaudit.log", "none", false},
		{"pgaudit.log", "role, ddl", true},
	} {
		s, ok := byName[tc.name]
		if !ok {
			t.Fatalf("no setting %s", tc.name)
		}
		if got := s.keeps(tc.value); got != tc.keeps {
			t.Errorf("%s = %s: keeps %v, want %v", tc.name, tc.value, got, tc.keeps)
		}
	}
}

func keys(m map[string]bool) []string {
	var l []string
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}

func run(t *testing.T, c *pgx.Conn, sql ...string) {
	t.Helper()
	for _, q := range sql {
		if _, err := c.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(q, " PASSWORD ", 2)[0], err)
		}
	}
}

// newVerifier has the server compute a SCRAM verifier (a new role's) and
// reads it: only the SELECT goes through the log, never the verifier.
func newVerifier(t *testing.T, c *pgx.Conn, role string) string {
	t.Helper()
	run(t, c, "SET password_encryption = 'scram-sha-256'", "CREATE ROLE "+role+" PASSWORD 'pgquiet-test-"+role+"'")
	var v string
	if err := c.QueryRow(context.Background(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "SCRAM-SHA-256$") {
		t.Fatalf("not a verifier: %.14s", v)
	}
	return v
}

// statementsHolding counts pg_stat_statements entries holding s, searched
// here: the query sent holds no part of it.
func statementsHolding(t *testing.T, c *pgx.Conn, s string) int {
	t.Helper()
	rows, err := c.Query(context.Background(), "SELECT query FROM pg_stat_statements WHERE query IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, q := range texts {
		if strings.Contains(q, s) {
			n++
		}
	}
	return n
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func readFrom(t *testing.T, path string, off int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[off:])
}
