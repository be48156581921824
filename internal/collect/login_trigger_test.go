package collect

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// A login event trigger (17+) that writes fails in the audit's read-only
// session and the server refuses the login. A superuser audit reconnects
// with event_triggers=off and says why; a non-superuser gets a hint
// instead of a bare SQL error.
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
			srv := pgtest.StartMajor(t, major, localpg.Options{})
			ctx := pgtest.Ctx(t)
			if err := srv.Exec(ctx,
				`CREATE ROLE mallory LOGIN PASSWORD 'mallory-pw-1'`,
				`CREATE TABLE public.seen(u text)`,
				`GRANT INSERT ON public.seen TO PUBLIC`,
				`CREATE FUNCTION public.on_login() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.seen VALUES (current_user); END $$`,
				`ALTER FUNCTION public.on_login() OWNER TO mallory`,
				`CREATE EVENT TRIGGER lt ON login EXECUTE FUNCTION public.on_login()`,
			); err != nil {
				t.Fatal(err)
			}
			snap, err := Collect(ctx, quick(srv.ConnConfig("postgres")))
			if err != nil {
				t.Fatalf("superuser audit: %v", err)
			}
			found := false
			for _, w := range snap.Warnings {
				found = found || strings.Contains(w, "event_triggers=off")
			}
			if !found {
				t.Errorf("no warning about the reconnection: %q", snap.Warnings)
			}
			cfg := srv.ConnConfig("postgres")
			cfg.User, cfg.Password = "mallory", "mallory-pw-1"
			_, err = Collect(ctx, quick(cfg))
			if err == nil || !strings.Contains(err.Error(), "login event trigger") || !strings.Contains(err.Error(), "event_triggers") {
				t.Errorf("non-superuser audit: %v, want the login-trigger hint", err)
			}
			if err != nil && strings.Contains(err.Error(), "mallory-pw-1") {
				t.Error("the error holds the password")
			}
		})
	}
}
