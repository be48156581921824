package cli

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/help")

// commandPaths lists every command of the tree as its words after "pgaegis".
func commandPaths() [][]string {
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		out = append(out, path)
		for _, s := range c.Commands() {
			if s.Name() == "help" || s.Hidden {
				continue
			}
			walk(s, append(append([]string{}, path...), s.Name()))
		}
	}
	walk(newRoot(&Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}), nil)
	return out
}

// TestHelpGolden: every command's --help exits 0, prints to stdout, shows
// POSIX flags with one entry each and an example, and matches its golden
// file (go test ./internal/cli -run TestHelpGolden -update rewrites them).
func TestHelpGolden(t *testing.T) {
	paths := commandPaths()
	if len(paths) < 20 {
		t.Fatalf("only %d commands in the tree", len(paths))
	}
	for _, p := range paths {
		name := strings.Join(append([]string{"pgaegis"}, p...), "_")
		t.Run(name, func(t *testing.T) {
			code, out, errs := runCLI(t, append(append([]string{}, p...), "--help")...)
			if code != ExitOK || errs != "" {
				t.Fatalf("--help: exit %d, stderr %q", code, errs)
			}
			if !strings.Contains(out, "Examples:\n") {
				t.Errorf("no examples in the help:\n%s", out)
			}
			for _, bad := range []string{"\n  -dbname", "\n  -host", "  -format "} {
				if strings.Contains(out, bad) {
					t.Errorf("Go flag layout (%q) in the help:\n%s", bad, out)
				}
			}
			// `pgaegis help CMD` says the same.
			if code, out2, _ := runCLI(t, append([]string{"help"}, p...)...); code != ExitOK || out2 != out {
				t.Errorf("pgaegis help %s differs from --help (exit %d)", strings.Join(p, " "), code)
			}
			golden := filepath.Join("testdata", "help", name+".txt")
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if string(want) != out {
				t.Errorf("help differs from %s (run with -update if intended):\n%s", golden, out)
			}
		})
	}
}

// TestCommandLine covers what a new user tried: versions, help spellings,
// unknown flags and commands, subcommand-only flags.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "pg.log")
	if err := os.WriteFile(log, []byte("2026-01-01 00:00:00 UTC [1] LOG:  database system is ready to accept connections\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sarif := filepath.Join(dir, "events.sarif")
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string // substrings
		errLines int    // when > 0, the exact number of stderr lines
	}{
		{args: []string{"--version"}, out: "pgaegis " + collect.Version + "\n"},
		{args: []string{"-V"}, out: "pgaegis " + collect.Version + "\n"},
		{args: []string{"version"}, out: "pgaegis " + collect.Version + "\n"},
		{args: []string{"-h"}, out: "Available Commands:"},
		{args: []string{"--help"}, out: "Available Commands:"},
		{args: []string{"help", "audit"}, out: "pgaegis audit [connection options]"},
		{args: []string{"help", "hba", "diff"}, out: "pgaegis hba diff OLD NEW"},
		{args: []string{"hba", "--help"}, out: "guard"},
		{args: []string{"tls", "--help"}, out: "init-ca"},
		{args: []string{"logs", "--help"}, out: "watch"},
		{args: []string{"access", "--help"}, out: "policy"},
		{args: []string{"access", "policy", "check", "--help"}, out: "FILE.yaml"},
		{args: []string{"tls", "issue", "client", "--help"}, out: "--role"},
		{args: []string{"tls", "init-ca", "-h"}, out: "--key-type"}, // -h is help where it is not the host
		{args: []string{"audit", "--bogus"}, code: ExitError, err: "pgaegis audit: unknown flag: --bogus\nsee 'pgaegis audit --help'\n", errLines: 2},
		{args: []string{"hba", "diff", "--nope", "a", "b"}, code: ExitError, err: "see 'pgaegis hba diff --help'", errLines: 2},
		{args: []string{"nosuch"}, code: ExitError, err: `unknown command "nosuch"`, errLines: 2},
		{args: []string{"adit"}, code: ExitError, err: `unknown command "adit" (did you mean audit?)`, errLines: 2},
		{args: []string{"rules", "extra"}, code: ExitError, err: `unexpected argument "extra"`, errLines: 2},
		{args: []string{"hba"}, code: ExitError, err: "hba needs a subcommand: diff, explain, guard, lint, matrix"},
		{args: []string{"hba", "frobnicate"}, code: ExitError, err: `unknown hba subcommand "frobnicate"`},
		{args: []string{"audit", "extra"}, code: ExitError, err: "see 'pgaegis audit --help'"},
		{args: []string{"audit", "--format", "xml"}, code: ExitError, err: `unknown --format "xml"`},
		{args: []string{"audit", "-dbname", "x"}, code: ExitError, err: "see 'pgaegis audit --help'"}, // Go-style single dash is gone
		{args: []string{"audit", "-W", "-w"}, code: ExitError, err: "contradict"},
		// README and docs/logs.md show -o with logs scan.
		{args: []string{"logs", "scan", log, "--format", "sarif", "-o", sarif}},
		{args: []string{"completion", "bash"}, out: "bash completion"},
		{args: []string{"__complete", "audit", "--format", ""}, out: "sarif\n"},
		{args: []string{"__complete", "audit", "--profile", ""}, out: "cis-17\n"},
		{args: []string{"__complete", "audit", "--fail-on", ""}, out: "critical\n"},
		{args: []string{"__complete", "tls", "init-ca", "--key-type", ""}, out: "ed25519\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, errs)
			}
			if !strings.Contains(out, tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, out)
			}
			if !strings.Contains(errs, tc.err) {
				t.Errorf("stderr lacks %q:\n%s", tc.err, errs)
			}
			if n := strings.Count(errs, "\n"); tc.errLines > 0 && n != tc.errLines {
				t.Errorf("stderr has %d lines, want %d:\n%s", n, tc.errLines, errs)
			}
		})
	}
	if b, err := os.ReadFile(sarif); err != nil || !bytes.Contains(b, []byte(`"version": "2.1.0"`)) {
		t.Errorf("logs scan -o did not write SARIF: %v %.200s", err, b)
	}
}

// TestMainNilArgs: Main(nil) is a bare "pgaegis" (usage, exit 2), not a
// parse of the test binary's own arguments.
func TestMainNilArgs(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(nil, &out, &errb); code != ExitError || !strings.Contains(errb.String(), "Available Commands:") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// TestRefusedConnectionErrorOnce: pgx tries TLS then plaintext and reported
// the same dial error twice.
func TestRefusedConnectionErrorOnce(t *testing.T) {
	code, _, errs := runCLI(t, "audit", "-h", "127.0.0.1", "-p", "1", "--no-files", "--no-probe")
	if code != ExitError {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(errs, "connection refused"); n != 1 {
		t.Errorf("%d copies of the dial error:\n%s", n, errs)
	}
}

// TestMissingSocketNamesDirectories: an unreachable socket says which
// directories were tried.
func TestMissingSocketNamesDirectories(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	code, _, errs := runCLI(t, "audit", "-h", a+","+b, "-p", "1", "--no-files", "--no-probe")
	if code != ExitError {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errs, "hint: no server listens on a Unix socket for port 1 in "+a+", "+b) {
		t.Errorf("no hint naming the directories:\n%s", errs)
	}
}

// TestPeerFailureNamesUserToRunAs: peer authentication as another OS user
// says whom to run as and mentions --pgdata.
func TestPeerFailureNamesUserToRunAs(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{HBA: "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n"})
	if currentUser() == srv.AdminUser {
		t.Skip("the test runs as the server's role: peer authentication succeeds")
	}
	code, _, errs := runCLI(t, "audit", "-h", srv.SocketDir, "-p", fmt.Sprint(srv.Port), "-U", srv.AdminUser, "--no-files", "--no-probe")
	if code != ExitError {
		t.Fatalf("exit %d:\n%s", code, errs)
	}
	if !strings.Contains(errs, "Peer authentication failed") {
		t.Fatalf("not a peer failure:\n%s", errs)
	}
	want := "sudo -u " + socketOwner(filepath.Join(srv.SocketDir, fmt.Sprintf(".s.PGSQL.%d", srv.Port))) + " pgaegis audit"
	for _, s := range []string{want, "--pgdata"} {
		if !strings.Contains(errs, s) {
			t.Errorf("hint lacks %q:\n%s", s, errs)
		}
	}
}

// TestPasswordPromptNeedsTerminal: -W never reads a password from argv or
// a pipe; without a terminal it says so.
func TestPasswordPromptNeedsTerminal(t *testing.T) {
	if f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		f.Close()
		t.Skip("a terminal is attached")
	}
	code, _, errs := runCLI(t, "audit", "-W", "-h", "127.0.0.1", "-p", "1")
	if code != ExitError || !strings.Contains(errs, "-W/--password needs a terminal") {
		t.Errorf("exit %d: %s", code, errs)
	}
}
