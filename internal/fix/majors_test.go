package fix_test

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/fixtest"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// Fix proofs of issue #14's version branches, each on the major it is for.

const majorsPassword = "mj-Secret-3" // throwaway loopback servers only

// TestEventTriggerFixOnMajors plants an event trigger whose function
// belongs to a role that is not a superuser (login on 17+, where a
// superuser's login runs it; ddl_command_start on 15) and one whose owner
// was demoted, proves the plan (ownership to a superuser), and checks with
// the server that the old owner can no longer replace the function.
func TestEventTriggerFixOnMajors(t *testing.T) {
	for _, tc := range []struct {
		major int
		event string
	}{{17, "login"}, {18, "login"}, {15, "ddl_command_start"}} {
		t.Run(fmt.Sprintf("%s-pg%d", tc.event, tc.major), func(t *testing.T) {
			t.Parallel()
			srv := pgtest.StartMajor(t, tc.major, localpg.Options{})
			ctx := pgtest.Ctx(t)
			if err := srv.Exec(ctx,
				"CREATE ROLE fnowner LOGIN PASSWORD "+quote.Literal(majorsPassword),
				"GRANT CREATE ON SCHEMA public TO fnowner",
				"CREATE FUNCTION public.et_fn() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN NULL; END$$",
				"ALTER FUNCTION public.et_fn() OWNER TO fnowner",
				"CREATE EVENT TRIGGER et_weak ON "+tc.event+" EXECUTE FUNCTION public.et_fn()",
				"CREATE ROLE dba SUPERUSER LOGIN",
				"SET ROLE dba",
				"CREATE FUNCTION public.et_dba() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN NULL; END$$",
				"CREATE EVENT TRIGGER et_dba ON sql_drop EXECUTE FUNCTION public.et_dba()",
				"RESET ROLE", "ALTER ROLE dba NOSUPERUSER"); err != nil {
				t.Fatal(err)
			}
			pr := fixtest.Prove(t, srv, []string{"PRIV-02.event-triggers"}, fixtest.Options{})
			if pr.Plan.Empty() {
				t.Fatalf("no plan: %+v", pr.Plan.Manual)
			}
			for _, f := range pr.After {
				if f.Rule == "PRIV-02.event-triggers" && f.Status == rules.Fail {
					t.Errorf("still failing: %s %s", f.Object, f.Evidence)
				}
			}
			cfg := srv.ConnConfig("postgres")
			cfg.User, cfg.Password = "fnowner", majorsPassword
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, "CREATE OR REPLACE FUNCTION public.et_fn() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN NULL; END$$"); err == nil {
				t.Errorf("pg%d: the old owner still replaces the trigger's function after the fix", tc.major)
			}
		})
	}
}

// TestLogConnectionsFixOnMajors: on 18 log_connections = 'receipt' logs
// less than the control wants and the fix must set a value 18 accepts
// (with setup_durations kept, through 'all'); on 15 the boolean off.
func TestLogConnectionsFixOnMajors(t *testing.T) {
	for _, tc := range []struct {
		major      int
		value, fix string
	}{{18, "receipt", "on"}, {18, "setup_durations,authorization", "all"}, {18, "", "on"}, {15, "off", "on"}} {
		t.Run(tc.fix+"-"+tc.value, func(t *testing.T) {
			t.Parallel()
			srv := pgtest.StartMajor(t, tc.major, localpg.Options{Conf: []string{"log_connections = " + quote.Literal(tc.value)}})
			pr := fixtest.Prove(t, srv, []string{"LOG-19"}, fixtest.Options{})
			if pr.Plan.Empty() {
				t.Fatal("no plan")
			}
			ctx := pgtest.Ctx(t)
			c, err := srv.Connect(ctx, "postgres")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			var got string
			if err := c.QueryRow(ctx, "SHOW log_connections").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.fix {
				t.Errorf("pg%d log_connections = %q after the fix, want %q", tc.major, got, tc.fix)
			}
		})
	}
}
