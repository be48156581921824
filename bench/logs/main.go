// Command logs measures pgaegis logs scan against pgBadger and a plain Go
// line scan on the same generated log, in the three formats.
//
//	go run ./bench/logs -mb 1024            # 1 GB per format
//	go run ./bench/logs -mb 200 -badger-mb 50
//
// The log is generated from line shapes the server really writes (with
// log_line_prefix '%m [%p] %q%u@%d %r ', log_connections, log_statement =
// 'all', durations, errors, pgaudit), with a few attacks mixed in.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/logscan"
)

const prefix = "%m [%p] %q%u@%d %r "

func main() {
	mb := flag.Int("mb", 1024, "size of each generated log in MB")
	badgerMB := flag.Int("badger-mb", 64, "size of the slice pgBadger parses (it is slow; its MB/s is measured on this slice)")
	dir := flag.String("dir", "", "where to write the logs (default: a temporary directory, removed afterwards)")
	runs := flag.Int("runs", 3, "measure each scan this many times and keep the best (both tools alike)")
	only := flag.String("format", "", "measure only this format (stderr, csvlog, jsonlog)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of pgaegis's scan to this file (with -format)")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "pgaegis-logbench-")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	fmt.Printf("%d cores; logs of %d MB per format in %s\n\n", runtime.NumCPU(), *mb, *dir)
	fmt.Printf("%-8s %12s %12s %12s %14s %14s\n", "format", "pgaegis", "line scan", "pgBadger", "vs pgBadger", "vs line scan")
	for _, f := range []logscan.Format{logscan.Stderr, logscan.CSV, logscan.JSON} {
		if *only != "" && string(f) != *only {
			continue
		}
		path := filepath.Join(*dir, "bench."+string(f))
		if _, err := os.Stat(path); err != nil || os.Getenv("KEEP") == "" {
			check(generate(path, f, int64(*mb)<<20))
		}
		if *cpuprofile != "" {
			fh, err := os.Create(*cpuprofile)
			check(err)
			check(pprof.StartCPUProfile(fh))
		}
		ours := measure(func() { scan(path, f) }, path, *runs)
		if *cpuprofile != "" {
			pprof.StopCPUProfile()
		}
		floor := measure(func() { lineScan(path) }, path, *runs)
		badger := badgerRate(path, f, int64(*badgerMB)<<20, *dir)
		vsBadger := "n/a"
		if badger > 0 {
			vsBadger = fmt.Sprintf("%.0fx", ours/badger)
		}
		fmt.Printf("%-8s %9.0f MB/s %9.0f MB/s %9.1f MB/s %14s %13.2fx\n", f, ours, floor, badger, vsBadger, ours/floor)
		if os.Getenv("KEEP") == "" {
			os.Remove(path)
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// measure returns the best MB/s of runs: the first run also warms the
// page cache, and a shared machine's noise only ever slows a run down.
func measure(fn func(), path string, runs int) float64 {
	st, _ := os.Stat(path)
	best := 0.0
	for i := 0; i < max(runs, 1); i++ {
		start := time.Now()
		fn()
		best = max(best, float64(st.Size())/1e6/time.Since(start).Seconds())
	}
	return best
}

func scan(path string, f logscan.Format) {
	p, _ := logscan.CompilePrefix(prefix)
	_, _, err := logscan.Scan([]string{path}, logscan.Options{Format: f, Prefix: p})
	check(err)
}

// lineScan is the floor: bufio.Scanner plus one bytes.Contains per line.
func lineScan(path string) {
	fh, err := os.Open(path)
	check(err)
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte("FATAL")) {
			n++
		}
	}
}

// badgerRate runs pgBadger on the first bytes of the log and returns MB/s.
func badgerRate(path string, f logscan.Format, size int64, dir string) float64 {
	if _, err := exec.LookPath("pgbadger"); err != nil {
		return 0
	}
	slice := filepath.Join(dir, "slice."+string(f))
	src, err := os.Open(path)
	check(err)
	dst, err := os.Create(slice)
	check(err)
	buf := bufio.NewReader(src)
	var written int64
	for written < size {
		line, err := buf.ReadBytes('\n')
		if len(line) > 0 {
			dst.Write(line)
			written += int64(len(line))
		}
		if err != nil {
			break
		}
	}
	src.Close()
	dst.Close()
	defer os.Remove(slice)
	args := []string{"-q", "-o", filepath.Join(dir, "out.txt"), "-x", "text", "-j", fmt.Sprint(runtime.NumCPU())}
	switch f {
	case logscan.Stderr:
		args = append(args, "-f", "stderr", "-p", prefix)
	case logscan.CSV:
		args = append(args, "-f", "csv")
	case logscan.JSON:
		args = append(args, "-f", "jsonlog")
	}
	args = append(args, slice)
	start := time.Now()
	if out, err := exec.Command("pgbadger", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "pgbadger %s: %v %s\n", f, err, out)
		return 0
	}
	return float64(written) / 1e6 / time.Since(start).Seconds()
}

// generate writes a log made of the line shapes a busy server writes.
func generate(path string, f logscan.Format, size int64) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	rng := rand.New(rand.NewSource(1))
	t := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	users := []string{"app", "app_ro", "report", "etl", "postgres"}
	hosts := []string{"10.1.2.3", "10.1.2.4", "10.1.7.9", "10.2.0.15"}
	stmts := []string{
		"SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > now() - interval '1 day' ORDER BY o.id LIMIT 100",
		"INSERT INTO events (kind, payload, created_at) VALUES ('click', '{\"page\": \"/cart\", \"ms\": 132}', now())",
		"UPDATE accounts SET balance = balance - 10.00, updated_at = now() WHERE id = 48213",
		"SELECT count(*) FROM sessions WHERE expires_at > now()",
		"BEGIN", "COMMIT",
		"SELECT id, email, last_login FROM users WHERE tenant_id = 42 AND active ORDER BY last_login DESC LIMIT 50",
	}
	var written int64
	pid := 10000
	for written < size {
		t = t.Add(time.Duration(rng.Intn(40)) * time.Millisecond)
		pid++
		u, h, db := users[rng.Intn(len(users))], hosts[rng.Intn(len(hosts))], "shop"
		var msgs [][2]string // severity, message
		switch r := rng.Intn(1000); {
		case r < 5:
			msgs = [][2]string{{"FATAL", fmt.Sprintf(`password authentication failed for user "%s"`, u)}}
			h = "203.0.113.77"
		case r < 7:
			msgs = [][2]string{{"FATAL", fmt.Sprintf(`no pg_hba.conf entry for host "198.51.100.%d", user "admin", database "postgres", no encryption`, rng.Intn(255))}}
		case r < 8:
			msgs = [][2]string{{"LOG", "AUDIT: SESSION,1,1,ROLE,ALTER ROLE,,,ALTER ROLE app PASSWORD 'Winter2026!',<not logged>"}}
		case r < 60:
			msgs = [][2]string{{"LOG", fmt.Sprintf("connection received: host=%s port=%d", h, 40000+rng.Intn(20000))},
				{"LOG", fmt.Sprintf("connection authorized: user=%s database=%s application_name=psql", u, db)}}
		case r < 100:
			msgs = [][2]string{{"LOG", fmt.Sprintf("disconnection: session time: 0:00:0%d.%03d user=%s database=%s host=%s port=%d", rng.Intn(9), rng.Intn(999), u, db, h, 40000+rng.Intn(20000))}}
		case r < 110:
			msgs = [][2]string{{"ERROR", `duplicate key value violates unique constraint "orders_pkey"`}, {"DETAIL", "Key (id)=(4711) already exists."}}
		case r < 600:
			msgs = [][2]string{{"LOG", "statement: " + stmts[rng.Intn(len(stmts))]}}
		default:
			msgs = [][2]string{{"LOG", fmt.Sprintf("duration: %d.%03d ms  statement: %s", rng.Intn(90), rng.Intn(999), stmts[rng.Intn(len(stmts))])}}
		}
		for _, m := range msgs {
			var line string
			ts := t.Format("2006-01-02 15:04:05.000 MST")
			switch f {
			case logscan.Stderr:
				line = fmt.Sprintf("%s [%d] %s@%s %s(%d) %s:  %s\n", ts, pid, u, db, h, 40000+pid%20000, m[0], m[1])
			case logscan.CSV:
				line = fmt.Sprintf("%s,\"%s\",\"%s\",%d,\"%s:%d\",6570a1b2.%x,%d,\"idle\",%s,3/%d,0,%s,00000,\"%s\",,,,,,,,,\"psql\",\"client backend\",,0\n",
					ts, u, db, pid, h, 40000+pid%20000, pid, 1, ts, pid, m[0], strings.ReplaceAll(m[1], `"`, `""`))
			case logscan.JSON:
				b, _ := json.Marshal(map[string]any{"timestamp": ts, "user": u, "dbname": db, "pid": pid, "remote_host": h, "remote_port": 40000 + pid%20000,
					"session_id": fmt.Sprintf("6570a1b2.%x", pid), "line_num": 1, "ps": "idle", "session_start": ts, "vxid": fmt.Sprintf("3/%d", pid),
					"txid": 0, "error_severity": m[0], "message": m[1], "application_name": "psql", "backend_type": "client backend", "query_id": 0})
				line = string(b) + "\n"
			}
			n, err := w.WriteString(line)
			if err != nil {
				return err
			}
			written += int64(n)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return fh.Close()
}
