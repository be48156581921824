package inspect

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/policy"
)

// BenchmarkRead measures Read, Export and Marshal on a large estate
// against a bare pull of pg_class (SELECT oid, relname, relacl), on one
// server. Creating the estate takes minutes, so it runs only when
// PGAEGIS_POLICY_SCALE is set: "TABLES,ROLES" (e.g. "140000,20000").
//
//	PGAEGIS_POLICY_SCALE=140000,20000 go test -run '^$' -bench BenchmarkRead -benchtime 3x ./internal/policy/inspect/
func BenchmarkRead(b *testing.B) {
	scale := os.Getenv("PGAEGIS_POLICY_SCALE")
	if scale == "" {
		b.Skip("set PGAEGIS_POLICY_SCALE=TABLES,ROLES (e.g. 140000,20000) to build the estate and measure")
	}
	var tables, roles int
	if _, err := fmt.Sscanf(scale, "%d,%d", &tables, &roles); err != nil || tables < 1 || roles < 100 {
		b.Fatalf("PGAEGIS_POLICY_SCALE=%q: want TABLES,ROLES with at least 100 roles", scale)
	}
	srv := pgtest.Start(b, localpg.Options{Conf: []string{"fsync = off", "synchronous_commit = off", "full_page_writes = off", "max_wal_size = 4GB"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	start := time.Now()
	if err := srv.Exec(ctx, `CREATE DATABASE big`); err != nil {
		b.Fatal(err)
	}
	// Roles in groups of 100, each a member of one; one group role per
	// hundred; tables in 50 schemas, one in ten granted to a role of its
	// own (many distinct ACLs), the rest to a few shared roles.
	stmts := []string{fmt.Sprintf(`DO $$ BEGIN
		FOR i IN 0..%d LOOP EXECUTE format('CREATE ROLE g%%s', i); END LOOP;
		FOR i IN 0..%d LOOP EXECUTE format('CREATE ROLE r%%s LOGIN IN ROLE g%%s', i, i / 100); END LOOP; END $$`, roles/100-1, roles-1-roles/100)}
	if err := srv.ExecIn(ctx, "big", stmts...); err != nil {
		b.Fatal(err)
	}
	stmts = nil
	for s := 0; s < 50; s++ {
		stmts = append(stmts, fmt.Sprintf(`CREATE SCHEMA s%d`, s), fmt.Sprintf(`GRANT USAGE ON SCHEMA s%d TO g0`, s))
	}
	const batch = 2000
	for lo := 0; lo < tables; lo += batch {
		hi := min(lo+batch, tables) - 1
		stmts = append(stmts, fmt.Sprintf(`DO $$ BEGIN FOR i IN %d..%d LOOP
			EXECUTE format('CREATE TABLE s%%s.t%%s (id int, v text)', i %% 50, i);
			IF i %% 10 = 0 THEN EXECUTE format('GRANT SELECT, UPDATE ON s%%s.t%%s TO r%%s', i %% 50, i, i %% %d);
			ELSE EXECUTE format('GRANT SELECT ON s%%s.t%%s TO g%%s', i %% 50, i, i %% 3); END IF;
			IF i %% 100 = 0 THEN EXECUTE format('GRANT UPDATE (v) ON s%%s.t%%s TO g1', i %% 50, i); END IF;
			END LOOP; END $$`, lo, hi, roles-1-roles/100))
	}
	if err := srv.ExecIn(ctx, "big", stmts...); err != nil {
		b.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "big", `VACUUM ANALYZE pg_class`, `VACUUM ANALYZE pg_attribute`); err != nil {
		b.Fatal(err)
	}
	b.Logf("estate of %d tables and %d roles built in %s", tables, roles, time.Since(start).Round(time.Second))

	conn := pgtest.Conn(b, srv, "big")
	// A sub-benchmark: the estate above is built once, however many
	// rounds the framework asks for.
	b.Run("read", func(b *testing.B) {
		var pull, read, export, marshal time.Duration
		var size int
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			rows, err := conn.Query(ctx, `SELECT oid, relname, relacl FROM pg_class`)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				var oid uint32
				var name string
				var acl []string
				if err := rows.Scan(&oid, &name, &acl); err != nil {
					b.Fatal(err)
				}
				n++
			}
			rows.Close()
			t1 := time.Now()
			live, err := Read(ctx, srv.ConnConfig("postgres"), Options{Databases: []string{"big"}})
			if err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			f := Export(live, ExportOptions{})
			t3 := time.Now()
			data, err := Marshal(f, nil)
			if err != nil {
				b.Fatal(err)
			}
			t4 := time.Now()
			pull, read, export, marshal = pull+t1.Sub(t0), read+t2.Sub(t1), export+t3.Sub(t2), marshal+t4.Sub(t3)
			size = len(data)
			if got := countTables(live); got != tables {
				b.Fatalf("read %d tables, planted %d", got, tables)
			}
			_ = n
		}
		per := func(d time.Duration) time.Duration { return (d / time.Duration(b.N)).Round(time.Millisecond) }
		b.ReportMetric(float64(per(read).Milliseconds()), "read-ms")
		b.ReportMetric(float64(read)/float64(pull), "read/pull")
		b.Logf("tables=%d roles=%d: pg_class pull %s, Read %s (%.1fx the pull), Export %s, Marshal %s (%s of YAML)",
			tables, roles, per(pull), per(read), float64(read)/float64(pull), per(export), per(marshal), strconv.Itoa(size/1024)+" KiB")
	})
}

func countTables(live *policy.Live) int {
	n := 0
	for _, d := range live.File.Databases {
		for _, s := range d.Schemas {
			n += len(s.Tables)
		}
	}
	return n
}
