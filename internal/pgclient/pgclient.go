// Package pgclient runs PostgreSQL's client programs (pg_dump,
// pg_dumpall, pg_restore, psql) for pgaegis: it finds a binary new enough
// for the server, and hands it the connection without the password ever
// being in its argv or environment (the password goes through a pgpass
// file in memory, memfd, passed as an inherited descriptor).
package pgclient

import (
	"context"
	"errors"
	"os/exec"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/conninfo"
)

// Tool is a found client program.
type Tool struct {
	Path    string
	Version string // "15.18"
	Major   int
}

// Find returns the program (name "pg_dump", ...) for a server of major
// serverMajor: the lowest installed major >= serverMajor among PATH,
// $PGAEGIS_PG_BIN, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin; an error
// saying what to install when none is new enough (pg_dump refuses newer
// servers; pg_restore reads only archives of its major or older).
func Find(name string, serverMajor int) (Tool, error) {
	return Tool{}, errors.New("pgclient: not implemented")
}

// Target is how a child program connects: the user's connection options
// as given (so sslmode, sslrootcert, service, PG* variables, ~/.pgpass
// behave exactly as libpq's), re-aimed at one database.
type Target struct {
	Flags  conninfo.Flags
	Config *pgx.ConnConfig // as resolved by pgaegis (its Password, if any, is handed over by memfd)
}

// Command builds prog's command connecting to database ("" = the
// target's own): argv carries a conninfo string without any password;
// the environment is conninfo.ChildEnv plus the libpq variables the user
// set except PGPASSWORD; when a password is known, PGPASSFILE names an
// inherited memfd holding one pgpass line for it. Close the returned
// closer after the command has finished.
func (t Target) Command(ctx context.Context, tool Tool, database string, args ...string) (*exec.Cmd, func(), error) {
	return nil, nil, errors.New("pgclient: not implemented")
}
