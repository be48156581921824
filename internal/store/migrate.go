package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

// migration is one embedded NNNN_name.sql file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns a dialect's migrations in order.
func migrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	ents, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration file %s/%s is not named NNNN_name.sql", dir, e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: %s migrations skip from %d to %d", dialect, i, m.version)
		}
	}
	return ms, nil
}

// Latest is the schema version this binary writes.
func Latest() int {
	ms, err := migrations("sqlite")
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrationSteps are Go steps run right after a version's SQL, in the
// same transaction: data a query alone cannot derive in both dialects.
var migrationSteps = map[int]func(context.Context, *sql.Tx, *dialect) error{
	4: backfillCleanSets,
}

// migrate brings db up to date in one transaction. lock runs first in
// that transaction and serialises migrating processes (PostgreSQL's
// advisory lock; SQLite's BEGIN IMMEDIATE already holds the write lock).
func migrate(ctx context.Context, db *sql.DB, d *dialect, lock string, upto int) error {
	ms, err := migrations(d.name)
	if err != nil {
		return err
	}
	if upto > 0 && upto < len(ms) {
		ms = ms[:upto] // tests: a store as an older pgaegis left it
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin migration: %w", err)
	}
	defer tx.Rollback()
	for _, q := range append([]string{lock}, d.bootstrap...) {
		if q == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store: preparing migrations: %w", err)
		}
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("store: reading schema version: %w", err)
	}
	if have > len(ms) {
		return fmt.Errorf("%w: the database is at version %d, this binary knows %d: upgrade pgaegis", ErrSchemaTooNew, have, len(ms))
	}
	for _, m := range ms[have:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("store: migration %04d_%s.sql: %w", m.version, m.name, err)
		}
		if step := migrationSteps[m.version]; step != nil {
			if err := step(ctx, tx, d); err != nil {
				return fmt.Errorf("store: migration %04d_%s: %w", m.version, m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.bind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
			m.version, m.name, time.Now().UTC().Format(time.RFC3339)); err != nil {
			return fmt.Errorf("store: recording migration %d: %w", m.version, err)
		}
	}
	return tx.Commit()
}
