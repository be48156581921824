// Package bigcat builds large catalogs on a localpg server for the
// benchmarks (roles in membership chains, many tables with grants, spread
// over several databases) and times the reference for them: psql pulling
// the same catalogs with COPY.
package bigcat

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
)

// Conf are the server settings for building a catalog of 100k+ tables
// quickly: one DO block creates hundreds of tables per transaction, and
// nothing needs to survive a crash.
var Conf = []string{"max_locks_per_transaction = 4096", "fsync = off", "synchronous_commit = off",
	"full_page_writes = off", "shared_buffers = 512MB", "max_wal_size = 8GB", "autovacuum = off"}

// Shape says what to generate. Roles are r0..r<Roles-1>: each role but
// every sixth is a member of the one before it (chains six deep), plus
// up to 100 memberships across chains. Database d is bench<d>, with 20 schemas
// s0..s19 and Tables/DBs tables spread over them; schema s0's tables are
// readable by PUBLIC.
type Shape struct {
	DBs, Tables, Roles int
	// Grants is how many roles each table is granted to besides its
	// owner (SELECT, and SELECT, INSERT, UPDATE for the last).
	Grants int
	// ExtraGrantEvery gives every n-th table one more grantee (0: none).
	ExtraGrantEvery int
	// LoginPercent of the roles can log in.
	LoginPercent int

	// The rest is what an audit looks at beyond tables and roles; the
	// zero values leave it out.

	// Groups are NOLOGIN roles g0..g<Groups-1>; every fourth role belongs
	// to one, and g1 is a member of pg_read_all_data.
	Groups int
	// Passwords: one role in ten gets a SCRAM password, one in a hundred
	// an md5 one, one in five hundred its own name as password.
	Passwords bool
	// SchemaOwners makes each schema and its tables belong to an ordinary
	// role (the tables' grants then name it as grantor) instead of the
	// bootstrap superuser.
	SchemaOwners bool
	// ColumnGrantEvery gives every n-th table a column grant (0: none).
	ColumnGrantEvery int
	// DefaultACLs per database (ALTER DEFAULT PRIVILEGES of schema owners).
	DefaultACLs int
	// Functions per database (plain SQL functions in the schemas).
	Functions int
	// SecDefFunctions in all: SECURITY DEFINER functions owned by the
	// bootstrap superuser and executable by PUBLIC, spread over the
	// first databases.
	SecDefFunctions int
}

// ACLEntries estimates the aclitems the shape produces on tables.
func (sh Shape) ACLEntries() int {
	per := 1 + sh.Grants // the owner's own entry once anything is granted
	n := sh.Tables * per
	if sh.ExtraGrantEvery > 0 {
		n += sh.Tables / sh.ExtraGrantEvery
	}
	if sh.ColumnGrantEvery > 0 {
		n += sh.Tables / sh.ColumnGrantEvery
	}
	return n + sh.Tables/20 // PUBLIC on s0
}

// Database is the name of database d.
func Database(d int) string { return fmt.Sprintf("bench%d", d) }

// Generate creates the shape on srv, two databases at a time (a catalog
// build is CPU-bound on the server). progress, when set, is told what is
// being built.
func Generate(ctx context.Context, srv *localpg.Server, sh Shape, progress func(string)) error {
	if progress == nil {
		progress = func(string) {}
	}
	progress(fmt.Sprintf("%d roles", sh.Roles))
	if err := srv.Exec(ctx, rolesSQL(sh)); err != nil {
		return err
	}
	if sh.Passwords {
		progress("passwords")
		if err := srv.Exec(ctx, passwordsSQL(sh)); err != nil {
			return err
		}
	}
	sem := make(chan struct{}, 2)
	errs := make([]error, sh.DBs)
	var wg sync.WaitGroup
	for d := 0; d < sh.DBs; d++ {
		name := Database(d)
		if err := srv.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return err
		}
		wg.Add(1)
		go func(d int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			progress(fmt.Sprintf("database %s: %d tables", name, sh.Tables/sh.DBs))
			errs[d] = srv.ExecIn(ctx, name, databaseSQL(sh, d)...)
		}(d)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	// The grants rewrote each pg_class row several times; a real catalog
	// has been vacuumed since. The reads then see the tuples, not the bloat.
	progress("vacuum")
	for d := -1; d < sh.DBs; d++ {
		db := "postgres"
		if d >= 0 {
			db = Database(d)
		}
		if err := srv.ExecIn(ctx, db, "VACUUM (FREEZE, ANALYZE)"); err != nil {
			return err
		}
	}
	return srv.Exec(ctx, "CHECKPOINT")
}

// SecDefFunction is the k-th PUBLIC-executable SECURITY DEFINER function
// (EXECUTE for PUBLIC is the default), owned by the bootstrap superuser
// and running dynamic SQL, as many a real cluster carries: an escalation
// path for every login role.
func SecDefFunction(k int) string {
	return fmt.Sprintf(`CREATE OR REPLACE FUNCTION public.secdef%d(t text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	AS $f$ DECLARE n bigint; BEGIN EXECUTE 'SELECT count(*) FROM ' || t INTO n; RETURN n; END $f$`, k)
}

func rolesSQL(sh Shape) string {
	var b strings.Builder
	fmt.Fprintf(&b, `DO $$ BEGIN
	FOR i IN 0..%d LOOP
		EXECUTE format('CREATE ROLE r%%s %%s', i, CASE WHEN i %% 100 < %d THEN 'LOGIN' ELSE 'NOLOGIN' END);
		IF i %% 6 <> 0 THEN EXECUTE format('GRANT r%%s TO r%%s', i - 1, i); END IF;
		IF i %% 1000 = 999 THEN COMMIT; END IF;
	END LOOP;
	FOR i IN 0..99 LOOP
		BEGIN
			EXECUTE format('GRANT r%%s TO r%%s', (i * 7) %% %d, (i * 13 + 5) %% %d);
		EXCEPTION WHEN invalid_grant_operation THEN -- would close a loop (few roles)
		END;
	END LOOP;
`, sh.Roles-1, sh.LoginPercent, sh.Roles, sh.Roles)
	if sh.Groups > 0 {
		fmt.Fprintf(&b, `	FOR g IN 0..%d LOOP EXECUTE format('CREATE ROLE g%%s NOLOGIN', g); END LOOP;
	GRANT pg_read_all_data TO g1;
	FOR i IN 0..%d BY 4 LOOP
		EXECUTE format('GRANT g%%s TO r%%s', (i / 4) %% %d, i);
		IF i %% 4000 = 3996 THEN COMMIT; END IF;
	END LOOP;
`, sh.Groups-1, sh.Roles-1, sh.Groups)
	}
	b.WriteString("END $$")
	return b.String()
}

// passwordsSQL sets the passwords; the server computes the verifiers, as
// for a real ALTER ROLE (SCRAM costs it a few milliseconds each).
func passwordsSQL(sh Shape) string {
	return fmt.Sprintf(`DO $$ BEGIN
	FOR i IN 0..%d LOOP
		IF i %% 500 = 1 THEN
			EXECUTE format('ALTER ROLE r%%s PASSWORD %%L', i, 'r' || i);
		ELSIF i %% 100 = 7 THEN
			PERFORM set_config('password_encryption', 'md5', true);
			EXECUTE format('ALTER ROLE r%%s PASSWORD %%L', i, md5('bench' || i));
			PERFORM set_config('password_encryption', 'scram-sha-256', true);
		ELSIF i %% 10 = 1 THEN
			EXECUTE format('ALTER ROLE r%%s PASSWORD %%L', i, md5('bench' || i));
		END IF;
		IF i %% 1000 = 999 THEN COMMIT; END IF;
	END LOOP;
END $$`, sh.Roles-1)
}

// schemaOwner is the role that owns schema s of database d.
func schemaOwner(sh Shape, d, s int) string {
	if !sh.SchemaOwners {
		return "CURRENT_USER"
	}
	return "r" + strconv.Itoa((s*997+d*131+3)%sh.Roles)
}

func databaseSQL(sh Shape, d int) []string {
	per := sh.Tables / sh.DBs
	var out []string
	var b strings.Builder
	b.WriteString("DO $$ BEGIN\n")
	for s := 0; s < 20; s++ {
		fmt.Fprintf(&b, "\tCREATE SCHEMA s%d AUTHORIZATION %s;\n", s, schemaOwner(sh, d, s))
	}
	b.WriteString("END $$")
	out = append(out, b.String())
	// Tables schema by schema, created by the schema's owner, so that the
	// owner and the grantor are who they would be on a real server.
	for s := 0; s < 20; s++ {
		b.Reset()
		if sh.SchemaOwners {
			// Its own statement: a DO that commits must run alone.
			out = append(out, "SET ROLE "+schemaOwner(sh, d, s))
		}
		fmt.Fprintf(&b, `DO $$ DECLARE n int := 0; g text; BEGIN
	FOR i IN %d..%d BY 20 LOOP
		EXECUTE format('CREATE TABLE s%d.t%%s (id int, v text)', i);
		g := '';
		FOR k IN 1..%d LOOP
			IF k > 1 THEN g := g || ', '; END IF;
			g := g || 'r' || ((i * 31 + k * 977 + %d) %% %d);
		END LOOP;
		EXECUTE format('GRANT SELECT ON s%d.t%%s TO %%s', i, g);
		EXECUTE format('GRANT SELECT, INSERT, UPDATE ON s%d.t%%s TO r%%s', i, (i * 31 + %d) %% %d);
`, s, per-1, s, sh.Grants-1, d*7919, sh.Roles, s, s, d*7919+7, sh.Roles)
		if sh.ExtraGrantEvery > 0 {
			fmt.Fprintf(&b, "\t\tIF (i / 20) %% %d = 0 THEN EXECUTE format('GRANT SELECT ON s%d.t%%s TO %%s', i, %s); END IF;\n",
				sh.ExtraGrantEvery, s, grantee(sh, "i * 17 + 3"))
		}
		if sh.ColumnGrantEvery > 0 {
			fmt.Fprintf(&b, "\t\tIF (i / 20) %% %d = 1 THEN EXECUTE format('GRANT SELECT (v), UPDATE (v) ON s%d.t%%s TO %%s', i, %s); END IF;\n",
				sh.ColumnGrantEvery, s, grantee(sh, "i * 53 + 11"))
		}
		if s == 0 {
			b.WriteString("\t\tEXECUTE format('GRANT SELECT ON s0.t%s TO PUBLIC', i);\n")
		}
		b.WriteString("\t\tn := n + 1;\n\t\tIF n % 500 = 0 THEN COMMIT; END IF;\n\tEND LOOP;\nEND $$")
		out = append(out, b.String())
		if sh.SchemaOwners {
			out = append(out, "RESET ROLE")
		}
	}
	b.Reset()
	b.WriteString("DO $$ BEGIN\n")
	if sh.Functions > 0 {
		fmt.Fprintf(&b, `	FOR i IN 0..%d LOOP
		EXECUTE format('CREATE FUNCTION s%%s.f%%s(a int) RETURNS int LANGUAGE sql STABLE AS %%L', i %% 20, i, 'SELECT a + ' || i);
	END LOOP;
`, sh.Functions-1)
	}
	for k := 0; k < sh.DefaultACLs; k++ {
		s := k % 20
		fmt.Fprintf(&b, "\tALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA s%d GRANT SELECT ON TABLES TO r%d;\n",
			schemaOwner(sh, d, s), s, (k*4001+d*17+9)%sh.Roles)
	}
	for k := 0; k < sh.SecDefFunctions; k++ {
		if k%sh.DBs == d {
			b.WriteString("\t" + SecDefFunction(k) + ";\n")
		}
	}
	// Schema privileges: USAGE for PUBLIC on a few, CREATE on one.
	b.WriteString("\tGRANT USAGE ON SCHEMA s0, s1, s2 TO PUBLIC;\n\tGRANT CREATE ON SCHEMA s3 TO PUBLIC;\nEND $$")
	out = append(out, b.String())
	return out
}

// grantee is a role expression for format(): a group role when the shape
// has them (every other time), an ordinary role otherwise.
func grantee(sh Shape, expr string) string {
	if sh.Groups > 0 {
		return fmt.Sprintf("CASE WHEN i %% 40 < 20 THEN 'g' || ((%s) %% %d) ELSE 'r' || ((%s) %% %d) END", expr, sh.Groups, expr, sh.Roles)
	}
	return fmt.Sprintf("'r' || ((%s) %% %d)", expr, sh.Roles)
}

// Conn says how psql reaches the server: host is a socket directory or
// an address; env holds what psql needs besides (PGPASSWORD, never argv).
type Conn struct {
	PSQL        string
	Host        string
	Port        int
	User        string
	Env         []string
	SysProcAttr func(*exec.Cmd) // runs psql as another OS user, when set
}

// clusterQueries are read once, from the first database: what the
// collector reads cluster-wide.
var clusterQueries = []string{
	`SELECT * FROM pg_roles`,
	`SELECT rolname, rolpassword FROM pg_authid`,
	`SELECT * FROM pg_auth_members`,
	`SELECT oid, datname, datdba, datallowconn, datistemplate, datacl FROM pg_database`,
	`SELECT * FROM pg_settings`,
	`SELECT * FROM pg_db_role_setting`,
	`SELECT * FROM pg_hba_file_rules`,
	`SELECT * FROM pg_ident_file_mappings`,
	`SELECT * FROM pg_file_settings`,
	`SELECT * FROM pg_parameter_acl`,
	`SELECT * FROM pg_tablespace`,
	`SELECT * FROM pg_stat_replication`,
	`SELECT * FROM pg_stat_archiver`,
}

// databaseQueries are read in every database: the catalogs the
// collector reads there, raw.
var databaseQueries = []string{
	`SELECT oid, relname, relnamespace, relkind, relowner, relacl, relrowsecurity, relforcerowsecurity FROM pg_class`,
	`SELECT oid, nspname, nspowner, nspacl FROM pg_namespace`,
	`SELECT oid, proname, pronamespace, proowner, prolang, prosecdef, proconfig, proacl, prosrc FROM pg_proc`,
	`SELECT attrelid, attname, attnum, attacl FROM pg_attribute WHERE attacl IS NOT NULL OR attname IN ('tenant_id', 'org_id')`,
	`SELECT * FROM pg_policy`,
	`SELECT classid, objid, refobjid, deptype FROM pg_depend WHERE classid = 'pg_rewrite'::regclass OR deptype = 'e'`,
	`SELECT oid, ev_class FROM pg_rewrite`,
	`SELECT * FROM pg_default_acl`,
	`SELECT * FROM pg_extension`,
	`SELECT * FROM pg_language`,
	`SELECT * FROM pg_foreign_server`,
	`SELECT * FROM pg_user_mappings`,
	`SELECT * FROM pg_largeobject_metadata`,
}

// Catalogs names what Pull reads, for the benchmarks' output.
const Catalogs = "pg_class, pg_namespace, pg_proc, pg_attribute, pg_policy, pg_depend, pg_rewrite, pg_default_acl, ... per database; " +
	"pg_roles, pg_authid, pg_auth_members, pg_database, pg_settings, pg_hba_file_rules, ... once"

// Timing is how long a pull took, and the CPU time psql used.
type Timing struct{ Wall, CPU time.Duration }

// Pull times psql pulling the raw catalogs with COPY to /dev/null: the
// cluster-wide ones from "postgres", then each database's, one psql per
// database, one after the other.
func Pull(c Conn, dbs []string) (Timing, error) {
	return PullQueries(c, dbs, clusterQueries, databaseQueries)
}

// PullQueries is Pull of other catalogs: cluster once (from "postgres",
// before its perDB ones), perDB in every database.
func PullQueries(c Conn, dbs []string, cluster, perDB []string) (Timing, error) {
	var t Timing
	start := time.Now()
	for i, db := range append([]string{"postgres"}, dbs...) {
		qs := perDB
		if i == 0 {
			qs = append(append([]string{}, cluster...), perDB...)
		}
		args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", c.Host, "-p", strconv.Itoa(c.Port), "-U", c.User, "-d", db}
		for _, q := range qs {
			args = append(args, "-c", `\copy (`+q+`) TO '/dev/null'`)
		}
		cmd := exec.Command(c.PSQL, args...)
		cmd.Env = append(os.Environ(), c.Env...)
		if c.SysProcAttr != nil {
			c.SysProcAttr(cmd)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return t, fmt.Errorf("psql %s: %v: %s", db, err, out)
		}
		t.CPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	t.Wall = time.Since(start)
	return t, nil
}

// PSQL is the psql beside the server's binaries or, where those come
// without client programs (the npm registry's), the newest packaged one
// or psql on PATH: COPY of a SELECT works across majors.
func PSQL(srv *localpg.Server) string {
	p := filepath.Join(srv.BinDir, "psql")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if ps, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql"); len(ps) > 0 {
		sort.Slice(ps, func(i, j int) bool { return majorOf(ps[i]) < majorOf(ps[j]) })
		return ps[len(ps)-1]
	}
	if p, err := exec.LookPath("psql"); err == nil {
		return p
	}
	return p
}

// majorOf is the major in a /usr/lib/postgresql/<major>/bin path.
func majorOf(p string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return n
}
