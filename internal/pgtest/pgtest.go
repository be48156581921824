// Package pgtest gives tests real, throwaway PostgreSQL servers (see
// localpg). Without server binaries a test skips, except under CI=true,
// where a missing PostgreSQL fails the run: CI must never pass by skipping.
package pgtest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
)

// Version is the PostgreSQL major the full suite runs against:
// $PGAEGIS_PG_VERSION, else 15 (Debian's, the reference, with pgaudit
// and the untrusted languages). The oracle suites run on every major
// (EachMajor).
var Version = func() string {
	if v := os.Getenv("PGAEGIS_PG_VERSION"); v != "" {
		return v
	}
	return "15"
}()

// Test servers are copies of one initdb per major and set of initdb
// arguments (localpg.ReuseInitdb): initdb was most of every start.
func init() { localpg.ReuseInitdb(true) }

// Start starts a server for one test (or a group of tests sharing it) and
// stops it when tb ends.
func Start(tb testing.TB, o localpg.Options) *localpg.Server {
	tb.Helper()
	if o.Version == "" {
		o.Version = Version
	}
	bin, err := FindBinDir(o.Version)
	if err != nil {
		Unavailable(tb, err)
	}
	if o.BinDir == "" {
		o.BinDir = bin // localpg.Start would look it up again
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := localpg.Start(ctx, o)
	if err != nil {
		tb.Fatalf("starting PostgreSQL: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// binDirs caches FindBinDir: localpg.FindBinDir runs "postgres --version"
// of every installed major (seven here, about 70 ms each), and a test
// starting two servers looked them up four times.
var binDirs sync.Map // version and the environment that steers the search -> bin directory

// FindBinDir is localpg.FindBinDir, remembered per major and per value of
// the variables it reads (PGAEGIS_PG_BIN, PGAEGIS_PGBIN, PGAEGIS_PG_CACHE):
// a test pointing them elsewhere gets its own lookup. Only a found
// directory is remembered.
func FindBinDir(version string) (string, error) {
	key := strings.Join([]string{version, os.Getenv("PGAEGIS_PG_BIN"), os.Getenv("PGAEGIS_PGBIN"), localpg.RegistryCache()}, "\x00")
	if d, ok := binDirs.Load(key); ok {
		return d.(string), nil
	}
	d, err := localpg.FindBinDir(version)
	if err == nil {
		binDirs.Store(key, d)
	}
	return d, err
}

// Unavailable skips, or fails under CI.
func Unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("PostgreSQL is required under CI=true: %v", err)
	}
	tb.Skipf("PostgreSQL not available: %v", err)
}

// Shared runs one server per test package: call it from tests, and call
// StopShared from TestMain after m.Run.
var (
	sharedOnce sync.Once
	shared     *localpg.Server
	sharedErr  error
)

// Shared returns the package's shared server, starting it on first use.
func Shared(tb testing.TB) *localpg.Server {
	tb.Helper()
	sharedOnce.Do(func() {
		if _, err := localpg.FindBinDir(Version); err != nil {
			sharedErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared, sharedErr = localpg.Start(ctx, localpg.Options{Version: Version})
	})
	if sharedErr != nil {
		if shared == nil {
			if _, err := localpg.FindBinDir(Version); err != nil {
				Unavailable(tb, sharedErr)
			}
		}
		tb.Fatalf("starting shared PostgreSQL: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared server, if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Ctx returns a context bounded for one test step.
func Ctx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// Majors are the PostgreSQL majors the version-matrix tests run on:
// $PGAEGIS_PG_MAJORS ("13,17"), else every supported major installed
// here (Debian's packages, or the npm registry's unpacked by
// .ci/pg-majors). Under CI=true every supported major must be installed:
// a matrix that silently shrinks proves nothing.
func Majors(tb testing.TB) []int {
	tb.Helper()
	installed := map[int]bool{}
	for _, in := range localpg.Installed() {
		installed[in.Major] = true
	}
	var want []int
	if env := os.Getenv("PGAEGIS_PG_MAJORS"); env != "" {
		for _, f := range strings.Split(env, ",") {
			m, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				tb.Fatalf("PGAEGIS_PG_MAJORS=%q: %q is not a major version", env, f)
			}
			want = append(want, m)
		}
	} else {
		want = localpg.Supported
	}
	var have, missing []int
	for _, m := range want {
		if installed[m] {
			have = append(have, m)
		} else {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL %v not installed; under CI=true every major is required (bash .ci/pg-majors)", missing)
		}
		tb.Logf("PostgreSQL %v not installed, not tested (bash .ci/pg-majors fetches them)", missing)
	}
	if len(have) == 0 {
		Unavailable(tb, localpg.ErrNoServer)
	}
	return have
}

// EachMajor runs fn as one parallel subtest per major ("pg17").
func EachMajor(t *testing.T, fn func(t *testing.T, major int)) {
	t.Helper()
	for _, m := range Majors(t) {
		t.Run("pg"+strconv.Itoa(m), func(t *testing.T) {
			t.Parallel()
			fn(t, m)
		})
	}
}

// StartMajor starts a server of the given major for one test.
func StartMajor(tb testing.TB, major int, o localpg.Options) *localpg.Server {
	tb.Helper()
	o.Version = strconv.Itoa(major)
	return Start(tb, o)
}

// Conn opens an admin connection to database on srv, closed when tb ends.
func Conn(tb testing.TB, srv *localpg.Server, database string) *pgx.Conn {
	tb.Helper()
	ctx := Ctx(tb)
	c, err := srv.Connect(ctx, database)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", database, err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Reload signals srv to re-read its configuration files and returns once
// new backends run with them (pg_conf_load_time, as a new backend sees
// it, has moved on): cheaper than a restart for pg_hba.conf and SIGHUP
// settings. The admin must still be let in by the new files.
func Reload(tb testing.TB, ctx context.Context, srv *localpg.Server) {
	tb.Helper()
	before := loadTime(tb, ctx, srv)
	if err := srv.Reload(); err != nil {
		tb.Fatalf("reloading: %v", err)
	}
	for !loadTime(tb, ctx, srv).After(before) {
		select {
		case <-ctx.Done():
			tb.Fatalf("reload not seen: %v", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func loadTime(tb testing.TB, ctx context.Context, srv *localpg.Server) time.Time {
	tb.Helper()
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		tb.Fatalf("connecting after a reload: %v", err)
	}
	defer c.Close(ctx)
	var at time.Time
	if err := c.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&at); err != nil {
		tb.Fatalf("reading pg_conf_load_time: %v", err)
	}
	return at
}
