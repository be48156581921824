package localpg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A cluster directory is os.TempDir()/pgaegis-pg-*; its owner marker names
// the process that created it (pid and the process's start time, so that a
// reused pid is not mistaken for the owner). A process killed with SIGKILL
// cannot clean up after itself; the next sandbox run reaps what it left.
const (
	dirPattern = "pgaegis-pg-*"
	ownerFile  = "owner"
)

func writeOwner(dir string) error {
	st, err := procStart(os.Getpid())
	if err != nil {
		st = "?" // no /proc: the directory will never look orphaned
	}
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(fmt.Sprintf("%d %s\n", os.Getpid(), st)), 0o600)
}

// procStart is field 22 of /proc/PID/stat: the start time in clock ticks
// since boot, which tells two processes with the same pid apart.
func procStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", errors.New("unreadable /proc stat")
	}
	if f[0] == "Z" {
		return "", errors.New("zombie") // exited, not yet waited for
	}
	return f[19], nil
}

// alive reports whether the process pid exists and, when start is known,
// is the same process (same start time).
func alive(pid int, start string) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStart(pid)
	if err != nil {
		return false
	}
	return start == "" || st == start
}

// Reaped is one leftover directory ReapOrphans dealt with.
type Reaped struct {
	Dir     string
	Stopped int   // pid of an orphaned postmaster that was stopped, or 0
	Err     error // set when the directory had to be left
}

// ReapOrphans removes the cluster directories of earlier processes that
// died without Stop. It takes only directories whose owner marker is a
// regular file of ours (same uid) naming a process that is gone; a
// postmaster still running there is stopped first, and only if it is the
// server started for that directory (its command line names the data
// directory). Anything doubtful is left alone.
func ReapOrphans() []Reaped {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPattern))
	var out []Reaped
	for _, dir := range matches {
		pid, start, ok := readOwner(dir)
		if !ok || alive(pid, start) {
			continue
		}
		r := Reaped{Dir: dir}
		data := filepath.Join(dir, "data")
		if pm := postmasterPID(data); pm > 0 && isPostmasterOf(pm, data) {
			r.Stopped = pm
			if !stopProcess(pm) {
				r.Err = fmt.Errorf("postmaster %d of %s does not stop", pm, data)
				out = append(out, r)
				continue
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			r.Err = err
		}
		out = append(out, r)
	}
	return out
}

func readOwner(dir string) (pid int, start string, ok bool) {
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
		return 0, "", false
	}
	p := filepath.Join(dir, ownerFile)
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() || st.Size() > 64 {
		return 0, "", false
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Geteuid() {
		return 0, "", false // another user's directory, or a planted one
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, "", false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[1] == "?" {
		return 0, "", false
	}
	pid, err = strconv.Atoi(f[0])
	if err != nil {
		return 0, "", false
	}
	return pid, f[1], true
}

// postmasterPID is the first line of postmaster.pid, or 0.
func postmasterPID(data string) int {
	f, err := os.Open(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	defer f.Close()
	line, _ := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0
	}
	return pid
}

// isPostmasterOf: pid is a process whose arguments are "-D data", as
// start runs it. A pid reused by an unrelated process is not touched.
func isPostmasterOf(pid int, data string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-D" && args[i+1] == data {
			return true
		}
	}
	return false
}

// stopProcess asks for a fast shutdown, then an immediate one, then kills;
// it reports whether the process is gone.
func stopProcess(pid int) bool {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL} {
		if err := syscall.Kill(pid, sig); err != nil {
			return errors.Is(err, syscall.ESRCH)
		}
		for i := 0; i < 100; i++ { // up to 10 s for each signal
			if !alive(pid, "") {
				return true
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return !alive(pid, "")
}
