package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// pgSchema holds the store's tables, apart from whatever else lives in
// the team's database.
const pgSchema = "pgaegis"

// migrationLock is the advisory lock key that serialises processes
// migrating one database ("pgaegis" in ASCII).
const migrationLock = 0x7067616567697300

var pgDialect = &dialect{
	name:     "postgres",
	numbered: true,
	bootstrap: []string{
		`CREATE SCHEMA IF NOT EXISTS ` + pgSchema,
		`CREATE TABLE IF NOT EXISTS ` + pgSchema + `.schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)`,
	},
}

// pgStore is the team backend: many scanners on many hosts share it.
type pgStore struct{ *core }

func (*pgStore) Backend() string { return "postgres" }

func openPostgres(ctx context.Context, dsn string, upto int, mustExist bool) (Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the string, password and all.
		return nil, fmt.Errorf("store: %s", conninfo.RedactDSN(err.Error()))
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["search_path"] = pgSchema
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "pgaegis-store"
	}
	db := stdlib.OpenDB(*cfg)
	if mustExist {
		var found bool
		err := db.QueryRowContext(ctx, `SELECT to_regclass('`+pgSchema+`.schema_migrations') IS NOT NULL`).Scan(&found)
		if err == nil && !found {
			err = fmt.Errorf("%w (no schema %s in database %s; fleet scan creates it)", ErrNoStore, pgSchema, cfg.Database)
		}
		if err != nil {
			db.Close()
			return nil, &redactedError{msg: "store " + describe(cfg) + ": " + textsafe.OneLine(conninfo.RedactDSN(err.Error())), err: err}
		}
	}
	lock := fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", int64(migrationLock))
	if err := migrate(ctx, db, pgDialect, lock, upto); err != nil {
		db.Close()
		return nil, &redactedError{msg: "store " + describe(cfg) + ": " + textsafe.OneLine(conninfo.RedactDSN(err.Error())), err: err}
	}
	return &pgStore{&core{db: db, d: pgDialect}}, nil
}

func describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("host=%s port=%d dbname=%s", cfg.Host, cfg.Port, cfg.Database)
}

// redactedError shows a message with passwords masked and still answers
// errors.Is for the error it stands for.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
