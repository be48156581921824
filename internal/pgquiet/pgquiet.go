// Package pgquiet turns off, for the current transaction only, everything
// that would make the server keep the text of a statement that carries a
// secret (ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'): statement logging,
// duration logging, the error-statement log, pgaudit, pg_stat_statements'
// utility tracking and pg_stat_activity's query text. Rotation and policy
// apply share it.
package pgquiet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/quote"
)

// Querier is what Quiet needs: a transaction (SET LOCAL lasts until its end).
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Setting is one setting Quiet changes.
type Setting struct {
	Name string // log_statement, pgaudit.log, ...
	Off  string // the SQL value that stops it ('none', -1, off)
}

// Warning is a setting that could not be changed whose current value would
// keep the statement: Text says which, its value, and how to allow it
// (GRANT SET ON PARAMETER on 15+, or a superuser).
type Warning struct {
	Setting string
	Value   string
	Text    string
	// Reason is the server's refusal ("permission denied to set parameter
	// ... (SQLSTATE 42501)"), and Grant the statement a superuser can run
	// to allow the change ("" for a superuser, or before 15): callers that
	// word their own advice (policy apply) use them.
	Reason string
	Grant  string
}

// setting is a Setting with the test of whether its current value (as
// current_setting shows it) keeps the statement, and whether a refusal
// is worth a warning.
type setting struct {
	Setting
	keeps func(cur string) bool
	// warn: a refusal to change it leaves the statement somewhere. False
	// for settings that only add to what another one logs.
	warn bool
	// where the statement would go, for the warning.
	where string
}

// all is what Quiet changes, in order. Sources: PostgreSQL's
// postgres.c (check_log_statement, check_log_duration, exec_parse_message),
// elog.c (the STATEMENT line), xact.c (xact_is_sampled), backend_status.c
// (st_activity), and the pgaudit, pg_stat_statements and auto_explain
// modules. Only the settings that exist on the server are read (a module
// not loaded has none), and only those whose value keeps the statement
// are changed (a non-superuser's refused SET would only add errors to the
// log).
var all = settings()

// List is the settings Quiet changes where they keep a statement, in order.
func List() []Setting {
	l := make([]Setting, len(all))
	for i, s := range all {
		l[i] = s.Setting
	}
	return l
}

func settings() []setting {
	logged := "the server may write password verifiers to its log"
	notNone := func(v string) bool { return v != "none" }
	notMinus1 := func(v string) bool { return v != "-1" }
	isOn := func(v string) bool { return v == "on" }
	notZero := func(v string) bool {
		f, err := strconv.ParseFloat(v, 64)
		return err != nil || f != 0
	}
	return []setting{
		// 'mod' logs DDL too (ALTER ROLE is DDL): anything but none.
		{Setting{"log_statement", "'none'"}, notNone, true, logged},
		// 0 and above logs every statement slower than that, with its text.
		{Setting{"log_min_duration_statement", "-1"}, notMinus1, true, logged},
		// 13+: a sample of the statements slower than this is logged.
		{Setting{"log_min_duration_sample", "-1"}, notMinus1, true, logged},
		// An error logs the statement at this level or below: 'panic' keeps
		// a failing ALTER ROLE ... PASSWORD out of the log. It also stops
		// the STATEMENT line under a LOG message (a lock wait).
		{Setting{"log_min_error_statement", "'panic'"}, func(v string) bool { return v != "panic" }, true, logged},
		// The sampled logging of every statement of a transaction: the
		// server draws the sample when the transaction starts (xact.c), so
		// changing it here is too late for this transaction; BeforeBegin
		// sets it for the session. Changed anyway for the statements after.
		{Setting{"log_transaction_sample_rate", "0"}, notZero, true, logged},
		// The parse, rewritten and plan trees are logged at LOG with the
		// statement's constants, the verifier among them.
		{Setting{"debug_print_parse", "off"}, isOn, true, logged},
		{Setting{"debug_print_rewritten", "off"}, isOn, true, logged},
		{Setting{"debug_print_plan", "off"}, isOn, true, logged},
		// exec_parse_message logs "parse <name>: <statement>" at DEBUG2
		// (the extended protocol): debug1 keeps everything else.
		{Setting{"log_min_messages", "'debug1'"}, func(v string) bool { return strings.HasPrefix(v, "debug") && v != "debug1" }, true, logged},
		// 13+: bind parameters are written with a logged statement (only
		// when one of the above logs it, which warns already) and, for
		// the on_error one, in the CONTEXT of any error (a secret sent as a
		// parameter).
		{Setting{"log_parameter_max_length", "0"}, func(v string) bool { return v != "0" }, false, logged},
		{Setting{"log_parameter_max_length_on_error", "0"}, func(v string) bool { return v != "0" }, true, logged},
		// pgaudit logs every statement of the classes named (ROLE, DDL,
		// ALL) whatever log_statement says. Its object audit (pgaudit.role)
		// covers reads and writes of tables, never ALTER ROLE.
		{Setting{"pgaudit.log", "'none'"}, notNone, true, logged},
		// pg_stat_statements keeps utility statements with their text.
		// ORACLE (pgquiet_test.go, TestStatStatementsKeepsVerifier): on 15
		// and 17 an ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...' is stored
		// with the verifier verbatim; 16+'s normalization of utility
		// constants does not reach a role option's string.
		{Setting{"pg_stat_statements.track_utility", "off"}, isOn, true,
			"pg_stat_statements may keep password verifiers in its query texts"},
		// auto_explain logs the plan with the statement's text (planned
		// statements only, never ALTER ROLE, but a secret in a SELECT).
		{Setting{"auto_explain.log_min_duration", "-1"}, notMinus1, true, logged},
		// pg_stat_activity shows the running (and, idle, the last)
		// statement to the role, superusers and pg_read_all_stats members,
		// and a deadlock report quotes it in the log.
		{Setting{"track_activities", "off"}, isOn, true,
			"pg_stat_activity may show password verifiers to superusers and pg_read_all_stats members while the statement is this session's last"},
	}
}

// savepoint is the name Quiet's savepoints take.
const savepoint = "pgaegis_quiet"

// Quiet changes every Setting it can with SET LOCAL, each in its own
// savepoint (a non-superuser may be refused one and not the others), and
// returns a Warning for each it could not change that would keep the
// statement. user is the role executing (named in the advice). Settings
// of modules not loaded are skipped. It must run inside a transaction.
func Quiet(ctx context.Context, q Querier, user string) ([]Warning, error) {
	cur, err := current(ctx, q)
	if err != nil {
		return nil, err
	}
	var warns []Warning
	var who *role
	for _, s := range all {
		v, ok := cur[s.Name]
		if !ok || !s.keeps(v) {
			continue
		}
		serr := set(ctx, q, s)
		if serr != nil && !isRefusal(serr) {
			return nil, serr
		}
		if s.Name == "log_transaction_sample_rate" && serr == nil {
			// Changed for the statements to come, but this transaction's
			// sample was drawn at its start: warn all the same.
			serr = errors.New("the server draws the sample when the transaction begins: set it to 0 before BEGIN (pgquiet.BeforeBegin)")
		}
		if serr == nil || !s.warn {
			continue
		}
		if who == nil {
			if who, err = whoami(ctx, q); err != nil {
				return nil, err
			}
		}
		warns = append(warns, warning(s, v, serr, user, who))
	}
	return warns, nil
}

// BeforeBegin sets log_transaction_sample_rate to 0 for the session (SET,
// not SET LOCAL: it must be in effect when the next transaction begins,
// for the server draws the sample then). It must run outside a
// transaction. It returns a Warning when the rate is above 0 and could not
// be changed. Where it is 0 already nothing is sent.
func BeforeBegin(ctx context.Context, q Querier, user string) ([]Warning, error) {
	var v *string
	if err := q.QueryRow(ctx, "SELECT current_setting('log_transaction_sample_rate', true)").Scan(&v); err != nil {
		return nil, fmt.Errorf("pgquiet: reading log_transaction_sample_rate: %w", err)
	}
	if v == nil || *v == "0" {
		return nil, nil
	}
	if f, err := strconv.ParseFloat(*v, 64); err == nil && f == 0 {
		return nil, nil
	}
	_, serr := q.Exec(ctx, "SET log_transaction_sample_rate = 0")
	if serr == nil {
		return nil, nil
	}
	if !isRefusal(serr) {
		return nil, fmt.Errorf("pgquiet: setting log_transaction_sample_rate: %w", serr)
	}
	who, err := whoami(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if s.Name == "log_transaction_sample_rate" {
			return []Warning{warning(s, *v, serr, user, who)}, nil
		}
	}
	return nil, nil
}

// current reads, in one round trip, the value of every setting of
// all the server has. pg_settings lists a module's settings only
// when the module is loaded (a placeholder from postgresql.conf for a
// module that is not is left out), where current_setting would show it.
func current(ctx context.Context, q Querier) (map[string]string, error) {
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name
	}
	var got, vals []string
	err := q.QueryRow(ctx, `SELECT coalesce(array_agg(name ORDER BY name), '{}'), coalesce(array_agg(current_setting(name) ORDER BY name), '{}')
		FROM pg_settings WHERE name = ANY($1)`, names).Scan(&got, &vals)
	if err != nil {
		return nil, fmt.Errorf("pgquiet: reading the logging settings: %w", err)
	}
	cur := make(map[string]string, len(got))
	for i, n := range got {
		cur[n] = vals[i]
	}
	return cur, nil
}

// set runs SET LOCAL in a savepoint, in one round trip when allowed; a
// refusal is rolled back to the savepoint, so the transaction goes on.
func set(ctx context.Context, q Querier, s setting) error {
	// No arguments: pgx sends this as one simple-protocol query.
	_, serr := q.Exec(ctx, "SAVEPOINT "+savepoint+"; SET LOCAL "+s.Name+" = "+s.Off+"; RELEASE SAVEPOINT "+savepoint)
	if serr == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(serr, &pe) && pe.Code == "25P01" { // no_active_sql_transaction
		return fmt.Errorf("pgquiet: must run inside a transaction: %w", serr)
	}
	if _, err := q.Exec(ctx, "ROLLBACK TO SAVEPOINT "+savepoint+"; RELEASE SAVEPOINT "+savepoint); err != nil {
		return fmt.Errorf("pgquiet: setting %s: %v; then: %w", s.Name, serr, err)
	}
	return serr
}

// isRefusal: the server refused the SET (no privilege, or a setting that
// cannot change now), which is a warning, not a failure.
func isRefusal(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "42501", // insufficient_privilege
		"55P02", // cant_change_runtime_param
		"22023": // invalid_parameter_value
		return true
	}
	return false
}

type role struct {
	super bool
	num   int
}

func whoami(ctx context.Context, q Querier) (*role, error) {
	r := &role{}
	if err := q.QueryRow(ctx, "SELECT rolsuper, current_setting('server_version_num')::int FROM pg_roles WHERE rolname = current_user").Scan(&r.super, &r.num); err != nil {
		return nil, fmt.Errorf("pgquiet: reading the current role: %w", err)
	}
	return r, nil
}

func warning(s setting, cur string, serr error, user string, who *role) Warning {
	w := Warning{Setting: s.Name, Value: cur, Reason: message(serr)}
	w.Text = fmt.Sprintf("%s: %s is %s and could not be changed for this transaction (%s)", s.where, s.Name, cur, w.Reason)
	if s.Name == "log_min_error_statement" {
		w.Text = fmt.Sprintf("a password statement that fails is written to the server log with its verifier: log_min_error_statement is %s and could not be changed for this transaction (%s)", cur, w.Reason)
	}
	if s.Name == "log_transaction_sample_rate" {
		w.Text = fmt.Sprintf("%s: log_transaction_sample_rate is %s, so a share of transactions is logged whole (%s)", s.where, cur, w.Reason)
	}
	if !who.super {
		if who.num >= 150000 {
			w.Grant = "GRANT SET ON PARAMETER " + s.Name + " TO " + quote.Ident(user)
			w.Text += "; to avoid it, " + w.Grant + " (as a superuser), or run as a superuser"
		} else {
			w.Text += "; to avoid it, run as a superuser"
		}
	}
	return w
}

// message is the server's message and SQLSTATE, or the error.
func message(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	return err.Error()
}
