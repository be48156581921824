package execute

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/pgquiet"
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

// quietLogs turns statement logging off for the rest of the transaction
// (pgquiet: SET LOCAL, each setting in a savepoint since a non-superuser
// may not be allowed to); for a setting it could not change whose value
// would keep the statement it warns, once per apply, before the statement
// runs.
func (s *session) quietLogs(ctx context.Context) error {
	warns, err := pgquiet.Quiet(ctx, s.conn, s.cfg.User)
	if err != nil {
		return fmt.Errorf("in database %s: %w", s.db, err)
	}
	for _, w := range warns {
		// pgquiet's advice is worded for any command; this one applies.
		s.o.warnOnce(w.Setting, "warning: "+strings.Replace(w.Text, "or run as a superuser", "or apply as a superuser", 1))
	}
	return nil
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
