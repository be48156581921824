package cli

import (
	"os"
	"os/exec"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestMain(m *testing.M) {
	// Re-executed as the pgaegis command (asCommand): a real process for
	// signals, without building the binary.
	if os.Getenv(asCommandEnv) != "" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
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

const asCommandEnv = "PGAEGIS_CLI_TEST_AS_COMMAND"

// asCommand is this test binary run as "pgaegis args...".
func asCommand(args ...string) *exec.Cmd {
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), asCommandEnv+"=1")
	return c
}
