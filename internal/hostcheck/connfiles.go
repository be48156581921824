package hostcheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// account is one line of /etc/passwd (under Root, so tests can fake it).
type account struct {
	name, home string
	uid        int
}

func readPasswd(o Options) []account {
	f, err := safefile.Open(o.path("/etc/passwd"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []account
	sc := bufio.NewScanner(io.LimitReader(f, hostFileMax))
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) < 7 || strings.HasPrefix(p[0], "#") {
			continue
		}
		uid, err := strconv.Atoi(p[2])
		if err != nil {
			continue
		}
		out = append(out, account{name: p[0], uid: uid, home: p[5]})
	}
	return out
}

// userName names a uid: the host's /etc/passwd first (Root applies), then
// the name service (LDAP accounts are not in /etc/passwd).
func userName(accts []account, uid int) string {
	for _, a := range accts {
		if a.uid == uid {
			return a.name
		}
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// procInfo is what one /proc entry says, kept for the cluster and file
// attribution after the scan. env holds only the variables that steer
// libpq to a file or a server, never PGPASSWORD.
type procInfo struct {
	snapshot.Proc
	ppid int
	args []string
	env  map[string]string
	cwd  string
	// walg is what the environment says of WAL-G (names only); nil
	// when it sets no WALG_/WALE_ variable.
	walg *snapshot.WALGConfig
}

// libpqVars are the variables kept from a process environment.
var libpqVars = []string{"PGPASSFILE", "PGSERVICEFILE", "PGSYSCONFDIR", "PGDATA", "PGPORT", "PGHOST", "HOME"}

func parseEnv(env []byte) map[string]string {
	out := map[string]string{}
	for _, kv := range bytes.Split(env, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		for _, n := range libpqVars {
			if k == n {
				out[k] = v
			}
		}
	}
	return out
}

// ppidOf reads the parent pid from /proc/<pid>/stat ("pid (comm) state ppid ...").
func ppidOf(dir string) int {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func isPostgresComm(c string) bool { return c == "postgres" || c == "postmaster" }

// notServer are postgres options that run the binary without starting a
// server (pg_ctl and initdb run these): such a process is not a cluster.
var notServer = []string{"-C", "--single", "--boot", "--check", "-V", "--version", "--describe-config", "--help", "-?"}

// argValue finds an option's value in a command line: "-D dir", "-Ddir",
// "--pgdata=dir", "-c name=value", "--name=value".
func argValue(args []string, short, long, guc string) string {
	val := ""
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case short != "" && a == short && i+1 < len(args):
			val = args[i+1]
			i++
		case short != "" && strings.HasPrefix(a, short) && len(a) > len(short) && !strings.HasPrefix(a, "--"):
			val = a[len(short):]
		case long != "" && strings.HasPrefix(a, long+"="):
			val = a[len(long)+1:]
		case guc != "" && a == "-c" && i+1 < len(args) && strings.HasPrefix(gucName(args[i+1]), guc+"="):
			val = gucName(args[i+1])[len(guc)+1:]
			i++
		case guc != "" && strings.HasPrefix(a, "--") && strings.HasPrefix(gucName(a[2:]), guc+"="):
			val = gucName(a[2:])[len(guc)+1:]
		}
	}
	return val
}

// gucName folds "config-file=x" to "config_file=x" (postgres accepts both).
func gucName(kv string) string {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return kv
	}
	return strings.ReplaceAll(strings.ToLower(k), "-", "_") + "=" + v
}

// findClusters picks the postmasters among the processes: a postgres
// process whose parent is not a postgres process (that excludes every
// backend and auxiliary process), which is not a one-shot run (postgres
// -C, --single, --boot), and whose data directory's postmaster.pid names
// it when that file is readable. One cluster per data directory, so the
// count does not change with the processes that come and go.
func findClusters(o Options, procs []procInfo) []snapshot.Cluster {
	byPID := map[int]*procInfo{}
	for i := range procs {
		byPID[procs[i].PID] = &procs[i]
	}
	seen := map[string]int{}
	var out []snapshot.Cluster
	for _, p := range procs {
		if !isPostgresComm(p.Command) {
			continue
		}
		if parent, ok := byPID[p.ppid]; ok && isPostgresComm(parent.Command) {
			continue
		}
		oneShot := false
		for _, a := range p.args[min(1, len(p.args)):] {
			for _, n := range notServer {
				if a == n || (n == "-C" && strings.HasPrefix(a, "-C")) || strings.HasPrefix(a, n+"=") && strings.HasPrefix(n, "--") {
					oneShot = true
				}
			}
		}
		if oneShot {
			continue
		}
		c := snapshot.Cluster{PID: p.PID, User: p.User, Running: true}
		dashD := argValue(p.args, "-D", "--pgdata", "")
		if dashD == "" {
			dashD = p.env["PGDATA"]
		}
		// The postmaster changes into its data directory, whatever -D
		// named (Debian's -D may be the configuration directory).
		c.DataDir = p.cwd
		if c.DataDir == "" {
			c.DataDir = filepath.Clean(dashD)
		}
		if pidFile, err := safefile.ReadFile(o.path(filepath.Join(c.DataDir, "postmaster.pid")), 64<<10); err == nil {
			lines := strings.Split(string(pidFile), "\n")
			if n, _ := strconv.Atoi(strings.TrimSpace(lines[0])); n != p.PID {
				continue // a process in someone's data directory, not its postmaster
			}
			if len(lines) > 3 {
				c.Port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
			}
			if len(lines) > 4 && strings.TrimSpace(lines[4]) != "" {
				c.SocketDirs = append(c.SocketDirs, strings.TrimSpace(lines[4]))
			}
		} else if p.cwd != "" && os.IsNotExist(err) {
			continue // a running postmaster always has its pid file
		}
		if c.Port == 0 {
			c.Port, _ = strconv.Atoi(argValue(p.args, "-p", "--port", "port"))
		}
		for _, v := range []string{argValue(p.args, "-k", "", "unix_socket_directories")} {
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" && !contains(c.SocketDirs, d) {
					c.SocketDirs = append(c.SocketDirs, d)
				}
			}
		}
		switch cf := argValue(p.args, "", "--config-file", "config_file"); {
		case cf != "":
			c.ConfigDir = filepath.Dir(cf)
		case dashD != "" && filepath.Clean(dashD) != c.DataDir:
			c.ConfigDir = filepath.Clean(dashD)
		default:
			c.ConfigDir = c.DataDir
		}
		key := c.DataDir
		if key == "." || key == "" {
			key = "pid " + strconv.Itoa(p.PID)
			c.DataDir = ""
		}
		if i, dup := seen[key]; dup {
			if p.PID < out[i].PID {
				out[i] = c
			}
			continue
		}
		seen[key] = len(out)
		out = append(out, c)
	}
	if o.DataDir != "" {
		dd := filepath.Clean(o.DataDir)
		if _, ok := seen[dd]; !ok {
			out = append(out, snapshot.Cluster{DataDir: dd, ConfigDir: dd})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DataDir != out[j].DataDir {
			return out[i].DataDir < out[j].DataDir
		}
		return out[i].PID < out[j].PID
	})
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// clusterOf says which cluster a process works for: a postmaster or one
// of its descendants (backends, the WAL receiver); else the cluster its
// PGDATA names; else the one listening on its PGPORT (when PGHOST is
// unset, a loopback name or that cluster's socket directory).
func clusterOf(p *procInfo, byPID map[int]*procInfo, clusters []snapshot.Cluster) string {
	for q, n := p, 0; q != nil && n < 64; q, n = byPID[q.ppid], n+1 {
		for _, c := range clusters {
			if c.Running && c.PID == q.PID {
				return c.DataDir
			}
		}
	}
	if d := p.env["PGDATA"]; d != "" {
		for _, c := range clusters {
			if c.DataDir == filepath.Clean(d) || c.ConfigDir == filepath.Clean(d) {
				return c.DataDir
			}
		}
	}
	port, _ := strconv.Atoi(p.env["PGPORT"])
	if port == 0 {
		return ""
	}
	var match []string
	for _, c := range clusters {
		if !c.Running || c.Port != port {
			continue
		}
		switch host := p.env["PGHOST"]; {
		case host == "", host == "localhost", host == "127.0.0.1", host == "::1", contains(c.SocketDirs, host):
			match = append(match, c.DataDir)
		}
	}
	if len(match) == 1 {
		return match[0]
	}
	return ""
}

// connFiles finds the password and service files libpq would read, from
// every place it looks, and says whether they hold passwords.
func connFiles(o Options, h *snapshot.Host, procs []procInfo, accts []account) {
	byPID := map[int]*procInfo{}
	for i := range procs {
		byPID[procs[i].PID] = &procs[i]
	}
	type key struct{ path, kind string }
	files := map[key]*connFile{}
	var order []key
	add := func(path, kind, source string, cluster string, proc *snapshot.ConnProc) {
		// A relative name whose base (the process's directory) is not
		// known would be looked up from our own directory: skip it.
		if !filepath.IsAbs(path) {
			return
		}
		path = filepath.Clean(path)
		k := key{path, kind}
		f := files[k]
		if f == nil {
			f = &connFile{ConnFile: snapshot.ConnFile{Path: path, Kind: kind}}
			files[k] = f
			order = append(order, k)
		}
		if !contains(f.Sources, source) {
			f.Sources = append(f.Sources, source)
		}
		if cluster != "" && !contains(f.Clusters, cluster) {
			f.Clusters = append(f.Clusters, cluster)
		}
		if proc != nil {
			f.Procs = append(f.Procs, *proc)
			if proc.Cluster != "" && !contains(f.Clusters, proc.Cluster) {
				f.Clusters = append(f.Clusters, proc.Cluster)
			}
		}
	}
	// Homes: every account's (libpq looks in the home of whoever runs
	// it), root's and /home/*; a file there belongs to the clusters that
	// account owns (its WAL receiver and tools read it).
	owned := func(name string) []string {
		var out []string
		for _, c := range h.Clusters {
			if c.User != "" && c.User == name {
				out = append(out, c.DataDir)
			}
		}
		return out
	}
	homeOwner := map[string]string{}
	for _, a := range accts {
		if _, ok := homeOwner[a.home]; !ok && a.home != "" {
			homeOwner[a.home] = a.name
		}
	}
	for _, home := range homes(o, h, accts) {
		src, cl := "a home directory", []string(nil)
		if n := homeOwner[home]; n != "" {
			src, cl = "home of user "+n, owned(n)
		}
		for _, c := range append(cl, "") {
			add(filepath.Join(home, ".pgpass"), "pgpass", src, c, nil)
			add(filepath.Join(home, ".pg_service.conf"), "service", src, c, nil)
		}
	}
	// Process environments.
	for i := range procs {
		p := &procs[i]
		if len(p.env) == 0 {
			continue
		}
		cl := clusterOf(p, byPID, h.Clusters)
		rel := func(v string) string {
			if filepath.IsAbs(v) || p.cwd == "" {
				return v
			}
			return filepath.Join(p.cwd, v)
		}
		ref := func(v string) *snapshot.ConnProc { return &snapshot.ConnProc{Proc: p.Proc, Var: v, Cluster: cl} }
		if v := p.env["PGPASSFILE"]; v != "" && !descriptorPath(v) {
			add(rel(v), "pgpass", "PGPASSFILE of a process", cl, ref("PGPASSFILE"))
		}
		if v := p.env["PGSERVICEFILE"]; v != "" && !descriptorPath(v) {
			add(rel(v), "service", "PGSERVICEFILE of a process", cl, ref("PGSERVICEFILE"))
		}
		if v := p.env["PGSYSCONFDIR"]; v != "" {
			add(filepath.Join(rel(v), "pg_service.conf"), "service", "PGSYSCONFDIR of a process", cl, ref("PGSYSCONFDIR"))
		}
		// libpq takes ~ from HOME when set; a HOME that is no account's
		// home is a place the passwd scan does not cover.
		if v := p.env["HOME"]; v != "" && filepath.IsAbs(v) && homeOwner[filepath.Clean(v)] == "" {
			add(filepath.Join(v, ".pgpass"), "pgpass", "HOME of a process", cl, ref("HOME"))
			add(filepath.Join(v, ".pg_service.conf"), "service", "HOME of a process", cl, ref("HOME"))
		}
	}
	// This run's own environment (it is not in the /proc scan).
	for v, kind := range map[string]string{"PGPASSFILE": "pgpass", "PGSERVICEFILE": "service"} {
		if p := os.Getenv(v); p != "" && filepath.IsAbs(p) && !descriptorPath(p) {
			add(p, kind, v+" of this pgaegis run", "", nil)
		}
	}
	// The system service file: libpq's compiled-in sysconfdir (Debian's
	// postgresql-common, PGDG RPMs, a source build's default), and what
	// pg_config says.
	for _, d := range append([]string{"/etc/postgresql-common", "/etc", "/etc/sysconfig/pgsql", "/usr/local/pgsql/etc"}, pgConfigSysconfdirs(o)...) {
		add(filepath.Join(d, "pg_service.conf"), "service", "system service file", "", nil)
	}
	// The cluster's own directories: a password file kept beside the
	// data (for primary_conninfo's passfile, scripts) belongs to it.
	for _, c := range h.Clusters {
		if c.DataDir == "" {
			continue
		}
		dirs := []struct{ dir, what string }{{c.DataDir, "data directory"}, {filepath.Dir(c.DataDir), "parent of the data directory"}, {c.ConfigDir, "configuration directory"}}
		for _, s := range c.SocketDirs {
			dirs = append(dirs, struct{ dir, what string }{s, "socket directory"})
		}
		looked := map[string]bool{}
		for _, d := range dirs {
			if d.dir == "" || d.dir == "/" || looked[filepath.Clean(d.dir)] {
				continue
			}
			looked[filepath.Clean(d.dir)] = true
			for _, n := range []string{".pgpass", "pgpass"} {
				add(filepath.Join(d.dir, n), "pgpass", d.what+" of a cluster", c.DataDir, nil)
			}
			for _, n := range []string{"pg_service.conf", ".pg_service.conf"} {
				add(filepath.Join(d.dir, n), "service", d.what+" of a cluster", c.DataDir, nil)
			}
		}
	}
	// passfile= in a service file is one more password file libpq reads.
	for i := 0; i < len(order); i++ {
		f := files[order[i]]
		if !inspect(o, f) {
			delete(files, order[i])
			continue
		}
		for _, pf := range f.passfiles {
			add(pf, "pgpass", "passfile= in service file "+f.Path, "", nil)
			for _, c := range f.Clusters {
				add(pf, "pgpass", "passfile= in service file "+f.Path, c, nil)
			}
		}
	}
	for _, k := range order {
		if f := files[k]; f != nil {
			sort.Strings(f.Clusters)
			sort.Slice(f.Procs, func(i, j int) bool { return f.Procs[i].PID < f.Procs[j].PID })
			h.ConnFiles = append(h.ConnFiles, f.ConnFile)
			if f.Kind == "pgpass" {
				h.PgpassFiles = append(h.PgpassFiles, f.File)
			}
		}
	}
	sort.Slice(h.ConnFiles, func(i, j int) bool {
		a, b := h.ConnFiles[i], h.ConnFiles[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Kind < b.Kind
	})
}

type connFile struct {
	snapshot.ConnFile
	passfiles []string // passfile= values of a service file
}

// inspect stats and reads one candidate; false when there is no such file
// (or it is a directory: not something libpq reads).
func inspect(o Options, f *connFile) bool {
	lf, ok := statFile(o, f.Path)
	if !ok {
		return false
	}
	f.File, f.Passwords = lf, -1
	f.File.Kind = f.Kind
	// libpq stat()s, following links: the target's mode is what it judges.
	st, err := os.Stat(o.path(f.Path))
	if err != nil {
		f.Ignored, f.Why = true, "cannot be opened ("+errText(err)+")"
		return true
	}
	if st.IsDir() {
		return false
	}
	f.Mode = uint32(st.Mode().Perm())
	if !st.Mode().IsRegular() {
		f.Ignored, f.Why = true, "not a regular file ("+safefile.Kind(st.Mode())+")"
		return true
	}
	if f.Kind == "pgpass" && f.Mode&0o077 != 0 {
		// fe-connect.c: "password file has group or world access;
		// permissions should be u=rw (0600) or less", and it is skipped.
		f.Ignored, f.Why = true, "group or world access: libpq skips a password file with any permission beyond u=rw (0600)"
	}
	r, err := safefile.Open(o.path(f.Path))
	if err != nil {
		return true
	}
	defer r.Close()
	n := 0
	sc := bufio.NewScanner(io.LimitReader(r, hostFileMax))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if f.Kind == "pgpass" {
			if fields := pgpassFields(t); len(fields) >= 5 && fields[4] != "" {
				n++
			}
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "password":
			if strings.TrimSpace(v) != "" {
				n++
				f.PasswordLines = append(f.PasswordLines, line)
			}
		case "passfile":
			if v = strings.TrimSpace(v); filepath.IsAbs(v) {
				f.passfiles = append(f.passfiles, v)
			}
		}
	}
	if sc.Err() == nil {
		f.Passwords = n
	}
	return true
}

// pgpassFields splits a .pgpass line the way libpq does: fields end at an
// unescaped colon, a backslash escapes the next character.
func pgpassFields(line string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && i+1 < len(line):
			i++
			b.WriteByte(line[i])
		case c == ':':
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(out, b.String())
}

// errText is the reason without the path (the finding names the path).
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// pgConfigSysconfdirs asks every pg_config on the host (PATH, Debian's
// per-major directories) for its sysconfdir, where that build's libpq
// looks for pg_service.conf.
func pgConfigSysconfdirs(o Options) []string {
	if !o.Commands {
		return nil
	}
	var bins []string
	if p, err := exec.LookPath("pg_config"); err == nil {
		bins = append(bins, p)
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_config"); m != nil {
		bins = append(bins, m...)
	}
	var out []string
	for _, b := range bins {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, b, "--sysconfdir")
		cmd.Env = conninfo.ChildEnv("LC_ALL=C")
		res, err := cmd.Output()
		cancel()
		if d := strings.TrimSpace(string(res)); err == nil && filepath.IsAbs(d) && !contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// descriptorPath says v names the process's own open descriptor
// (/proc/self/fd/3, /dev/fd/3, /dev/stdin): a pipe its parent handed it, as
// pgaegis does for pg_dump's password, not a file on disk. Opened from
// here it would be pgaegis's own descriptor, or would drain the other
// process's pipe, so it is not looked at.
func descriptorPath(v string) bool {
	v = filepath.Clean(v)
	for _, p := range []string{"/proc/self/", "/proc/thread-self/", "/dev/fd/"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return v == "/dev/stdin"
}
