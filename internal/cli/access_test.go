package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestAccessAndEscalations(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	must(t, srv.Exec(ctx,
		`CREATE ROLE boss SUPERUSER NOLOGIN`, `CREATE ROLE ops NOLOGIN`, `GRANT boss TO ops`,
		`CREATE ROLE dev LOGIN PASSWORD 'dev-pw-9'`, `GRANT ops TO dev`,
		`CREATE ROLE app LOGIN PASSWORD 'app-pw-9'`, `CREATE ROLE app_ro NOLOGIN`, `GRANT app_ro TO app`,
		`CREATE SCHEMA shop`, `CREATE TABLE shop.orders (id int, total numeric)`, `CREATE TABLE shop.secrets (id int, pin text)`,
		`GRANT USAGE ON SCHEMA shop TO app_ro`, `GRANT SELECT ON shop.orders TO app_ro`, `GRANT SELECT (id) ON shop.secrets TO app`,
		`GRANT INSERT ON shop.orders TO PUBLIC`,
		`CREATE FUNCTION public.run_sql(q text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$ DECLARE n bigint; BEGIN EXECUTE 'SELECT ' || q INTO n; RETURN n; END $$`,
		`GRANT ALTER SYSTEM ON PARAMETER archive_command TO app`,
	))
	// plpython3u ignores lanpltrusted (plperlu would switch to its Safe
	// interpreter): marked trusted, it runs any Python as the OS user.
	py := false
	if _, err := os.Stat("/usr/share/postgresql/15/extension/plpython3u.control"); err == nil {
		py = true
		must(t, srv.Exec(ctx, `CREATE EXTENSION plpython3u`, `UPDATE pg_language SET lanpltrusted = true WHERE lanname = 'plpython3u'`))
	} else if os.Getenv("CI") == "true" {
		t.Fatal("postgresql-plpython3-15 is required under CI=true")
	}
	args := connArgs(t, srv, srv.AdminUser, srv.Password)

	t.Run("escalations", func(t *testing.T) {
		code, out, errs := runCLI(t, append([]string{"escalations", "--format", "json"}, args...)...)
		if code != ExitFindings {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var chains []struct {
			Role, Gains, Kind, Object string
		}
		must(t, json.Unmarshal([]byte(out), &chains))
		want := map[string]bool{"dev membership": false, "app security-definer": false, "app parameter": false}
		if py {
			want["app language"] = false
		}
		for _, c := range chains {
			k := c.Role + " " + c.Kind
			if _, ok := want[k]; ok {
				want[k] = true
			}
		}
		for k, found := range want {
			if !found {
				t.Errorf("chain %q not reported: %s", k, out)
			}
		}
	})

	// Walk the chains for real, each in a transaction that is rolled back.
	walk := func(user, pw string, steps ...string) (string, error) {
		cfg := srv.ConnConfig("postgres")
		cfg.User, cfg.Password = user, pw
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return "", err
		}
		defer c.Close(ctx)
		tx, err := c.Begin(ctx)
		if err != nil {
			return "", err
		}
		defer tx.Rollback(ctx)
		var out string
		for i, s := range steps {
			if i == len(steps)-1 {
				err = tx.QueryRow(ctx, s).Scan(&out)
			} else {
				_, err = tx.Exec(ctx, s)
			}
			if err != nil {
				return "", fmt.Errorf("%s: %w", s, err)
			}
		}
		return out, nil
	}
	t.Run("walk membership chain", func(t *testing.T) {
		got, err := walk("dev", "dev-pw-9", "SET ROLE boss", "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user")
		if err != nil || got != "true" {
			t.Errorf("dev should become a superuser: %q %v", got, err)
		}
	})
	t.Run("walk security definer chain", func(t *testing.T) {
		got, err := walk("app", "app-pw-9", "SELECT public.run_sql('count(*) FROM pg_authid')::text")
		if err != nil || got == "" {
			t.Errorf("app should read pg_authid through run_sql: %q %v", got, err)
		}
		if _, err := walk("app", "app-pw-9", "SELECT count(*)::text FROM pg_authid"); err == nil {
			t.Error("directly, app must not read pg_authid")
		}
	})
	if py {
		t.Run("walk language chain", func(t *testing.T) {
			got, err := walk("app", "app-pw-9", "CREATE FUNCTION pg_temp.whoami() RETURNS text LANGUAGE plpython3u AS 'import getpass; return getpass.getuser()'", "SELECT pg_temp.whoami()")
			if err != nil || got == "" {
				t.Errorf("app should run Perl as the server's OS user: %q %v", got, err)
			}
		})
	}

	t.Run("check agrees with the server", func(t *testing.T) {
		c, err := srv.Connect(ctx, "postgres")
		must(t, err)
		defer c.Close(ctx)
		for _, q := range []struct{ role, obj, priv, col string }{
			{"app", "shop.orders", "SELECT", ""}, {"app", "shop.orders", "INSERT", ""}, {"app", "shop.orders", "DELETE", ""},
			{"app", "shop.secrets", "SELECT", ""}, {"app", "shop.secrets", "SELECT", "id"}, {"app", "shop.secrets", "SELECT", "pin"},
			{"dev", "shop.secrets", "SELECT", ""}, {"app_ro", "shop", "USAGE", ""},
		} {
			a := append([]string{"access", "check", "--role", q.role, "--object", q.obj, "--privilege", q.priv, "--format", "json"}, args...)
			if q.col != "" {
				a = append(a, "--column", q.col)
			}
			code, out, errs := runCLI(t, a...)
			if code != 0 {
				t.Fatalf("%v: exit %d %s", q, code, errs)
			}
			var r struct {
				Allowed bool   `json:"allowed"`
				Reason  string `json:"reason"`
			}
			must(t, json.Unmarshal([]byte(out), &r))
			var want bool
			switch {
			case q.col != "":
				must(t, c.QueryRow(ctx, "SELECT has_column_privilege($1, $2, $3, $4)", q.role, q.obj, q.col, q.priv).Scan(&want))
			case !strings.Contains(q.obj, "."):
				must(t, c.QueryRow(ctx, "SELECT has_schema_privilege($1, $2, $3)", q.role, q.obj, q.priv).Scan(&want))
			default:
				must(t, c.QueryRow(ctx, "SELECT has_table_privilege($1, $2, $3)", q.role, q.obj, q.priv).Scan(&want))
			}
			if r.Allowed != want || r.Reason == "" {
				t.Errorf("%v: we say %v (%s), server %v", q, r.Allowed, r.Reason, want)
			}
		}
	})

	t.Run("role and object views", func(t *testing.T) {
		code, out, _ := runCLI(t, append([]string{"access", "--role", "app"}, args...)...)
		if code != 0 || !strings.Contains(out, "app_ro") || !strings.Contains(out, "PUBLIC") || !strings.Contains(out, "column id") {
			t.Errorf("access --role app: exit %d\n%s", code, out)
		}
		code, out, _ = runCLI(t, append([]string{"access", "--object", "shop.orders", "--privilege", "SELECT"}, args...)...)
		if code != 0 || !strings.Contains(out, "app (login)") || !strings.Contains(out, "app → app_ro") {
			t.Errorf("access --object: exit %d\n%s", code, out)
		}
		code, out, _ = runCLI(t, append([]string{"access", "matrix", "--format", "csv"}, args...)...)
		if code != 0 || !strings.Contains(out, "role,database,kind") || strings.Count(out, "\n") < 5 {
			t.Errorf("matrix: exit %d\n%s", code, out)
		}
	})

	t.Run("policy as code", func(t *testing.T) {
		policy := writeFile(t, "policy.yaml", "schemas: [shop]\ndatabase: postgres\ngrants:\n  app_ro: {tables: [SELECT]}\n  app: {tables: [SELECT, INSERT]}\nexclusive: true\n")
		code, out, _ := runCLI(t, append([]string{"access", "policy", "check", policy, "--format", "json"}, args...)...)
		if code != ExitFindings {
			t.Fatalf("exit %d: %s", code, out)
		}
		var res struct {
			SQL []string `json:"sql"`
		}
		must(t, json.Unmarshal([]byte(out), &res))
		if len(res.SQL) == 0 || !strings.Contains(strings.Join(res.SQL, "\n"), "FROM PUBLIC") {
			t.Fatalf("expected a REVOKE from PUBLIC: %v", res.SQL)
		}
		var stmts []string
		for _, s := range res.SQL {
			stmts = append(stmts, strings.Split(s, "    --")[0])
		}
		must(t, srv.Exec(ctx, stmts...))
		code, out, _ = runCLI(t, append([]string{"access", "policy", "check", policy}, args...)...)
		if code != 0 || !strings.Contains(out, "matches the policy") {
			t.Errorf("after applying the SQL: exit %d\n%s", code, out)
		}
	})
}
