package store

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// backend makes fresh, empty stores of one kind for a test.
type backend struct {
	name string
	// newURL returns the URL of a new empty store (a file in the test's
	// temporary directory, or a new database on the shared server).
	newURL func(t testing.TB) string
}

var dbSeq atomic.Int64

func backends() []backend {
	return []backend{
		{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "fleet.db") }},
		{"postgres", func(t testing.TB) string {
			srv := pgtest.Shared(t)
			name := fmt.Sprintf("store_%d_%d", os.Getpid(), dbSeq.Add(1))
			if err := srv.Exec(pgtest.Ctx(t), `CREATE DATABASE `+name); err != nil {
				t.Fatalf("create database: %v", err)
			}
			t.Cleanup(func() { _ = srv.Exec(pgtest.Ctx(t), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
			return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password='%s' dbname=%s sslmode=disable",
				srv.Port, srv.AdminUser, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(srv.Password), name)
		}},
	}
}

// eachBackend runs fn once per backend, as subtests "sqlite" and
// "postgres": the same suite proves both.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// open opens url and closes it at the end of the test.
func open(t *testing.T, url string) Store {
	t.Helper()
	s, err := Open(pgtest.Ctx(t), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rawDB(s Store) *sql.DB { return s.(interface{ raw() *sql.DB }).raw() }
