package inspect

import (
	"context"
	"os"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// estate is the planted state the real-server tests read: every kind of
// thing Read must see, with hostile names.
func estate(major int) (cluster []string, appdb []string) {
	cluster = []string{
		`CREATE ROLE owner_r NOLOGIN`,
		`CREATE ROLE app LOGIN CONNECTION LIMIT 20 PASSWORD 'x-secret-1'`,
		`CREATE ROLE "we""ird.role
nl" CREATEDB VALID UNTIL '2031-01-02 03:04:05+00'`,
		`CREATE ROLE ro NOINHERIT BYPASSRLS`,
		`CREATE ROLE grp`,
		`CREATE ROLE grp2`,
		`GRANT grp TO app`,
		`GRANT grp2 TO ro WITH ADMIN OPTION`,
		`GRANT pg_read_all_settings TO ro`,
		`ALTER ROLE app SET search_path = 'public'`,
		`CREATE DATABASE appdb OWNER owner_r`,
		`CREATE DATABASE closed`,
		`REVOKE CONNECT ON DATABASE closed FROM PUBLIC`,
		`REVOKE TEMPORARY ON DATABASE appdb FROM PUBLIC`,
		`GRANT CONNECT ON DATABASE appdb TO app`,
		`ALTER ROLE app IN DATABASE appdb SET work_mem = '8MB'`,
	}
	if major >= 16 {
		cluster = append(cluster,
			`GRANT grp TO ro WITH INHERIT TRUE, SET FALSE`,
			`GRANT grp2 TO app WITH INHERIT FALSE GRANTED BY ro`)
	}
	appdb = []string{
		`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`,
		`CREATE SCHEMA s AUTHORIZATION owner_r`,
		`CREATE SCHEMA "x.y""z" AUTHORIZATION app`,
		`GRANT USAGE ON SCHEMA s TO app, ro`,
		`CREATE TABLE s.t1 (id int, secret text, tenant int)`,
		`CREATE TABLE s.t2 (id int)`,
		`CREATE TABLE "x.y""z"."t.
3" (id int)`,
		`CREATE VIEW s.v AS SELECT id FROM s.t1`,
		`CREATE SEQUENCE s.q`,
		`ALTER TABLE s.t1 OWNER TO owner_r`,
		`GRANT SELECT, INSERT ON s.t1 TO app WITH GRANT OPTION`,
		`GRANT SELECT ON s.t2, s.v TO ro`,
		`GRANT SELECT (id, tenant), UPDATE (tenant) ON s.t1 TO ro`,
		`REVOKE DELETE ON s.t2 FROM CURRENT_USER`,
		`GRANT USAGE ON SEQUENCE s.q TO app`,
		`CREATE FUNCTION s.f(a int, "b c" text) RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		`CREATE FUNCTION s.g() RETURNS int LANGUAGE sql AS 'SELECT 2'`,
		`REVOKE EXECUTE ON FUNCTION s.g() FROM PUBLIC`,
		`GRANT EXECUTE ON FUNCTION s.g() TO app`,
		`CREATE PROCEDURE s.p(int) LANGUAGE sql AS 'SELECT 1'`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE owner_r GRANT SELECT ON TABLES TO ro`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE owner_r REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE owner_r IN SCHEMA s GRANT INSERT, UPDATE ON TABLES TO app`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA s GRANT USAGE ON SEQUENCES TO ro`,
		`ALTER TABLE s.t1 ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE s.t2 ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE s.t2 FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY tenant ON s.t1 FOR SELECT TO app, ro USING (tenant = current_setting('app.tenant', true)::int)`,
		`CREATE POLICY "w""p" ON s.t1 AS RESTRICTIVE FOR UPDATE USING (true) WITH CHECK (tenant > 0)`,
		`CREATE POLICY allp ON s.t2 USING (id > 0)`,
	}
	if major >= 17 {
		appdb = append(appdb, `GRANT MAINTAIN ON s.t2 TO app`)
	}
	return cluster, appdb
}

func plant(t *testing.T, major int, srvExec func(ctx context.Context, db string, sql ...string) error) {
	t.Helper()
	cl, app := estate(major)
	ctx := pgtest.Ctx(t)
	if err := srvExec(ctx, "postgres", cl...); err != nil {
		t.Fatal(err)
	}
	if err := srvExec(ctx, "appdb", app...); err != nil {
		t.Fatal(err)
	}
}
