package rlstest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// Options shape a run.
type Options struct {
	// MaxRows is how many leaked or hidden rows a result names (by key);
	// 0 means 5.
	MaxRows int
}

// Report is the outcome of every test of a file.
type Report struct {
	Tests []Result `json:"tests"`
}

// Errored counts the tests that could not run (Errors): a role or table
// that does not exist, a read the server refused, an invoking role that
// cannot do what a test needs. Such a test proves nothing either way.
func (r *Report) Errored() int {
	n := 0
	for _, t := range r.Tests {
		if len(t.Errors) > 0 {
			n++
		}
	}
	return n
}

// Failed counts the tests that did not pass (errored ones included).
func (r *Report) Failed() int {
	n := 0
	for _, t := range r.Tests {
		if !t.Passed {
			n++
		}
	}
	return n
}

// Result is one test's outcome. Rows are named by their primary key (or
// ctid), never shown whole.
type Result struct {
	Database string            `json:"database"`
	Schema   string            `json:"schema"`
	Table    string            `json:"table"`
	Test     string            `json:"test"` // its name, or "#N" (1-based)
	As       string            `json:"as"`
	Set      map[string]string `json:"set,omitempty"`
	Passed   bool              `json:"passed"`
	// Expected rows match sees (read without RLS); Visible rows are the
	// ones the role sees.
	Expected int `json:"expected_rows"`
	Visible  int `json:"visible_rows"`
	// Compared: the role's rows were read and compared with sees (the
	// counts mean something).
	Compared bool `json:"compared"`
	// Leaks are visible rows that do not match sees; Hidden are rows
	// matching sees that the role does not see.
	Leaks      int      `json:"leaks"`
	LeakKeys   []string `json:"leak_keys,omitempty"`
	Hidden     int      `json:"hidden"`
	HiddenKeys []string `json:"hidden_keys,omitempty"`
	Writes     []Write  `json:"writes,omitempty"`
	// WronglyAllowed counts writes that passed but should be denied,
	// WronglyDenied writes denied by row-level security that should pass,
	// Inconclusive writes denied by privileges (errors aside).
	WronglyAllowed int      `json:"wrongly_allowed"`
	WronglyDenied  int      `json:"wrongly_denied"`
	Inconclusive   int      `json:"inconclusive"`
	Errors         []string `json:"errors,omitempty"`
	// Hints say why rows may leak, from the catalog (RLS off or not
	// forced for an owner, BYPASSRLS, a superuser).
	Hints []string `json:"hints,omitempty"`
}

// Write is one write attempt's outcome.
type Write struct {
	Command string `json:"command"` // INSERT, UPDATE, DELETE
	Index   int    `json:"index"`   // 1-based within its command
	Expect  string `json:"expect"`
	// Got is allowed, denied (by row-level security: a policy's check
	// refused the row, or an UPDATE/DELETE changed no row), privileges
	// (refused by privileges before any policy was asked, so the write
	// says nothing about the policies) or error.
	Got    string `json:"got"`
	Rows   int64  `json:"rows"`
	Detail string `json:"detail,omitempty"` // the server's message when denied or failed
	OK     bool   `json:"ok"`
}

// Name is "#N" or the test's name.
func testName(t policy.RLSTest, i int) string {
	if t.Name != "" {
		return t.Name
	}
	return "#" + strconv.Itoa(i+1)
}

// Run runs every test of f on the server cfg points at, as cfg's role,
// one new session per test. Each test is one
// transaction that is rolled back; the report holds a result per test
// and err is only for what stops the whole run (a database it cannot
// connect to, an expression refused before anything runs).
func Run(ctx context.Context, cfg *pgx.ConnConfig, f *policy.File, o Options) (*Report, error) {
	if o.MaxRows <= 0 {
		o.MaxRows = 5
	}
	if err := Validate(f); err != nil {
		return nil, err
	}
	rep := &Report{Tests: []Result{}}
	var err error
	forTables(f, func(db, schema, table string, _ *policy.Schema, r *policy.RLS) {
		for i, t := range r.Tests {
			if err != nil {
				return
			}
			// A session of its own per test: a placeholder another test
			// set with SET LOCAL stays defined (as '') for the rest of a
			// session, and "a session that never set it" must mean that.
			dc := cfg.Copy()
			dc.Database = db
			var c *pgx.Conn
			if c, err = pgx.ConnectConfig(ctx, dc); err != nil {
				err = fmt.Errorf("connecting to database %s: %w", quote.Ident(db), err)
				return
			}
			rep.Tests = append(rep.Tests, runOne(ctx, c, db, schema, table, i, t, o))
			c.Close(ctx)
		}
	})
	return rep, err
}

// Validate refuses test expressions that are not one balanced SQL
// expression, naming the table and test.
func Validate(f *policy.File) error {
	var errs []error
	forTables(f, func(db, schema, table string, _ *policy.Schema, r *policy.RLS) {
		for i, t := range r.Tests {
			where := fmt.Sprintf("table %s.%s.%s, test %s", db, schema, table, testName(t, i))
			bad := func(what, e string) {
				if err := checkExpr(e); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %v", where, what, err))
				}
			}
			if t.As == "" {
				errs = append(errs, fmt.Errorf("%s: no role (as)", where))
			}
			if t.Sees != "" {
				bad("sees", t.Sees)
			}
			for k, ws := range map[string][]policy.WriteTest{"insert": t.Insert, "update": t.Update, "delete": t.Delete} {
				for j, w := range ws {
					what := fmt.Sprintf("%s #%d", k, j+1)
					if w.Expect != "allowed" && w.Expect != "denied" {
						errs = append(errs, fmt.Errorf("%s: %s: expect must be allowed or denied, not %q", where, what, w.Expect))
					}
					if k != "delete" && len(w.Values) == 0 {
						errs = append(errs, fmt.Errorf("%s: %s: no values", where, what))
					}
					if k == "delete" && len(w.Values) > 0 {
						errs = append(errs, fmt.Errorf("%s: %s: a delete takes where, not values", where, what))
					}
					if k == "insert" && w.Where != "" {
						errs = append(errs, fmt.Errorf("%s: %s: an insert takes values, not where", where, what))
					}
					if w.Where != "" {
						bad(what+" where", w.Where)
					}
					for _, col := range sortedKeys(w.Values) {
						bad(fmt.Sprintf("%s value of %s", what, col), w.Values[col])
					}
				}
			}
		}
	})
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func runOne(ctx context.Context, c *pgx.Conn, db, schema, table string, i int, t policy.RLSTest, o Options) Result {
	r := Result{Database: db, Schema: schema, Table: table, Test: testName(t, i), As: t.As, Set: t.Set}
	if err := runTx(ctx, c, schema, table, t, o, &r); err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	r.Passed = len(r.Errors) == 0 && r.Leaks == 0 && r.Hidden == 0
	for _, w := range r.Writes {
		r.Passed = r.Passed && w.OK
		switch {
		case w.OK:
		case w.Got == "allowed":
			r.WronglyAllowed++
		case w.Got == "denied":
			r.WronglyDenied++
		case w.Got == "privileges":
			r.Inconclusive++
		}
	}
	return r
}

// runTx is one test's transaction, always rolled back.
func runTx(ctx context.Context, c *pgx.Conn, schema, table string, t policy.RLSTest, o Options, r *Result) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// A write waiting on a row the application holds must not hang the
	// run (or hold up the application behind it): it errors instead.
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '10s'"); err != nil {
		return err
	}
	qt := quote.Qualified(schema, table)
	key, err := keyOf(ctx, tx, schema, table)
	if err != nil {
		return err
	}
	var expected map[string]bool
	if t.Sees != "" {
		// The expected rows, read as the invoking role with RLS off: the
		// server either shows every row or refuses.
		if _, err := tx.Exec(ctx, "SET LOCAL row_security = off"); err != nil {
			return err
		}
		expected, err = keys(ctx, tx, fmt.Sprintf("SELECT %s FROM %s WHERE %s IS TRUE", key.expr, qt, wrap(t.Sees)))
		if err != nil {
			if isBypassError(err) {
				return fmt.Errorf("the invoking role cannot read %s without row-level security, so the expected rows are unknown: connect as a superuser, a role with BYPASSRLS, or the table owner when RLS is not forced (%v)", qt, err)
			}
			return fmt.Errorf("computing the expected rows (sees) of %s: %w", qt, err)
		}
		r.Expected = len(expected)
		if _, err := tx.Exec(ctx, "SET LOCAL row_security = on"); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+quote.Ident(t.As)); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			return fmt.Errorf("the invoking role cannot SET ROLE %s: connect as a superuser or as a member of %s WITH SET (%v)", quote.Ident(t.As), quote.Ident(t.As), err)
		}
		return fmt.Errorf("SET ROLE %s: %w", quote.Ident(t.As), err)
	}
	for _, name := range sortedKeys(t.Set) {
		if _, err := tx.Exec(ctx, "SELECT set_config($1, $2, true)", name, t.Set[name]); err != nil {
			return fmt.Errorf("setting %s as %s: %w", quote.Literal(name), quote.Ident(t.As), err)
		}
	}
	if t.Sees != "" {
		if err := visible(ctx, tx, qt, key, t.Sees, expected, o, r); err != nil {
			return err
		}
		if r.Leaks > 0 {
			r.Hints = bypassHints(ctx, tx, schema, table, t.As)
		}
	}
	for _, kind := range []struct {
		cmd string
		ws  []policy.WriteTest
	}{{"INSERT", t.Insert}, {"UPDATE", t.Update}, {"DELETE", t.Delete}} {
		for j, w := range kind.ws {
			wr, err := tryWrite(ctx, tx, qt, kind.cmd, j, w)
			if err != nil {
				return err
			}
			r.Writes = append(r.Writes, wr)
		}
	}
	return nil
}

// visible compares the rows the role sees with the expected ones.
func visible(ctx context.Context, tx pgx.Tx, qt string, key rowKey, sees string, expected map[string]bool, o Options, r *Result) error {
	rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s, coalesce(%s, false) FROM %s", key.expr, wrap(sees), qt))
	if err != nil {
		return fmt.Errorf("reading %s as %s: %w", qt, quote.Ident(r.As), err)
	}
	seen := map[string]bool{}
	for rows.Next() {
		var k string
		var match bool
		if err := rows.Scan(&k, &match); err != nil {
			rows.Close()
			return err
		}
		r.Visible++
		seen[k] = true
		if !match {
			r.Leaks++
			if len(r.LeakKeys) < o.MaxRows {
				r.LeakKeys = append(r.LeakKeys, key.label+"="+k)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s as %s: %w", qt, quote.Ident(r.As), err)
	}
	r.Compared = true
	var hidden []string
	for k := range expected {
		if !seen[k] {
			hidden = append(hidden, k)
		}
	}
	sort.Strings(hidden)
	r.Hidden = len(hidden)
	for _, k := range hidden {
		if len(r.HiddenKeys) == o.MaxRows {
			break
		}
		r.HiddenKeys = append(r.HiddenKeys, key.label+"="+k)
	}
	return nil
}

// tryWrite runs one write in a savepoint and rolls it back.
func tryWrite(ctx context.Context, tx pgx.Tx, qt, cmd string, j int, w policy.WriteTest) (Write, error) {
	wr := Write{Command: cmd, Index: j + 1, Expect: w.Expect}
	cols := sortedKeys(w.Values)
	var sql string
	switch cmd {
	case "INSERT":
		var names, vals []string
		for _, col := range cols {
			names = append(names, quote.Ident(col))
			vals = append(vals, wrap(w.Values[col]))
		}
		sql = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", qt, strings.Join(names, ", "), strings.Join(vals, ", "))
	case "UPDATE":
		var set []string
		for _, col := range cols {
			set = append(set, quote.Ident(col)+" = "+wrap(w.Values[col]))
		}
		sql = fmt.Sprintf("UPDATE %s SET %s", qt, strings.Join(set, ", "))
	case "DELETE":
		sql = "DELETE FROM " + qt
	}
	if w.Where != "" {
		sql += " WHERE " + wrap(w.Where)
	}
	if _, err := tx.Exec(ctx, "SAVEPOINT rlstest_write"); err != nil {
		return wr, err
	}
	tag, err := tx.Exec(ctx, sql)
	switch {
	case err == nil:
		wr.Rows = tag.RowsAffected()
		wr.Got = "allowed"
		if cmd != "INSERT" && wr.Rows == 0 {
			wr.Got, wr.Detail = "denied", "no row changed (the rows matched are invisible to the role, or none match)"
		}
	case isRLSDenied(err):
		wr.Got, wr.Detail = "denied", err.Error()
	case isDenied(err):
		wr.Got, wr.Detail = "privileges", PrivilegesDenial+" ("+err.Error()+")"
	default:
		wr.Got, wr.Detail = "error", err.Error()
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT rlstest_write"); err != nil {
		return wr, err
	}
	wr.OK = wr.Got == wr.Expect
	return wr, nil
}

// PrivilegesDenial is what a write refused by privileges means.
const PrivilegesDenial = "denied by privileges, not by row-level security: the test proves nothing about the policy"

// isDenied: insufficient privilege (42501), which covers both "new row
// violates row-level security policy" and "permission denied".
func isDenied(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501"
}

// isRLSDenied: a policy refused the row. "permission denied for
// table/sequence/column" has the same code but no policy was asked.
func isRLSDenied(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501" && strings.Contains(pe.Message, "violates row-level security policy")
}

// isBypassError: row_security = off refused because RLS applies.
func isBypassError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501" && strings.Contains(pe.Message, "row-level security")
}

// bypassHints says from the catalog why the role may see every row.
func bypassHints(ctx context.Context, tx pgx.Tx, schema, table, role string) []string {
	var enabled, forced, owns, super, bypass bool
	err := tx.QueryRow(ctx, `
		SELECT c.relrowsecurity, c.relforcerowsecurity, pg_has_role($3, c.relowner, 'USAGE'), r.rolsuper, r.rolbypassrls
		FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace, pg_roles r
		WHERE s.nspname = $1 AND c.relname = $2 AND r.rolname = $3`, schema, table, role).Scan(&enabled, &forced, &owns, &super, &bypass)
	if err != nil {
		return nil
	}
	var out []string
	switch {
	case super:
		out = append(out, fmt.Sprintf("role %s is a superuser: row-level security never applies to it", quote.Ident(role)))
	case bypass:
		out = append(out, fmt.Sprintf("role %s has BYPASSRLS", quote.Ident(role)))
	case !enabled:
		out = append(out, "row-level security is not enabled on the table")
	case owns && !forced:
		out = append(out, fmt.Sprintf("role %s owns the table (or inherits its owner) and RLS is not forced: the owner bypasses every policy (ALTER TABLE ... FORCE ROW LEVEL SECURITY)", quote.Ident(role)))
	default:
		out = append(out, "a permissive policy admits these rows (permissive policies are OR-ed: look for USING (true) or a broad condition)")
	}
	return out
}

// rowKey names rows: the primary key's columns, or ctid.
type rowKey struct{ expr, label string }

func keyOf(ctx context.Context, tx pgx.Tx, schema, table string) (rowKey, error) {
	var cols []string
	err := tx.QueryRow(ctx, `
		SELECT coalesce(array_agg(a.attname ORDER BY k.n) FILTER (WHERE a.attname IS NOT NULL), '{}')
		FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
		LEFT JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true
		LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
		WHERE s.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, table).Scan(&cols)
	if err != nil {
		return rowKey{}, fmt.Errorf("reading the primary key of %s: %w", quote.Qualified(schema, table), err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		WHERE s.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, table).Scan(&n); err != nil {
		return rowKey{}, err
	}
	if n == 0 {
		return rowKey{}, fmt.Errorf("table %s does not exist", quote.Qualified(schema, table))
	}
	switch len(cols) {
	case 0:
		return rowKey{expr: "ctid::text", label: "ctid"}, nil
	case 1:
		return rowKey{expr: quote.Ident(cols[0]) + "::text", label: cols[0]}, nil
	}
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quote.Ident(c)
	}
	return rowKey{expr: "row(" + strings.Join(q, ", ") + ")::text", label: "(" + strings.Join(cols, ", ") + ")"}, nil
}

// keys runs a one-column text query into a set.
func keys(ctx context.Context, tx pgx.Tx, sql string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}
