// Command access measures the privilege analysis at scale against the
// reference: pulling the same raw catalogs with COPY through psql.
//
//	go run ./bench/access                       # 5 databases, 100k tables, 20k roles
//	go run ./bench/access -tables 20000 -roles 4000   # a quicker run
//
// It starts a throwaway server (loopback only), generates the catalog,
// then prints both times, the ratio and the peak memory of the analysis.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/bench/internal/bigcat"
	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/privileges"
)

func main() {
	dbs := flag.Int("dbs", 5, "databases")
	tables := flag.Int("tables", 100000, "tables in all")
	roles := flag.Int("roles", 20000, "roles")
	grants := flag.Int("grants", 3, "grantees per table besides its owner (at least 2)")
	keep := flag.Duration("keep", 0, "keep the server running this long after the run (for EXPLAIN by hand)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the analysis")
	flag.Parse()
	ctx := context.Background()

	srv, err := localpg.Start(ctx, localpg.Options{Conf: bigcat.Conf})
	if err != nil {
		fail(err)
	}
	defer srv.Stop()
	start := time.Now()
	sh := bigcat.Shape{DBs: *dbs, Tables: *tables, Roles: *roles, Grants: *grants, LoginPercent: 33}
	if err := bigcat.Generate(ctx, srv, sh, nil); err != nil {
		fail(err)
	}
	fmt.Printf("generated %d databases, %d tables, %d roles (chains of 6), ~%d ACL entries in %s\n",
		*dbs, *tables, *roles, sh.ACLEntries(), time.Since(start).Round(time.Second))

	var names []string
	for d := 0; d < *dbs; d++ {
		names = append(names, bigcat.Database(d))
	}
	pull, err := bigcat.Pull(bigcat.Conn{PSQL: bigcat.PSQL(srv), Host: "127.0.0.1", Port: srv.Port, User: srv.AdminUser,
		Env: []string{"PGPASSWORD=" + srv.Password}}, names) // environment, never argv
	if err != nil {
		fail(err)
	}
	raw := pull.Wall
	fmt.Printf("reference: psql \\copy of the same raw catalogs (%s): %s\n", bigcat.Catalogs, raw.Round(time.Millisecond))

	runtime.GC()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true, PasswordBudget: 0, Parallel: 4})
	if err != nil {
		fail(err)
	}
	tCollect := time.Since(t0)
	m := privileges.Build(snap)
	objs := m.Objects(snap)
	tBuild := time.Since(t0) - tCollect
	held := 0
	for _, o := range objs {
		if o.Kind == privileges.Table {
			held += m.Holders(o, privileges.Select)
		}
	}
	chains := m.Escalations(snap)
	total := time.Since(t0)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("pgaegis: collect %s, role closures and objects %s, SELECT holders of %d objects and %d escalation chains %s; total %s\n",
		tCollect.Round(time.Millisecond), tBuild.Round(time.Millisecond), len(objs), len(chains), (total - tCollect - tBuild).Round(time.Millisecond), total.Round(time.Millisecond))
	fmt.Printf("ratio pgaegis / psql COPY: %.2f   peak RSS: %d MB   (role-table SELECT pairs: %d)\n", total.Seconds()/raw.Seconds(), ru.Maxrss/1024, held)
	if *keep > 0 {
		pass := filepath.Join(srv.Dir, "pgpass")
		os.WriteFile(pass, []byte(fmt.Sprintf("127.0.0.1:%d:*:%s:%s\n", srv.Port, srv.AdminUser, srv.Password)), 0o600)
		fmt.Printf("server kept for %s: PGPASSFILE=%s psql -h 127.0.0.1 -p %d -U %s bench0\n", *keep, pass, srv.Port, srv.AdminUser)
		time.Sleep(*keep)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
