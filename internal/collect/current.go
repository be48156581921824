package collect

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// CurrentConnection describes the connection cfg makes as the server sees
// it (login role, database, client address, TLS), for the lockout guard,
// and collects the roles needed to match it.
func CurrentConnection(ctx context.Context, cfg *pgx.ConnConfig) (hba.Conn, *snapshot.Snapshot, error) {
	snap, err := Collect(ctx, Options{Conn: cfg, NoFiles: true, PasswordBudget: 0})
	if err != nil {
		return hba.Conn{}, nil, err
	}
	o := &Options{StatementTimeout: 30 * time.Second}
	se, err := openSession(ctx, cfg, "", o)
	if err != nil {
		return hba.Conn{}, nil, err
	}
	defer se.close(ctx)
	var c hba.Conn
	var addr *string
	err = se.tx.QueryRow(ctx, `SELECT session_user, current_database(), host(inet_client_addr()),
		coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),
		coalesce((SELECT encrypted FROM pg_stat_gssapi WHERE pid = pg_backend_pid()), false)`).Scan(&c.User, &c.Database, &addr, &c.SSL, &c.GSS)
	if err != nil {
		return hba.Conn{}, nil, fmt.Errorf("reading the current connection: %v", errString(err))
	}
	if addr == nil {
		c.Local = true
	} else {
		a, err := netip.ParseAddr(*addr)
		if err != nil {
			return hba.Conn{}, nil, fmt.Errorf("client address %q: %v", *addr, err)
		}
		c.Addr = a
	}
	return c, snap, nil
}
