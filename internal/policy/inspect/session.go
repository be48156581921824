// Package inspect reads the live state of a server as a policy file
// (policy.Live) and compacts it for people (Export): the first half of
// roles-as-code, so an existing estate adopts a policy in one step.
package inspect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/conninfo"
)

// session is one read-only transaction on one database, with the same
// guards as internal/collect: bounded statements and locks, a
// search_path a hostile schema cannot shadow, UTC timestamps.
type session struct {
	conn *pgx.Conn
	tx   pgx.Tx
}

func sessionConfig(base *pgx.ConnConfig, database string, timeout time.Duration) *pgx.ConnConfig {
	cfg := base.Copy()
	_ = conninfo.Guard(cfg) // an invalid require_auth fails the login in pgx's own check
	if database != "" {
		cfg.Database = database // structured: never pasted into a connection string
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = conninfo.DefaultConnectTimeout
	}
	rp := map[string]string{}
	for k, v := range cfg.RuntimeParams {
		rp[k] = v
	}
	rp["application_name"] = "pgaegis"
	rp["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	rp["lock_timeout"] = "5000"
	rp["idle_in_transaction_session_timeout"] = "120000"
	rp["default_transaction_read_only"] = "on"
	rp["search_path"] = "pg_catalog"
	rp["TimeZone"] = "UTC" // valid_until is printed the same whoever reads it
	cfg.RuntimeParams = rp
	return cfg
}

func openSession(ctx context.Context, base *pgx.ConnConfig, database string, timeout time.Duration) (*session, error) {
	cfg := sessionConfig(base, database, timeout)
	lctx, cancel := context.WithTimeout(ctx, time.Duration(1+len(cfg.Fallbacks))*cfg.ConnectTimeout+timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(lctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %s", conninfo.Describe(cfg), conninfo.Redact(errString(err), cfg.Password))
	}
	// Repeatable read: every catalog of one database seen at one instant.
	tx, err := conn.BeginTx(lctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("starting a read-only transaction: %s", errString(err))
	}
	return &session{conn: conn, tx: tx}, nil
}

func (se *session) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	se.tx.Rollback(ctx) // read-only: nothing to keep
	se.conn.Close(ctx)
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Close(ctx)
}

func errString(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	return err.Error()
}
