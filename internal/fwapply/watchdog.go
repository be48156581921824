package fwapply

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/plan"
)

// Files of the apply in its journal directory, beside plan.json.
const (
	fileScript   = "ruleset"      // the script loaded, byte for byte
	fileMeta     = "apply.json"   // backend, namespace and jumps, for Rollback
	fileSaved    = "saved.json"   // the Snapshot it replaced
	fileAfter    = "after.json"   // the Snapshot once confirmed
	fileRevert   = "revert.sh"    // puts saved.json's state back
	fileWatchdog = "watchdog.sh"  // sleeps, then runs revert.sh unless confirmed
	fileLock     = "lock"         // flock: confirm and revert exclude each other
	fileConfirm  = "confirmed"    // the apply is kept; the watchdog does nothing
	fileReverted = "reverted"     // who reverted: "pgaegis", "watchdog" or "rollback"
	fileWDPid    = "watchdog.pid" // the watchdog's process (its own session)
	fileWDLog    = "watchdog.log"
)

// lock takes the journal's flock (the one the watchdog's flock(1) takes).
func lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, fileLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal lock: %w", err)
	}
	return func() { f.Close() }, nil
}

func exists(dir, name string) bool {
	_, err := os.Lstat(filepath.Join(dir, name))
	return err == nil
}

func readMarker(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// mark writes a marker file atomically (0600); the lock is held.
func mark(dir, name, content string) error {
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.WriteFile(tmp, []byte(content+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// watchdogScript waits, then reverts unless the apply was confirmed or
// reverted already. It holds the same lock as Confirm and the in-process
// revert, so exactly one of "kept" and "reverted" wins.
func watchdogScript(dir string, wait time.Duration) string {
	secs := int((wait + time.Second - 1) / time.Second)
	d := shq(dir)
	return fmt.Sprintf(`# pgaegis firewall apply watchdog: reverts unless confirmed.
umask 077
sleep %d
cd %s || exit 1
exec 9>>%s
flock 9
test -e %s && exit 0
test -e %s && exit 0
if sh ./%s >>%s 2>&1; then
	echo watchdog >%s.tmp && mv %s.tmp %s
else
	echo "revert failed, see %s" >>%s
	exit 1
fi
`, secs, d, fileLock, fileConfirm, fileReverted, fileRevert, fileWDLog, fileReverted, fileReverted, fileReverted, fileWDLog, fileWDLog)
}

// watchdog is the armed watchdog process; done closes when it exits, so
// a disarm never signals a process id the system reused.
type watchdog struct {
	pid  int
	done chan struct{}
}

// armWatchdog starts the watchdog in a session of its own (setsid): no
// controlling terminal, so an SSH hangup does not reach it, and not a
// child pgaegis's death takes with it.
func armWatchdog(dir string) (*watchdog, error) {
	cmd := exec.Command("sh", filepath.Join(dir, fileWatchdog))
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	w := &watchdog{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { cmd.Wait(); close(w.done) }() // reap it while pgaegis lives; init does after
	if err := os.WriteFile(filepath.Join(dir, fileWDPid), []byte(fmt.Sprintln(w.pid)), 0o600); err != nil {
		w.disarm()
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	return w, nil
}

// disarm ends the watchdog's session; the confirmed marker already makes
// it harmless, this only saves it sleeping out the window.
func (w *watchdog) disarm() {
	select {
	case <-w.done:
	default:
		syscall.Kill(-w.pid, syscall.SIGTERM)
	}
}

// revertLocked runs revert.sh unless confirmed or reverted already; the
// caller holds the lock. It returns who reverted ("" when kept).
func revertLocked(dir, by string, force bool) (string, error) {
	if !force && exists(dir, fileConfirm) {
		return "", nil
	}
	if r := readMarker(dir, fileReverted); r != "" {
		return r, nil
	}
	out, err := exec.Command("sh", filepath.Join(dir, fileRevert)).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("revert (%s): %v: %s", filepath.Join(dir, fileRevert), err, strings.TrimSpace(string(out)))
	}
	if err := mark(dir, fileReverted, by); err != nil {
		return by, fmt.Errorf("reverted, but the journal could not record it: %w", err)
	}
	return by, nil
}

// confirmLocked marks the apply kept; the caller holds the lock.
func confirmLocked(dir, how string) error {
	if r := readMarker(dir, fileReverted); r != "" {
		return fmt.Errorf("too late: the ruleset was already reverted (by %s)", r)
	}
	if exists(dir, fileConfirm) {
		return nil
	}
	return mark(dir, fileConfirm, how+" "+time.Now().UTC().Format(time.RFC3339))
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// pending names an apply under root still in its window: neither
// confirmed nor reverted, its watchdog alive. Another apply now would
// save that one's ruleset as "before", and its revert would undo this.
func pending(root string) string {
	js, err := plan.ListJournals(root)
	if err != nil {
		return ""
	}
	for _, j := range js {
		if !exists(j.Dir, fileWatchdog) || exists(j.Dir, fileConfirm) || exists(j.Dir, fileReverted) {
			continue
		}
		pid, err := strconv.Atoi(readMarker(j.Dir, fileWDPid))
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), filepath.Join(j.Dir, fileWatchdog)) {
			return j.ID
		}
	}
	return ""
}
