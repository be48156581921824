package execute

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/quote"
)

// SQLSTATEs the executor tells apart.
const (
	codeLockNotAvailable  = "55P03"
	codeDependentsExist   = "2BP01"
	codeInsufficientPriv  = "42501"
	codeQueryCanceled     = "57014"
	defaultLockTimeout    = 5 * time.Second
	defaultStmtTimeout    = 5 * time.Minute
	defaultBatchSize      = 500
	blockerWatchFraction  = 2 // start looking for blockers after lock_timeout / this
	blockerPollInterval   = 100 * time.Millisecond
	maxBlockersInAMessage = 10
)

// session is one connection to one database with the executor's
// settings.
type session struct {
	conn *pgx.Conn
	cfg  *pgx.ConnConfig
	db   string
	o    *Options
	// quiet: the server's statement logging is off (as far as this role
	// may turn it off) for the rest of the transaction.
	quiet bool
}

// connect opens a session in database db (the connection's own database
// when db is empty) as the same user. Statements go as unnamed extended
// protocol messages: nothing is prepared or cached for DDL run once.
func connect(ctx context.Context, cfg *pgx.ConnConfig, db string, o *Options) (*session, error) {
	c := cfg.Copy()
	if db != "" {
		c.Database = db
	}
	c.DefaultQueryExecMode = pgx.QueryExecModeExec
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	if c.RuntimeParams["application_name"] == "" {
		c.RuntimeParams["application_name"] = "pgaegis policy apply"
	}
	conn, err := pgx.ConnectConfig(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("connecting to database %s: %w", quote.Ident(c.Database), err)
	}
	return &session{conn: conn, cfg: c, db: c.Database, o: o}, nil
}

func (s *session) close() { s.conn.Close(context.Background()) }

// timeouts are the SET statements that bound every statement's wait for a
// lock and its run time; LOCAL inside a transaction.
func (s *session) timeouts(local bool) []string {
	scope := ""
	if local {
		scope = "LOCAL "
	}
	return []string{
		fmt.Sprintf("SET %slock_timeout = %d", scope, s.o.lockTimeout().Milliseconds()),
		fmt.Sprintf("SET %sstatement_timeout = %d", scope, s.o.statementTimeout().Milliseconds()),
	}
}

// stmtError is a statement that failed, named by its first line.
type stmtError struct {
	db    string
	stmt  string
	err   error
	extra string // who blocked it, for a lock timeout
}

func (e *stmtError) Error() string {
	msg := fmt.Sprintf("in database %s: %s: %s", quote.Ident(e.db), firstLine(e.stmt), serverMessage(e.err))
	if e.extra != "" {
		msg += " (" + e.extra + ")"
	}
	return msg
}

func (e *stmtError) Unwrap() error { return e.err }

// serverMessage is an error as the server said it, with its SQLSTATE;
// the detail only when it names no statement text (dependents lists do
// not, query text would).
func serverMessage(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		m := pe.Message + " (SQLSTATE " + pe.Code + ")"
		if pe.Code == codeDependentsExist && pe.Detail != "" {
			m += ": " + strings.ReplaceAll(pe.Detail, "\n", "; ")
		}
		return m
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

// execBatches runs stmts on the session in pipelines of BatchSize
// statements (one round trip each), stopping at the first error. While a
// pipeline waits longer than half the lock timeout, a watcher notes which
// sessions block it, so a lock timeout can name them.
func (s *session) execBatches(ctx context.Context, stmts []string) error {
	if !s.quiet && holdsPassword(stmts) && s.conn.PgConn().TxStatus() == 'T' {
		s.quiet = true
		if err := s.quietLogs(ctx); err != nil {
			return err
		}
	}
	n := s.o.batchSize()
	for start := 0; start < len(stmts); start += n {
		end := min(start+n, len(stmts))
		chunk := stmts[start:end]
		b := &pgx.Batch{}
		for _, q := range chunk {
			b.Queue(q)
		}
		w := s.watchBlockers(ctx)
		br := s.conn.SendBatch(ctx, b)
		var failed error
		for _, q := range chunk {
			if _, err := br.Exec(); err != nil {
				failed = &stmtError{db: s.db, stmt: q, err: err}
				break
			}
		}
		cerr := br.Close()
		blockers := w.stop()
		if failed == nil && cerr != nil {
			failed = fmt.Errorf("in database %s: %w", quote.Ident(s.db), cerr)
		}
		if failed != nil {
			var se *stmtError
			if errors.As(failed, &se) && sqlState(se.err) == codeLockNotAvailable {
				se.extra = blockers
				if se.extra == "" {
					se.extra = "the blocking sessions had gone before they could be named"
				}
			}
			return failed
		}
	}
	return nil
}

// watcher polls pg_blocking_pids for a session from a second
// connection, started only once a pipeline has waited a while.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
	timer  *time.Timer
	mu     sync.Mutex
	seen   string
}

func (s *session) watchBlockers(ctx context.Context) *watcher {
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	pid := s.conn.PgConn().PID()
	cfg := s.cfg.Copy()
	cfg.RuntimeParams["application_name"] = "pgaegis policy apply (lock watch)"
	w.timer = time.AfterFunc(s.o.lockTimeout()/blockerWatchFraction, func() {
		defer close(w.done)
		c, err := pgx.ConnectConfig(wctx, cfg)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for {
			if b := blockers(wctx, c, pid); b != "" {
				w.mu.Lock()
				w.seen = b
				w.mu.Unlock()
			}
			select {
			case <-wctx.Done():
				return
			case <-time.After(blockerPollInterval):
			}
		}
	})
	return w
}

// stop ends the watch and returns the blockers it saw last.
func (w *watcher) stop() string {
	if w.timer.Stop() {
		w.cancel()
		return ""
	}
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// blockers names the sessions blocking pid: pid, role and
// application_name, never their query text.
func blockers(ctx context.Context, c *pgx.Conn, pid uint32) string {
	rows, err := c.Query(ctx, `SELECT a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, '')
		FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1)) ORDER BY a.pid`, int32(pid))
	if err != nil {
		return ""
	}
	var out []string
	for rows.Next() {
		var p int32
		var user, app string
		if rows.Scan(&p, &user, &app) != nil {
			break
		}
		d := fmt.Sprintf("pid %d role %s", p, quote.Ident(user))
		if app != "" {
			d += " application " + quote.Literal(app)
		}
		out = append(out, d)
	}
	rows.Close()
	if len(out) == 0 {
		return ""
	}
	sort.Strings(out)
	if len(out) > maxBlockersInAMessage {
		out = append(out[:maxBlockersInAMessage], fmt.Sprintf("%d more", len(out)-maxBlockersInAMessage))
	}
	return "blocked by " + strings.Join(out, ", ")
}

// inTx runs fn in one transaction with the timeouts set; it commits when
// commit is true and fn succeeded, else rolls back.
func (s *session) inTx(ctx context.Context, commit bool, fn func(pgx.Tx) error) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("in database %s: %w", quote.Ident(s.db), err)
	}
	s.quiet = false // SET LOCAL ends with the transaction
	defer tx.Rollback(context.Background())
	if err := s.execBatches(ctx, s.timeouts(true)); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if !commit {
		return tx.Rollback(ctx)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("in database %s: commit: %w", quote.Ident(s.db), err)
	}
	return nil
}

// autocommit runs statements one by one outside a transaction (CREATE
// DATABASE cannot run in one); done counts those that ran.
func (s *session) autocommit(ctx context.Context, stmts []string) (done int, err error) {
	if err := s.execBatches(ctx, s.timeouts(false)); err != nil {
		return 0, err
	}
	for _, q := range stmts {
		if _, err := s.conn.Exec(ctx, q); err != nil {
			return done, &stmtError{db: s.db, stmt: q, err: err}
		}
		done++
	}
	return done, nil
}
