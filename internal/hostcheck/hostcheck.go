// Package hostcheck looks at the database host itself: process
// environments and command lines, the cluster owner's account and files,
// sudo rules, installed packages, disk encryption. It records where a
// secret sits, never the secret. Everything it cannot read is left
// unknown (empty), not assumed safe.
package hostcheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Options say where to look; Root prefixes every absolute path (tests).
type Options struct {
	DataDir string
	Major   int
	LogDir  string
	// LogFilename and LogDestination are the live log_filename and
	// log_destination: the jail's logpath must match the file the server
	// writes now, not just sit in its directory.
	LogFilename, LogDestination string
	Root                        string
	// Commands run package queries; nil disables them (tests).
	Commands bool
	// NetNS reads the firewall of this network namespace instead of the
	// host's (tests).
	NetNS string
}

func (o Options) path(p string) string { return filepath.Join(o.Root, p) }

// Collect gathers the host facts.
func Collect(o Options) *snapshot.Host {
	h := &snapshot.Host{}
	// The package query (apt-cache loads the whole package cache: about
	// a second of CPU) runs beside the file and process checks.
	pkg := &snapshot.Host{}
	pkgDone := make(chan struct{})
	go func() {
		defer close(pkgDone)
		packages(o, pkg)
	}()
	accts := readPasswd(o)
	procs := scanProcs(o, h, accts)
	owner(o, h)
	h.Clusters = findClusters(o, procs)
	for _, c := range h.Clusters {
		if c.Running {
			h.Postmasters++
		}
	}
	secretsInFiles(o, h, accts)
	connFiles(o, h, procs, accts)
	sudoers(o, h)
	services(o, h)
	<-pkgDone
	h.Package, h.PackageVersion, h.PackageCandidate = pkg.Package, pkg.PackageVersion, pkg.PackageCandidate
	if b, err := os.ReadFile(o.path("/proc/sys/crypto/fips_enabled")); err == nil {
		h.FIPS = strings.TrimSpace(string(b))
	}
	h.Encrypted = encrypted(o)
	h.LogDiskUsedPct = LogDiskUsedPct(o.LogDir)
	Fail2ban(o, h)
	h.Firewall = firewall(o)
	h.PgBackRest = pgbackrest(o)
	h.WALG = walgConfigs(o, h, accts, procs)
	h.Barman = barman(o, h, accts)
	return h
}

// LogDiskUsedPct is how full the file system of the log directory is (0
// when unknown). It is apart from Collect because the log directory is
// known only once the server's files were read, while the rest of the
// host checks can run beside the live collection.
func LogDiskUsedPct(logDir string) int {
	if logDir == "" {
		return 0
	}
	var st syscall.Statfs_t
	if syscall.Statfs(logDir, &st) == nil && st.Blocks > 0 {
		return int(100 - st.Bavail*100/st.Blocks)
	}
	return 0
}

// scanProcs reads /proc/*/environ for PGPASSWORD and /proc/*/cmdline for
// passwords on command lines, and keeps what the cluster and file checks
// need of each process. environ is NUL-separated and only readable for
// our own processes unless we are root.
func scanProcs(o Options, h *snapshot.Host, accts []account) []procInfo {
	ents, err := os.ReadDir(o.path("/proc"))
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var procs []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := o.path(filepath.Join("/proc", e.Name()))
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		p := procInfo{Proc: snapshot.Proc{PID: pid, Command: strings.TrimSpace(string(comm))}, ppid: ppidOf(dir)}
		if st, err := os.Stat(dir); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				p.User = userName(accts, int(sys.Uid))
			}
		}
		// The link's target is a path on the host (Root is not in it).
		p.cwd, _ = os.Readlink(filepath.Join(dir, "cwd"))
		if env, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil {
			h.ProcsScanned++
			for _, kv := range bytes.Split(env, []byte{0}) {
				if bytes.HasPrefix(kv, []byte("PGPASSWORD=")) && len(kv) > len("PGPASSWORD=") {
					h.ProcsWithPGPASSWORD = append(h.ProcsWithPGPASSWORD, p.Proc)
					break
				}
			}
			p.env = parseEnv(env)
			p.walg = walgEnv(env)
		}
		if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
			p.args = strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
			if passwordArg.MatchString(strings.Join(p.args, " ")) {
				h.ProcsWithPasswordArgs = append(h.ProcsWithPasswordArgs, p.Proc)
			}
		}
		procs = append(procs, p)
	}
	return procs
}

// passwordArg matches a password in a command line: password=..., a URI
// with user:password@, or PGPASSWORD=... (env prefix in a shell wrapper).
var passwordArg = regexp.MustCompile(`(?i)(\bpassword\s*=\s*[^\s'"]+|postgres(ql)?://[^:/@\s]+:[^@\s]+@|\bPGPASSWORD=\S+)`)

// owner finds the OS account owning the data directory and its login
// properties.
func owner(o Options, h *snapshot.Host) {
	if o.DataDir == "" {
		return
	}
	st, err := os.Stat(o.DataDir)
	if err != nil {
		return
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	u, err := user.LookupId(strconv.Itoa(int(sys.Uid)))
	if err != nil {
		return
	}
	h.Owner, h.OwnerHome = u.Username, u.HomeDir
	if f, err := safefile.Open(o.path("/etc/passwd")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			parts := strings.Split(sc.Text(), ":")
			if len(parts) >= 7 && parts[0] == u.Username {
				h.OwnerShell = parts[6]
			}
		}
		f.Close()
	}
	if f, err := safefile.Open(o.path("/etc/shadow")); err == nil { // root only
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			parts := strings.Split(sc.Text(), ":")
			if len(parts) >= 2 && parts[0] == u.Username {
				switch pw := parts[1]; {
				case pw == "":
					h.OwnerPwState = "empty"
				case strings.HasPrefix(pw, "!") || strings.HasPrefix(pw, "*"):
					h.OwnerPwState = "locked"
				default:
					h.OwnerPwState = "set"
				}
			}
		}
		f.Close()
	}
	for _, name := range []string{".bash_profile", ".bashrc", ".profile"} {
		data, err := readHostFile(filepath.Join(o.Root, h.OwnerHome, name))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(strings.TrimSpace(line))
			if len(f) == 2 && f[0] == "umask" {
				h.OwnerUmask = f[1]
			}
		}
	}
}

var (
	pgpasswordExport = regexp.MustCompile(`^\s*(export\s+|setenv\s+)?PGPASSWORD[=\s]`)
	historyPassword  = regexp.MustCompile(`(?i)(PGPASSWORD=\S|\bpassword\s*=\s*\S|postgres(ql)?://[^:/@\s]+:[^@\s]+@|\bPASSWORD\s+'[^']+')`)
)

// hostFileMax bounds what is read of one profile, sudoers or tool config:
// they are small, and a planted link to /dev/zero must not exhaust memory.
const hostFileMax = 16 << 20

// readHostFile reads a file that users other than root may control (home
// directories, drop-in directories): a regular file only, never a FIFO
// that would hang a root audit, and capped.
func readHostFile(path string) ([]byte, error) { return safefile.ReadFile(path, hostFileMax) }

// homes lists the home directories to look in: root's, the owner's,
// every account's in /etc/passwd (daemon accounts too: libpq looks in
// the home of whoever runs it), and /home/*.
func homes(o Options, h *snapshot.Host, accts []account) []string {
	seen := map[string]bool{}
	var out []string
	add := func(d string) {
		if d != "" && filepath.IsAbs(d) && !seen[filepath.Clean(d)] {
			seen[filepath.Clean(d)] = true
			out = append(out, filepath.Clean(d))
		}
	}
	add("/root")
	add(h.OwnerHome)
	for _, a := range accts {
		add(a.home)
	}
	if ents, err := os.ReadDir(o.path("/home")); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				add(filepath.Join("/home", e.Name()))
			}
		}
	}
	return out
}

// secretsInFiles finds PGPASSWORD in shell profiles, passwords in shell
// history, and psql history files (service and password files: connFiles).
func secretsInFiles(o Options, h *snapshot.Host, accts []account) {
	grep := func(path string, re *regexp.Regexp, what string) {
		f, err := safefile.Open(o.path(path))
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for n := 1; sc.Scan(); n++ {
			if re.MatchString(sc.Text()) {
				h.SecretLines = append(h.SecretLines, snapshot.SecretLine{File: path, Line: n, What: what})
			}
		}
	}
	profiles := []string{"/etc/environment", "/etc/profile", "/etc/bash.bashrc", "/etc/zsh/zshenv", "/etc/csh.cshrc"}
	if ents, err := os.ReadDir(o.path("/etc/profile.d")); err == nil {
		for _, e := range ents {
			profiles = append(profiles, filepath.Join("/etc/profile.d", e.Name()))
		}
	}
	for _, home := range homes(o, h, accts) {
		for _, n := range []string{".bashrc", ".bash_profile", ".profile", ".zshrc", ".zshenv", ".zprofile", ".cshrc", ".tcshrc", ".bash_login"} {
			profiles = append(profiles, filepath.Join(home, n))
		}
		for _, hist := range []string{".bash_history", ".zsh_history", ".psql_history"} {
			grep(filepath.Join(home, hist), historyPassword, "password in shell or psql history")
		}
		if f, ok := statFile(o, filepath.Join(home, ".psql_history")); ok {
			h.PsqlHistory = append(h.PsqlHistory, f)
		}
	}
	for _, p := range profiles {
		grep(p, pgpasswordExport, "PGPASSWORD set in a shell profile")
	}
}

func statFile(o Options, path string) (snapshot.File, bool) {
	lst, err := os.Lstat(o.path(path))
	if err != nil {
		return snapshot.File{}, false
	}
	f := snapshot.File{Path: path, Exists: true, UID: -1, GID: -1, Symlink: lst.Mode()&fs.ModeSymlink != 0}
	if f.Symlink {
		target, _ := os.Readlink(o.path(path))
		f.Error = "symlink to " + target
		return f, true
	}
	f.Mode = uint32(lst.Mode().Perm())
	if sys, ok := lst.Sys().(*syscall.Stat_t); ok {
		f.UID, f.GID = int(sys.Uid), int(sys.Gid)
		if u, err := user.LookupId(strconv.Itoa(f.UID)); err == nil {
			f.Owner = u.Username
		}
	}
	return f, true
}

// sudoers finds rules that let users become the cluster owner (or anyone).
func sudoers(o Options, h *snapshot.Host) {
	if h.Owner == "" {
		return
	}
	files := []string{"/etc/sudoers"}
	if ents, err := os.ReadDir(o.path("/etc/sudoers.d")); err == nil {
		for _, e := range ents {
			files = append(files, filepath.Join("/etc/sudoers.d", e.Name()))
		}
	}
	for _, p := range files {
		data, err := readHostFile(o.path(p))
		if err != nil {
			continue
		}
		for n, line := range strings.Split(string(data), "\n") {
			l := strings.TrimSpace(line)
			if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "Defaults") {
				continue
			}
			runas := strings.Contains(l, "("+h.Owner+")") || strings.Contains(l, "(ALL") || strings.Contains(l, "("+h.Owner+":")
			if !runas {
				continue
			}
			what := "may run commands as " + h.Owner
			if strings.Contains(l, "NOPASSWD") {
				what += " without a password (NOPASSWD)"
			}
			h.SudoRules = append(h.SudoRules, snapshot.SecretLine{File: p, Line: n + 1, What: what})
		}
	}
}

// services: enabled systemd units for PostgreSQL (wants links), without
// needing systemd itself to run.
func services(o Options, h *snapshot.Host) {
	dirs := []string{"/etc/systemd/system/multi-user.target.wants", "/etc/systemd/system/postgresql.service.wants"}
	found, looked := false, false
	for _, d := range dirs {
		ents, err := os.ReadDir(o.path(d))
		if err != nil {
			continue
		}
		looked = true
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "postgresql") {
				found = true
			}
		}
	}
	switch {
	case found:
		h.ServiceEnabled = "yes"
	case looked:
		h.ServiceEnabled = "no"
	}
	if ents, err := os.ReadDir(o.path("/usr/lib/postgresql")); err == nil {
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				if _, err := os.Stat(o.path(filepath.Join("/usr/lib/postgresql", e.Name(), "bin", "postgres"))); err == nil {
					h.InstalledMajors = append(h.InstalledMajors, n)
				}
			}
		}
		sort.Ints(h.InstalledMajors)
	}
}

// packages asks the package manager for the installed and candidate
// versions of the server package (Debian: dpkg and apt; RHEL: rpm and dnf).
func packages(o Options, h *snapshot.Host) {
	if !o.Commands || o.Major == 0 {
		return
	}
	run := func(name string, args ...string) string {
		if _, err := exec.LookPath(name); err != nil {
			return ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = conninfo.ChildEnv("LC_ALL=C")
		out, err := cmd.Output()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return ""
		}
		return string(out)
	}
	deb := "postgresql-" + strconv.Itoa(o.Major)
	if v := strings.TrimSpace(run("dpkg-query", "-W", "-f=${Version}", deb)); v != "" {
		h.Package, h.PackageVersion = deb, v
		h.PackageCandidate = cachedCandidate(o, deb, func() string {
			c := ""
			for _, line := range strings.Split(run("apt-cache", "policy", deb), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "Candidate:" {
					c = f[1]
				}
			}
			return c
		})
		return
	}
	rpm := "postgresql" + strconv.Itoa(o.Major) + "-server"
	if v := strings.TrimSpace(run("rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", rpm)); v != "" && !strings.Contains(v, "not installed") {
		h.Package, h.PackageVersion = rpm, v
	}
}

// encrypted reports whether the data directory lives on dm-crypt.
func encrypted(o Options) string {
	if o.DataDir == "" {
		return ""
	}
	st, err := os.Stat(o.DataDir)
	if err != nil {
		return ""
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	major, minor := (sys.Dev>>8)&0xfff, (sys.Dev&0xff)|((sys.Dev>>12)&0xfff00)
	uuid, err := os.ReadFile(o.path("/sys/dev/block/" + strconv.FormatUint(uint64(major), 10) + ":" + strconv.FormatUint(uint64(minor), 10) + "/dm/uuid"))
	if err != nil {
		if _, err := os.Stat(o.path("/sys/dev/block/" + strconv.FormatUint(uint64(major), 10) + ":" + strconv.FormatUint(uint64(minor), 10))); err == nil {
			return "no"
		}
		return ""
	}
	if strings.HasPrefix(string(uuid), "CRYPT-") {
		return "yes"
	}
	return "no"
}

// pgbackrest reads /etc/pgbackrest/pgbackrest.conf (or /etc/pgbackrest.conf):
// repository types and whether they are encrypted.
func pgbackrest(o Options) *snapshot.PgBackRest {
	for _, p := range []string{"/etc/pgbackrest/pgbackrest.conf", "/etc/pgbackrest.conf"} {
		f, exists := statFile(o, p)
		if !exists {
			continue
		}
		b := &snapshot.PgBackRest{Config: p, File: &f}
		data, err := readHostFile(o.path(p))
		if err != nil {
			// A file that is there but cannot be read is not an absent
			// tool: its repositories are unknown, not unencrypted.
			b.Unreadable = readError(p, err)
			return b
		}
		repos := map[string]*snapshot.PgBackRestRepo{}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok || strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			m := regexp.MustCompile(`^(repo\d+)-(path|type|cipher-type)$`).FindStringSubmatch(k)
			if m == nil {
				continue
			}
			r := repos[m[1]]
			if r == nil {
				r = &snapshot.PgBackRestRepo{Name: m[1]}
				repos[m[1]] = r
			}
			switch m[2] {
			case "path":
				r.Path = v
			case "type":
				r.Type = v
			case "cipher-type":
				r.CipherType = v
			}
		}
		for _, r := range repos {
			b.Repos = append(b.Repos, *r)
		}
		sort.Slice(b.Repos, func(i, j int) bool { return b.Repos[i].Name < b.Repos[j].Name })
		return b
	}
	return nil
}
