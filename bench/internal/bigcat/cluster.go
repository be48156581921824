package bigcat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
)

// Shapes are the clusters of issue 13 (what a security-minded site runs),
// shared by the benchmarks so that their figures compare.
var Shapes = map[string]Shape{
	"14k":  audited(7, 14000, 2000),
	"140k": audited(7, 140000, 20000),
}

func audited(dbs, tables, roles int) Shape {
	return Shape{DBs: dbs, Tables: tables, Roles: roles, Grants: 4, ExtraGrantEvery: 2, LoginPercent: 80,
		Groups: 50, Passwords: true, SchemaOwners: true, ColumnGrantEvery: 10, DefaultACLs: 20, Functions: 200, SecDefFunctions: 4}
}

// ShapeNames reads a -shape flag: 14k, 140k or both.
func ShapeNames(flag string) ([]string, error) {
	switch flag {
	case "14k", "140k":
		return []string{flag}, nil
	case "both":
		return []string{"14k", "140k"}, nil
	}
	return nil, fmt.Errorf("-shape %q: want 14k, 140k or both", flag)
}

// DefaultDir is where a benchmark keeps its clusters: the user's cache
// directory; as root /var/tmp, since the server runs as an unprivileged
// user that cannot enter /root.
func DefaultDir(bench string) string {
	if os.Geteuid() == 0 {
		return "/var/tmp/pgaegis/" + bench
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "pgaegis", bench)
	}
	return filepath.Join(os.TempDir(), "pgaegis-"+bench)
}

// Prepare reads a benchmark's -shape and -pgaegis flags: the shapes to
// run and the binary to time, built in dir unless prebuilt is given;
// cleanup removes what was built.
func Prepare(shape, prebuilt, dir string) (names []string, bin string, cleanup func(), err error) {
	if names, err = ShapeNames(shape); err != nil {
		return nil, "", nil, err
	}
	bin, cleanup, err = Pgaegis(prebuilt, dir)
	return names, bin, cleanup, err
}

// Pgaegis is the binary to time: prebuilt when given, else one built
// from the source (see BuildPgaegis); cleanup removes what was built.
func Pgaegis(prebuilt, dir string) (bin string, cleanup func(), err error) {
	if prebuilt != "" {
		return prebuilt, func() {}, nil
	}
	if bin, err = BuildPgaegis(dir); err != nil {
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(filepath.Dir(bin)) }, nil
}

// BuildPgaegis builds the command as a user installs it, where the
// server's OS user can run it; a directory of its own per run, so that
// runs side by side each time their own build. Remove filepath.Dir of
// the result when done.
func BuildPgaegis(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	os.Chmod(dir, 0o755)
	binDir, err := os.MkdirTemp(dir, "bin-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(binDir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "pgaegis")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/pgaegis/pgaegis/cmd/pgaegis").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// doneFile marks a finished build; it records the shape it was built with.
const doneFile = "bench-shape.json"

// Cluster is a started server holding a shape.
type Cluster struct {
	*localpg.Server
	Shape Shape
	// OSUser is the server's OS user: clients run as it over the
	// socket (peer authentication as postgres).
	OSUser string
	// DBs are the shape's databases.
	DBs []string
}

// Open starts the cluster of shape name kept in dir/name, building it
// first when it is missing, half-built, built to another shape, or
// rebuild asks; log is told what happens. Stop it when done.
func Open(ctx context.Context, dir, name string, rebuild bool, log func(string)) (*Cluster, error) {
	sh, ok := Shapes[name]
	if !ok {
		return nil, fmt.Errorf("no shape %q", name)
	}
	cdir := filepath.Join(dir, name)
	want, _ := json.Marshal(sh)
	have, err := os.ReadFile(filepath.Join(cdir, doneFile))
	fresh := rebuild || err != nil || string(have) != string(want)
	if fresh {
		if err := os.RemoveAll(cdir); err != nil {
			return nil, err
		}
	}
	osUser, err := ServerOSUser()
	if err != nil {
		return nil, err
	}
	srv, err := localpg.Start(ctx, localpg.Options{Dir: cdir, Conf: Conf,
		// Peer authentication on the socket, as on a packaged server; the
		// build and the readiness check use the password over TCP.
		HBA: "local all all peer map=bench\nhost all all 127.0.0.1/32 scram-sha-256\n",
		Init: func(s *localpg.Server) error {
			return s.WriteDataFile("pg_ident.conf", fmt.Sprintf("bench %s postgres\n", osUser))
		}})
	if err != nil {
		return nil, err
	}
	c := &Cluster{Server: srv, Shape: sh, OSUser: osUser}
	for d := 0; d < sh.DBs; d++ {
		c.DBs = append(c.DBs, Database(d))
	}
	log(fmt.Sprintf("shape %s: %d databases, %d tables, %d roles, ~%d ACL entries on tables; cluster in %s (port %d)",
		name, sh.DBs, sh.Tables, sh.Roles, sh.ACLEntries(), cdir, srv.Port))
	if !fresh {
		log("  reusing the cluster built earlier")
		return c, nil
	}
	start := time.Now()
	err = Generate(ctx, srv, sh, func(s string) { log(fmt.Sprintf("  building: %s (%s)", s, time.Since(start).Round(time.Second))) })
	if err == nil {
		err = os.WriteFile(filepath.Join(cdir, doneFile), want, 0o644)
	}
	if err != nil {
		srv.Stop()
		return nil, err
	}
	log(fmt.Sprintf("  built in %s (kept for later runs; -rebuild to build again)", time.Since(start).Round(time.Second)))
	return c, nil
}

// Spoil makes the next Open build the cluster again: a benchmark that
// changed it and could not change it back says so.
func (c *Cluster) Spoil() error { return os.Remove(filepath.Join(c.Dir, doneFile)) }

// StopOnSignal stops the cluster and runs cleanup when the run is
// interrupted; call the result when done.
func (c *Cluster) StopOnSignal(cleanup func()) func() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sig; ok {
			c.Stop()
			cleanup()
			os.Exit(1)
		}
	}()
	return func() { signal.Stop(sig) }
}

// AsServer makes cmd run as the server's OS user in its directory.
func (c *Cluster) AsServer(cmd *exec.Cmd) {
	if uid, gid := c.Server.OSUser(); uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	cmd.Dir = c.Dir
}

// Conn is how psql reaches the cluster: the socket, as postgres.
func (c *Cluster) Conn() Conn {
	return Conn{PSQL: PSQL(c.Server), Host: c.SocketDir, Port: c.Port, User: "postgres", SysProcAttr: c.AsServer}
}

// ConnArgs are pgaegis's connection flags for the same.
func (c *Cluster) ConnArgs() []string {
	return []string{"-h", c.SocketDir, "-p", strconv.Itoa(c.Port), "-U", "postgres"}
}

// ServerOSUser is the OS user the server runs as, and the clients with it.
func ServerOSUser() (string, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return "", err
		}
		return u.Username, nil
	}
	// localpg's choice when root.
	for _, n := range []string{os.Getenv("PGAEGIS_PGUSER_OS"), "postgres", "nobody"} {
		if u, err := user.Lookup(n); n != "" && err == nil && u.Uid != "0" {
			return n, nil
		}
	}
	return "", errors.New("running as root and no unprivileged OS user (postgres, nobody) to run PostgreSQL as")
}

// ServerCPU is the CPU time of the server's finished backends: the
// postmaster's reaped children (cutime + cstime in /proc). Read before
// and after a client's sessions, it is what they cost the server,
// whatever else the machine runs. 0 without /proc.
func (c *Cluster) ServerCPU() time.Duration {
	pm := c.PostmasterPID()
	read := func() (time.Duration, bool) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pm))
		if err != nil {
			return 0, false
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			return 0, false
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			return 0, false
		}
		cu, _ := strconv.ParseInt(f[13], 10, 64)              // field 16: cutime
		cs, _ := strconv.ParseInt(f[14], 10, 64)              // field 17: cstime
		return time.Duration(cu+cs) * time.Second / 100, true // USER_HZ
	}
	// Backends exit, and are reaped, shortly after their client: wait
	// until the figure holds still.
	last, ok := read()
	for i := 0; ok && i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		cur, _ := read()
		if cur == last && i >= 2 {
			break
		}
		last = cur
	}
	return last
}

// Result is one client run.
type Result struct {
	Wall, CPU time.Duration
	MaxRSS    int64 // KiB
	Exit      int
	Stdout    []byte
	Stderr    string
}

// Run runs bin as the server's OS user with the user's environment,
// without another client's settings and with a HOME the server's OS user
// owns, plus env. An exit outside ok is an error (it would time the
// wrong thing), and so is running past ctx's deadline.
func (c *Cluster) Run(ctx context.Context, bin string, args, env []string, ok ...int) (Result, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "HOME="+c.Dir, "PGPASSWORD=", "PGSERVICE=", "PGPASSFILE="+filepath.Join(c.Dir, "none")), env...)
	c.AsServer(cmd)
	var stdout bytes.Buffer
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var r Result
	if cmd.ProcessState == nil {
		return r, err
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("%s %s: killed after %s (%v)", filepath.Base(bin), strings.Join(args, " "), wall.Round(time.Second), ctx.Err())
	}
	r.Wall, r.Exit, r.Stdout, r.Stderr = wall, cmd.ProcessState.ExitCode(), stdout.Bytes(), stderr.String()
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if ru, isRU := cmd.ProcessState.SysUsage().(*syscall.Rusage); isRU {
		r.MaxRSS = ru.Maxrss
	}
	for _, e := range ok {
		if r.Exit == e {
			return r, nil
		}
	}
	return r, fmt.Errorf("%s %s: exit %d\n%s", filepath.Base(bin), strings.Join(args, " "), r.Exit, r.Stderr)
}

// ProfileEnv asks pgaegis for CPU and allocation profiles named
// dir/<name>.{cpu,allocs}.pprof, in files the server's OS user (who runs
// it) may write.
func (c *Cluster) ProfileEnv(dir, name string) []string {
	os.MkdirAll(dir, 0o755)
	var env []string
	for _, k := range []struct{ env, kind string }{{"PGAEGIS_CPUPROFILE", "cpu"}, {"PGAEGIS_MEMPROFILE", "allocs"}} {
		p, _ := filepath.Abs(filepath.Join(dir, fmt.Sprintf("%s.%s.pprof", name, k.kind)))
		if f, err := os.Create(p); err == nil {
			f.Close()
			c.Chown(p)
		}
		env = append(env, k.env+"="+p)
	}
	return env
}
