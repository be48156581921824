package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

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
			Role, Gains, Kind, Object, Fix string
		}
		must(t, json.Unmarshal([]byte(out), &chains))
		for _, c := range chains {
			// The same fix the audit prints for the chain.
			if c.Fix == "" || (c.Kind == "security-definer" && !strings.HasPrefix(c.Fix, "REVOKE EXECUTE ON FUNCTION")) {
				t.Errorf("chain %s %s: fix %q", c.Role, c.Kind, c.Fix)
			}
		}
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
	walk := func(user, pw string, steps ...string) (string, error) { return walkAs(ctx, srv, user, pw, steps...) }
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
			if code == ExitError {
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
			if (code == ExitOK) != want {
				t.Errorf("%v: exit %d, server says %v", q, code, want)
			}
		}
	})

	// The direct answer is no for both; each reaches the column through a
	// superuser (run_sql is PUBLIC's, so every role here does: the roles
	// that reach nothing are TestAccessReachMajors').
	t.Run("check reports escalation", func(t *testing.T) {
		for _, q := range []struct {
			role, pw, text string
			code           int
			prove          []string
		}{
			{"dev", "dev-pw-9", "no directly; yes through SET ROLE boss (superuser)", ExitReach,
				[]string{"SET ROLE boss", "SELECT count(pin)::text FROM shop.secrets"}},
			{"app", "app-pw-9", "no directly; yes through EXECUTE public.run_sql(q text), SECURITY DEFINER, dynamic SQL (superuser)", ExitReach,
				[]string{"SELECT public.run_sql('count(pin) FROM shop.secrets')::text"}},
		} {
			a := append([]string{"access", "check", "--role", q.role, "--object", "shop.secrets", "--privilege", "SELECT", "--column", "pin"}, args...)
			code, out, errs := runCLI(t, a...)
			if code != q.code || !strings.HasPrefix(out, q.text) {
				t.Errorf("%s: exit %d, want %d and %q:\n%s%s", q.role, code, q.code, q.text, out, errs)
			}
			if q.role == "app" && !strings.Contains(out, "also: app can gain OS command execution (through archive_command)") {
				t.Errorf("app's ALTER SYSTEM route is missing:\n%s", out)
			}
			if _, err := walk(q.role, q.pw, "SELECT count(pin)::text FROM shop.secrets"); err == nil {
				t.Errorf("%s reads pin directly", q.role)
			}
			if q.prove != nil {
				if _, err := walk(q.role, q.pw, q.prove...); err != nil {
					t.Errorf("%s: the route fails on the server: %v", q.role, err)
				}
			}
			code, out, _ = runCLI(t, append([]string{"access", "--role", q.role}, args...)...)
			if got := strings.Contains(out, "escalation: every privilege everywhere"); code != ExitOK || got != (q.code == ExitReach) {
				t.Errorf("access --role %s: exit %d\n%s", q.role, code, out)
			}
		}
		code, out, _ := runCLI(t, append([]string{"access", "check", "--role", "dev", "--object", "shop.secrets", "--privilege", "SELECT", "--format", "json"}, args...)...)
		var r struct {
			Allowed, Reachable bool
			Escalation         []struct{ How, Kind string }
		}
		must(t, json.Unmarshal([]byte(out), &r))
		if code != ExitReach || r.Allowed || !r.Reachable || len(r.Escalation) == 0 || r.Escalation[0].Kind != "membership" {
			t.Errorf("json: exit %d %+v", code, r)
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

// walkAs runs steps as user inside a transaction that is rolled back and
// returns the last step's single value.
func walkAs(ctx context.Context, srv *localpg.Server, user, pw string, steps ...string) (string, error) {
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

// TestAccessReachMajors: SET ROLE and CREATEROLE change meaning at 16
// (the SET option; CREATEROLE needs ADMIN OPTION), so each major says
// which roles reach a superuser, and the test walks each route.
func TestAccessReachMajors(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		srv := pgtest.StartMajor(t, major, localpg.Options{})
		ctx := pgtest.Ctx(t)
		setGrant, noset := `GRANT boss TO setter`, []string{}
		if major >= 16 {
			// SET without INHERIT: only SET ROLE reaches boss; a grant
			// with neither is a membership that reaches nothing.
			setGrant = `GRANT boss TO setter WITH INHERIT FALSE`
			// INHERIT without SET: boss's privileges, but not its
			// superuser attribute, which is never inherited.
			noset = []string{`CREATE ROLE noset LOGIN PASSWORD 'pw-noset-1'`, `GRANT boss TO noset WITH SET FALSE, INHERIT FALSE`,
				`CREATE ROLE inh LOGIN PASSWORD 'pw-inh-1'`, `GRANT boss TO inh WITH SET FALSE, INHERIT TRUE`}
		}
		must(t, srv.Exec(ctx, append([]string{`CREATE ROLE boss SUPERUSER NOLOGIN`,
			`CREATE ROLE setter LOGIN PASSWORD 'pw-setter-1'`, setGrant,
			`CREATE ROLE cr LOGIN CREATEROLE PASSWORD 'pw-cr-1'`, `CREATE ROLE plain LOGIN PASSWORD 'pw-plain-1'`,
			`CREATE TABLE public.t (x int)`}, noset...)...))
		args := passfileArgs(t, srv, srv.AdminUser, srv.Password)
		c := pgtest.Conn(t, srv, "postgres")
		type tc struct {
			role, pw string
			reach    bool
			prove    []string
		}
		cases := []tc{
			{"setter", "pw-setter-1", true, []string{"SET ROLE boss"}},
			{"plain", "pw-plain-1", false, nil},
			// Before 16 CREATEROLE grants itself setter, a member of boss.
			{"cr", "pw-cr-1", major < 16, []string{"GRANT setter TO cr", "SET ROLE boss"}},
		}
		if major >= 16 {
			cases = append(cases, tc{"noset", "pw-noset-1", false, nil}, tc{"inh", "pw-inh-1", false, nil})
		}
		start, bad := time.Now(), 0
		for _, q := range cases {
			var direct bool
			must(t, c.QueryRow(ctx, "SELECT has_table_privilege($1, 'public.t', 'DELETE')", q.role).Scan(&direct))
			code, out, errs := runCLI(t, append([]string{"access", "check", "--role", q.role, "--object", "public.t", "--privilege", "DELETE"}, args...)...)
			want := ExitFindings
			if q.reach {
				want = ExitReach
			}
			// Nothing here reaches the OS either: a role that reaches
			// nothing gets no escalation line at all (no false alarm).
			if direct || code != want || strings.Contains(out, "yes through") != q.reach || (!q.reach && strings.Contains(out, "also:")) {
				bad++
				t.Errorf("%s: server direct %v; exit %d, want %d:\n%s%s", q.role, direct, code, want, out, errs)
			}
			// The route on the server: the steps, then the action.
			_, err := walkAs(ctx, srv, q.role, q.pw, append(append([]string{}, q.prove...), "DELETE FROM public.t RETURNING 'x'", "SELECT 'done'")...)
			if (err == nil) != q.reach {
				bad++
				t.Errorf("%s: the server says the route works: %v (err %v)", q.role, err == nil, err)
			}
		}
		t.Logf("ORACLE access-reach pg%d: cases=%d disagreements=%d seconds=%.1f", major, len(cases), bad, time.Since(start).Seconds())
	})
}
