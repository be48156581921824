package pgquiet

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// Each setting Quiet changes, turned on alone (for the session, as a
// superuser), keeps the secret where the test then finds it, and after
// Quiet (and BeforeBegin) it does not: so every entry of the list is
// needed and works, on its own. Statements go by the simple and by the
// extended protocol.
// ORACLE: the server log, pg_stat_statements and pg_stat_activity.
func TestEachSettingAlone(t *testing.T) {
	t.Parallel()
	for _, major := range leakMajors(t) {
		t.Run("pg"+strconv.Itoa(major), func(t *testing.T) {
			t.Parallel()
			testEach(t, major)
		})
	}
}

// statement kinds a case runs with the marker in it.
const (
	alter      = iota // ALTER ROLE ... PASSWORD 'marker'
	failing           // the same on a missing role
	selecting         // SELECT 'marker' (planned, unlike ALTER ROLE)
	paramError        // the marker as a parameter of a statement that fails
)

func testEach(t *testing.T, major int) {
	libs := "pg_stat_statements,auto_explain"
	pgaudit := major == 15
	if pgaudit {
		libs = "pgaudit," + libs
	}
	// Everything off but what a case turns on.
	srv := pgtest.StartMajor(t, major, localpg.Options{Conf: []string{
		"shared_preload_libraries = '" + libs + "'", "pg_stat_statements.track_utility = off",
		"track_activities = off", "log_min_error_statement = 'panic'",
	}})
	admin := pgtest.Conn(t, srv, "postgres")
	run(t, admin, "CREATE EXTENSION pg_stat_statements", "CREATE ROLE q_each LOGIN")
	sess := pgtest.Conn(t, srv, "postgres") // the session under test
	// Outside a transaction SET LOCAL would do nothing: Quiet says so.
	if _, err := Quiet(pgtest.Ctx(t), sess, srv.AdminUser); err == nil || !strings.Contains(err.Error(), "inside a transaction") {
		t.Fatalf("Quiet outside a transaction: %v", err)
	}

	type tc struct {
		name  string
		set   []string // session settings before BEGIN
		kind  int
		where string // "log", "statements", "activity"
		// extendedOnly: the simple protocol never keeps it (a DEBUG2 parse line).
		extendedOnly bool
	}
	cases := []tc{
		{"log_statement ddl", []string{"log_statement = 'ddl'"}, alter, "log", false},
		{"log_statement mod", []string{"log_statement = 'mod'"}, alter, "log", false},
		{"log_statement all", []string{"log_statement = 'all'"}, alter, "log", false},
		{"log_min_duration_statement", []string{"log_min_duration_statement = 0"}, alter, "log", false},
		{"log_min_duration_sample", []string{"log_min_duration_sample = 0", "log_statement_sample_rate = 1"}, alter, "log", false},
		{"log_transaction_sample_rate", []string{"log_transaction_sample_rate = 1"}, alter, "log", false},
		{"log_min_error_statement", []string{"log_min_error_statement = 'error'"}, failing, "log", false},
		// A tree shows a Const as its bytes in decimal ("log bytes"), a
		// role option's string (16+) as text.
		{"debug_print_parse", []string{"debug_print_parse = on"}, selecting, "log bytes", false},
		{"debug_print_rewritten", []string{"debug_print_rewritten = on"}, selecting, "log bytes", false},
		{"debug_print_plan", []string{"debug_print_plan = on"}, selecting, "log bytes", false},
		{"log_min_messages debug2", []string{"log_min_messages = 'debug2'"}, alter, "log", true},
		{"log_parameter_max_length_on_error", []string{"log_parameter_max_length_on_error = -1"}, paramError, "log", true},
		{"auto_explain", []string{"auto_explain.log_min_duration = 0"}, selecting, "log", false},
		{"pg_stat_statements.track_utility", []string{"pg_stat_statements.track_utility = on"}, alter, "statements", false},
		{"track_activities", []string{"track_activities = on"}, alter, "activity", false},
	}
	if pgaudit {
		// pgaudit writes CREATE/ALTER ROLE's password as <REDACTED>, but
		// any other statement whole.
		cases = append(cases, tc{"pgaudit.log", []string{"pgaudit.log = 'read'"}, selecting, "log", false})
	}
	for _, c := range cases {
		for _, extended := range []bool{false, true} {
			if c.kind == paramError && !extended {
				continue // parameters are the extended protocol's
			}
			for _, quiet := range []bool{false, true} {
				name := c.name
				if extended {
					name += " (extended)"
				}
				if quiet {
					name += " quiet"
				}
				found := runCase(t, srv, admin, sess, name, c.set, c.kind, c.where, extended, quiet)
				want := !quiet && (extended || !c.extendedOnly)
				if found != want {
					t.Errorf("%s: the marker was found in %s: %v, want %v", name, c.where, found, want)
				}
			}
		}
	}
}

// runCase runs one statement holding a new marker in a transaction of a
// session c with set applied (RESET after) (and Quiet when quiet), and says
// whether the marker is then in where.
func runCase(t *testing.T, srv *localpg.Server, admin, c *pgx.Conn, name string, set []string, kind int, where string, extended, quiet bool) bool {
	t.Helper()
	ctx := pgtest.Ctx(t)
	b := make([]byte, 12)
	rand.Read(b)
	marker := "pgquiet-marker-" + hex.EncodeToString(b)
	defer run(t, c, "RESET ALL")
	for _, s := range set {
		run(t, c, "SET "+s)
	}
	logStart := size(t, srv.LogFile)
	if quiet {
		if _, err := BeforeBegin(ctx, c, srv.AdminUser); err != nil {
			t.Fatalf("%s: BeforeBegin: %v", name, err)
		}
	}
	run(t, c, "BEGIN")
	if quiet {
		w, err := Quiet(ctx, c, srv.AdminUser)
		if err != nil || len(w) > 0 {
			t.Fatalf("%s: Quiet as a superuser: %v %+v", name, err, w)
		}
	}
	var sql string
	var args []any
	switch kind {
	case alter:
		sql = "ALTER ROLE q_each PASSWORD '" + marker + "'"
	case failing:
		sql = "ALTER ROLE q_missing PASSWORD '" + marker + "'"
	case selecting:
		sql = "SELECT '" + marker + "'"
	case paramError:
		sql, args = "SELECT 1/count(*) FROM pg_class WHERE relname = $1", []any{marker}
	}
	var serr error
	if extended {
		vals := make([][]byte, len(args))
		for i, a := range args {
			vals[i] = []byte(a.(string))
		}
		serr = c.PgConn().ExecParams(ctx, sql, vals, nil, nil, nil).Read().Err
	} else {
		_, serr = c.Exec(ctx, sql)
	}
	if (serr != nil) != (kind == failing || kind == paramError) {
		t.Fatalf("%s: %v", name, serr)
	}
	var activity string
	if err := admin.QueryRow(ctx, "SELECT coalesce(query, '') FROM pg_stat_activity WHERE pid = $1", c.PgConn().PID()).Scan(&activity); err != nil {
		t.Fatal(err)
	}
	run(t, c, "ROLLBACK")
	switch where {
	case "log":
		return strings.Contains(readFrom(t, srv.LogFile, logStart), marker)
	case "log bytes":
		// The pretty printer breaks the byte list anywhere, even inside a
		// number: compare with all white space taken out.
		dec := ""
		for i := range len(marker) {
			dec += strconv.Itoa(int(marker[i]))
		}
		log := readFrom(t, srv.LogFile, logStart)
		return strings.Contains(log, marker) || strings.Contains(strings.Join(strings.Fields(log), ""), dec)
	case "statements":
		return statementsHolding(t, admin, marker) > 0
	case "activity":
		return strings.Contains(activity, marker)
	}
	t.Fatalf("where %q", where)
	return false
}
