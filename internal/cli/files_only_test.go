package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
)

// A files-only command must not connect because a shell profile set PG*
// variables: with PGHOST/PGPORT naming a port nobody listens on, hba
// explain --file and audit --pgdata/--hba-file still work from the files.
func TestFilesOnlyCommandsIgnorePGEnvironment(t *testing.T) {
	port, err := localpg.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGHOST", "127.0.0.1")
	t.Setenv("PGPORT", strconv.Itoa(port))
	t.Setenv("PGUSER", "nobody_here")
	dir := t.TempDir()
	hbaFile := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(hbaFile, []byte("local all all peer\nhostssl all all 10.0.0.0/8 scram-sha-256\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"hba", "explain", "--file", hbaFile, "--user", "app", "--database", "shop", "--address", "10.1.2.3"},
		{"hba", "lint", "--file", hbaFile},
		{"audit", "--hba-file", hbaFile},
	} {
		code, out, errs := runCLI(t, args...)
		if code == ExitError || strings.Contains(errs+out, "connecting to") {
			t.Errorf("%v with PG* set: exit %d, tried to connect: %s", args, code, errs)
		}
	}
}

func TestConnHints(t *testing.T) {
	peer := `connecting to host=/var/run/postgresql user=postgres: FATAL: Peer authentication failed for user "postgres" (SQLSTATE 28000)`
	if h := connHint(peer, "pgaegis access", false, false); !strings.Contains(h, "sudo -u") || strings.Contains(h, "--pgdata") {
		t.Errorf("access (no --pgdata flag): %q", h)
	}
	if h := connHint(peer, "pgaegis audit", true, false); !strings.Contains(h, "pgaegis audit --pgdata DIR") {
		t.Errorf("audit: %q", h)
	}
	pw := `connecting to host=127.0.0.1 user=app: FATAL: password authentication failed for user "app" (SQLSTATE 28P01)`
	if h := connHint(pw, "pgaegis audit", true, false); !strings.Contains(h, "no password was supplied") || !strings.Contains(h, "-W") {
		t.Errorf("no password: %q", h)
	}
	if h := connHint(pw, "pgaegis audit", true, true); h != "" {
		t.Errorf("a wrong password given: %q, want no hint", h)
	}
}
