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
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/privileges"
)

func main() {
	dbs := flag.Int("dbs", 5, "databases")
	tables := flag.Int("tables", 100000, "tables in all")
	roles := flag.Int("roles", 20000, "roles")
	grants := flag.Int("grants", 3, "grants per table")
	keep := flag.Duration("keep", 0, "keep the server running this long after the run (for EXPLAIN by hand)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the analysis")
	flag.Parse()
	ctx := context.Background()

	srv, err := localpg.Start(ctx, localpg.Options{Conf: []string{"max_locks_per_transaction = 4096", "fsync = off",
		"synchronous_commit = off", "full_page_writes = off", "shared_buffers = 512MB", "max_wal_size = 8GB", "autovacuum = off"}})
	if err != nil {
		fail(err)
	}
	defer srv.Stop()
	start := time.Now()
	generate(ctx, srv, *dbs, *tables, *roles, *grants)
	fmt.Printf("generated %d databases, %d tables, %d roles (chains of 6), ~%d ACL entries in %s\n",
		*dbs, *tables, *roles, *tables**grants, time.Since(start).Round(time.Second))

	raw := timeRaw(srv, *dbs)
	fmt.Printf("reference: psql \\copy of the same raw catalogs (pg_class, pg_namespace, pg_proc, pg_attribute, pg_policy, pg_depend, pg_rewrite, ... per database; roles, memberships, settings cluster-wide): %s\n", raw.Round(time.Millisecond))

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

func generate(ctx context.Context, srv *localpg.Server, dbs, tables, roles, grants int) {
	mustExec(srv.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
		FOR i IN 0..%d LOOP
			EXECUTE format('CREATE ROLE r%%s %%s', i, CASE WHEN i %% 3 = 0 THEN 'LOGIN' ELSE 'NOLOGIN' END);
			IF i %% 6 <> 0 THEN EXECUTE format('GRANT r%%s TO r%%s', i - 1, i); END IF;
			IF i %% 1000 = 999 THEN COMMIT; END IF;
		END LOOP;
		FOR i IN 0..99 LOOP EXECUTE format('GRANT r%%s TO r%%s', (i * 7) %% %d, (i * 13 + 5) %% %d); END LOOP;
	END $$`, roles-1, roles, roles)))
	per := tables / dbs
	for d := 0; d < dbs; d++ {
		name := fmt.Sprintf("bench%d", d)
		mustExec(srv.Exec(ctx, "CREATE DATABASE "+name))
		mustExec(srv.ExecIn(ctx, name, fmt.Sprintf(`DO $$ BEGIN
			FOR s IN 0..19 LOOP EXECUTE format('CREATE SCHEMA s%%s', s); END LOOP;
			FOR i IN 0..%d LOOP
				EXECUTE format('CREATE TABLE s%%s.t%%s (id int, v text)', i %% 20, i);
				FOR g IN 1..%d LOOP
					EXECUTE format('GRANT SELECT%%s ON s%%s.t%%s TO r%%s', CASE WHEN g = 2 THEN ', INSERT' ELSE '' END, i %% 20, i, (i * 31 + g * 977 + %d) %% %d);
				END LOOP;
				IF i %% 500 = 499 THEN COMMIT; END IF;
			END LOOP;
			EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA s0 TO PUBLIC';
		END $$`, per-1, grants, d*7919, roles)))
	}
}

func mustExec(err error) {
	if err != nil {
		fail(err)
	}
}

// timeRaw pulls the raw catalogs the analysis needs with psql's \copy.
func timeRaw(srv *localpg.Server, dbs int) time.Duration {
	psql := filepath.Join(srv.BinDir, "psql")
	// The same catalogs the collection reads, raw (per database, then
	// cluster-wide from the first).
	queries := []string{
		`\copy (SELECT oid, relname, relnamespace, relkind, relowner, relacl, relrowsecurity, relforcerowsecurity FROM pg_class) TO '/dev/null'`,
		`\copy (SELECT oid, nspname, nspowner, nspacl FROM pg_namespace) TO '/dev/null'`,
		`\copy (SELECT oid, proname, pronamespace, proowner, prosecdef, proconfig, proacl, prosrc FROM pg_proc) TO '/dev/null'`,
		`\copy (SELECT attrelid, attname, attnum, attacl FROM pg_attribute WHERE attacl IS NOT NULL OR attname IN ('tenant_id', 'org_id')) TO '/dev/null'`,
		`\copy (SELECT * FROM pg_policy) TO '/dev/null'`,
		`\copy (SELECT classid, objid, refobjid, deptype FROM pg_depend WHERE classid = 'pg_rewrite'::regclass OR deptype = 'e') TO '/dev/null'`,
		`\copy (SELECT oid, ev_class FROM pg_rewrite) TO '/dev/null'`,
		`\copy (SELECT * FROM pg_default_acl) TO '/dev/null'`,
		`\copy (SELECT * FROM pg_extension) TO '/dev/null'`,
		`\copy (SELECT * FROM pg_language) TO '/dev/null'`,
		`\copy (SELECT * FROM pg_foreign_server) TO '/dev/null'`,
		`\copy (SELECT * FROM pg_largeobject_metadata) TO '/dev/null'`,
	}
	start := time.Now()
	for d := -1; d < dbs; d++ {
		db := "postgres"
		qs := []string{`\copy (SELECT * FROM pg_roles) TO '/dev/null'`, `\copy (SELECT * FROM pg_auth_members) TO '/dev/null'`,
			`\copy (SELECT oid, datname, datacl FROM pg_database) TO '/dev/null'`, `\copy (SELECT * FROM pg_settings) TO '/dev/null'`,
			`\copy (SELECT * FROM pg_db_role_setting) TO '/dev/null'`, `\copy (SELECT * FROM pg_hba_file_rules) TO '/dev/null'`,
			`\copy (SELECT * FROM pg_file_settings) TO '/dev/null'`, `\copy (SELECT rolname, rolpassword FROM pg_authid) TO '/dev/null'`}
		if d >= 0 {
			qs = nil
		}
		if d >= 0 {
			db = fmt.Sprintf("bench%d", d)
		}
		qs = append(qs, queries...) // every database, the first included
		args := []string{"-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port), "-U", srv.AdminUser, "-d", db}
		for _, q := range qs {
			args = append(args, "-c", q)
		}
		cmd := exec.Command(psql, args...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+srv.Password) // environment, never argv
		if out, err := cmd.CombinedOutput(); err != nil {
			fail(fmt.Errorf("psql: %v: %s", err, out))
		}
	}
	return time.Since(start)
}
