// Command audit times the default `pgaegis audit`, as a user runs it on
// the database host, against the reference: psql pulling the same
// catalogs with COPY, on the same large cluster in the same run.
//
//	go run ./bench/audit                  # 2,000 roles, 14,000 tables, 7 databases
//	go run ./bench/audit -shape 140k      # 20,000 roles, 140,000 tables, ~800,000 ACL entries
//	go run ./bench/audit -shape both -formats text,json -args '--password-check-budget 0s'
//
// The cluster is built once per shape and kept (see -dir); later runs
// start it again in seconds. The audit is the built binary run as the
// server's OS user over the unix socket, as superuser (peer
// authentication), with the server's files read from its data directory:
// `sudo -u postgres pgaegis audit` on the host. Each figure is the best of
// -runs; the audit's peak RSS comes from wait4.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
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

	"github.com/pgaegis/pgaegis/bench/internal/bigcat"
	"github.com/pgaegis/pgaegis/internal/localpg"
)

// shapes are the clusters of issue 13: what a security-minded site runs.
var shapes = map[string]bigcat.Shape{
	"14k":  audited(7, 14000, 2000),
	"140k": audited(7, 140000, 20000),
}

func audited(dbs, tables, roles int) bigcat.Shape {
	return bigcat.Shape{DBs: dbs, Tables: tables, Roles: roles, Grants: 4, ExtraGrantEvery: 2, LoginPercent: 80,
		Groups: 50, Passwords: true, SchemaOwners: true, ColumnGrantEvery: 10, DefaultACLs: 20, Functions: 200, SecDefFunctions: 4}
}

func main() {
	shape := flag.String("shape", "14k", "cluster shape: 14k, 140k or both")
	dir := flag.String("dir", defaultDir(), "where the built clusters are kept (one directory per shape)")
	runs := flag.Int("runs", 3, "runs of each side; the best is reported")
	formats := flag.String("formats", "text", "report formats to time, comma-separated (text, json, ...)")
	extra := flag.String("args", "", "more arguments for pgaegis audit (split on spaces), e.g. '--password-check-budget 0s'")
	profiles := flag.String("profile-dir", "", "write CPU and allocation profiles of each shape and format's last audit here")
	rebuild := flag.Bool("rebuild", false, "build the cluster again even when a finished one is kept")
	prebuilt := flag.String("pgaegis", "", "time this pgaegis binary instead of building one from the source (before/after comparisons)")
	keep := flag.Duration("keep", 0, "after the runs, keep the server up this long (to profile or EXPLAIN by hand)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: go run ./bench/audit [flags]

Times the default pgaegis audit of a large cluster (as 'sudo -u postgres
pgaegis audit' on the host) against psql pulling the same catalogs with
\copy, best of -runs, and prints the ratio and the audit's peak RSS.
The first run of a shape builds its cluster and keeps it in -dir: about a
minute and 0.5 GB for 14k, ten minutes and 4 GB for 140k. See docs/bench.md.

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	var names []string
	switch *shape {
	case "14k", "140k":
		names = []string{*shape}
	case "both":
		names = []string{"14k", "140k"}
	default:
		fail(fmt.Errorf("-shape %q: want 14k, 140k or both", *shape))
	}
	bin := *prebuilt
	if bin == "" {
		var err error
		if bin, err = buildPgaegis(*dir); err != nil {
			fail(err)
		}
		atExit = func() { os.RemoveAll(filepath.Dir(bin)) }
		defer atExit()
	}
	for _, n := range names {
		if err := bench(n, shapes[n], *dir, bin, *runs, strings.Split(*formats, ","), strings.Fields(*extra), *profiles, *rebuild, *keep); err != nil {
			atExit()
			fail(err)
		}
	}
}

// atExit removes what this run built (its pgaegis binary).
var atExit = func() {}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// defaultDir is the user's cache directory; as root it is /var/tmp, since
// the server runs as an unprivileged user that cannot enter /root.
func defaultDir() string {
	if os.Geteuid() == 0 {
		return "/var/tmp/pgaegis/bench-audit"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "pgaegis", "bench-audit")
	}
	return filepath.Join(os.TempDir(), "pgaegis-bench-audit")
}

// buildPgaegis builds the command as a user installs it, where the
// server's OS user can run it; a directory of its own per run, so that
// runs side by side each time their own build.
func buildPgaegis(dir string) (string, error) {
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

func bench(name string, sh bigcat.Shape, dir, bin string, runs int, formats, extra []string, profiles string, rebuild bool, keep time.Duration) error {
	ctx := context.Background()
	cdir := filepath.Join(dir, name)
	want, _ := json.Marshal(sh)
	have, err := os.ReadFile(filepath.Join(cdir, doneFile))
	fresh := rebuild || err != nil || string(have) != string(want)
	if fresh {
		// Half-built, built to another shape, or asked for: start over.
		if err := os.RemoveAll(cdir); err != nil {
			return err
		}
	}
	osUser, err := serverOSUser()
	if err != nil {
		return err
	}
	srv, err := localpg.Start(ctx, localpg.Options{Dir: cdir, Conf: bigcat.Conf,
		// Peer authentication on the socket, as on a packaged server; the
		// build and the readiness check use the password over TCP.
		HBA: "local all all peer map=bench\nhost all all 127.0.0.1/32 scram-sha-256\n",
		Init: func(s *localpg.Server) error {
			return s.WriteDataFile("pg_ident.conf", fmt.Sprintf("bench %s postgres\n", osUser))
		}})
	if err != nil {
		return err
	}
	defer srv.Stop()
	// Interrupted (or -keep cut short): stop the kept cluster cleanly.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; ok {
			srv.Stop()
			atExit()
			os.Exit(1)
		}
	}()
	fmt.Printf("shape %s: %d databases, %d tables, %d roles, ~%d ACL entries on tables; cluster in %s (port %d)\n",
		name, sh.DBs, sh.Tables, sh.Roles, sh.ACLEntries(), cdir, srv.Port)
	if fresh {
		start := time.Now()
		err := bigcat.Generate(ctx, srv, sh, func(s string) { fmt.Printf("  building: %s (%s)\n", s, time.Since(start).Round(time.Second)) })
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(cdir, doneFile), want, 0o644); err != nil {
			return err
		}
		fmt.Printf("  built in %s (kept for later runs; -rebuild to build again)\n", time.Since(start).Round(time.Second))
	} else {
		fmt.Println("  reusing the cluster built earlier")
	}
	var dbs []string
	for d := 0; d < sh.DBs; d++ {
		dbs = append(dbs, bigcat.Database(d))
	}
	asServer := func(cmd *exec.Cmd) {
		if uid, gid := srv.OSUser(); uid >= 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
		cmd.Dir = srv.Dir
	}
	conn := bigcat.Conn{PSQL: bigcat.PSQL(srv), Host: srv.SocketDir, Port: srv.Port, User: "postgres", SysProcAttr: asServer}
	fmt.Printf("  reference: psql \\copy of %s\n", bigcat.Catalogs)
	for _, format := range formats {
		if runs == 0 {
			break
		}
		args := append([]string{"audit", "-h", srv.SocketDir, "-p", strconv.Itoa(srv.Port), "-U", "postgres", "-d", "postgres",
			"--format", format, "-o", "/dev/null"}, extra...)
		type side struct{ wall, cpu, server time.Duration }
		var bp, ba side // the best (least wall time) of each
		var rss int64
		pm := srv.PostmasterPID()
		for i := 0; i < runs; i++ {
			s0 := serverCPU(pm)
			pull, err := bigcat.Pull(conn, dbs)
			if err != nil {
				return err
			}
			s1 := serverCPU(pm)
			var env []string
			if profiles != "" && i == runs-1 {
				env = profileEnv(profiles, name, format, srv)
			}
			r, err := runAudit(bin, args, env, srv, asServer)
			if err != nil {
				return err
			}
			s2 := serverCPU(pm)
			p := side{pull.Wall, pull.CPU, s1 - s0}
			a := side{r.wall, r.cpu, s2 - s1}
			if i == 0 || p.wall < bp.wall {
				bp = p
			}
			if i == 0 || a.wall < ba.wall {
				ba = a
			}
			rss = max(rss, r.maxRSS)
			fmt.Printf("  run %d: pull %s (psql CPU %s, server CPU %s), audit %s (CPU %s, server CPU %s, exit %d, peak RSS %d MB)\n", i+1,
				ms(p.wall), ms(p.cpu), ms(p.server), ms(a.wall), ms(a.cpu), ms(a.server), r.exit, r.maxRSS>>10)
		}
		fmt.Printf("shape %s, --format %s%s: audit %s, pull %s, ratio audit/pull %.2f, peak RSS %d MB (best of %d); "+
			"CPU client+server: audit %s, pull %s, ratio %.2f\n",
			name, format, extraNote(extra), ms(ba.wall), ms(bp.wall), ba.wall.Seconds()/bp.wall.Seconds(), rss>>10, runs,
			ms(ba.cpu+ba.server), ms(bp.cpu+bp.server), (ba.cpu+ba.server).Seconds()/(bp.cpu+bp.server).Seconds())
	}
	if keep > 0 {
		fmt.Printf("  server kept for %s: setpriv --reuid=%s --regid=%s --init-groups %s audit -h %s -p %d -U postgres\n", keep, osUser, osUser, bin, srv.SocketDir, srv.Port)
		time.Sleep(keep)
	}
	return nil
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// serverCPU is the CPU time of the server's finished backends: the
// postmaster's reaped children (cutime + cstime in /proc). Read before
// and after a client's sessions, it is what they cost the server,
// whatever else the machine runs. 0 without /proc.
func serverCPU(postmaster int) time.Duration {
	read := func() (time.Duration, bool) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", postmaster))
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

func extraNote(extra []string) string {
	if len(extra) == 0 {
		return ""
	}
	return " " + strings.Join(extra, " ")
}

// serverOSUser is the OS user the server runs as, and the audit with it.
func serverOSUser() (string, error) {
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

type result struct {
	wall, cpu time.Duration
	maxRSS    int64 // KiB
	exit      int
}

// runAudit runs one audit; exit 0 and 1 (findings) are success, 2 is an
// error or an incomplete audit, which would time the wrong thing.
func runAudit(bin string, args, env []string, srv *localpg.Server, as func(*exec.Cmd)) (result, error) {
	cmd := exec.Command(bin, args...)
	// The user's environment, without another client's settings, and a
	// HOME the server's OS user owns.
	cmd.Env = append(append(os.Environ(), "HOME="+srv.Dir, "PGPASSWORD=", "PGSERVICE=", "PGPASSFILE="+filepath.Join(srv.Dir, "none")), env...)
	as(cmd)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var r result
	if cmd.ProcessState == nil {
		return r, err
	}
	r.wall, r.exit = wall, cmd.ProcessState.ExitCode()
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss
	}
	if r.exit != 0 && r.exit != 1 {
		return r, fmt.Errorf("pgaegis %s: exit %d\n%s", strings.Join(args, " "), r.exit, stderr.String())
	}
	return r, nil
}

// profileEnv asks pgaegis for profiles, in files the server's OS user
// (who runs the audit) may write.
func profileEnv(dir, shape, format string, srv *localpg.Server) []string {
	os.MkdirAll(dir, 0o755)
	var env []string
	for _, k := range []struct{ env, kind string }{{"PGAEGIS_CPUPROFILE", "cpu"}, {"PGAEGIS_MEMPROFILE", "allocs"}} {
		p, _ := filepath.Abs(filepath.Join(dir, fmt.Sprintf("audit-%s-%s.%s.pprof", shape, format, k.kind)))
		if f, err := os.Create(p); err == nil {
			f.Close()
			srv.Chown(p)
		}
		env = append(env, k.env+"="+p)
	}
	return env
}
