// Package localpg starts throwaway PostgreSQL clusters from the installed
// server binaries: initdb into a private directory, a free loopback port, and
// an unprivileged OS user when the caller is root (initdb and postgres refuse
// to run as root). It backs both the test harness and `audit --sandbox`.
package localpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/netns"

	"github.com/pgaegis/pgaegis/internal/conninfo"
)

// Options shape a new cluster. The zero value gives a plain initdb cluster
// listening on 127.0.0.1 with the admin reachable over scram-sha-256.
type Options struct {
	BinDir      string   // directory holding initdb and postgres; found automatically when empty
	Version     string   // preferred major version ("15") when BinDir is empty
	InitdbArgs  []string // extra initdb arguments
	Conf        []string // lines appended to postgresql.conf before the first start
	HBA         string   // replaces pg_hba.conf before the first start when non-empty
	AdminUser   string   // bootstrap superuser; "postgres" when empty
	StartupWait time.Duration
	// Listen is listen_addresses; loopback only ("127.0.0.1" by default,
	// "127.0.0.1,::1" for IPv6 tests).
	Listen string
	// Init runs after initdb and the Conf/HBA edits, before the first start
	// (to place certificates, for example).
	Init func(*Server) error
	// NetNS, when set, is a network namespace (as `ip netns add` makes
	// them) the postmaster runs in. Listen may then also name addresses
	// of the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
	// 203.0.113.0/24, 2001:db8::/32), which exist only inside the test's
	// namespaces; the admin connects over the unix socket.
	NetNS string
	// Dir, when set, is a persistent cluster directory (for benchmarks
	// whose catalog takes long to build): initdb runs only when it holds
	// no cluster yet, a later Start reuses it (Conf, HBA and Init apply
	// only to a new cluster), and Stop leaves it in place.
	Dir string
}

// Server is a running throwaway cluster.
type Server struct {
	Dir       string // private top directory; removed by Stop
	DataDir   string
	SocketDir string
	Port      int
	AdminUser string
	Password  string // admin password; never printed
	BinDir    string
	Version   string // the binaries' version ("17.10")
	Major     int    // its major (17)
	LogFile   string
	cred      *syscall.Credential
	uid, gid  int
	cmd       *exec.Cmd
	done      chan error
	listen    string
	netns     string
	keep      bool // Stop leaves Dir (Options.Dir)
	stopOnce  sync.Once
}

// secretFile holds the admin password of a persistent cluster (Options.Dir).
const secretFile = "admin-secret"

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// freePortFor finds a port free on every address of listen (FreePort
// asks about 127.0.0.1 only; ::1 may hold the same number elsewhere).
func freePortFor(listen string) (int, error) {
	var last error
	for try := 0; try < 20; try++ {
		port, err := FreePort()
		if err != nil {
			return 0, err
		}
		free := true
		for _, a := range strings.Split(listen, ",") {
			if a == "localhost" || a == "127.0.0.1" || documentation(a) {
				continue // documentation addresses live in a namespace of the test's own
			}
			l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				free, last = false, err
				break
			}
			l.Close()
		}
		if free {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free on %s: %v", listen, last)
}

var docRanges = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// documentation says a is an address of the ranges kept for examples
// (RFC 5737, RFC 3849): never routed, so safe inside a test's namespace.
func documentation(a string) bool {
	ip, err := netip.ParseAddr(a)
	if err != nil {
		return false
	}
	for _, r := range docRanges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// bindFailure is the server log's "could not bind" line written since
// offset, or "".
func bindFailure(logFile string, offset int64) string {
	b, err := os.ReadFile(logFile)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	for _, l := range strings.Split(string(b[offset:]), "\n") {
		if strings.Contains(l, "could not bind") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start creates and starts a cluster. The caller must Stop it.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin := o.BinDir
	if bin == "" {
		var err error
		if bin, err = FindBinDir(o.Version); err != nil {
			return nil, err
		}
	}
	s := &Server{BinDir: bin, AdminUser: o.AdminUser, uid: -1, gid: -1, listen: o.Listen, netns: o.NetNS}
	var err error
	if s.Version, err = BinVersion(bin); err != nil {
		return nil, err
	}
	s.Major, _ = strconv.Atoi(strings.SplitN(s.Version, ".", 2)[0])
	if s.listen == "" {
		s.listen = "127.0.0.1"
	}
	for _, a := range strings.Split(s.listen, ",") {
		if a != "127.0.0.1" && a != "::1" && a != "localhost" && !(s.netns != "" && documentation(a)) {
			return nil, fmt.Errorf("localpg listens on loopback only (or, in a test's network namespace, on documentation addresses), not %q", a)
		}
	}
	if s.AdminUser == "" {
		s.AdminUser = "postgres"
	}
	if os.Geteuid() == 0 {
		if err := s.dropPrivileges(); err != nil {
			return nil, err
		}
	}
	if o.Dir != "" {
		if err := s.reuse(o.Dir); err != nil {
			return nil, err
		}
		if s.Password != "" {
			return s.startServer(ctx, o)
		}
	} else {
		dir, err := os.MkdirTemp("", "pgaegis-pg-")
		if err != nil {
			return nil, err
		}
		s.Dir = dir
		// The owner marker lets a later run reap this directory if we die
		// without Stop (SIGKILL): see ReapOrphans.
		if err := writeOwner(dir); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.DataDir = filepath.Join(dir, "data")
		s.SocketDir = dir
		s.LogFile = filepath.Join(dir, "server.log")
	}
	dir := s.Dir
	ok := false
	defer func() {
		if ok {
			return
		}
		if s.keep {
			os.RemoveAll(s.DataDir) // a persistent directory may hold more than ours
		} else {
			os.RemoveAll(dir)
		}
	}()
	if s.uid >= 0 {
		if err := os.Chown(dir, s.uid, s.gid); err != nil {
			return nil, err
		}
	}
	// Private: the log and the socket are nobody else's business (the
	// server's OS user owns the directory when we are root).
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if err := s.initdb(ctx, o); err != nil {
		return nil, err
	}
	if len(o.Conf) > 0 {
		if err := s.AppendConf(o.Conf...); err != nil {
			return nil, err
		}
	}
	if o.HBA != "" {
		if err := s.WriteDataFile("pg_hba.conf", o.HBA); err != nil {
			return nil, err
		}
	}
	if o.Init != nil {
		if err := o.Init(s); err != nil {
			return nil, err
		}
	}
	if s.keep {
		// Written last: a directory with the secret holds a whole cluster.
		if err := os.WriteFile(filepath.Join(dir, secretFile), []byte(s.Password+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	srv, err := s.startServer(ctx, o)
	if err != nil {
		return nil, err
	}
	ok = true
	return srv, nil
}

// initdb creates the data directory: a copy of the template cluster
// when ReuseInitdb is on (and the cluster is a throwaway one), else a
// fresh initdb with a password of its own.
func (s *Server) initdb(ctx context.Context, o Options) error {
	if !s.keep && reusingInitdb() {
		pw, err := s.fromTemplate(ctx, o.InitdbArgs)
		if err != nil {
			return err
		}
		s.Password = pw
		return nil
	}
	s.Password = randomSecret()
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return err
	}
	if s.uid >= 0 {
		os.Chown(pwfile, s.uid, s.gid)
	}
	defer os.Remove(pwfile)
	args := []string{"-D", s.DataDir, "-U", s.AdminUser, "--pwfile", pwfile, "-A", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync"}
	args = append(args, o.InitdbArgs...)
	if out, err := s.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// reuse points s at a persistent cluster directory, creating the
// directory when missing; s.Password is set when it already holds a
// cluster.
func (s *Server) reuse(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// The parents stay traversable: the server's OS user must reach its
	// data directory.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	s.Dir, s.keep = dir, true
	s.DataDir = filepath.Join(dir, "data")
	s.SocketDir = dir
	s.LogFile = filepath.Join(dir, "server.log")
	b, err := os.ReadFile(filepath.Join(dir, secretFile))
	switch {
	case err == nil:
		s.Password = strings.TrimSpace(string(b))
	case errors.Is(err, os.ErrNotExist):
		// No secret: nothing usable here (a build that never finished).
		if err := os.RemoveAll(s.DataDir); err != nil {
			return err
		}
	default:
		return err
	}
	return nil
}

// startServer starts the postmaster of an initialised cluster.
func (s *Server) startServer(ctx context.Context, o Options) (*Server, error) {
	wait := o.StartupWait
	if wait == 0 {
		wait = 60 * time.Second
	}
	var startErr error
	for attempt := 0; attempt < 3; attempt++ {
		if s.Port, startErr = freePortFor(s.listen); startErr != nil {
			continue
		}
		var logStart int64
		if st, err := os.Stat(s.LogFile); err == nil {
			logStart = st.Size()
		}
		if startErr = s.start(ctx, wait); startErr == nil {
			// The server starts when one of several addresses binds:
			// an address lost to another process's race for the port
			// would leave, say, ::1 unserved. That is a lost race too.
			if msg := bindFailure(s.LogFile, logStart); msg == "" {
				break
			} else {
				s.shutdown()
				startErr = fmt.Errorf("postgres started without all its addresses: %s", msg)
			}
		}
		// Only a lost race for the port is worth another try; a server
		// that refuses its configuration refuses it every time.
		if !strings.Contains(startErr.Error(), "could not bind") && !strings.Contains(startErr.Error(), "could not create any TCP/IP sockets") {
			break
		}
	}
	if startErr != nil {
		return nil, startErr
	}
	return s, nil
}

// dropPrivileges picks the OS user the cluster runs as when we are root.
func (s *Server) dropPrivileges() error {
	for _, name := range []string{os.Getenv("PGAEGIS_PGUSER_OS"), "postgres", "nobody"} {
		if name == "" {
			continue
		}
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if uid == 0 {
			continue
		}
		s.uid, s.gid = uid, gid
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		return nil
	}
	return errors.New("running as root and no unprivileged OS user (postgres, nobody) to run PostgreSQL as")
}

func (s *Server) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, prog), args...)
	// The server gets no client settings (PGPASSWORD above all) from us.
	cmd.Env = conninfo.ChildEnv("LC_ALL=C", "TZ=UTC")
	cmd.Dir = s.Dir
	// The postmaster dies with us: a crashed test must not leave servers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	return cmd
}

func (s *Server) run(ctx context.Context, prog string, args ...string) (string, error) {
	out, err := s.command(ctx, prog, args...).CombinedOutput()
	return string(out), err
}

func (s *Server) start(ctx context.Context, wait time.Duration) error {
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := logf.Chmod(0o600); err != nil { // the server's log holds statements and names
		logf.Close()
		return err
	}
	// Loopback and a private socket directory only: nothing we start is
	// reachable from another host.
	cmd := s.command(context.Background(), "postgres", "-D", s.DataDir,
		"-c", "port="+strconv.Itoa(s.Port),
		"-c", "listen_addresses="+s.listen,
		"-c", "unix_socket_directories="+s.SocketDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if s.netns != "" {
		done, err := netns.Start(cmd, s.netns)
		logf.Close()
		if err != nil {
			return err
		}
		s.cmd = cmd
		s.done = make(chan error, 1)
		go func() { s.done <- <-done }()
	} else {
		if err := cmd.Start(); err != nil {
			logf.Close()
			return err
		}
		logf.Close()
		s.cmd = cmd
		s.done = make(chan error, 1)
		go func() { s.done <- cmd.Wait() }()
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.cmd = nil
			return fmt.Errorf("postgres exited during startup: %v\n%s", err, tail(s.LogFile, 20))
		case <-ctx.Done():
			s.kill()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		c, err := s.Connect(ctx, "postgres")
		if err == nil {
			c.Close(ctx)
			return nil
		}
	}
	s.kill()
	return fmt.Errorf("postgres did not accept connections within %s\n%s", wait, tail(s.LogFile, 20))
}

func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
		}
		s.cmd = nil
	}
}

// Restart stops and starts the server on the same port (for settings that
// need a restart, such as shared_preload_libraries).
func (s *Server) Restart(ctx context.Context) error {
	s.shutdown()
	return s.start(ctx, 60*time.Second)
}

func (s *Server) shutdown() {
	if s.cmd != nil {
		select {
		case <-s.done: // already gone: restarted from outside (pg_ctl restart)
		default:
			s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				s.cmd.Process.Kill()
				<-s.done
			}
		}
		s.cmd = nil
	}
	// A postmaster started from outside (pg_ctl restart, as pgaegis fix
	// does) is no child of ours: postmaster.pid names it, and it is
	// stopped only if its command line is this data directory's.
	if pm := postmasterPID(s.DataDir); pm > 0 && isPostmasterOf(pm, s.DataDir) {
		stopProcess(pm)
	}
}

// Stop shuts the server down and removes its directory. It may be called
// more than once and from a signal handler while another call runs: later
// calls wait for the first to finish.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.shutdown()
		if !s.keep {
			os.RemoveAll(s.Dir)
		}
	})
}

// Reload signals the postmaster to re-read its configuration files.
func (s *Server) Reload() error {
	// postmaster.pid rather than our child: the server may have been
	// restarted from outside.
	pm := postmasterPID(s.DataDir)
	if pm <= 0 || !isPostmasterOf(pm, s.DataDir) {
		return errors.New("server not running")
	}
	return syscall.Kill(pm, syscall.SIGHUP)
}

// PostmasterPID is the pid in postmaster.pid when it is this cluster's
// running postmaster, or 0.
func (s *Server) PostmasterPID() int {
	pm := postmasterPID(s.DataDir)
	if pm <= 0 || !isPostmasterOf(pm, s.DataDir) {
		return 0
	}
	return pm
}

// ConnConfig returns a structured connection configuration for the admin
// over TCP loopback (never built by pasting names into a string).
func (s *Server) ConnConfig(database string) *pgx.ConnConfig {
	// sslmode=prefer: TLS when the server offers it (hostssl-only
	// clusters), plain otherwise. Names and the password are set as
	// fields, never pasted into the string. connect_timeout is generous:
	// a busy 2-core CI machine can take seconds to accept a connection.
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d sslmode=prefer connect_timeout=30", s.Port))
	if err != nil {
		panic(err) // the string above is ours and always valid
	}
	if s.netns != "" {
		// 127.0.0.1 here is not the namespace's loopback; the socket
		// directory is the same file system on both sides.
		cfg.Host = s.SocketDir
		cfg.TLSConfig = nil
		cfg.Fallbacks = nil
	}
	cfg.User = s.AdminUser
	cfg.Password = s.Password
	cfg.Database = database
	cfg.RuntimeParams = map[string]string{"application_name": "pgaegis-localpg"}
	return cfg
}

// Connect opens an admin connection to database.
func (s *Server) Connect(ctx context.Context, database string) (*pgx.Conn, error) {
	return pgx.ConnectConfig(ctx, s.ConnConfig(database))
}

// Exec runs SQL statements as the admin in database "postgres".
func (s *Server) Exec(ctx context.Context, sql ...string) error {
	return s.ExecIn(ctx, "postgres", sql...)
}

// ExecIn runs SQL statements as the admin in the given database.
func (s *Server) ExecIn(ctx context.Context, database string, sql ...string) error {
	c, err := s.Connect(ctx, database)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	for _, q := range sql {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	return nil
}

// AppendConf appends lines to postgresql.conf.
func (s *Server) AppendConf(lines ...string) error {
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString("\n" + strings.Join(lines, "\n") + "\n")
	return err
}

// WriteDataFile writes a file inside the data directory, owned by the
// server's OS user so the server can read it.
func (s *Server) WriteDataFile(name, content string) error {
	return s.WriteFile(filepath.Join(s.DataDir, name), content, 0o600)
}

// WriteFile writes a file readable by the server's OS user.
func (s *Server) WriteFile(path, content string, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	if s.uid >= 0 {
		if err := os.Chown(tmp, s.uid, s.gid); err != nil {
			return err
		}
	}
	return os.Rename(tmp, path)
}

// Chown gives a path to the server's OS user (no-op when not root).
func (s *Server) Chown(path string) error {
	if s.uid < 0 {
		return nil
	}
	return os.Chown(path, s.uid, s.gid)
}

// OSUser is the uid the server runs as (-1 when it runs as the caller).
func (s *Server) OSUser() (uid, gid int) { return s.uid, s.gid }

func randomSecret() string {
	b := make([]byte, 18)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
