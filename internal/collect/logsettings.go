package collect

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LogSettings is what a server says about its own logs.
type LogSettings struct {
	Prefix     string   // log_line_prefix
	Superusers []string // roles with rolsuper
}

// settingsTimeout bounds each statement of the two small reads below
// (a variable so that a test of a stalled server need not wait it out).
var settingsTimeout = 30 * time.Second

// ServerLogSettings reads log_line_prefix and the superusers in the same
// read-only, time-limited session as an audit: the logs were written with
// that prefix, and superuser sessions over TCP are worth an event.
func ServerLogSettings(ctx context.Context, cfg *pgx.ConnConfig) (LogSettings, error) {
	var ls LogSettings
	se, err := openSession(ctx, cfg, "", &Options{StatementTimeout: settingsTimeout})
	if err != nil {
		return ls, err
	}
	defer se.close(ctx)
	if err := se.tx.QueryRow(ctx, "SELECT current_setting('log_line_prefix')").Scan(&ls.Prefix); err != nil {
		return ls, fmt.Errorf("reading log_line_prefix: %v", errString(err))
	}
	rows, err := se.tx.Query(ctx, "SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY 1")
	if err != nil {
		return ls, fmt.Errorf("reading the superusers: %v", errString(err))
	}
	if ls.Superusers, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return ls, fmt.Errorf("reading the superusers: %v", errString(err))
	}
	return ls, nil
}

// ServerSettings reads the named settings (pg_settings.setting, which is
// what the server runs with) in the same read-only, time-limited session
// as an audit; names the server does not have are left out.
func ServerSettings(ctx context.Context, cfg *pgx.ConnConfig, names []string) (map[string]string, error) {
	se, err := openSession(ctx, cfg, "", &Options{StatementTimeout: settingsTimeout})
	if err != nil {
		return nil, err
	}
	defer se.close(ctx)
	rows, err := se.tx.Query(ctx, "SELECT name, setting FROM pg_settings WHERE name = ANY($1)", names)
	if err != nil {
		return nil, fmt.Errorf("reading pg_settings: %v", errString(err))
	}
	m := map[string]string{}
	var k, v string
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error { m[k] = v; return nil })
	if err != nil {
		return nil, fmt.Errorf("reading pg_settings: %v", errString(err))
	}
	return m, nil
}
