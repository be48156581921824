// Package pgtest gives tests real, throwaway PostgreSQL servers (see
// localpg). Without server binaries a test skips, except under CI=true,
// where a missing PostgreSQL fails the run: CI must never pass by skipping.
package pgtest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
)

// Version is the PostgreSQL major the tests run against.
const Version = "15"

// Start starts a server for one test (or a group of tests sharing it) and
// stops it when tb ends.
func Start(tb testing.TB, o localpg.Options) *localpg.Server {
	tb.Helper()
	if o.Version == "" {
		o.Version = Version
	}
	if _, err := localpg.FindBinDir(o.Version); err != nil {
		Unavailable(tb, err)
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
