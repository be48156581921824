package localpg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Test suites start hundreds of clusters, and initdb is most of each
// start (about 3 s on a busy 2-core machine; copying its result takes a
// fraction of that). With ReuseInitdb on, Start runs initdb once per set
// of binaries, admin user and initdb arguments into a template directory
// kept under the temporary directory, and gives every new cluster a copy
// (cp -a) of that data directory.
//
// The copies share what initdb chose: the admin password (random, kept
// 0600 beside the template) and the system identifier. That is fine for
// throwaway test servers on loopback and not for anything else, so it is
// off unless a test harness turns it on (pgtest does); a persistent
// cluster (Options.Dir) always gets an initdb of its own.
var (
	reuseInitdb bool
	templateMu  sync.Mutex
	templateDir = os.TempDir() // resolved at start-up: tests may point TMPDIR elsewhere later
)

// ReuseInitdb turns template clusters on or off for this process (tests).
func ReuseInitdb(on bool) {
	templateMu.Lock()
	reuseInitdb = on
	templateMu.Unlock()
}

func reusingInitdb() bool {
	templateMu.Lock()
	defer templateMu.Unlock()
	return reuseInitdb
}

const templatePrefix = "pgaegis-initdb-"

// templateKey names a template by everything that shapes initdb's
// output: the binaries (path, version, the postgres executable's size
// and time), the admin user, the extra arguments and the OS user.
func (s *Server) templateKey(initdbArgs []string) (string, error) {
	st, err := os.Stat(filepath.Join(s.BinDir, "postgres"))
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%s\x00%d\x00%q", s.BinDir, s.Version, st.Size(), st.ModTime().UnixNano(), s.AdminUser, s.uid, initdbArgs)
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

// fromTemplate fills s.DataDir with a copy of the template cluster for
// these arguments (building the template first when there is none) and
// returns the admin password the copy has.
func (s *Server) fromTemplate(ctx context.Context, initdbArgs []string) (string, error) {
	key, err := s.templateKey(initdbArgs)
	if err != nil {
		return "", err
	}
	final := filepath.Join(templateDir, templatePrefix+key)
	pw, err := s.readTemplate(final)
	if err != nil {
		// Serialised within the process (parallel subtests want the same
		// template at once); another process may build it too, and the
		// first rename wins.
		templateMu.Lock()
		pw, err = s.readTemplate(final)
		if err != nil {
			pw, err = s.buildTemplate(ctx, final, initdbArgs)
		}
		templateMu.Unlock()
		if err != nil {
			return "", err
		}
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", filepath.Join(final, "data"), s.DataDir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copying template cluster: %v\n%s", err, out)
	}
	return pw, nil
}

// readTemplate returns the password of a complete template at dir. A
// directory that is not ours (another user's, group- or world-writable,
// a symlink) is refused: its cluster would not be the one we made.
func (s *Server) readTemplate(dir string) (string, error) {
	st, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || st.Mode().Perm()&0o077 != 0 || (int(sys.Uid) != os.Geteuid() && int(sys.Uid) != s.uid) {
		return "", fmt.Errorf("%s is not a template cluster of ours", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, secretFile))
	if err != nil {
		return "", err
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", errors.New("template cluster without its secret")
	}
	return pw, nil
}

// buildTemplate runs initdb into a fresh directory and renames it to
// final, complete or not at all.
func (s *Server) buildTemplate(ctx context.Context, final string, initdbArgs []string) (string, error) {
	if st, err := os.Lstat(final); err == nil {
		// Incomplete or not ours (readTemplate said so): only a
		// directory of our own is removed.
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !st.IsDir() || !ok || (int(sys.Uid) != os.Geteuid() && int(sys.Uid) != s.uid) {
			return "", fmt.Errorf("%s is in the way of a template cluster", final)
		}
		if err := os.RemoveAll(final); err != nil {
			return "", err
		}
	}
	tmp, err := os.MkdirTemp(templateDir, filepath.Base(final)+".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if s.uid >= 0 {
		if err := os.Chown(tmp, s.uid, s.gid); err != nil {
			return "", err
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return "", err
	}
	pw := randomSecret()
	pwfile := filepath.Join(tmp, "pwfile")
	if err := os.WriteFile(pwfile, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	if s.uid >= 0 {
		os.Chown(pwfile, s.uid, s.gid)
	}
	args := []string{"-D", filepath.Join(tmp, "data"), "-U", s.AdminUser, "--pwfile", pwfile, "-A", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync"}
	args = append(args, initdbArgs...)
	cmd := s.command(ctx, "initdb", args...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	os.Remove(pwfile)
	if err := os.WriteFile(filepath.Join(tmp, secretFile), []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process renamed its template first: use that one.
		if other, rerr := s.readTemplate(final); rerr == nil {
			return other, nil
		}
		return "", err
	}
	return pw, nil
}
