package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/localpg"
)

// prefix is the log_line_prefix of both shapes: what a security-minded
// site sets (time, pid, user, database, client host).
const prefix = "%m [%p] %q%u@%d from %h "

// The three files one run of the server writes, in the cache directory.
var realFiles = map[string]string{"stderr": "pg.log", "csvlog": "pg.csv", "jsonlog": "pg.json"}

// meta describes a generated log set; it is written last, so a directory
// without it is an interrupted generation and is regenerated.
type meta struct {
	Shape     string           `json:"shape"`
	Server    string           `json:"server,omitempty"`
	Seconds   float64          `json:"seconds"`
	Rounds    int              `json:"attack_rounds,omitempty"`
	NoPlperl  bool             `json:"no_plperl,omitempty"`  // plperlu not installed: no untrusted-language function in the attack
	SeedBytes int64            `json:"seed_bytes,omitempty"` // real part when the rest repeats it
	Copies    int              `json:"copies,omitempty"`
	Sizes     map[string]int64 `json:"sizes"`
	Lines     map[string]int64 `json:"stderr_lines"` // stderr lines by kind
}

func readMeta(dir string) (*meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "meta.json"), err)
	}
	return &m, nil
}

func writeMeta(dir string, m *meta) error {
	b, _ := json.MarshalIndent(m, "", "  ")
	return os.WriteFile(filepath.Join(dir, "meta.json"), append(b, '\n'), 0o600)
}

// serverConf is what a security-minded site runs with: every statement,
// pgaudit on writes, DDL and roles, connection logging; all three
// destinations at once so the formats hold the same events.
var serverConf = []string{
	"shared_preload_libraries = 'pgaudit'",
	"pgaudit.log = 'ddl,role,write'",
	"log_statement = 'all'",
	"log_connections = on",
	"log_disconnections = on",
	"log_line_prefix = '" + prefix + "'",
	"logging_collector = on",
	"log_destination = 'stderr,csvlog,jsonlog'",
	"log_directory = 'log'",
	"log_filename = 'pg.log'", // the collector names the others pg.csv and pg.json
	"log_rotation_size = 0",
	"log_rotation_age = 0",
	"log_timezone = 'UTC'",
	// A benchmark's data is worthless: spend the disk on the log.
	"fsync = off",
	"synchronous_commit = off",
	"full_page_writes = off",
}

// hba: 127.0.0.0/29 logs in with SCRAM, 127.0.0.9 is rejected by a rule,
// 127.0.0.10 has no entry; all of it on loopback. The trust line names
// roles that do not exist, so that the server says so ("role ... does not
// exist"; behind SCRAM it only says "password authentication failed").
const hba = "local all all trust\n" +
	"host all ghost,nobody_here 127.0.0.6/32 trust\n" +
	"host all all 127.0.0.9/32 reject\n" +
	"host all all 127.0.0.0/29 scram-sha-256\n"

// generateReal starts a throwaway PostgreSQL 15 server, drives it with
// pgbench (-M prepared, some -C connection churn) and a scripted attack
// until its stderr log reaches size bytes, and leaves the three logs it
// wrote in dir.
func generateReal(ctx context.Context, dir string, size int64) (*meta, error) {
	bin, err := localpg.FindBinDir("15")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(bin, "..", "lib", "pgaudit.so")); err != nil {
		return nil, fmt.Errorf("pgaudit is not installed for the server in %s (Debian: apt-get install postgresql-15-pgaudit)", bin)
	}
	pgbench := filepath.Join(bin, "pgbench")
	if _, err := os.Stat(pgbench); err != nil {
		return nil, fmt.Errorf("pgbench not found next to the server (%s)", pgbench)
	}
	localpg.ReapOrphans()
	start := time.Now()
	srv, err := localpg.Start(ctx, localpg.Options{BinDir: bin, Conf: serverConf, HBA: hba})
	if err != nil {
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	defer srv.Stop()
	var version string
	if c, err := srv.Connect(ctx, "postgres"); err == nil {
		c.QueryRow(ctx, "SHOW server_version").Scan(&version)
		c.Close(ctx)
	}

	appPW := secret()
	if err := srv.Exec(ctx,
		// Identifiers and passwords below are ours (hex), never user input.
		fmt.Sprintf("CREATE ROLE app LOGIN PASSWORD '%s'", appPW),
		"CREATE ROLE victim LOGIN PASSWORD 'victim-1'",
		"CREATE DATABASE bench OWNER app",
	); err != nil {
		return nil, err
	}
	// plperlu is a separate package (postgresql-15-plperl): the attack
	// does without its function when it is missing.
	plperl := false
	if c, err := srv.Connect(ctx, "bench"); err == nil {
		c.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_available_extensions WHERE name = 'plperlu'").Scan(&plperl)
		c.Close(ctx)
	}
	if plperl {
		if err := srv.ExecIn(ctx, "bench", "CREATE EXTENSION IF NOT EXISTS plperlu"); err != nil {
			return nil, err
		}
	} else {
		fmt.Fprintln(os.Stderr, "  plperlu is not installed (postgresql-15-plperl): the attack creates no untrusted-language function")
	}
	// pgbench reads the password from a private passfile, never from
	// argv or its environment.
	passfile := filepath.Join(srv.Dir, "pgpass")
	if err := os.WriteFile(passfile, []byte(fmt.Sprintf("127.0.0.1:%d:*:app:%s\n", srv.Port, appPW)), 0o600); err != nil {
		return nil, err
	}
	env := conninfo.ChildEnv("PGPASSFILE="+passfile, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=30")
	conn := []string{"-h", "127.0.0.1", "-p", fmt.Sprint(srv.Port), "-U", "app"}
	init := exec.CommandContext(ctx, pgbench, append(append([]string{"-i", "-q", "-s", "10"}, conn...), "bench")...)
	init.Env = env
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}

	logPath := filepath.Join(srv.DataDir, "log", "pg.log")
	runCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	// Steady clients on kept connections, and one client reconnecting for
	// every transaction (-C): connection and disconnection lines.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, args := range [][]string{
		{"-M", "prepared", "-n", "-c", "4", "-j", "2", "-T", "86400"},
		{"-M", "prepared", "-n", "-C", "-c", "1", "-T", "86400"},
	} {
		cmd := exec.CommandContext(runCtx, pgbench, append(append(args, conn...), "bench")...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			if runCtx.Err() == nil { // it died before we stopped it
				errs <- fmt.Errorf("pgbench %s: %v\n%s", strings.Join(args, " "), err, lastLines(out.String(), 10))
			}
		}()
	}

	// The attack is mixed in: a round every 4 MB of log, the first early.
	rounds := make(chan int, 1)
	var attackErr error
	attackDone := make(chan struct{})
	go func() {
		defer close(attackDone)
		for i := range rounds {
			if err := attack(ctx, srv, i, plperl); err != nil && attackErr == nil {
				attackErr = err
			}
		}
	}()
	next, round := int64(1<<20), 0
	tick := time.NewTicker(100 * time.Millisecond)
	lastReport := time.Now()
	var loadErr error
	for loadErr == nil {
		st, err := os.Stat(logPath)
		if err == nil && st.Size() >= size {
			break
		}
		if err == nil && st.Size() >= next {
			select {
			case rounds <- round:
				round++
				next += 4 << 20
			default: // the previous round is still running
			}
		}
		if err == nil && time.Since(lastReport) > 10*time.Second {
			fmt.Fprintf(os.Stderr, "  server log at %d/%d MB\n", st.Size()>>20, size>>20)
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			loadErr = ctx.Err()
		case loadErr = <-errs:
		case <-tick.C:
		}
	}
	tick.Stop()
	if round == 0 && loadErr == nil {
		rounds <- round // even a tiny log holds the attack once
		round++
	}
	stopLoad() // before the last round ends: the log stops near size
	wg.Wait()
	close(rounds)
	<-attackDone
	if loadErr != nil {
		return nil, loadErr
	}
	if attackErr != nil {
		return nil, attackErr
	}
	// A fast shutdown first: the collector has written everything when
	// the postmaster is gone, and Stop would remove the files.
	if pm := srv.PostmasterPID(); pm > 0 {
		syscall.Kill(pm, syscall.SIGINT)
		for deadline := time.Now().Add(60 * time.Second); srv.PostmasterPID() > 0 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	m := &meta{Shape: "heavy", Server: version, Seconds: time.Since(start).Seconds(), Rounds: round, NoPlperl: !plperl, Sizes: map[string]int64{}}
	for f, name := range realFiles {
		dst := filepath.Join(dir, name)
		if err := moveFile(filepath.Join(srv.DataDir, "log", name), dst); err != nil {
			return nil, err
		}
		st, err := os.Stat(dst)
		if err != nil {
			return nil, err
		}
		m.Sizes[f] = st.Size()
	}
	return m, nil
}

// attack plays one round of what an intruder does from loopback: brute
// force, spraying over roles that do not exist, a success after failures,
// refused hosts, then, as a superuser, the statements that matter.
func attack(ctx context.Context, srv *localpg.Server, round int, plperl bool) error {
	login := func(src, user, db, pw string) error {
		cfg := srv.ConnConfig(db)
		cfg.User, cfg.Password = user, pw
		cfg.TLSConfig, cfg.Fallbacks = nil, nil
		cfg.ConnectTimeout = 30 * time.Second
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 30 * time.Second}
		cfg.DialFunc = d.DialContext
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}
	for i := 0; i < 12; i++ {
		login("127.0.0.2", "app", "bench", fmt.Sprintf("guess-%d", i)) // brute force
	}
	for _, u := range []string{"admin", "root", "oracle", "backup", "test", "sa"} {
		login("127.0.0.3", u, "postgres", "Summer2026!") // spraying, roles that do not exist
	}
	for i := 0; i < 3; i++ {
		login("127.0.0.4", "victim", "postgres", "wrong")
	}
	if err := login("127.0.0.4", "victim", "postgres", "victim-1"); err != nil { // success after failures
		return fmt.Errorf("attack: the victim's login failed: %w", err)
	}
	login("127.0.0.6", "ghost", "postgres", "") // role that does not exist
	login("127.0.0.6", "nobody_here", "postgres", "")
	login("127.0.0.5", "victim", "nosuchdb", "victim-1")  // database that does not exist
	login("127.0.0.9", "victim", "postgres", "victim-1")  // rejected by pg_hba.conf
	login("127.0.0.10", "victim", "postgres", "victim-1") // no pg_hba.conf entry

	r := fmt.Sprint(round)
	if plperl {
		if err := srv.ExecIn(ctx, "bench",
			"CREATE OR REPLACE FUNCTION pwn() RETURNS int LANGUAGE plperlu AS $$ return 1; $$",
			"DROP FUNCTION pwn()",
		); err != nil {
			return err
		}
	}
	return srv.ExecIn(ctx, "bench",
		"CREATE ROLE intruder"+r+" SUPERUSER LOGIN PASSWORD 'Intruder-"+r+"!'",
		"ALTER ROLE victim PASSWORD 'Secret123!'",
		"ALTER ROLE victim PASSWORD 'victim-1'",
		"GRANT pg_execute_server_program TO victim",
		"GRANT SELECT, UPDATE ON pgbench_accounts TO victim",
		"COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'",
		"SELECT length(pg_read_file('postgresql.conf'))",
		"SELECT rolname, rolpassword FROM pg_authid WHERE rolname = 'victim'",
		"ALTER SYSTEM SET archive_command = '/bin/true'",
		"ALTER SYSTEM RESET archive_command",
		"CREATE OR REPLACE FUNCTION definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
		"SET pgaudit.log = 'none'",
		"SET log_statement = 'none'",
		"RESET log_statement",
		"RESET pgaudit.log",
		"DROP FUNCTION definer()",
		"REVOKE pg_execute_server_program FROM victim",
		"REVOKE SELECT, UPDATE ON pgbench_accounts FROM victim",
		"DROP ROLE intruder"+r,
	)
}

func secret() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// moveFile renames, or copies when src and dst are on different devices.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// countLines classifies the stderr log's lines, to show how much of it is
// of interest (statements, parameters, audit records, connections).
func countLines(path string) (map[string]int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	n := map[string]int64{}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		l := sc.Bytes()
		var kind string
		switch {
		case len(l) > 0 && l[0] == '\t':
			kind = "continuation"
		case bytes.Contains(l, []byte("LOG:  AUDIT: ")):
			kind = "pgaudit"
		case bytes.Contains(l, []byte("LOG:  statement: ")), bytes.Contains(l, []byte("LOG:  execute ")):
			kind = "statement"
		case bytes.Contains(l, []byte("DETAIL:  parameters: ")):
			kind = "parameters"
		case bytes.Contains(l, []byte("LOG:  connection ")), bytes.Contains(l, []byte("LOG:  disconnection: ")):
			kind = "connection"
		case bytes.Contains(l, []byte("FATAL:  ")):
			kind = "fatal"
		default:
			kind = "other"
		}
		n[kind]++
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return n, nil
}
