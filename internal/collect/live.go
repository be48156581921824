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
	// PasswordBudget bounds the offline weak-password search (0: off).
	PasswordBudget time.Duration
	// NoProbe skips the TLS probe of the server's port.
	NoProbe bool
	// Progress, when set, is told what is being read.
	Progress func(format string, args ...any)
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
	if o.Conn != nil {
		s.Target.Description = conninfo.Describe(o.Conn)
		s.Target.Live = true
		if err := collectLive(ctx, s, &o); err != nil {
			return nil, err
		}
	} else {
		s.Target.Description = "files"
	}
	if !o.NoFiles {
		if err := collectFiles(s, &o); err != nil {
			return nil, err
		}
	}
	redact(s)
	return s, nil
}

// sessionConfig hardens our own session: read-only, bounded in time, and
// a search_path that a hostile schema cannot shadow.
func sessionConfig(base *pgx.ConnConfig, database string, o *Options) *pgx.ConnConfig {
	cfg := base.Copy()
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

// session is one read-only transaction on one database.
type session struct {
	conn *pgx.Conn
	tx   pgx.Tx
	o    *Options
}

func openSession(ctx context.Context, base *pgx.ConnConfig, database string, o *Options) (*session, error) {
	cfg := sessionConfig(base, database, o)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %s", conninfo.Describe(cfg), conninfo.Redact(errString(err), cfg.Password))
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("starting a read-only transaction: %v", err)
	}
	return &session{conn: conn, tx: tx, o: o}, nil
}

func errString(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	}
	return err.Error()
}

func (se *session) close(ctx context.Context) {
	se.tx.Rollback(ctx) // read-only: nothing to keep
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
		sp.Rollback(ctx)
		return err
	}
	return sp.Commit(ctx)
}

func collectLive(ctx context.Context, s *snapshot.Snapshot, o *Options) error {
	o.progress("connecting to %s", conninfo.Describe(o.Conn))
	se, err := openSession(ctx, o.Conn, "", o)
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
	readRoles(ctx, se, s)
	if s.Gap(snapshot.GapPasswords) == "" {
		checkPasswords(ctx, se, s, o.PasswordBudget)
	} else {
		s.AddGap(snapshot.GapWeakPasswords, s.Gap(snapshot.GapPasswords))
	}
	readHBA(ctx, se, s)
	readIdent(ctx, se, s)
	readFileSettingErrors(ctx, se, s)
	dbs, err := readDatabases(ctx, tx, s)
	if err != nil {
		return err
	}
	readRoleSettings(ctx, tx, s)
	readClusterCatalogs(ctx, se, s)
	collectDatabases(ctx, s, dbs, o)
	if !o.NoProbe && !strings.HasPrefix(o.Conn.Host, "/") {
		o.progress("probing TLS on %s:%d", o.Conn.Host, o.Conn.Port)
		s.Probe = probeTLS(ctx, o.Conn.Host, o.Conn.Port)
	}
	return nil
}

func readSettings(ctx context.Context, tx pgx.Tx, s *snapshot.Snapshot, privileged bool) error {
	rows, err := tx.Query(ctx, `SELECT name, coalesce(setting, ''), coalesce(unit, ''), source, coalesce(sourcefile, ''),
		coalesce(sourceline, 0), context FROM pg_settings`)
	if err != nil {
		return fmt.Errorf("reading pg_settings: %v", errString(err))
	}
	defer rows.Close()
	for rows.Next() {
		var v snapshot.Setting
		if err := rows.Scan(&v.Name, &v.Value, &v.Unit, &v.Source, &v.File, &v.Line, &v.Context); err != nil {
			return err
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

func readRoles(ctx context.Context, se *session, s *snapshot.Snapshot) {
	rows, err := se.tx.Query(ctx, `SELECT oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
		rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, coalesce(rolconfig, '{}') FROM pg_roles ORDER BY rolname`)
	if err != nil {
		s.AddGap(snapshot.GapRoles, "reading pg_roles failed: "+errString(err))
		return
	}
	for rows.Next() {
		var r snapshot.Role
		var until *time.Time
		if err := rows.Scan(&r.OID, &r.Name, &r.Superuser, &r.Inherit, &r.CreateRole, &r.CreateDB, &r.CanLogin,
			&r.Replication, &r.BypassRLS, &r.ConnLimit, &until, &r.Config); err != nil {
			s.AddGap(snapshot.GapRoles, "reading pg_roles failed: "+err.Error())
			rows.Close()
			return
		}
		if until != nil && until.Year() < 200000 {
			u := until.UTC()
			r.ValidUntil = &u
		}
		s.Roles = append(s.Roles, r)
	}
	rows.Close()

	// Password verifiers are classified on the server: only the kind
	// leaves it, never the verifier.
	kinds := map[string]string{}
	err = se.optional(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT rolname, CASE WHEN rolpassword IS NULL OR rolpassword = '' THEN 'none'
			WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram-sha-256'
			WHEN rolpassword ~ '^md5[0-9a-f]{32}$' THEN 'md5' ELSE 'plaintext' END FROM pg_authid`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n, k string
			if err := rows.Scan(&n, &k); err != nil {
				return err
			}
			kinds[n] = k
		}
		return rows.Err()
	})
	if err != nil {
		s.AddGap(snapshot.GapPasswords, "pg_authid is readable only by superusers: password storage could not be checked ("+errString(err)+")")
	} else {
		for i := range s.Roles {
			s.Roles[i].Password = kinds[s.Roles[i].Name]
		}
	}

	v16 := s.MajorVersion() >= 16
	q := `SELECT r.rolname, m.rolname, coalesce(g.rolname, ''), am.admin_option, m.rolinherit, true
		FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
		LEFT JOIN pg_roles g ON g.oid = am.grantor`
	if v16 {
		q = `SELECT r.rolname, m.rolname, coalesce(g.rolname, ''), am.admin_option, am.inherit_option, am.set_option
		FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
		LEFT JOIN pg_roles g ON g.oid = am.grantor`
	}
	rows, err = se.tx.Query(ctx, q)
	if err != nil {
		s.AddGap(snapshot.GapMemberships, "reading pg_auth_members failed: "+errString(err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var m snapshot.Membership
		if err := rows.Scan(&m.Role, &m.Member, &m.Grantor, &m.Admin, &m.Inherit, &m.Set); err != nil {
			s.AddGap(snapshot.GapMemberships, err.Error())
			return
		}
		s.Memberships = append(s.Memberships, m)
	}
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
		s.AddGap(snapshot.GapHBA, "pg_hba_file_rules is readable only by superusers ("+errString(err)+")")
		return
	}
	s.HBA = h
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
		s.AddGap(snapshot.GapIdent, "pg_ident_file_mappings is readable only by superusers ("+errString(err)+")")
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
		s.AddGap(snapshot.GapConfigFiles, "pg_file_settings is readable only by superusers ("+errString(err)+")")
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
			return nil, err
		}
		d.ACL, d.ACLDefault = parseACL(&s.Warnings, "database "+d.Name, aclText)
		switch {
		case !d.AllowConn:
			d.Gap = "database does not allow connections (datallowconn = false)"
		case !canConnect:
			d.Gap = "the audit role has no CONNECT privilege on this database"
		}
		s.Databases = append(s.Databases, d)
		out = append(out, dbRow{d.Name, d.Gap == ""})
	}
	return out, rows.Err()
}

// parseACL parses an ACL column; a NULL ACL means the built-in default.
// Problems are added to warns (per goroutine, merged by the caller).
func parseACL(warns *[]string, what string, text []string) ([]acl.Item, bool) {
	if text == nil {
		return nil, true
	}
	items, err := acl.ParseList(text)
	if err != nil {
		*warns = append(*warns, fmt.Sprintf("%s: unreadable ACL: %v", what, err))
	}
	return items, false
}

func readRoleSettings(ctx context.Context, tx pgx.Tx, s *snapshot.Snapshot) {
	rows, err := tx.Query(ctx, `SELECT coalesce(d.datname, ''), coalesce(r.rolname, ''), s.setconfig
		FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole`)
	if err != nil {
		s.AddGap("role_settings", errString(err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var v snapshot.DBRoleSetting
		if err := rows.Scan(&v.Database, &v.Role, &v.Settings); err != nil {
			return
		}
		s.RoleSettings = append(s.RoleSettings, v)
	}
}

// collectDatabases reads each database's catalogs, a bounded number at a
// time, one query per catalog.
func collectDatabases(ctx context.Context, s *snapshot.Snapshot, dbs []dbRow, o *Options) {
	ctx = withRoleNames(ctx, s.Roles)
	type result struct {
		i     int
		d     snapshot.Database
		warns []string
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
			var warns []string
			d, err := readDatabase(ctx, &warns, name, o)
			results <- result{i, d, warns, err}
		}(i, db.name)
	}
	wg.Wait()
	close(results)
	for r := range results {
		s.Warnings = append(s.Warnings, r.warns...)
		d := &s.Databases[r.i]
		if r.err != nil {
			d.Gap = r.err.Error()
			continue
		}
		// Keep the pg_database facts; take what was read inside.
		r.d.Name, r.d.Owner, r.d.AllowConn, r.d.IsTemplate, r.d.ACL, r.d.ACLDefault = d.Name, d.Owner, d.AllowConn, d.IsTemplate, d.ACL, d.ACLDefault
		r.d.Collected = true
		*d = r.d
	}
}

func readDatabase(ctx context.Context, warns *[]string, name string, o *Options) (snapshot.Database, error) {
	var d snapshot.Database
	se, err := openSession(ctx, o.Conn, name, o)
	if err != nil {
		return d, err
	}
	defer se.close(ctx)
	rows, err := se.tx.Query(ctx, `SELECT nspname, pg_get_userbyid(nspowner), nspacl::text[] FROM pg_namespace ORDER BY nspname`)
	if err != nil {
		return d, fmt.Errorf("reading pg_namespace: %v", errString(err))
	}
	for rows.Next() {
		var sc snapshot.Schema
		var a []string
		if err := rows.Scan(&sc.Name, &sc.Owner, &a); err != nil {
			rows.Close()
			return d, err
		}
		sc.ACL, sc.ACLDefault = parseACL(warns, "schema "+sc.Name, a)
		d.Schemas = append(d.Schemas, sc)
	}
	rows.Close()
	rows, err = se.tx.Query(ctx, `SELECT e.extname, e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY 1`)
	if err != nil {
		return d, fmt.Errorf("reading pg_extension: %v", errString(err))
	}
	for rows.Next() {
		var e snapshot.Extension
		if err := rows.Scan(&e.Name, &e.Version, &e.Schema); err != nil {
			rows.Close()
			return d, err
		}
		d.Extensions = append(d.Extensions, e)
	}
	rows.Close()
	rows, err = se.tx.Query(ctx, `SELECT lanname, lanpltrusted, lanispl, pg_get_userbyid(lanowner), lanacl::text[] FROM pg_language ORDER BY 1`)
	if err != nil {
		return d, fmt.Errorf("reading pg_language: %v", errString(err))
	}
	defer rows.Close()
	for rows.Next() {
		var l snapshot.Language
		var a []string
		if err := rows.Scan(&l.Name, &l.Trusted, &l.PL, &l.Owner, &a); err != nil {
			return d, err
		}
		l.ACL, l.ACLDefault = parseACL(warns, "language "+l.Name, a)
		d.Languages = append(d.Languages, l)
	}
	if err := rows.Err(); err != nil {
		return d, err
	}
	rows.Close()
	d.Name = name
	return d, readDatabaseCatalogs(ctx, se, &d, warns)
}
