package rotate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/pgquiet"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// Bounds of the admin session. The server enforces statement_timeout and
// lock_timeout; the client adds stallMargin on top so a server that stops
// answering (or a middlebox that swallows the reply) cannot hang us.
const (
	statementTimeout = 30 * time.Second
	stallMargin      = 5 * time.Second
	// restoreTimeout bounds a restore that runs after the caller's
	// context ended: it must still run, but not forever.
	restoreTimeout = 2 * time.Minute
)

// lockTimeout bounds the wait for the role's row (another session
// changing the same role); a variable so a test can wait less.
var lockTimeout = 5 * time.Second

// quiet is pgquiet.Quiet; a variable only so the package's tests could
// run before pgquiet was built.
var (
	quiet       = pgquiet.Quiet
	beforeBegin = pgquiet.BeforeBegin
)

// admin is the connection that reads the catalogs and changes the role.
type admin struct {
	conn       *pgx.Conn
	cfg        *pgx.ConnConfig
	transport  string
	num        int // server_version_num
	user       string
	super      bool
	createRole bool
	// base and insecure reconnect for a restore after a lost connection.
	base     *pgx.ConnConfig
	insecure bool
}

func (a *admin) major() int { return a.num / 10000 }

// connectAdmin logs in and refuses a transport the verifier must not
// cross: only a unix socket or TLS that verified the server, unless
// insecure.
func connectAdmin(ctx context.Context, base *pgx.ConnConfig, insecure bool) (*admin, error) {
	if base == nil {
		return nil, errors.New("rotate: no connection settings")
	}
	cfg := base.Copy()
	// Configurations built elsewhere than conninfo.Config get the same
	// require_auth guard; an invalid one fails in pgx's own check.
	_ = conninfo.Guard(cfg)
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = conninfo.DefaultConnectTimeout
	}
	rp := map[string]string{}
	for k, v := range cfg.RuntimeParams {
		rp[k] = v
	}
	rp["application_name"] = "pgaegis rotate"
	rp["statement_timeout"] = strconv.FormatInt(statementTimeout.Milliseconds(), 10)
	rp["lock_timeout"] = strconv.FormatInt(lockTimeout.Milliseconds(), 10)
	rp["idle_in_transaction_session_timeout"] = "120000"
	rp["search_path"] = "pg_catalog"
	// rolvaliduntil is journalled as text and given back as a literal.
	rp["DateStyle"] = "ISO, YMD"
	rp["TimeZone"] = "UTC"
	cfg.RuntimeParams = rp
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	lctx, cancel := context.WithTimeout(ctx, time.Duration(1+len(cfg.Fallbacks))*cfg.ConnectTimeout+stallMargin)
	defer cancel()
	conn, err := pgx.ConnectConfig(lctx, cfg)
	if err != nil {
		msg := conninfo.Redact(errText(err), cfg.Password)
		if ctx.Err() == nil && errors.Is(lctx.Err(), context.DeadlineExceeded) {
			msg = fmt.Sprintf("the server did not complete the login in time (connect timeout %s)", cfg.ConnectTimeout)
		}
		return nil, fmt.Errorf("connecting to %s: %s", conninfo.Describe(cfg), msg)
	}
	a := &admin{conn: conn, cfg: cfg, transport: conninfo.Transport(conn, cfg), base: base, insecure: insecure}
	if a.transport != "unix" && a.transport != "tls-verified" && !insecure {
		a.close()
		return nil, fmt.Errorf("refusing to send a password verifier to %s over %s: connect over a unix socket or with sslmode=verify-full (or verify-ca), or allow it with --insecure-transport", conninfo.Describe(cfg), transportWord(a.transport))
	}
	qctx, qcancel := a.bound(ctx)
	defer qcancel()
	err = conn.QueryRow(qctx, `SELECT current_setting('server_version_num')::int, current_user::text, r.rolsuper, r.rolcreaterole
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&a.num, &a.user, &a.super, &a.createRole)
	if err != nil {
		a.close()
		return nil, fmt.Errorf("reading the connected role on %s: %s", conninfo.Describe(cfg), errText(err))
	}
	return a, nil
}

// transportWord is a transport as a sentence names it.
func transportWord(t string) string {
	switch t {
	case "unix":
		return "a unix socket"
	case "tls-verified":
		return "TLS (server verified)"
	case "tls-unverified":
		return "TLS that did not verify the server (sslmode=require or prefer)"
	}
	return "plain TCP without TLS"
}

// bound is a client-side deadline for one round trip.
func (a *admin) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, statementTimeout+stallMargin)
}

func (a *admin) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.conn.Close(ctx)
}

// stmt is one statement and how it may be shown (its verifier masked).
type stmt struct {
	sql, shown string
}

// quietTx runs stmts in one transaction after pgquiet turned off, for
// that transaction, whatever would keep their text. warn gets each
// setting that could not be turned off. Errors name the masked
// statement and the server's message, never the statement itself.
func (a *admin) quietTx(ctx context.Context, stmts []stmt, warn func(string)) error {
	qctx, cancel := a.bound(ctx)
	defer cancel()
	// log_transaction_sample_rate draws its sample at BEGIN.
	ws, err := beforeBegin(qctx, a.conn, a.user)
	if err != nil {
		return fmt.Errorf("turning transaction sampling off: %s", errText(err))
	}
	for _, w := range ws {
		warn(w.Text)
	}
	tx, err := a.conn.Begin(qctx)
	if err != nil {
		return fmt.Errorf("starting a transaction: %s", errText(err))
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer rcancel()
		tx.Rollback(rctx) // a no-op after the commit
	}()
	ws, err = quiet(qctx, tx, a.user)
	if err != nil {
		return fmt.Errorf("turning statement logging off for the transaction: %s", errText(err))
	}
	for _, w := range ws {
		warn(w.Text)
	}
	w := a.watchBlockers(qctx)
	for _, s := range stmts {
		if _, err := tx.Exec(qctx, s.sql); err != nil {
			msg := fmt.Sprintf("%s: %s", s.shown, errText(err))
			if b := w.stop(); b != "" && sqlState(err) == "55P03" {
				msg += " (" + b + ")"
			}
			return errors.New(msg)
		}
	}
	w.stop()
	if err := tx.Commit(qctx); err != nil {
		return fmt.Errorf("commit: %s", errText(err))
	}
	return nil
}

// errText is an error as the server said it, with its SQLSTATE, and
// nothing of the statement (a PgError's Detail or Where may quote it).
func errText(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the server did not answer in time"
	}
	return err.Error()
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// maskedVerifier stands for a verifier wherever a statement is shown.
const maskedVerifier = "'<new SCRAM-SHA-256 verifier>'"

// alterPassword is ALTER ROLE role PASSWORD pw [VALID UNTIL until]; pw
// is an SQL literal or NULL.
func alterPassword(role, pw, until string) string {
	q := "ALTER ROLE " + quote.Ident(role) + " PASSWORD " + pw
	if until != "" {
		q += " VALID UNTIL " + quote.Literal(until)
	}
	return q
}

// scrub removes every secret from s (a message from a sink or the
// server could quote one).
func scrub(s string, secrets ...string) string {
	for _, x := range secrets {
		if len(x) >= 4 {
			s = strings.ReplaceAll(s, x, "<redacted>")
		}
	}
	return s
}

// watcher notes, from a second connection, which sessions block ours
// once a statement has waited half the lock timeout, so a lock timeout
// can name them (pid, role, application; never their query text).
type watcher struct {
	timer *time.Timer
	done  chan struct{}
	stopc chan struct{}
	once  sync.Once
	mu    sync.Mutex
	seen  string
}

func (a *admin) watchBlockers(ctx context.Context) *watcher {
	w := &watcher{done: make(chan struct{}), stopc: make(chan struct{})}
	pid := a.conn.PgConn().PID()
	cfg := a.cfg.Copy()
	cfg.RuntimeParams["application_name"] = "pgaegis rotate (lock watch)"
	w.timer = time.AfterFunc(lockTimeout/2, func() {
		defer close(w.done)
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for {
			rows, err := c.Query(ctx, `SELECT a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, '')
				FROM pg_catalog.pg_stat_activity a WHERE a.pid = ANY (pg_catalog.pg_blocking_pids($1)) ORDER BY a.pid`, int32(pid))
			if err == nil {
				var out []string
				for rows.Next() {
					var p int32
					var user, app string
					if rows.Scan(&p, &user, &app) == nil {
						out = append(out, fmt.Sprintf("pid %d role %s application %s", p, quote.Ident(user), quote.Literal(app)))
					}
				}
				rows.Close()
				if len(out) > 0 {
					w.mu.Lock()
					w.seen = "blocked by " + strings.Join(out, ", ")
					w.mu.Unlock()
				}
			}
			select {
			case <-w.stopc:
				return
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	return w
}

// stop ends the watch and returns the blockers seen last.
func (w *watcher) stop() string {
	w.once.Do(func() {
		close(w.stopc)
		if !w.timer.Stop() {
			<-w.done
		}
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}
