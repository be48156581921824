// Package leakscan looks for secrets where a server keeps statement text:
// the log written since a mark (read through pg_read_binary_file, or a
// local file) and pg_stat_statements. The secrets are searched on the
// client: they are never sent to the server, not even as a parameter
// (log_statement = all logs parameters).
package leakscan

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// Mark is where the server's log stood before a change: each current log
// file (stderr, csvlog, jsonlog) and its size.
type Mark struct {
	Files map[string]int64 `json:"files,omitempty"` // path as pg_current_logfile gives it -> size
	Why   string           `json:"why,omitempty"`   // why the log cannot be read ("" when it can)
}

// Needle is one secret to look for, with a label for the report ("new
// password", "new verifier"). Value never appears in a Result.
type Needle struct {
	Label string
	Value []byte
}

// Hit is one place a needle was found.
type Hit struct {
	Label string // the needle's label
	Where string // "server log /var/log/postgresql/x.log", "pg_stat_statements"
}

// Result says what was searched and what was found.
type Result struct {
	LogChecked        bool
	LogBytes          int64
	LogWhy            string // why the log was not (fully) searched
	StatementsChecked bool
	Statements        int    // pg_stat_statements entries searched
	StatementsWhy     string // why not (extension absent, no privilege)
	Hits              []Hit
}

// TakeMark records the current log files and sizes (pg_current_logfile,
// pg_stat_file). Without the privilege it returns a Mark with Why set.
func TakeMark(ctx context.Context, conn *pgx.Conn) (Mark, error) {
	return Mark{}, errors.New("leakscan: not built yet")
}

// Scan searches the log written since m (following a rotation to a new
// file) and pg_stat_statements for each needle.
func Scan(ctx context.Context, conn *pgx.Conn, m Mark, needles []Needle) (*Result, error) {
	return nil, errors.New("leakscan: not built yet")
}
