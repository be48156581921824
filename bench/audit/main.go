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
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/bench/internal/bigcat"
)

func main() {
	shape := flag.String("shape", "14k", "cluster shape: 14k, 140k or both")
	dir := flag.String("dir", bigcat.DefaultDir("bench-audit"), "where the built clusters are kept (one directory per shape)")
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
	names, bin, cleanup, err := bigcat.Prepare(*shape, *prebuilt, *dir)
	if err != nil {
		fail(err)
	}
	atExit = cleanup
	defer atExit()
	for _, n := range names {
		if err := bench(n, *dir, bin, *runs, strings.Split(*formats, ","), strings.Fields(*extra), *profiles, *rebuild, *keep); err != nil {
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

func bench(name, dir, bin string, runs int, formats, extra []string, profiles string, rebuild bool, keep time.Duration) error {
	c, err := bigcat.Open(context.Background(), dir, name, rebuild, func(s string) { fmt.Println(s) })
	if err != nil {
		return err
	}
	defer c.Stop()
	// Interrupted (or -keep cut short): stop the kept cluster cleanly.
	defer c.StopOnSignal(atExit)()
	conn := c.Conn()
	fmt.Printf("  reference: psql \\copy of %s\n", bigcat.Catalogs)
	for _, format := range formats {
		if runs == 0 {
			break
		}
		args := append(append(append([]string{"audit"}, c.ConnArgs()...), "-d", "postgres",
			"--format", format, "-o", "/dev/null"), extra...)
		type side struct{ wall, cpu, server time.Duration }
		var bp, ba side // the best (least wall time) of each
		var rss int64
		for i := 0; i < runs; i++ {
			s0 := c.ServerCPU()
			pull, err := bigcat.Pull(conn, c.DBs)
			if err != nil {
				return err
			}
			s1 := c.ServerCPU()
			var env []string
			if profiles != "" && i == runs-1 {
				env = c.ProfileEnv(profiles, fmt.Sprintf("audit-%s-%s", name, format))
			}
			r, err := c.Run(context.Background(), bin, args, env, 0, 1)
			if err != nil {
				return err
			}
			s2 := c.ServerCPU()
			p := side{pull.Wall, pull.CPU, s1 - s0}
			a := side{r.Wall, r.CPU, s2 - s1}
			if i == 0 || p.wall < bp.wall {
				bp = p
			}
			if i == 0 || a.wall < ba.wall {
				ba = a
			}
			rss = max(rss, r.MaxRSS)
			fmt.Printf("  run %d: pull %s (psql CPU %s, server CPU %s), audit %s (CPU %s, server CPU %s, exit %d, peak RSS %d MB)\n", i+1,
				ms(p.wall), ms(p.cpu), ms(p.server), ms(a.wall), ms(a.cpu), ms(a.server), r.Exit, r.MaxRSS>>10)
		}
		fmt.Printf("shape %s, --format %s%s: audit %s, pull %s, ratio audit/pull %.2f, peak RSS %d MB (best of %d); "+
			"CPU client+server: audit %s, pull %s, ratio %.2f\n",
			name, format, extraNote(extra), ms(ba.wall), ms(bp.wall), ba.wall.Seconds()/bp.wall.Seconds(), rss>>10, runs,
			ms(ba.cpu+ba.server), ms(bp.cpu+bp.server), (ba.cpu+ba.server).Seconds()/(bp.cpu+bp.server).Seconds())
	}
	if keep > 0 {
		fmt.Printf("  server kept for %s: setpriv --reuid=%s --regid=%s --init-groups %s audit -h %s -p %d -U postgres\n", keep, c.OSUser, c.OSUser, bin, c.SocketDir, c.Port)
		time.Sleep(keep)
	}
	return nil
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func extraNote(extra []string) string {
	if len(extra) == 0 {
		return ""
	}
	return " " + strings.Join(extra, " ")
}
