package cli

import (
	"os"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestMain(m *testing.M) {
	// The weak-password verdict cache lives under the user cache
	// directory: the tests' own, never the user's.
	dir, err := os.MkdirTemp("", "pgaegis-cli-cache-")
	if err == nil {
		os.Setenv("XDG_CACHE_HOME", dir)
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	pgtest.StopShared()
	os.Exit(code)
}
