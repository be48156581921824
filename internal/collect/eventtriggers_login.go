package collect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errEventTriggersRefused marks a login refused because of our own
// event_triggers=off (unknown before 17; only superusers may set it).
var errEventTriggersRefused = errors.New("event_triggers=off refused")

// withEventTriggersOff is cfg asking the server not to fire event
// triggers in our session, or nil when the caller already chose (an
// event_triggers setting or options string of their own).
//
// A login event trigger (17+) runs its function in every new session,
// ours included and as us: a read-only transaction does not contain it
// (COPY ... TO PROGRAM is no write), so an audit as a superuser would
// run whatever a role that can change that function put there.
func withEventTriggersOff(cfg *pgx.ConnConfig) *pgx.ConnConfig {
	if _, ok := cfg.RuntimeParams["event_triggers"]; ok || strings.Contains(cfg.RuntimeParams["options"], "event_triggers") {
		return nil
	}
	off := cfg.Copy()
	rp := make(map[string]string, len(cfg.RuntimeParams)+1)
	for k, v := range cfg.RuntimeParams {
		rp[k] = v
	}
	rp["event_triggers"] = "off"
	off.RuntimeParams = rp
	return off
}

// offRefused remembers, for this process, the servers and roles that
// refused event_triggers=off: each refusal is a FATAL line in the
// server's log (and one more login), so asking once is enough. An audit,
// access or fix run opens several first sessions to the same server.
var offRefused sync.Map

// isOffRefusal: the login failed on our event_triggers=off itself
// (unknown parameter before 17, permission denied for a non-superuser).
func isOffRefusal(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42704" || pe.Code == "42501") && strings.Contains(pe.Message, "event_triggers")
}

func offKey(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s\x00%d\x00%s", cfg.Host, cfg.Port, cfg.User)
}

// openFirstSession logs in with event triggers off where the server
// allows it (17+, a superuser), else as asked; every later session of
// the collection uses the configuration that worked (o.Conn).
func openFirstSession(ctx context.Context, o *Options) (*session, error) {
	if off := withEventTriggersOff(o.Conn); off != nil {
		if _, refused := offRefused.Load(offKey(o.Conn)); !refused {
			se, err := openSession(ctx, off, "", o)
			if err == nil {
				o.Conn = off
				return se, nil
			}
			if !errors.Is(err, errEventTriggersRefused) {
				return nil, loginCodeHint(err)
			}
			offRefused.Store(offKey(o.Conn), true)
		}
	}
	se, err := openSession(ctx, o.Conn, "", o)
	return se, loginCodeHint(err)
}

// loginCodeHint explains a login refused by code the server ran at
// login: not a refusal of our credentials.
func loginCodeHint(err error) error {
	if err == nil || !errors.Is(err, errLoginCode) {
		return err
	}
	return fmt.Errorf("%v\nhint: a login event trigger (PostgreSQL 17+) failed in pgaegis's read-only session, and the server refused the login; "+
		"an audit as a superuser logs in with event_triggers=off and never runs it (see PRIV-02.event-triggers)", err)
}

// WithoutEventTriggers returns cfg set to log in with event_triggers=off
// when the server accepts that (a superuser on 17+), else cfg: for the
// connections of `fix --apply`, which must not run a login trigger's
// code as the superuser applying the plan either. It costs one login.
func WithoutEventTriggers(ctx context.Context, cfg *pgx.ConnConfig) *pgx.ConnConfig {
	off := withEventTriggersOff(cfg)
	if off == nil {
		return cfg
	}
	if _, refused := offRefused.Load(offKey(cfg)); refused {
		return cfg
	}
	c, err := pgx.ConnectConfig(ctx, off)
	if err != nil {
		if isOffRefusal(err) {
			offRefused.Store(offKey(cfg), true)
		}
		return cfg
	}
	c.Close(ctx)
	return off
}
