package rotate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/conninfo"
)

// verifyLogin logs in as user with pw over cfg's path, as the
// application will: the password is set explicitly (no ~/.pgpass or
// PGPASSWORD can stand in for it, pgx reads those only while parsing),
// and only the first host is tried (its sslmode retry kept), so the
// proof is about that path. how says what proved it; trust is true when
// the server says the password was not checked.
func verifyLogin(ctx context.Context, base *pgx.ConnConfig, user string, pw []byte) (how string, trust bool, err error) {
	cfg := base.Copy()
	cfg.User = user
	cfg.Password = pgxPassword(pw)
	var fbs []*pgconn.FallbackConfig
	for _, fb := range cfg.Fallbacks {
		if fb.Host == cfg.Host && fb.Port == cfg.Port {
			fbs = append(fbs, fb)
		}
	}
	cfg.Fallbacks = fbs
	_ = conninfo.Guard(cfg)
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = conninfo.DefaultConnectTimeout
	}
	rp := map[string]string{}
	for k, v := range cfg.RuntimeParams {
		rp[k] = v
	}
	rp["application_name"] = "pgaegis rotate (verify)"
	cfg.RuntimeParams = rp
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	lctx, cancel := context.WithTimeout(ctx, time.Duration(1+len(cfg.Fallbacks))*cfg.ConnectTimeout+stallMargin)
	defer cancel()
	conn, err := pgx.ConnectConfig(lctx, cfg)
	if err != nil {
		if ctx.Err() == nil && errors.Is(lctx.Err(), context.DeadlineExceeded) {
			return "", false, fmt.Errorf("the server did not complete the login in time (connect timeout %s)", cfg.ConnectTimeout)
		}
		return "", false, errors.New(conninfo.Redact(loginError(err), cfg.Password))
	}
	defer func() {
		c, cc := context.WithTimeout(context.Background(), 5*time.Second)
		defer cc()
		conn.Close(c)
	}()
	transport := conninfo.Transport(conn, cfg)
	var num int
	var sysUser *string
	qctx, qcancel := context.WithTimeout(ctx, statementTimeout+stallMargin)
	defer qcancel()
	if err := conn.QueryRow(qctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
		return "", false, fmt.Errorf("logged in, but the first query failed: %s", errText(err))
	}
	method := "password accepted"
	if num >= 160000 {
		if err := conn.QueryRow(qctx, `SELECT system_user`).Scan(&sysUser); err != nil {
			return "", false, fmt.Errorf("logged in, but reading system_user failed: %s", errText(err))
		}
		if sysUser == nil {
			trust, method = true, "trust: no password checked"
		} else {
			method, _, _ = strings.Cut(*sysUser, ":")
		}
	}
	return fmt.Sprintf("%s over %s (%s)", verifyPath(cfg, user), transportWord(transport), method), trust, nil
}

// loginError is a failed login as the server said it (pgx's connect
// error names the host and the server's message, never the password).
func loginError(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Severity + ": " + pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	return err.Error()
}
