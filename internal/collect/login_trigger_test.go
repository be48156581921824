package collect

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// A login event trigger (17+) runs as whoever logs in: a superuser audit
// logs in with event_triggers=off and never runs it; a non-superuser's
// session runs it, it fails in the read-only session (it writes), and the
// refused login comes with a hint instead of a bare SQL error.
func TestLoginTriggerThatWritesDoesNotStopTheAudit(t *testing.T) {
	var majors []int
	for _, m := range pgtest.Majors(t) {
		if m >= 17 {
			majors = append(majors, m)
		}
	}
	if len(majors) == 0 {
		t.Skip("no PostgreSQL 17+ installed")
	}
	for _, major := range majors {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel() // a server of its own per major
			srv := pgtest.StartMajor(t, major, localpg.Options{})
			ctx := pgtest.Ctx(t)
			if err := srv.Exec(ctx,
				`CREATE ROLE mallory LOGIN PASSWORD 'mallory-pw-1'`,
				`CREATE TABLE public.seen(u text)`,
				`GRANT INSERT ON public.seen TO PUBLIC`,
				`CREATE FUNCTION public.on_login() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE LOG 'login-trigger-ran-as-%', current_user; INSERT INTO public.seen VALUES (current_user); END $$`,
				`ALTER FUNCTION public.on_login() OWNER TO mallory`,
				`CREATE EVENT TRIGGER lt ON login EXECUTE FUNCTION public.on_login()`,
			); err != nil {
				t.Fatal(err)
			}
			ran := func() int {
				b, _ := os.ReadFile(srv.LogFile)
				return strings.Count(string(b), "login-trigger-ran-as-"+srv.AdminUser)
			}
			before := ran()
			if _, err := Collect(ctx, quick(srv.ConnConfig("postgres"))); err != nil {
				t.Fatalf("superuser audit: %v", err)
			}
			if n := ran() - before; n != 0 {
				t.Errorf("the superuser audit ran the login trigger %d times", n)
			}
			cfg := srv.ConnConfig("postgres")
			cfg.User, cfg.Password = "mallory", "mallory-pw-1"
			_, err := Collect(ctx, quick(cfg))
			if err == nil || !strings.Contains(err.Error(), "login event trigger") || !strings.Contains(err.Error(), "event_triggers") {
				t.Errorf("non-superuser audit: %v, want the login-trigger hint", err)
			}
			// The detector works: mallory's own login did run it.
			if b, _ := os.ReadFile(srv.LogFile); !strings.Contains(string(b), "login-trigger-ran-as-mallory") {
				t.Error("the server log has no trace of mallory's login running the trigger")
			}
			if err != nil && strings.Contains(err.Error(), "mallory-pw-1") {
				t.Error("the error holds the password")
			}
		})
	}
}

// Asking for event_triggers=off where the server refuses it (before 17)
// costs a FATAL line in the server's log; a process asks a server once,
// however many collections it runs.
func TestEventTriggersOffAskedOncePerServer(t *testing.T) {
	srv := pgtest.StartMajor(t, 15, localpg.Options{})
	ctx := pgtest.Ctx(t)
	for i := 0; i < 3; i++ {
		if _, err := Collect(ctx, Options{Conn: srv.ConnConfig("postgres"), NoFiles: true}); err != nil {
			t.Fatal(err)
		}
	}
	WithoutEventTriggers(ctx, srv.ConnConfig("postgres"))
	log, err := os.ReadFile(srv.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), `unrecognized configuration parameter "event_triggers"`); n != 1 {
		t.Errorf("the server logged %d refusals of event_triggers=off, want 1:\n%s", n, log)
	}
}
