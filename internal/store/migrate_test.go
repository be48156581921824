package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestMigrations(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		url := b.newURL(t)
		ctx := pgtest.Ctx(t)
		s := open(t, url)
		if v, err := s.SchemaVersion(ctx); err != nil || v != Latest() || v < 1 {
			t.Fatalf("fresh store at version %d (%v), want %d", v, err, Latest())
		}
		if s.Backend() != b.name {
			t.Fatalf("Backend() = %q, want %q", s.Backend(), b.name)
		}
		if b.name == "sqlite" {
			// The store describes every server's weaknesses: owner only.
			for _, f := range []string{url, url + "-wal"} {
				st, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Fatalf("%s: mode %v, want 0600", filepath.Base(f), st.Mode().Perm())
				}
			}
		}
		s.Close()

		// Re-opening applies nothing: one row per migration, still.
		s = open(t, url)
		var rows int
		if err := rawDB(s).QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != Latest() {
			t.Fatalf("schema_migrations has %d rows after re-open, want %d", rows, Latest())
		}
		// A newer pgaegis migrated this database: refuse it.
		if _, err := rawDB(s).ExecContext(ctx, s.(interface{ bindq(string) string }).bindq(
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 'now')`), Latest()+1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err := Open(ctx, url)
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
		}
		if strings.Contains(err.Error(), "password=") && !strings.Contains(err.Error(), "password=xxxxx") {
			t.Fatalf("error shows the connection string's password")
		}
	})
}

func TestConcurrentOpenFromEmpty(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		url := b.newURL(t)
		ctx := pgtest.Ctx(t)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := Open(ctx, url)
				if err == nil {
					s.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent Open: %v", err)
			}
		}
		s := open(t, url)
		var rows int
		if err := rawDB(s).QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != Latest() {
			t.Fatalf("after concurrent Opens: %d migration rows (%v), want %d", rows, err, Latest())
		}
	})
}
