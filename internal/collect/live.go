// Package collect fills a snapshot from a live server (over the normal
// protocol, read-only) and from the server's files on disk.
package collect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Version is stamped into snapshots and reports.
var Version = "0.1.0-dev"

// Options control a collection.
type Options struct {
	// Conn is where to connect; nil for a files-only collection.
	Conn *pgx.ConnConfig
	// Files: explicit paths override what the server reports.
	DataDir, ConfigFile, HBAFile, IdentFile string
	// NoFiles skips reading the server's files even when they are local.
	NoFiles bool
	// Parallel bounds how many databases are read at once.
	Parallel int
	// StatementTimeout bounds each query on the server.
	StatementTimeout time.Duration
	// PasswordBudget bounds the wall time of the offline weak-password
	// search, which runs beside the catalog reads (0: off).
	PasswordBudget time.Duration
	// PasswordCache is the directory of the weak-password verdict cache
	// ("": none).
	PasswordCache string
	// NoProbe skips the TLS probe of the server's port.
	NoProbe bool
	// SampleData reads a bounded sample of credential columns' values to
	// classify them in memory (hash, ciphertext, plain text); off by default.
	SampleData bool
	// Progress, when set, is told what is being read.
	Progress func(format string, args ...any)

	// host is the host check started beside the live collection.
	host *hostJob
}

// trace reports step timings when PGAEGIS_TRACE is set (for benchmarks).
func (o *Options) trace(format string, args ...any) {
	if os.Getenv("PGAEGIS_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "trace: "+format+"\n", args...)
	}
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(format, args...)
	}
}

func newSnapshot() *snapshot.Snapshot {
	return &snapshot.Snapshot{
		FormatVersion: snapshot.FormatVersion,
		Tool:          "pgaegis",
		ToolVersion:   Version,
		CollectedAt:   time.Now().UTC().Truncate(time.Second),
	}
}

// Collect builds a snapshot from the server (when o.Conn is set) and from
// the files (given explicitly, or found through the server when they are
// on this host).
func Collect(ctx context.Context, o Options) (*snapshot.Snapshot, error) {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 30 * time.Second
	}
	s := newSnapshot()
	start := time.Now()
	if o.Conn != nil {
		s.Target.Description = conninfo.Describe(o.Conn)
		s.Target.Live = true
		s.SampleData = o.SampleData
		if err := collectLive(ctx, s, &o); err != nil {
			return nil, err
		}
		o.trace("live collection in %s", time.Since(start).Round(time.Millisecond))
	} else {
		s.Target.Description = "files"
	}
	if !o.NoFiles {
		start := time.Now()
		if err := collectFiles(s, &o); err != nil {
			return nil, err
		}
		o.trace("files and host in %s", time.Since(start).Round(time.Millisecond))
	}
	redact(s)
	return s, nil
}

// sessionConfig hardens our own session: read-only, bounded in time, and
// a search_path that a hostile schema cannot shadow.
func sessionConfig(base *pgx.ConnConfig, database string, o *Options) *pgx.ConnConfig {
	cfg := base.Copy()
	// Configurations built elsewhere than conninfo.Config (the sandbox,
	// tests) get the same require_auth guard; guarding twice is harmless.
	// An invalid require_auth fails the login in pgx's own check.
	_ = conninfo.Guard(cfg)
	if database != "" {
		// Structured: the name is never pasted into a connection string,
		// so "x host=evil" stays a database name.
		cfg.Database = database
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = conninfo.DefaultConnectTimeout
	}
	rp := map[string]string{}
	for k, v := range cfg.RuntimeParams {
		rp[k] = v
	}
	ms := strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	rp["application_name"] = "pgaegis"
	rp["statement_timeout"] = ms
	rp["lock_timeout"] = "5000"
	rp["idle_in_transaction_session_timeout"] = "120000"
	rp["default_transaction_read_only"] = "on"
	rp["search_path"] = "pg_catalog"
	cfg.RuntimeParams = rp
	return cfg
}

// session is one read-only transaction on one database. Every round trip
// has a client-side deadline as well as the server's statement_timeout: a
// server (or a middlebox) that stops answering after the login must not
// hang the command.
type session struct {
	conn *pgx.Conn
	tx   pgx.Tx
	o    *Options
	// transport says how the connection reached the server: "unix",
	// "tls-verified", "tls-unverified" or "plain".
	transport string
	// stall is set once a round trip ran out of time; the connection is
	// then unusable and the collection stops with this error.
	mu    sync.Mutex
	stall error
}

// stallMargin is added to statement_timeout for the client-side deadline:
// the server cancels the statement first and its error arrives in time.
const stallMargin = 5 * time.Second

func (se *session) queryTimeout() time.Duration { return se.o.StatementTimeout + stallMargin }

// errStalled marks a round trip that got no answer in time.
var errStalled = errors.New("the server stopped answering")

func (se *session) stalled() error {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.stall
}

// check turns a deadline hit by qctx (and not by the caller's ctx) into a
// stall, remembered for the session.
func (se *session) check(ctx, qctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() == nil && errors.Is(qctx.Err(), context.DeadlineExceeded) {
		st := fmt.Errorf("%w (no reply within %s)", errStalled, se.queryTimeout())
		se.mu.Lock()
		if se.stall == nil {
			se.stall = st
		}
		se.mu.Unlock()
		return st
	}
	if st := se.stalled(); st != nil {
		return st
	}
	return err
}

// loginTimeout bounds the whole login (every host and fallback pgx tries)
// and the BEGIN that follows it.
func loginTimeout(cfg *pgx.ConnConfig, o *Options) time.Duration {
	attempts := 1 + len(cfg.Fallbacks)
	return time.Duration(attempts)*cfg.ConnectTimeout + o.StatementTimeout + stallMargin
}

// errLoginCode marks a login refused because code the server ran at
// login (a login event trigger) raised an error.
var errLoginCode = errors.New("raised by code run at login")

func openSession(ctx context.Context, base *pgx.ConnConfig, database string, o *Options) (*session, error) {
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 30 * time.Second
	}
	cfg := sessionConfig(base, database, o)
	lctx, cancel := context.WithTimeout(ctx, loginTimeout(cfg, o))
	defer cancel()
	conn, err := pgx.ConnectConfig(lctx, cfg)
	if err != nil {
		msg := conninfo.Redact(errString(err), cfg.Password)
		if ctx.Err() == nil && (errors.Is(lctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)) {
			// pgx's own connect_timeout or our bound on the whole login.
			msg = fmt.Sprintf("the server did not complete the login in time (connect timeout %s)", cfg.ConnectTimeout)
		}
		var pe *pgconn.PgError
		if isOffRefusal(err) {
			// Our event_triggers=off was refused: before 17, or not a
			// superuser (openFirstSession then logs in without it).
			return nil, fmt.Errorf("connecting to %s: %s (%w)", conninfo.Describe(cfg), msg, errEventTriggersRefused)
		}
		if errors.As(err, &pe) && pe.Where != "" {
			// The server ran code during the login (a login event
			// trigger) and it failed: not a refusal of our credentials.
			return nil, fmt.Errorf("connecting to %s: %s (%w)", conninfo.Describe(cfg), msg, errLoginCode)
		}
		return nil, fmt.Errorf("connecting to %s: %s", conninfo.Describe(cfg), msg)
	}
	se := &session{conn: conn, o: o, transport: conninfo.Transport(conn, cfg)}
	tx, err := conn.BeginTx(lctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		closeConn(conn)
		if ctx.Err() == nil && errors.Is(lctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("starting a read-only transaction: %v (no reply within %s)", errStalled, loginTimeout(cfg, o))
		}
		return nil, fmt.Errorf("starting a read-only transaction: %v", errString(err))
	}
	se.tx = &timedTx{Tx: tx, se: se}
	return se, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Close(ctx)
}

func errString(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	}
	return err.Error()
}

// isPermission reports whether err is the server refusing for lack of
// privilege: an expected gap for a non-superuser audit, not a failure.
func isPermission(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

func (se *session) close(context.Context) {
	// Bounded on our side: a stalled server must not hang the cleanup.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if se.stalled() == nil {
		se.tx.Rollback(ctx) // read-only: nothing to keep
	}
	se.conn.Close(ctx)
}

// optional runs a query that may fail for lack of privilege without
// spoiling the transaction: a savepoint is rolled back on error.
func (se *session) optional(ctx context.Context, fn func(pgx.Tx) error) error {
	sp, err := se.tx.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(sp); err != nil {
		if se.stalled() == nil {
			sp.Rollback(ctx)
		}
		return err
	}
	return sp.Commit(ctx)
}

// timedTx gives every round trip of a transaction its own deadline.
type timedTx struct {
	pgx.Tx
	se *session
}

func (t *timedTx) qctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, t.se.queryTimeout())
}

func (t *timedTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if st := t.se.stalled(); st != nil {
		return nil, st
	}
	q, cancel := t.qctx(ctx)
	defer cancel()
	sp, err := t.Tx.Begin(q)
	if err != nil {
		return nil, t.se.check(ctx, q, err)
	}
	return &timedTx{Tx: sp, se: t.se}, nil
}

func (t *timedTx) Commit(ctx context.Context) error {
	if st := t.se.stalled(); st != nil {
		return st
	}
	q, cancel := t.qctx(ctx)
	defer cancel()
	return t.se.check(ctx, q, t.Tx.Commit(q))
}

func (t *timedTx) Rollback(ctx context.Context) error {
	if st := t.se.stalled(); st != nil {
		return st
	}
	q, cancel := t.qctx(ctx)
	defer cancel()
	return t.se.check(ctx, q, t.Tx.Rollback(q))
}

func (t *timedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if st := t.se.stalled(); st != nil {
		return pgconn.CommandTag{}, st
	}
	q, cancel := t.qctx(ctx)
	defer cancel()
	tag, err := t.Tx.Exec(q, sql, args...)
	return tag, t.se.check(ctx, q, err)
}

func (t *timedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if st := t.se.stalled(); st != nil {
		return nil, st
	}
	if QueryFault != nil {
		if err := QueryFault(sql); err != nil {
			return nil, err
		}
	}
	q, cancel := t.qctx(ctx)
	rows, err := t.Tx.Query(q, sql, args...)
	if err != nil {
		cancel()
		return nil, t.se.check(ctx, q, err)
	}
	return &timedRows{Rows: rows, ctx: ctx, q: q, cancel: cancel, se: t.se}, nil
}

func (t *timedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := t.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return timedRow{rows.(*timedRows)}
}

// timedRows keeps the query's deadline until the rows are read or closed.
type timedRows struct {
	pgx.Rows
	ctx, q context.Context
	cancel context.CancelFunc
	se     *session
}

func (r *timedRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.cancel()
	return false
}

func (r *timedRows) Close() {
	r.Rows.Close()
	r.cancel()
}

func (r *timedRows) Err() error { return r.se.check(r.ctx, r.q, r.Rows.Err()) }

type timedRow struct{ r *timedRows }

// Scan reads the single row as pgx's QueryRow does: no row is ErrNoRows.
func (t timedRow) Scan(dest ...any) error {
	defer t.r.Close()
	if !t.r.Next() {
		if err := t.r.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := t.r.Scan(dest...); err != nil {
		return err
	}
	t.r.Close()
	return t.r.Err()
}

type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

// QueryFault is for tests: when set, a query for which it returns an
// error fails with that error instead of reaching the server, so that the
// handling of a broken read can be tested on a real server.
var QueryFault func(sql string) error

// readError records a failed optional read: a permission refusal is an
// expected gap (a non-superuser audit), anything else is an error that
// makes the audit incomplete.
func readError(s *snapshot.Snapshot, key string, err error, permissionReason string) {
	if isPermission(err) {
		s.AddGap(key, permissionReason+" ("+errString(err)+")")
		return
	}
	s.AddError(key, "reading "+key+" failed: "+errString(err))
}

func collectLive(ctx context.Context, s *snapshot.Snapshot, o *Options) error {
	o.progress("connecting to %s", conninfo.Describe(o.Conn))
	se, err := openFirstSession(ctx, o)
	if err != nil {
		return err
	}
	defer se.close(ctx)
	tx := se.tx

	srv := &snapshot.Server{}
	var addr *string
	var port *int
	err = tx.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('server_version_num')::int,
		current_user, r.rolsuper, pg_has_role(current_user, 'pg_read_all_settings', 'USAGE'), pg_is_in_recovery(),
		host(inet_server_addr()), inet_server_port()
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&srv.Version, &srv.VersionNum, &srv.CurrentUser,
		&srv.Superuser, &srv.ReadAllSettings, &srv.InRecovery, &addr, &port)
	if err != nil {
		return fmt.Errorf("reading server identity: %v", errString(err))
	}
	if addr != nil {
		srv.Host = *addr
	}
	if port != nil {
		srv.Port = *port
	}
	s.Server = srv
	privileged := srv.Superuser || srv.ReadAllSettings

	if err := readSettings(ctx, tx, s, privileged); err != nil {
		return err
	}
	startHostChecks(s, o)
	// The weak-password search runs on its own goroutine once the
	// verifiers are read; an early return cancels it.
	var pw *passwordCheck
	defer func() { pw.stop() }()
	// Each step either fills the snapshot or records a gap or an error;
	// a stalled server ends the collection with the step's name.
	steps := []struct {
		what string
		fn   func()
	}{
		{"reading pg_roles", func() { readRoles(ctx, se, s) }},
		{"reading the password verifiers", func() { pw = startPasswordCheck(ctx, se, s, o) }},
		{"reading pg_hba_file_rules", func() { readHBA(ctx, se, s) }},
		{"reading pg_ident_file_mappings", func() { readIdent(ctx, se, s) }},
		{"reading pg_file_settings", func() { readFileSettingErrors(ctx, se, s) }},
		{"reading the library directory", func() { readLibrariesLive(ctx, se, s) }},
	}
	for _, st := range steps {
		st.fn()
		if err := se.stalled(); err != nil {
			return fmt.Errorf("%s: %v", st.what, err)
		}
	}
	dbs, err := readDatabases(ctx, tx, s)
	if err != nil {
		return err
	}
	readRoleSettings(ctx, se, s)
	if err := se.stalled(); err != nil {
		return fmt.Errorf("reading pg_db_role_setting: %v", err)
	}
	if err := readClusterCatalogs(ctx, se, s); err != nil {
		return err
	}
	if err := collectDatabases(ctx, s, dbs, o); err != nil {
		return err
	}
	if !o.NoProbe && !strings.HasPrefix(o.Conn.Host, "/") {
		o.progress("probing TLS on %s:%d", o.Conn.Host, o.Conn.Port)
		s.Probe = probeTLS(ctx, o.Conn, s)
	}
	pw.finish(s)
	return nil
}

func readSettings(ctx context.Context, tx pgx.Tx, s *snapshot.Snapshot, privileged bool) error {
	rows, err := tx.Query(ctx, `SELECT name, coalesce(setting, ''), coalesce(unit, ''), coalesce(source, ''), coalesce(sourcefile, ''),
		coalesce(sourceline, 0), coalesce(context, '') FROM pg_settings`)
	if err != nil {
		return fmt.Errorf("reading pg_settings: %v", errString(err))
	}
	defer rows.Close()
	for rows.Next() {
		var v snapshot.Setting
		if err := rows.Scan(&v.Name, &v.Value, &v.Unit, &v.Source, &v.File, &v.Line, &v.Context); err != nil {
			return fmt.Errorf("reading pg_settings: %v", errString(err))
		}
		v.Origin = snapshot.FromServer
		s.SetSetting(v)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading pg_settings: %v", errString(err))
	}
	if !privileged {
		s.AddGap(snapshot.GapSettingSources, "the audit role is neither superuser nor a member of pg_read_all_settings: file locations of settings and superuser-only settings are hidden")
	}
	return nil
}

// readRoles reads roles, the kinds of their password verifiers and the
// memberships. When the roles cannot be read, nothing derived from them
// (memberships, passwords) is trusted either.
func readRoles(ctx context.Context, se *session, s *snapshot.Snapshot) {
	var roles []snapshot.Role
	// In a savepoint, so that a broken read leaves the transaction usable
	// for everything that does not depend on it.
	err := se.optional(ctx, func(tx pgx.Tx) (err error) {
		roles, err = scanRoles(ctx, tx)
		return err
	})
	if err != nil {
		reason := "reading pg_roles failed: " + errString(err)
		for _, k := range []string{snapshot.GapRoles, snapshot.GapMemberships, snapshot.GapPasswords, snapshot.GapWeakPasswords} {
			s.AddError(k, reason)
		}
		return
	}
	s.Roles = roles

	// Roles by OID: the reads below name roles by OID and are mapped
	// here, instead of joining pg_roles on the server for every row.
	byOID := make(map[uint32]int, len(s.Roles))
	for i, r := range s.Roles {
		byOID[r.OID] = i
	}

	// Password verifiers are classified on the server: only the kind
	// leaves it, never the verifier.
	err = se.optional(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT oid, CASE WHEN rolpassword IS NULL OR rolpassword = '' THEN 'none'
			WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram-sha-256'
			WHEN rolpassword ~ '^md5[0-9a-f]{32}$' THEN 'md5' ELSE 'plaintext' END FROM pg_authid`)
		if err != nil {
			return err
		}
		defer rows.Close()
		kinds := map[string]string{} // one string per kind, not per role
		for rows.Next() {
			var oid uint32
			var k string
			if err := rows.Scan(&oid, &k); err != nil {
				return err
			}
			if i, ok := byOID[oid]; ok {
				if kinds[k] == "" {
					kinds[k] = k
				}
				s.Roles[i].Password = kinds[k]
			}
		}
		return rows.Err()
	})
	if err != nil {
		for i := range s.Roles {
			s.Roles[i].Password = "" // unknown, not "none"
		}
		readError(s, snapshot.GapPasswords, err, "pg_authid is readable only by superusers: password storage could not be checked")
	}

	// Members and granted roles that are not in pg_roles (a row left
	// behind) are skipped, as the inner joins did; a grantor that is
	// not there is "" as with the outer join.
	q := `SELECT roleid, member, grantor, admin_option, true, true FROM pg_auth_members`
	if s.MajorVersion() >= 16 {
		q = `SELECT roleid, member, grantor, admin_option, inherit_option, set_option FROM pg_auth_members`
	}
	var ms []snapshot.Membership
	err = se.optional(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m snapshot.Membership
			var role, member, grantor uint32
			if err := rows.Scan(&role, &member, &grantor, &m.Admin, &m.Inherit, &m.Set); err != nil {
				return err
			}
			ri, ok1 := byOID[role]
			mi, ok2 := byOID[member]
			if !ok1 || !ok2 {
				continue
			}
			m.Role, m.Member = s.Roles[ri].Name, s.Roles[mi].Name
			if gi, ok := byOID[grantor]; ok {
				m.Grantor = s.Roles[gi].Name
			}
			if s.MajorVersion() < 16 {
				m.Inherit = s.Roles[mi].Inherit // before 16: the member's rolinherit
			}
			ms = append(ms, m)
		}
		return rows.Err()
	})
	if err != nil {
		s.AddError(snapshot.GapMemberships, "reading pg_auth_members failed: "+errString(err))
		return
	}
	s.Memberships = ms
}

// scanRoles reads pg_roles. Every column is read in a form that holds
// every value the catalog allows: rolvaliduntil may be NULL, 'infinity'
// or '-infinity'; rolconfig may be NULL; OIDs use the full uint32 range.
func scanRoles(ctx context.Context, tx pgx.Tx) ([]snapshot.Role, error) {
	rows, err := tx.Query(ctx, `SELECT oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
		rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, coalesce(rolconfig, '{}') FROM pg_roles ORDER BY rolname`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []snapshot.Role
	for rows.Next() {
		var r snapshot.Role
		var until pgtype.Timestamptz
		if err := rows.Scan(&r.OID, &r.Name, &r.Superuser, &r.Inherit, &r.CreateRole, &r.CreateDB, &r.CanLogin,
			&r.Replication, &r.BypassRLS, &r.ConnLimit, &until, &r.Config); err != nil {
			return nil, fmt.Errorf("role %d: %v", r.OID, err)
		}
		r.ValidUntil = timestamp(until)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// timestamp converts a scanned timestamptz; nil for NULL.
func timestamp(t pgtype.Timestamptz) *snapshot.Timestamp {
	switch {
	case !t.Valid:
		return nil
	case t.InfinityModifier == pgtype.Infinity:
		return snapshot.InfiniteTimestamp(1)
	case t.InfinityModifier == pgtype.NegativeInfinity:
		return snapshot.InfiniteTimestamp(-1)
	}
	return &snapshot.Timestamp{Time: t.Time.UTC()}
}

// finiteTime converts a scanned timestamptz for fields that only hold
// real instants (statistics): NULL and the infinities become nil.
func finiteTime(t pgtype.Timestamptz) *time.Time {
	if !t.Valid || t.InfinityModifier != pgtype.Finite {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func readHBA(ctx context.Context, se *session, s *snapshot.Snapshot) {
	path := ""
	if v, ok := s.Setting("hba_file"); ok {
		path = v.Value
	}
	h := &snapshot.HBA{Source: "pg_hba_file_rules", Path: path}
	err := se.optional(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT line_number, coalesce(type, ''), coalesce(database, '{}'), coalesce(user_name, '{}'),
			coalesce(address, ''), coalesce(netmask, ''), coalesce(auth_method, ''), coalesce(options, '{}'), coalesce(error, '')
			FROM pg_hba_file_rules ORDER BY line_number`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r hba.Rule
			var dbs, users, opts []string
			var address, mask, errText string
			if err := rows.Scan(&r.Line, &r.Type, &dbs, &users, &address, &mask, &r.Method, &opts, &errText); err != nil {
				return err
			}
			r.File = path
			if r.Type == "" {
				if errText == "" {
					errText = "invalid line"
				}
				h.Errors = append(h.Errors, hba.ParseError{File: path, Line: r.Line, Msg: errText})
				continue
			}
			r.Warning = errText
			r.Databases = tokens(dbs)
			r.Users = tokens(users)
			h.Ambiguous = append(h.Ambiguous, ambiguous(r.Line, dbs, users, s.MajorVersion())...)
			fromView(&r, address, mask)
			for _, o := range opts {
				n, v, _ := strings.Cut(o, "=")
				r.Options = append(r.Options, hba.Option{Name: n, Value: v})
			}
			r.Text = describeRule(&r)
			h.Rules = append(h.Rules, r)
		}
		return rows.Err()
	})
	if err != nil {
		readError(s, snapshot.GapHBA, err, "pg_hba_file_rules is readable only by superusers")
		return
	}
	if len(h.Ambiguous) > 0 {
		resolveQuoting(ctx, se, h, s.MajorVersion())
	}
	s.HBA = h
}

// maxHBABytes bounds what is read of an hba file through the server.
const maxHBABytes = 16 << 20

// resolveQuoting settles the tokens the view leaves ambiguous from the
// file itself, read through the server (pg_read_binary_file: superusers
// and pg_read_server_files only) and parsed as the server does. The view
// parses the file on disk, as this read does; when both agree line for
// line, the file's quoting is taken. Otherwise the tokens stay ambiguous.
func resolveQuoting(ctx context.Context, se *session, h *snapshot.HBA, major int) {
	if h.Path == "" {
		return
	}
	read := func(p string) ([]byte, error) {
		var b []byte
		err := se.optional(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT pg_read_binary_file($1, 0, $2)`, p, int64(maxHBABytes+1)).Scan(&b)
		})
		if err == nil && len(b) > maxHBABytes {
			err = fmt.Errorf("%s: larger than %d bytes", p, maxHBABytes)
		}
		return b, err
	}
	data, err := read(h.Path)
	if err != nil {
		return // no file access: the ambiguity stays, and is reported
	}
	f := hba.Parse(h.Path, data, hba.Options{Version: major, ReadFile: read,
		ReadDir: func(string) ([]os.DirEntry, error) {
			return nil, errors.New("include_dir is not read through the server")
		}})
	if len(f.Errors) > 0 || len(f.Rules) != len(h.Rules) {
		return
	}
	same := func(a, b []hba.Token) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i].Value != b[i].Value {
				return false
			}
		}
		return true
	}
	for i, r := range h.Rules {
		p := f.Rules[i]
		if p.Line != r.Line || p.Type != r.Type || !same(p.Databases, r.Databases) || !same(p.Users, r.Users) {
			return
		}
	}
	for i := range h.Rules {
		h.Rules[i].Databases = f.Rules[i].Databases
		h.Rules[i].Users = f.Rules[i].Users
		h.Rules[i].Text = describeRule(&h.Rules[i])
	}
	h.Ambiguous = nil
	h.Source = "pg_hba_file_rules+file"
}

// fromView fills the address part of a rule from pg_hba_file_rules.
func fromView(r *hba.Rule, address, mask string) {
	switch {
	case r.Type == hba.Local:
	case address == "all" || address == "samehost" || address == "samenet":
		r.AddrKind = address
	default:
		a, ok := hba.ParseNumericHost(address)
		m, mok := hba.ParseNumericHost(mask)
		if !ok || !mok {
			r.AddrKind, r.Address = hba.AddrHostname, address
			return
		}
		r.AddrKind, r.Address, r.Addr, r.Mask = hba.AddrCIDR, address, a, m
		r.Bits = hba.MaskBits(m)
	}
}

// ambiguous lists the tokens of a pg_hba_file_rules row whose meaning
// depends on quoting the view does not show (hbafuncs.c flattens tokens
// to their strings): the keywords, "+group", and on 16+ "/regex" read
// differently when they were written in double quotes. The rule keeps
// the keyword reading; the registry compares it with the quoted one.
func ambiguous(line int, dbs, users []string, major int) []snapshot.AmbiguousToken {
	var out []snapshot.AmbiguousToken
	for _, v := range dbs {
		switch {
		case v == "all" || v == "sameuser" || v == "samerole" || v == "samegroup" || v == "replication",
			major >= 16 && strings.HasPrefix(v, "/"):
			out = append(out, snapshot.AmbiguousToken{Line: line, Field: "database", Value: v})
		}
	}
	for _, v := range users {
		switch {
		case v == "all", strings.HasPrefix(v, "+"), major >= 16 && strings.HasPrefix(v, "/"):
			out = append(out, snapshot.AmbiguousToken{Line: line, Field: "user", Value: v})
		}
	}
	return out
}

func tokens(vals []string) []hba.Token {
	out := make([]hba.Token, len(vals))
	for i, v := range vals {
		out[i] = hba.Token{Value: v}
	}
	return out
}

func describeRule(r *hba.Rule) string {
	var dbs, users []string
	for _, t := range r.Databases {
		dbs = append(dbs, t.String())
	}
	for _, t := range r.Users {
		users = append(users, t.String())
	}
	parts := []string{r.Type, strings.Join(dbs, ","), strings.Join(users, ",")}
	switch r.AddrKind {
	case hba.AddrCIDR:
		if r.Bits >= 0 {
			parts = append(parts, fmt.Sprintf("%s/%d", hba.FormatAddr(r.Addr), r.Bits))
		} else {
			parts = append(parts, hba.FormatAddr(r.Addr), hba.FormatAddr(r.Mask))
		}
	case hba.AddrNone:
	default:
		if r.Address != "" {
			parts = append(parts, r.Address)
		} else {
			parts = append(parts, r.AddrKind)
		}
	}
	parts = append(parts, r.Method)
	for _, o := range r.Options {
		parts = append(parts, o.Name+"="+o.Value)
	}
	return strings.Join(parts, " ")
}

func readIdent(ctx context.Context, se *session, s *snapshot.Snapshot) {
	if s.MajorVersion() < 15 {
		return // pg_ident_file_mappings arrived in 15; the file is read from disk when local
	}
	path := ""
	if v, ok := s.Setting("ident_file"); ok {
		path = v.Value
	}
	id := &snapshot.Ident{Source: "pg_ident_file_mappings", Path: path}
	err := se.optional(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT line_number, coalesce(map_name, ''), coalesce(sys_name, ''), coalesce(pg_username, ''), coalesce(error, '') FROM pg_ident_file_mappings ORDER BY line_number`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m hba.IdentMap
			var e string
			if err := rows.Scan(&m.Line, &m.Map, &m.SystemUser, &m.PGUser, &e); err != nil {
				return err
			}
			m.File = path
			if e != "" {
				id.Errors = append(id.Errors, hba.ParseError{File: path, Line: m.Line, Msg: e})
				continue
			}
			m.Regex = strings.HasPrefix(m.SystemUser, "/")
			id.Maps = append(id.Maps, m)
		}
		return rows.Err()
	})
	if err != nil {
		readError(s, snapshot.GapIdent, err, "pg_ident_file_mappings is readable only by superusers")
		return
	}
	s.Ident = id
}

func readFileSettingErrors(ctx context.Context, se *session, s *snapshot.Snapshot) {
	err := se.optional(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT coalesce(sourcefile, ''), coalesce(sourceline, 0), coalesce(name, ''), error
			FROM pg_file_settings WHERE error IS NOT NULL ORDER BY seqno`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e snapshot.ConfigError
			var name string
			if err := rows.Scan(&e.File, &e.Line, &name, &e.Msg); err != nil {
				return err
			}
			if name != "" {
				e.Msg = name + ": " + e.Msg
			}
			s.ConfigErrors = append(s.ConfigErrors, e)
		}
		return rows.Err()
	})
	if err != nil {
		readError(s, snapshot.GapConfigFiles, err, "pg_file_settings is readable only by superusers")
	}
}

type dbRow struct {
	name    string
	connect bool
}

func readDatabases(ctx context.Context, tx pgx.Tx, s *snapshot.Snapshot) ([]dbRow, error) {
	rows, err := tx.Query(ctx, `SELECT datname, pg_get_userbyid(datdba), datallowconn, datistemplate, datacl::text[],
		has_database_privilege(oid, 'CONNECT') FROM pg_database ORDER BY datname`)
	if err != nil {
		return nil, fmt.Errorf("reading pg_database: %v", errString(err))
	}
	defer rows.Close()
	var out []dbRow
	for rows.Next() {
		var d snapshot.Database
		var aclText []string
		var canConnect bool
		if err := rows.Scan(&d.Name, &d.Owner, &d.AllowConn, &d.IsTemplate, &aclText, &canConnect); err != nil {
			return nil, fmt.Errorf("reading pg_database: %v", errString(err))
		}
		var aclErrs []string
		d.ACL, d.ACLDefault = parseACL(nil, &aclErrs, func() string { return "database " + d.Name }, aclText)
		for _, e := range aclErrs {
			s.AddError(snapshot.GapDatabases+"."+d.Name, e)
		}
		switch {
		case !d.AllowConn:
			d.Gap = "database does not allow connections (datallowconn = false)"
		case !canConnect:
			d.Gap = "the audit role has no CONNECT privilege on this database"
		}
		s.Databases = append(s.Databases, d)
		out = append(out, dbRow{d.Name, d.Gap == ""})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading pg_database: %v", errString(err))
	}
	return out, nil
}

// parseACL parses an ACL column; a NULL ACL means the built-in default.
// An unreadable ACL is added to errs (per goroutine, merged by the
// caller): it is a collection error, never an empty ACL that passes.
// what names the object, and is only built for an error.
func parseACL(in *acl.Interner, errs *[]string, what func() string, text []string) ([]acl.Item, bool) {
	if text == nil {
		return nil, true
	}
	items, err := in.ParseList(text)
	if err != nil {
		*errs = append(*errs, fmt.Sprintf("%s: unreadable ACL: %v", what(), err))
	}
	return items, false
}

func readRoleSettings(ctx context.Context, se *session, s *snapshot.Snapshot) {
	var out []snapshot.DBRoleSetting
	err := se.optional(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT coalesce(d.datname, ''), coalesce(r.rolname, ''), coalesce(s.setconfig, '{}')
		FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v snapshot.DBRoleSetting
			if err := rows.Scan(&v.Database, &v.Role, &v.Settings); err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err != nil {
		s.AddError("role_settings", "reading pg_db_role_setting failed: "+errString(err))
		return
	}
	s.RoleSettings = out
}

// collectDatabases reads each database's catalogs, a bounded number at a
// time, one query per catalog. A database we may not enter is a gap; a
// read that breaks inside one is a collection error; a stalled server
// ends the collection.
func collectDatabases(ctx context.Context, s *snapshot.Snapshot, dbs []dbRow, o *Options) error {
	start := time.Now()
	defer func() { o.trace("databases in %s", time.Since(start).Round(time.Millisecond)) }()
	ctx = withRoleNames(ctx, s.Roles)
	type result struct {
		i     int
		d     snapshot.Database
		warns []string
		errs  []string
		err   error
	}
	sem := make(chan struct{}, o.Parallel)
	results := make(chan result, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		if !db.connect {
			continue
		}
		wg.Add(1)
		go func(i int, name string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			o.progress("reading database %q", name)
			var warns, errs []string
			d, err := readDatabase(ctx, &warns, &errs, name, o)
			results <- result{i, d, warns, errs, err}
		}(i, db.name)
	}
	wg.Wait()
	close(results)
	var stall error
	for r := range results {
		s.Warnings = append(s.Warnings, r.warns...)
		d := &s.Databases[r.i]
		if r.err != nil {
			d.Gap = r.err.Error()
			if errors.Is(r.err, errStalled) {
				stall = r.err
			} else if !refusedEntry(r.err) {
				s.AddError(snapshot.GapDatabases+"."+d.Name, r.err.Error())
			}
			continue
		}
		for _, e := range r.errs {
			s.AddError(snapshot.GapDatabases+"."+d.Name, e)
		}
		// Keep the pg_database facts; take what was read inside.
		r.d.Name, r.d.Owner, r.d.AllowConn, r.d.IsTemplate, r.d.ACL, r.d.ACLDefault = d.Name, d.Owner, d.AllowConn, d.IsTemplate, d.ACL, d.ACLDefault
		r.d.Collected = true
		*d = r.d
	}
	return stall
}

// refusedEntry reports whether a database's session was refused by the
// server's access rules (pg_hba.conf, CONNECT privilege): an expected gap.
func refusedEntry(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "28000" || pgErr.Code == "28P01" || pgErr.Code == "42501"
	}
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 28000") || strings.Contains(s, "SQLSTATE 28P01") || strings.Contains(s, "SQLSTATE 42501")
}

func readDatabase(ctx context.Context, warns, errs *[]string, name string, o *Options) (snapshot.Database, error) {
	var d snapshot.Database
	se, err := openSession(ctx, o.Conn, name, o)
	if err != nil {
		return d, err
	}
	defer se.close(ctx)
	// One interner per database (this goroutine's): its ACLs share role
	// names and privilege lists instead of holding a copy each.
	ctx = withDBState(ctx)
	in := internerFrom(ctx)
	fail := func(what string, err error) (snapshot.Database, error) {
		if st := se.stalled(); st != nil {
			return d, fmt.Errorf("database %q: reading %s: %w", name, what, st)
		}
		return d, fmt.Errorf("database %q: reading %s: %v", name, what, errString(err))
	}
	err = func() error {
		rows, err := se.tx.Query(ctx, `SELECT nspname, pg_get_userbyid(nspowner), nspacl::text[] FROM pg_namespace ORDER BY nspname`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sc snapshot.Schema
			var a []string
			if err := rows.Scan(&sc.Name, &sc.Owner, &a); err != nil {
				return err
			}
			sc.ACL, sc.ACLDefault = parseACL(in, errs, func() string { return fmt.Sprintf("database %q: schema %s", name, sc.Name) }, a)
			d.Schemas = append(d.Schemas, sc)
		}
		return rows.Err()
	}()
	if err != nil {
		return fail("pg_namespace", err)
	}
	err = func() error {
		rows, err := se.tx.Query(ctx, `SELECT e.extname, e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY 1`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e snapshot.Extension
			if err := rows.Scan(&e.Name, &e.Version, &e.Schema); err != nil {
				return err
			}
			d.Extensions = append(d.Extensions, e)
		}
		return rows.Err()
	}()
	if err != nil {
		return fail("pg_extension", err)
	}
	err = func() error {
		rows, err := se.tx.Query(ctx, `SELECT lanname, lanpltrusted, lanispl, pg_get_userbyid(lanowner), lanacl::text[] FROM pg_language ORDER BY 1`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l snapshot.Language
			var a []string
			if err := rows.Scan(&l.Name, &l.Trusted, &l.PL, &l.Owner, &a); err != nil {
				return err
			}
			l.ACL, l.ACLDefault = parseACL(in, errs, func() string { return fmt.Sprintf("database %q: language %s", name, l.Name) }, a)
			d.Languages = append(d.Languages, l)
		}
		return rows.Err()
	}()
	if err != nil {
		return fail("pg_language", err)
	}
	d.Name = name
	readDatabaseCatalogs(ctx, se, &d, warns, errs)
	if se.stalled() == nil {
		readSensitive(ctx, se, &d, warns, errs)
	}
	if st := se.stalled(); st != nil {
		return d, fmt.Errorf("database %q: %w", name, st)
	}
	return d, nil
}
