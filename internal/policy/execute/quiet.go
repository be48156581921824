package execute

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/quote"
)

// holdsPassword: a statement of stmts sets a password (a verifier, never
// a clear text, but still a secret the server log must not keep).
func holdsPassword(stmts []string) bool {
	for _, q := range stmts {
		if strings.Contains(q, " PASSWORD '") {
			return true
		}
	}
	return false
}

// quietSetting is one setting that makes the server write a statement
// to its log, the value that stops it, and when its current value would
// log an ALTER ROLE ... PASSWORD.
type quietSetting struct {
	name, off string
	logs      func(cur string) bool
}

var quietSettings = []quietSetting{
	{"log_statement", "'none'", func(v string) bool { return v == "all" || v == "ddl" }},
	{"log_min_duration_statement", "-1", func(v string) bool {
		n, err := strconv.Atoi(strings.TrimSuffix(v, "ms"))
		return err != nil || n >= 0
	}},
	// An error logs the statement at this level or below: 'panic' keeps
	// a failing ALTER ROLE ... PASSWORD out of the log.
	{"log_min_error_statement", "'panic'", func(v string) bool { return v != "panic" }},
	// Only when pgaudit is loaded (the setting exists).
	{"pgaudit.log", "'none'", func(v string) bool { return v != "" && v != "none" }},
}

// quietLogs turns statement logging off for the rest of the transaction
// (SET LOCAL), each setting in a savepoint since a non-superuser may not
// be allowed to; for a setting it could not change whose value would
// log the statement it warns, once per apply, before the statement runs.
func (s *session) quietLogs(ctx context.Context) error {
	for _, qs := range quietSettings {
		var cur *string
		if err := s.conn.QueryRow(ctx, "SELECT current_setting($1, true)", qs.name).Scan(&cur); err != nil {
			return fmt.Errorf("in database %s: reading %s: %w", s.db, qs.name, err)
		}
		if cur == nil { // pgaudit not loaded
			continue
		}
		if _, err := s.conn.Exec(ctx, "SAVEPOINT pgaegis_quiet"); err != nil {
			return fmt.Errorf("in database %s: %w", s.db, err)
		}
		_, serr := s.conn.Exec(ctx, "SET LOCAL "+qs.name+" = "+qs.off)
		end := "RELEASE SAVEPOINT pgaegis_quiet"
		if serr != nil {
			end = "ROLLBACK TO SAVEPOINT pgaegis_quiet"
		}
		if _, err := s.conn.Exec(ctx, end); err != nil {
			return fmt.Errorf("in database %s: %w", s.db, err)
		}
		if serr == nil || !qs.logs(*cur) {
			continue
		}
		s.o.warnOnce(qs.name, s.quietAdvice(ctx, qs.name, *cur, serr))
	}
	return nil
}

// quietAdvice is the warning for a setting that could not be changed.
func (s *session) quietAdvice(ctx context.Context, name, cur string, err error) string {
	msg := fmt.Sprintf("warning: the server may write password verifiers to its log: %s is %s and could not be changed for this transaction (%s)", name, cur, serverMessage(err))
	if name == "log_min_error_statement" {
		msg = fmt.Sprintf("warning: a password statement that fails is written to the server log with its verifier: log_min_error_statement is %s and could not be changed for this transaction (%s)", cur, serverMessage(err))
	}
	var super bool
	var num int
	_ = s.conn.QueryRow(ctx, "SELECT rolsuper, current_setting('server_version_num')::int FROM pg_roles WHERE rolname = current_user").Scan(&super, &num)
	if !super {
		if num >= 150000 {
			msg += fmt.Sprintf("; to avoid it, GRANT SET ON PARAMETER %s TO %s (as a superuser), or apply as a superuser", name, quote.Ident(s.cfg.User))
		} else {
			msg += "; to avoid it, apply as a superuser"
		}
	}
	return msg
}

// warnOnce writes a warning to Progress the first time key is seen.
func (o *Options) warnOnce(key, msg string) {
	if o.warned == nil {
		o.warned = map[string]bool{}
	}
	if o.warned[key] {
		return
	}
	o.warned[key] = true
	o.Warnings = append(o.Warnings, msg)
	o.logf("%s", msg)
}
