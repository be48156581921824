// Command logs measures pgaegis logs scan against pgBadger and a plain Go
// line scan on the same logs, in the three formats, in one run.
//
//	go run ./bench/logs -mb 256                 # both shapes, best of 3
//	go run ./bench/logs -mb 1024 -badger-mb 32 -shape heavy
//
// The heavy shape is a log written by a real PostgreSQL 15 server (pgaudit
// on writes, DDL and roles, log_statement = 'all', connection logging)
// driven by pgbench -M prepared with a scripted attack mixed in; the server
// writes stderr, csvlog and jsonlog of the same events. The light shape is
// synthetic: the line shapes of a quiet server, few of them of interest.
// Generated logs are cached in -dir and reused by later runs.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/logscan"
)

var formats = []string{"stderr", "csvlog", "jsonlog"}

// expected are the event kinds the scripted attack must produce in the
// heavy log: a missing one is a detection regression, and the bench says
// so and exits 1. (superuser-over-tcp is not among them: every session
// here comes from loopback, which that check leaves alone.)
var expected = []string{
	"brute-force", "password-spraying", "success-after-failures", "unknown-role", "unknown-database",
	"hba-reject", "no-hba-entry", "superuser-granted", "powerful-role-granted", "role-change",
	"secret-in-log", "privilege-change", "copy-program", "server-file-access", "credential-read",
	"alter-system", "audit-tampering", "untrusted-language", "security-definer",
}

func main() {
	mb := flag.Int("mb", 256, "size of the stderr log in MB (csvlog and jsonlog of the same events are larger)")
	badgerMB := flag.Int("badger-mb", 32, "pgBadger is slow: it parses the first this many MB of each file and its MB/s is measured on that slice (0: skip pgBadger)")
	dir := flag.String("dir", defaultDir(), "cache of generated logs, reused when present and big enough")
	runs := flag.Int("runs", 3, "time each scan this many times and keep the best (every tool alike)")
	shape := flag.String("shape", "both", "heavy (a real server's security logging), light (synthetic, few lines of interest) or both")
	only := flag.String("format", "", "measure only this format (stderr, csvlog, jsonlog)")
	seedMB := flag.Int("seed-mb", 0, "heavy shape: run the server for only this many MB and extend the logs to -mb by repeating them with advanced timestamps and pids (0: the server writes it all)")
	regen := flag.Bool("regen", false, "regenerate the logs even when cached")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of pgaegis's scans to this file (use with -format and -shape)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: go run ./bench/logs [flags]

Measures pgaegis logs scan against pgBadger and a plain line scan on the
same logs, in stderr, csvlog and jsonlog: a log a real PostgreSQL 15 with
pgaudit writes under pgbench (heavy) and a synthetic quiet one (light).
Generated logs are cached in -dir; a 256 MB heavy log takes a few minutes
to write. See docs/logs.md ("Speed").

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	var shapes []string
	switch *shape {
	case "both":
		shapes = []string{"heavy", "light"}
	case "heavy", "light":
		shapes = []string{*shape}
	default:
		fail(fmt.Errorf("-shape %q: heavy, light or both", *shape))
	}
	if *only != "" && !contains(formats, *only) {
		fail(fmt.Errorf("-format %q: stderr, csvlog or jsonlog", *only))
	}
	if *mb <= 0 {
		fail(fmt.Errorf("-mb %d: give a positive size", *mb))
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	badger := *badgerMB > 0
	if _, err := exec.LookPath("pgbadger"); badger && err != nil {
		fmt.Println("pgbadger is not installed: its column is empty (Debian/Ubuntu: apt-get install -y pgbadger)")
		badger = false
	}
	fmt.Printf("%d cores, %s; logs cached in %s\n", runtime.NumCPU(), runtime.Version(), *dir)
	fmt.Printf("prefix '%s'; best of %d runs for every tool", prefix, *runs)
	if badger {
		v, _ := exec.Command("pgbadger", "--version").Output()
		fmt.Printf("; %s on the first %d MB of each file (its MB/s is on that slice)", strings.TrimSpace(string(v)), *badgerMB)
	}
	fmt.Print("\n")

	missing := false
	for _, sh := range shapes {
		d, m, err := logs(ctx, *dir, sh, int64(*mb)<<20, int64(*seedMB)<<20, *regen)
		if err != nil {
			fail(err)
		}
		fmt.Print("\n")
		describe(d, m)
		fmt.Printf("%-8s %8s %12s %12s %12s %12s %13s\n", "format", "size", "pgaegis", "line scan", "pgBadger", "vs pgBadger", "vs line scan")
		kinds := map[string]map[string]int{}
		for _, f := range formats {
			if *only != "" && f != *only {
				continue
			}
			path := filepath.Join(d, realFiles[f])
			size := m.Sizes[f]
			var an *logscan.Analysis
			if *cpuprofile != "" {
				fh, err := os.Create(*cpuprofile)
				if err != nil {
					fail(err)
				}
				if err := pprof.StartCPUProfile(fh); err != nil {
					fail(err)
				}
			}
			ours := measure(*runs, size, func() { an = scan(path, f) })
			if *cpuprofile != "" {
				pprof.StopCPUProfile()
			}
			floor := measure(*runs, size, func() { lineScan(path) })
			badgerCol, vsBadger := "-", "-"
			if badger {
				rate, err := badgerRate(ctx, path, f, int64(*badgerMB)<<20, *runs)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
				} else {
					badgerCol = fmt.Sprintf("%.1f MB/s", rate)
					vsBadger = fmt.Sprintf("%.0fx", ours/rate)
				}
			}
			fmt.Printf("%-8s %5d MB %7.0f MB/s %7.0f MB/s %12s %12s %12.3fx\n", f, size>>20, ours, floor, badgerCol, vsBadger, ours/floor)
			kinds[f] = map[string]int{}
			for _, e := range an.Events() {
				kinds[f][e.Kind] += e.Count
			}
		}
		for _, f := range formats {
			k, ok := kinds[f]
			if !ok {
				continue
			}
			fmt.Printf("events (%s): %s\n", f, summarize(k))
			if sh == "heavy" {
				var miss []string
				for _, e := range expected {
					if k[e] == 0 && !(e == "untrusted-language" && m.NoPlperl) {
						miss = append(miss, e)
					}
				}
				if len(miss) > 0 {
					fmt.Printf("  MISSING from the scripted attack: %s\n", strings.Join(miss, ", "))
					missing = true
				}
			}
		}
	}
	if missing {
		os.Exit(1)
	}
}

func defaultDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "pgaegis-bench", "logs")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// logs returns the cache directory of a shape at a size, generating the
// logs when they are missing, incomplete or smaller than asked.
func logs(ctx context.Context, top, shape string, size, seed int64, regen bool) (string, *meta, error) {
	name := fmt.Sprintf("%s-%dmb", shape, size>>20)
	if shape == "heavy" && seed > 0 && seed < size {
		name += fmt.Sprintf("-seed%dmb", seed>>20)
	}
	d := filepath.Join(top, name)
	if m, err := readMeta(d); err == nil && !regen && m.Sizes["stderr"] >= size && complete(d, m) {
		return d, m, nil
	}
	// Private: the logs hold statements and (test) passwords.
	if err := os.RemoveAll(d); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", nil, err
	}
	var m *meta
	var err error
	if shape == "light" {
		fmt.Fprintf(os.Stderr, "generating the light shape (%d MB per format) in %s\n", size>>20, d)
		m, err = generateLight(d, size)
	} else {
		real := size
		if seed > 0 && seed < size {
			real = seed
		}
		fmt.Fprintf(os.Stderr, "running a PostgreSQL server until its stderr log reaches %d MB (a few MB/s), in %s\n", real>>20, d)
		m, err = generateReal(ctx, d, real)
		if err == nil && real < size {
			fmt.Fprintf(os.Stderr, "extending the %d MB seed to %d MB by repetition\n", real>>20, size>>20)
			err = extend(d, m, size)
		}
	}
	if err == nil {
		m.Lines, err = countLines(filepath.Join(d, realFiles["stderr"]))
	}
	if err == nil {
		err = writeMeta(d, m)
	}
	if err != nil {
		os.RemoveAll(d)
		return "", nil, err
	}
	return d, m, nil
}

func complete(d string, m *meta) bool {
	for f, name := range realFiles {
		st, err := os.Stat(filepath.Join(d, name))
		if err != nil || st.Size() != m.Sizes[f] {
			return false
		}
	}
	return true
}

// describe says what the logs are, so a table is never read without its
// input.
func describe(d string, m *meta) {
	if m.Shape == "light" {
		fmt.Printf("light: synthetic, the old shape: a quiet server's lines (statements, durations, some connections, few failed logins), %s\n", d)
	} else {
		fmt.Printf("heavy: written by a real PostgreSQL %s server: pgaudit.log = 'ddl,role,write', log_statement = 'all', log_connections/disconnections,\n", m.Server)
		fmt.Printf("  driven by pgbench -M prepared (4 clients, plus 1 reconnecting per transaction) with %d rounds of a scripted attack; %s\n", m.Rounds, d)
		if m.Copies > 1 {
			fmt.Printf("  the server wrote the first %d MB (%.0f s); %d copies of it follow, with advanced timestamps and pids\n", m.SeedBytes>>20, m.Seconds, m.Copies-1)
		} else {
			fmt.Printf("  all of it written by the server (%.0f s to generate)\n", m.Seconds)
		}
	}
	var total int64
	for _, n := range m.Lines {
		total += n
	}
	if total > 0 {
		kinds := make([]string, 0, len(m.Lines))
		for k := range m.Lines {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool { return m.Lines[kinds[i]] > m.Lines[kinds[j]] })
		var parts []string
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", k, 100*float64(m.Lines[k])/float64(total)))
		}
		fmt.Printf("  stderr: %d lines: %s\n", total, strings.Join(parts, ", "))
	}
}

func summarize(k map[string]int) string {
	names := make([]string, 0, len(k))
	for n := range k {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, k[n]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// measure returns the best MB/s of runs: the first run also warms the
// page cache, and a shared machine's noise only ever slows a run down.
func measure(runs int, size int64, fn func()) float64 {
	best := 0.0
	for i := 0; i < max(runs, 1); i++ {
		start := time.Now()
		fn()
		best = max(best, float64(size)/1e6/time.Since(start).Seconds())
	}
	return best
}

var warned = map[string]bool{}

// scan is what `pgaegis logs scan FILE --prefix P` does before it writes
// its report: the CLI's default thresholds, the format detected.
func scan(path, f string) *logscan.Analysis {
	p, err := logscan.CompilePrefix(prefix)
	if err != nil {
		fail(err)
	}
	th := logscan.DefaultThresholds()
	an, st, err := logscan.Scan([]string{path}, logscan.Options{Prefix: p, Thresholds: &th})
	if err != nil {
		fail(err)
	}
	if string(st.Format) != f {
		fail(fmt.Errorf("%s: detected as %s, not %s", path, st.Format, f))
	}
	if len(st.Errors) > 0 && !warned[path] {
		// Worth knowing, not worth stopping the measurement for.
		fmt.Fprintf(os.Stderr, "warning: %s: lines pgaegis could not parse: %v\n", path, st.Errors)
		warned[path] = true
	}
	return an
}

// lineScan is the floor: bufio.Scanner plus one bytes.Contains per line.
func lineScan(path string) {
	fh, err := os.Open(path)
	if err != nil {
		fail(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte("FATAL")) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		fail(err)
	}
}

// badgerRate runs pgBadger on the first size bytes of the log (cut on a
// record boundary) and returns its best MB/s on that slice.
func badgerRate(ctx context.Context, path, f string, size int64, runs int) (float64, error) {
	tmp, err := os.MkdirTemp("", "pgaegis-badger-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	slice := filepath.Join(tmp, "slice."+f)
	written, err := leadingSlice(path, slice, f, size)
	if err != nil {
		return 0, err
	}
	args := []string{"-q", "-o", filepath.Join(tmp, "out.txt"), "-x", "text", "-j", fmt.Sprint(runtime.NumCPU())}
	switch f {
	case "stderr":
		args = append(args, "-f", "stderr", "-p", prefix)
	case "csvlog":
		args = append(args, "-f", "csv")
	case "jsonlog":
		args = append(args, "-f", "jsonlog")
	}
	args = append(args, slice)
	var rate float64
	var runErr error
	measure(runs, written, func() {
		start := time.Now()
		out, err := exec.CommandContext(ctx, "pgbadger", args...).CombinedOutput()
		if err != nil {
			runErr = fmt.Errorf("pgbadger %s: %v\n%s", f, err, lastLines(string(out), 10))
			return
		}
		rate = max(rate, float64(written)/1e6/time.Since(start).Seconds())
	})
	if rate == 0 {
		return 0, runErr
	}
	return rate, nil
}

// leadingSlice copies the first size bytes of src to dst, ending before
// the first record that starts after them.
func leadingSlice(src, dst, f string, size int64) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(in, 1<<20)
	w := bufio.NewWriterSize(out, 1<<20)
	var written int64
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if written >= size && recordStart(line, f) {
				break
			}
			w.Write(line)
			written += int64(len(line))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			out.Close()
			return 0, err
		}
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return 0, err
	}
	return written, out.Close()
}

// recordStart: a line that begins a record (stderr continuation lines
// start with a tab; a csvlog record starts with its timestamp).
func recordStart(line []byte, f string) bool {
	switch f {
	case "stderr":
		return line[0] != '\t'
	case "csvlog":
		return isStamp(line)
	}
	return true
}

// isStamp: the line starts with a log_time such as 2026-12-02 02:50:01.123.
func isStamp(b []byte) bool {
	const pat = "dddd-dd-dd dd:dd:dd.ddd "
	if len(b) < len(pat) {
		return false
	}
	for i := 0; i < len(pat); i++ {
		if pat[i] == 'd' {
			if b[i] < '0' || b[i] > '9' {
				return false
			}
		} else if b[i] != pat[i] {
			return false
		}
	}
	return true
}
