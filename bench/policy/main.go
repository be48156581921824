// Command policy times roles-as-code at scale: `pgaegis access policy
// export` of a large cluster, `plan` of the export (which must be empty)
// and of a changed file, `apply --check`, and `apply` of the changed file
// and back, each against the reference: psql pulling the catalogs any such
// tool must read, with COPY, on the same server in the same run.
//
//	go run ./bench/policy                  # 2,000 roles, 14,000 tables, 7 databases
//	go run ./bench/policy -shape 140k      # 20,000 roles, 140,000 tables
//
// The clusters are bench/audit's shapes (bench/internal/bigcat), kept in
// -dir of their own since the benchmark changes them (and changes them
// back). Each command is the built binary run as the server's OS user over
// the unix socket as superuser; each figure is the best of -runs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/bench/internal/bigcat"
	"github.com/pgaegis/pgaegis/internal/plan"
)

func main() {
	shape := flag.String("shape", "14k", "cluster shape: 14k, 140k or both")
	dir := flag.String("dir", bigcat.DefaultDir("bench-policy"), "where the built clusters are kept (one directory per shape)")
	runs := flag.Int("runs", 3, "runs of each command; the best is reported (0: only build the cluster)")
	rebuild := flag.Bool("rebuild", false, "build the cluster again even when a finished one is kept")
	prebuilt := flag.String("pgaegis", "", "time this pgaegis binary instead of building one from the source (before/after comparisons)")
	profiles := flag.String("profile-dir", "", "write CPU and allocation profiles of each command's last run here")
	timeout := flag.Duration("timeout", 15*time.Minute, "give up on a command that runs longer")
	keep := flag.Bool("keep-files", false, "keep the export and the changed file (printed) instead of removing them")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: go run ./bench/policy [flags]

Times pgaegis access policy export, plan (of the export: must be empty; of
a changed file), apply --check and apply (the changed file, then the
export back, each verified by an empty plan) on a large cluster against
psql pulling the catalogs they read with \copy, best of -runs, and prints
a table of seconds and ratios. The first run of a shape builds its
cluster and keeps it in -dir: about half a minute and 0.5 GB for 14k, ten
minutes and 4 GB for 140k. See docs/bench.md.

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
	o := options{bin: bin, runs: *runs, profiles: *profiles, timeout: *timeout, keepFiles: *keep}
	for _, n := range names {
		if err := bench(n, *dir, *rebuild, o); err != nil {
			atExit()
			fail(err)
		}
	}
}

type options struct {
	bin       string
	runs      int
	profiles  string
	timeout   time.Duration
	keepFiles bool
}

// atExit removes what this run built (its pgaegis binary).
var atExit = func() {}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// The reference: the catalogs a policy export must read, raw. Cluster
// ones once, the rest in every database.
var (
	clusterCatalogs = []string{
		`SELECT * FROM pg_roles`,
		`SELECT * FROM pg_auth_members`,
		`SELECT oid, datname, datdba, datallowconn, datistemplate, datacl FROM pg_database`,
		`SELECT * FROM pg_db_role_setting`,
	}
	databaseCatalogs = []string{
		`SELECT oid, nspname, nspowner, nspacl FROM pg_namespace`,
		`SELECT oid, relname, relnamespace, relkind, relowner, relacl, relrowsecurity, relforcerowsecurity FROM pg_class`,
		`SELECT attrelid, attname, attnum, attacl FROM pg_attribute WHERE attacl IS NOT NULL`,
		`SELECT oid, proname, pronamespace, proowner, proacl FROM pg_proc`,
		`SELECT * FROM pg_default_acl`,
		`SELECT oid, polname, polrelid, polcmd, polpermissive, polroles, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy`,
	}
)

// timing is one side of a comparison: the best run's wall time, its own
// CPU and the server's.
type timing struct {
	wall, cpu, server time.Duration
	rss               int64 // KiB, the most of any run
	runs              int
}

func (t *timing) add(wall, cpu, server time.Duration, rss int64) {
	if t.runs == 0 || wall < t.wall {
		t.wall, t.cpu, t.server = wall, cpu, server
	}
	t.rss = max(t.rss, rss)
	t.runs++
}

// row is one line of the table.
type row struct {
	name, note string
	t          timing
}

func bench(name, dir string, rebuild bool, o options) error {
	ctx := context.Background()
	c, err := bigcat.Open(ctx, dir, name, rebuild, func(s string) { fmt.Println(s) })
	if err != nil {
		return err
	}
	defer c.Stop()
	defer c.StopOnSignal(atExit)()
	if o.runs == 0 {
		return nil
	}
	work, err := os.MkdirTemp(dir, "work-"+name+"-")
	if err != nil {
		return err
	}
	if !o.keepFiles {
		defer os.RemoveAll(work)
	}
	// The commands run as the server's OS user: the files are theirs.
	if err := c.Chown(work); err != nil {
		return err
	}
	b := &runner{c: c, o: o, shape: name, work: work}
	exported := filepath.Join(work, "export.yaml")
	changed := filepath.Join(work, "changed.yaml")
	// The applies' journals (the state before, as a file each) stay with
	// the work files, not in the server user's state directory.
	journal := filepath.Join(work, "journal")
	rows := []*row{{name: "reference: catalog pull (psql \\copy)"}, {name: "export"}, {name: "plan of the export"},
		{name: "plan of the changed file"}, {name: "apply --check (changed)"}, {name: "apply (changed)"},
		{name: "apply (back to the export)"}, {name: "plan after apply (verification)"}}
	pull, exp, planSame, planChanged, check, apply, back, verify := rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], rows[6], rows[7]
	var size int64
	var changes changeSummary
	for i := 0; i < o.runs; i++ {
		last := i == o.runs-1
		s0 := c.ServerCPU()
		p, err := bigcat.PullQueries(c.Conn(), c.DBs, clusterCatalogs, databaseCatalogs)
		if err != nil {
			return err
		}
		server := c.ServerCPU() - s0
		pull.t.add(p.Wall, p.CPU, server, 0)
		fmt.Printf("  run %d: pull %s (psql CPU %s, server CPU %s)\n", i+1, ms(p.Wall), ms(p.CPU), ms(server))

		if _, err := b.time(exp, last, "export", []string{"access", "policy", "export", "-d", "postgres", "-o", exported}, 0); err != nil {
			return err
		}
		st, err := os.Stat(exported)
		if err != nil {
			return err
		}
		size = st.Size()
		n, err := b.plan(planSame, last, exported)
		if err != nil {
			return err
		}
		if n.steps != 0 {
			return fmt.Errorf("the plan of a fresh export is not empty: %s (first statements: %s)", n, n.first)
		}
		fmt.Println("    plan steps: 0")
		if i == 0 {
			if changes, err = change(exported, changed); err != nil {
				return err
			}
			c.Chown(changed)
			fmt.Printf("    changed file: %s\n", changes)
		}
		n, err = b.plan(planChanged, last, changed)
		if err != nil {
			return err
		}
		if n.steps == 0 {
			return errors.New("the plan of the changed file is empty")
		}
		planChanged.note = n.String()
		fmt.Printf("    plan of the changed file: %s\n", n)
		if _, err := b.time(check, last, "apply-check", []string{"access", "policy", "apply", changed, "-d", "postgres", "--check"}, 0); err != nil {
			return err
		}
		if n, err := b.plan(nil, false, changed); err != nil || n.steps == 0 {
			return fmt.Errorf("apply --check changed the server (the plan of the changed file afterwards: %v, %v)", n, err)
		}
		if _, err := b.time(apply, last, "apply", []string{"access", "policy", "apply", changed, "-d", "postgres", "--yes", "--journal-dir", journal}, 0); err != nil {
			return b.spoiled(err)
		}
		if n, err := b.plan(verify, last, changed); err != nil || n.steps != 0 {
			return b.spoiled(fmt.Errorf("the plan of the changed file after applying it is not empty: %v %v", n, err))
		}
		if _, err := b.time(back, last, "apply-back", []string{"access", "policy", "apply", exported, "-d", "postgres", "--yes", "--journal-dir", journal}, 0); err != nil {
			return b.spoiled(err)
		}
		if n, err := b.plan(verify, false, exported); err != nil || n.steps != 0 {
			return b.spoiled(fmt.Errorf("the plan of the export after applying it back is not empty: %v %v", n, err))
		}
		fmt.Println("    applied and back; both verification plans empty")
	}
	exp.note = fmt.Sprintf("%.1f MB", float64(size)/1e6)
	check.note, apply.note = "executed, rolled back", changes.String()
	back.note = "the export, onto the changed server"
	verify.note = "both plan steps: 0"
	fmt.Printf("\nshape %s (%d databases, %d tables, %d roles), best of %d; ratio = seconds / the pull's:\n\n",
		name, c.Shape.DBs, c.Shape.Tables, c.Shape.Roles, o.runs)
	fmt.Println("| step | seconds | ratio | CPU (pgaegis + server) | peak RSS | notes |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		rss := ""
		if r.t.rss > 0 {
			rss = fmt.Sprintf("%d MB", r.t.rss>>10)
		}
		fmt.Printf("| %s | %.2f | %.2f | %.2f + %.2f s | %s | %s |\n", r.name, r.t.wall.Seconds(), r.t.wall.Seconds()/pull.t.wall.Seconds(),
			r.t.cpu.Seconds(), r.t.server.Seconds(), rss, r.note)
	}
	if o.keepFiles {
		fmt.Printf("\nfiles kept: %s, %s\n", exported, changed)
	}
	return nil
}

// runner runs pgaegis commands against one cluster.
type runner struct {
	c     *bigcat.Cluster
	o     options
	shape string
	work  string
}

// time runs pgaegis args (connection flags added), adds the figures to r
// (when set) and asks for profiles on the last run.
func (b *runner) time(r *row, last bool, label string, args []string, ok ...int) (bigcat.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.o.timeout)
	defer cancel()
	var env []string
	if b.o.profiles != "" && last && r != nil {
		env = b.c.ProfileEnv(b.o.profiles, fmt.Sprintf("policy-%s-%s", b.shape, label))
	}
	args = append(args[:3:3], append(b.c.ConnArgs(), args[3:]...)...)
	s0 := b.c.ServerCPU()
	res, err := b.c.Run(ctx, b.o.bin, args, env, ok...)
	if err != nil {
		return res, err
	}
	if r != nil {
		server := b.c.ServerCPU() - s0
		r.t.add(res.Wall, res.CPU, server, res.MaxRSS)
		fmt.Printf("    %s: %s (CPU %s, server CPU %s, peak RSS %d MB)\n", label, ms(res.Wall), ms(res.CPU), ms(server), res.MaxRSS>>10)
	}
	return res, nil
}

// planned is what a plan holds.
type planned struct {
	steps, statements int
	first             string
}

func (p planned) String() string {
	return fmt.Sprintf("%d steps, %d statements", p.steps, p.statements)
}

// plan times `policy plan FILE --format json` and counts its steps and
// statements; exit 0 (nothing to do) and 1 (steps) both succeed.
func (b *runner) plan(r *row, last bool, file string) (planned, error) {
	res, err := b.time(r, last, "plan-"+strings.TrimSuffix(filepath.Base(file), ".yaml"),
		[]string{"access", "policy", "plan", file, "-d", "postgres", "--format", "json"}, 0, 1)
	if err != nil {
		return planned{}, err
	}
	var p plan.Plan
	if err := json.Unmarshal(res.Stdout, &p); err != nil {
		return planned{}, fmt.Errorf("plan %s: reading its JSON: %v", file, err)
	}
	n := planned{steps: len(p.Steps)}
	for _, s := range p.Steps {
		n.statements += len(s.SQL)
		if n.first == "" && len(s.SQL) > 0 {
			n.first = firstLine(s.SQL[0], 200)
		}
	}
	if (res.Exit == 0) != (n.steps == 0) {
		return n, fmt.Errorf("plan %s: exit %d with %s", file, res.Exit, n)
	}
	return n, nil
}

// spoiled marks the cluster for a rebuild: an apply failed or did not
// come back, so the next run would time another catalog.
func (b *runner) spoiled(err error) error {
	if e := b.c.Spoil(); e != nil {
		return fmt.Errorf("%v (and marking the cluster for a rebuild: %v)", err, e)
	}
	return fmt.Errorf("%v\n(the cluster is marked for a rebuild on the next run)", err)
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// sortedKeys of a map, for deterministic changes.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
