package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	_ "modernc.org/sqlite" // registers "sqlite"
)

var sqliteDialect = &dialect{
	name:      "sqlite",
	timeAsInt: true,
	bootstrap: []string{`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`},
}

// sqliteStore is the default backend: one file, WAL so readers never
// block the writer, a busy timeout so concurrent writers (goroutines or
// processes) wait for each other instead of failing, and BEGIN IMMEDIATE
// so a transaction takes the write lock before it reads.
type sqliteStore struct{ *core }

func (*sqliteStore) Backend() string { return "sqlite" }

// sqliteParams are applied by the driver on every new connection.
const sqliteParams = "?_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"

func openSQLite(ctx context.Context, path string, upto int) (Store, error) {
	// The store describes every server's weaknesses: owner-only from the
	// first byte (SQLite gives its -wal and -shm files the same mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	f.Close()
	db, err := sql.Open("sqlite", path+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	if err := migrate(ctx, db, sqliteDialect, "", upto); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &sqliteStore{&core{db: db, d: sqliteDialect}}, nil
}

// Close runs PRAGMA optimize first, as SQLite advises for long-lived
// connections: it gathers the statistics the planner lacks (no one runs
// ANALYZE on a file nothing else manages).
func (s *sqliteStore) Close() error {
	_, _ = s.db.Exec(`PRAGMA optimize`)
	return s.db.Close()
}
