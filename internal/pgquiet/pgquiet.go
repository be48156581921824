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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
}

// Quiet changes every Setting it can with SET LOCAL, each in its own
// savepoint (a non-superuser may be refused one and not the others), and
// returns a Warning for each it could not change that would keep the
// statement. user is the role executing (named in the advice). Settings
// of modules not loaded are skipped. It must run inside a transaction.
func Quiet(ctx context.Context, q Querier, user string) ([]Warning, error) {
	return nil, errors.New("pgquiet: not built yet")
}
