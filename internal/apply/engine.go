package apply

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Test hooks for fault injection: afterReload runs once the new
// configuration is in force, before verification; onVerifyConn sees the
// verifying connection before it is used.
var (
	afterReload  func(ctx context.Context) error
	onVerifyConn func(ctx context.Context, c *pgx.Conn)
)

// refusal marks a refusal before any change.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error { return &refusal{fmt.Sprintf(format, args...)} }

// serverInfo is what the operator's connection tells about the server.
type serverInfo struct {
	superuser  bool
	version    int
	dataDir    string
	hbaFile    string
	identFile  string
	ssl        string
	listen     string
	port       string
	op         Path
	serverAddr string
	// onHost: the data directory is this host's (postmaster.pid names the
	// server's port), so files can be journalled and written.
	onHost bool
}

type engine struct {
	o    Options
	p    *plan.Plan
	j    *plan.Journal
	m    *plan.Manifest
	st   *plan.JournalState
	conn *pgx.Conn
	info serverInfo
	res  *Result
	// changed: something on the server may differ from the journal.
	changed   bool
	restarted bool
	// names of restart-needing settings this plan sets
	restartNames map[string]bool
	// proveNames are reload settings the throwaway server proves too:
	// ssl and its files, which a reload would silently leave off.
	proveNames   map[string]bool
	binDirCached string
	// ranCommands: command steps already run (before the proof, which
	// needs what they make: the certificate ssl = on loads).
	ranCommands map[string]bool
}

func (e *engine) logf(format string, args ...any) {
	if e.o.Progress != nil {
		fmt.Fprintf(e.o.Progress, format+"\n", args...)
	}
}

// Apply runs p. A refusal before any change returns an error and a Result
// with Problem set; a failure after a change restores the journal and
// returns an error and a Result with RolledBack and Problem set.
func Apply(ctx context.Context, p *plan.Plan, o Options) (*Result, error) {
	start := time.Now()
	res := &Result{}
	defer func() { res.Took = time.Since(start) }()
	if p.Empty() {
		return res, nil
	}
	if o.Conn == nil {
		return res, errors.New("apply: no connection settings")
	}
	root := o.JournalRoot
	if root == "" {
		root = DefaultJournalRoot()
	}
	conn, err := pgx.ConnectConfig(ctx, o.Conn.Copy())
	if err != nil {
		return res, fmt.Errorf("connecting to the server: %w", err)
	}
	e := &engine{o: o, p: p, conn: conn, res: res, restartNames: map[string]bool{}, proveNames: map[string]bool{}}
	defer func() {
		if e.conn != nil {
			e.conn.Close(context.Background())
		}
	}()
	if err := e.inspect(ctx); err != nil {
		return res, err
	}
	unlock, err := lockDataDir(e.info)
	if err != nil {
		return res, err
	}
	defer unlock()
	j, err := plan.CreateJournal(root, p)
	if err != nil {
		return res, err
	}
	e.j, res.PlanID, res.JournalDir = j, j.ID, j.Dir
	if e.st, err = j.State(); err != nil {
		return res, err
	}
	e.m = &plan.Manifest{DataDirectory: e.info.dataDir, HBAFile: e.info.hbaFile, AutoConf: filepath.Join(e.info.dataDir, "postgresql.auto.conf")}
	e.logf("journal %s", j.Dir)

	for _, stage := range []func(context.Context) error{e.prepare, e.guard, e.commands, e.validate, e.prove} {
		if err := stage(ctx); err != nil {
			return e.refused(ctx, err)
		}
	}
	if err := e.run(ctx); err != nil {
		return e.failed(ctx, err)
	}
	if err := e.verify(ctx); err != nil {
		return e.failed(ctx, err)
	}
	e.st.State, e.st.Applied, e.st.Reloaded, e.st.Restarted = plan.StateApplied, res.Applied, res.Reloaded, res.Restarted
	if err := j.WriteState(e.st); err != nil {
		return res, err
	}
	e.logf("applied plan %s: %d steps", j.ID, len(res.Applied))
	return res, nil
}

// refused undoes the validation writes (nothing took effect) and records
// the refusal.
func (e *engine) refused(ctx context.Context, err error) (*Result, error) {
	ctx, cancel := restoreContext(ctx)
	defer cancel()
	if e.changed {
		if rerr := e.restoreFiles(ctx); rerr != nil {
			err = fmt.Errorf("%v; restoring the journalled files failed too: %v (journal %s)", err, rerr, e.j.Dir)
		}
	}
	e.res.Problem = err.Error()
	e.st.State, e.st.Problem = plan.StateRefused, e.res.Problem
	e.j.WriteManifest(e.m)
	e.j.WriteState(e.st)
	e.logf("%s", e.res.Problem)
	return e.res, errors.New(e.res.Problem)
}

// restoreContext outlives the caller's cancellation (an interrupt
// mid-apply must still put the server back), within its own bound.
func restoreContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*serverWait+time.Minute)
}

// failed restores everything after a change went wrong.
func (e *engine) failed(ctx context.Context, err error) (*Result, error) {
	ctx, cancel := restoreContext(ctx)
	defer cancel()
	e.logf("failed: %v; restoring plan %s from its journal", err, e.j.ID)
	e.res.Problem, e.res.Failed = err.Error(), true
	if rerr := e.restore(ctx, e.restarted); rerr != nil {
		e.res.Problem = fmt.Sprintf("%v; rolling back failed too: %v (journal %s)", err, rerr, e.j.Dir)
	} else {
		e.res.RolledBack = true
		e.res.Problem += "; rolled back from the journal, and the server accepts pgaegis again"
	}
	e.st.State, e.st.Problem = plan.StateFailed, e.res.Problem
	e.st.Applied, e.st.Restarted = e.res.Applied, e.restarted
	e.j.WriteManifest(e.m)
	e.j.WriteState(e.st)
	e.logf("%s", e.res.Problem)
	return e.res, errors.New(e.res.Problem)
}

// inspect reads the operator's own path and where the server keeps its files.
func (e *engine) inspect(ctx context.Context) error {
	in := &e.info
	var addr, saddr *string
	var ssl, cert bool
	err := e.conn.QueryRow(ctx, `SELECT session_user::text, current_database()::text,
		host(inet_client_addr()), host(inet_server_addr()),
		coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),
		coalesce((SELECT client_dn IS NOT NULL FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),
		coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false),
		current_setting('server_version_num')::int,
		current_setting('data_directory'), current_setting('hba_file'), current_setting('ident_file'),
		current_setting('ssl'), current_setting('listen_addresses'), current_setting('port')`).
		Scan(&in.op.Role, &in.op.Database, &addr, &saddr, &ssl, &cert, &in.superuser, &in.version,
			&in.dataDir, &in.hbaFile, &in.identFile, &in.ssl, &in.listen, &in.port)
	if err != nil {
		return fmt.Errorf("reading the server's identity: %w", err)
	}
	if !in.superuser {
		return errors.New("pgaegis fix --apply needs a superuser connection (ALTER SYSTEM, pg_hba_file_rules, pg_file_settings, pg_authid)")
	}
	if addr == nil {
		in.op.Local = true
		if u, err := user.Current(); err == nil {
			in.op.OSUser = u.Username
		}
	} else {
		in.op.Address, in.op.SSL, in.op.ClientCert = *addr, ssl, cert
	}
	if saddr != nil {
		in.serverAddr = *saddr
	}
	in.onHost = postmasterPort(in.dataDir) == in.port
	return nil
}

// lockDataDir takes an advisory lock on the data directory for the whole
// apply or rollback: two runs must not interleave their journals.
func lockDataDir(in serverInfo) (func(), error) {
	if !in.onHost {
		return func() {}, nil
	}
	f, err := os.Open(in.dataDir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another pgaegis fix is changing %s right now (%v)", in.dataDir, err)
	}
	return func() { f.Close() }, nil
}

// postmasterPID and postmasterPort read postmaster.pid (lines 1 and 4).
func postmasterLines(dataDir string) []string {
	b, err := safefile.ReadFile(filepath.Join(dataDir, "postmaster.pid"), 4096)
	if err != nil {
		return nil
	}
	return strings.Split(string(b), "\n")
}

func postmasterPort(dataDir string) string {
	if l := postmasterLines(dataDir); len(l) > 3 {
		return strings.TrimSpace(l[3])
	}
	return ""
}

func postmasterPID(dataDir string) int {
	if l := postmasterLines(dataDir); len(l) > 0 {
		var pid int
		if _, err := fmt.Sscan(strings.TrimSpace(l[0]), &pid); err == nil {
			return pid
		}
	}
	return 0
}

// prepare journals everything the plan will change, before any change.
func (e *engine) prepare(ctx context.Context) error {
	needHost := func(s plan.Step, what string) error {
		if !e.info.onHost {
			return refuse("step %s (%s) needs pgaegis on the database host: %s is not this host's running data directory", s.ID, what, e.info.dataDir)
		}
		return nil
	}
	var hbaSet map[string]bool // the server's hba files, read once
	for _, s := range e.p.Steps {
		switch s.Kind {
		case plan.KindCommand:
			if e.o.RunCommand == nil {
				return refuse("step %s runs %q and no command runner is set", s.ID, strings.Join(s.Command, " "))
			}
			if len(s.Command) < 2 || s.Command[0] != "pgaegis" {
				return refuse("step %s: %q is not a pgaegis command", s.ID, strings.Join(s.Command, " "))
			}
		case plan.KindFileMode:
			if err := needHost(s, "file modes"); err != nil {
				return err
			}
			for _, mc := range s.Modes {
				st, err := os.Lstat(mc.Path)
				if err != nil {
					return refuse("step %s: %v", s.ID, err)
				}
				if st.Mode()&os.ModeSymlink != 0 {
					return refuse("step %s: %s is a symbolic link; pgaegis changes the mode of the target path only", s.ID, mc.Path)
				}
				sm := plan.SavedMode{Path: mc.Path, Mode: st.Mode().Perm(), UID: -1, GID: -1}
				if sys, ok := st.Sys().(*syscall.Stat_t); ok {
					sm.UID, sm.GID = int(sys.Uid), int(sys.Gid)
				}
				e.m.Modes = append(e.m.Modes, sm)
			}
		case plan.KindSQL:
			if len(s.SQL) > 0 && len(s.Undo) == 0 {
				e.logf("step %s has no undo: a rollback cannot reverse it", s.ID)
			}
			e.m.SQL = append(e.m.SQL, plan.SavedSQL{Step: s.ID, Database: s.Database, Undo: s.Undo})
		case plan.KindSettings:
			if err := e.saveSettings(ctx, s); err != nil {
				return err
			}
		case plan.KindHBA:
			if err := needHost(s, "pg_hba.conf"); err != nil {
				return err
			}
			if s.HBA == nil {
				return refuse("step %s: no pg_hba.conf content", s.ID)
			}
			path := e.hbaPath(&s)
			if hbaSet == nil {
				var err error
				if hbaSet, err = e.hbaFiles(ctx); err != nil {
					return err
				}
			}
			if !hbaSet[path] {
				return refuse("step %s rewrites %s, but the server reads %s (SHOW hba_file) and no include of it names that file", s.ID, s.HBA.Path, e.info.hbaFile)
			}
			f, err := e.j.SaveFile(e.m, path)
			if err != nil {
				return refuse("step %s: %v", s.ID, err)
			}
			if !f.Exists {
				return refuse("step %s: %s does not exist", s.ID, path)
			}
			cur, _ := e.j.FileBytes(f)
			lines := strings.Split(string(cur), "\n")
			for _, lc := range s.HBA.Lines {
				// Old is shown to people, so its credentials are masked:
				// compare the file's line masked the same way.
				if lc.Line > 0 && lc.Old != "" && (lc.Line > len(lines) || hba.MaskLine(strings.TrimRight(lines[lc.Line-1], "\r")) != hba.MaskLine(lc.Old)) {
					return refuse("step %s: %s:%d is no longer %q: the file changed since the plan was made; plan again", s.ID, path, lc.Line, lc.Old)
				}
			}
		default:
			return refuse("step %s: unknown kind %q", s.ID, s.Kind)
		}
	}
	if e.needsRestart() && !e.o.NoRestart && len(e.o.RestartCommand) == 0 && !e.info.onHost {
		return refuse("the plan needs a restart and the server is not on this host: give a restart command, or leave the restart pending")
	}
	return e.j.WriteManifest(e.m)
}

// saveSettings journals the previous value and source of every setting
// the step changes, and postgresql.auto.conf byte for byte when on the host.
func (e *engine) saveSettings(ctx context.Context, s plan.Step) error {
	if e.info.onHost {
		if _, err := e.j.SaveFile(e.m, e.m.AutoConf); err != nil {
			return refuse("step %s: %v", s.ID, err)
		}
	}
	for _, sc := range s.Settings {
		ss := plan.SavedSetting{Name: sc.Name}
		var file *string
		var line *int32
		var ctxName string
		err := e.conn.QueryRow(ctx, `SELECT setting, source, sourcefile, sourceline, context FROM pg_settings WHERE name = $1`, strings.ToLower(sc.Name)).
			Scan(&ss.Setting, &ss.Source, &file, &line, &ctxName)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// A module's setting before the module is loaded: no row yet.
		case err != nil:
			return fmt.Errorf("reading setting %s: %w", sc.Name, err)
		default:
			if file != nil {
				ss.SourceFile = *file
			}
			if line != nil {
				ss.SourceLine = int(*line)
			}
		}
		if sc.Restart || ctxName == "postmaster" {
			e.restartNames[strings.ToLower(sc.Name)] = true
		}
		if n := strings.ToLower(sc.Name); n == "ssl" || sslFiles[n] {
			e.proveNames[n] = true
		}
		var v *string
		err = e.conn.QueryRow(ctx, `SELECT setting FROM pg_file_settings WHERE name = $1 AND sourcefile LIKE '%/postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1`, strings.ToLower(sc.Name)).Scan(&v)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reading pg_file_settings for %s: %w", sc.Name, err)
		}
		if v != nil {
			ss.InAutoConf, ss.AutoConf = true, *v
		}
		e.m.Settings = append(e.m.Settings, ss)
	}
	return nil
}

// paths are the ways in the guard keeps open: the operator's own, the
// replication and monitoring sessions seen now, and --keep.
func (e *engine) paths(ctx context.Context) ([]Path, error) {
	out := []Path{e.info.op}
	seen := map[Path]bool{e.info.op: true}
	rows, err := e.conn.Query(ctx, `SELECT a.usename::text, coalesce(a.datname::text, ''), a.backend_type, host(a.client_addr),
			coalesce(s.ssl, false), coalesce(s.client_dn IS NOT NULL, false)
		FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s ON s.pid = a.pid
		JOIN pg_roles r ON r.oid = a.usesysid
		WHERE a.pid <> pg_backend_pid()
		  AND (a.backend_type = 'walsender'
		       OR (a.backend_type = 'client backend' AND NOT r.rolsuper AND pg_has_role(a.usesysid, 'pg_monitor', 'MEMBER')))`)
	if err != nil {
		return nil, fmt.Errorf("reading pg_stat_activity: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Path
		var kind string
		var addr *string
		if err := rows.Scan(&p.Role, &p.Database, &kind, &addr, &p.SSL, &p.ClientCert); err != nil {
			return nil, err
		}
		if kind == "walsender" && p.Database == "" {
			p.Database = "replication"
		}
		if addr == nil {
			p.Local = true
			p.SSL, p.ClientCert = false, false
		} else {
			p.Address = *addr
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, p := range e.o.Keep {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// guard simulates every kept path under the candidate configuration.
func (e *engine) guard(ctx context.Context) error {
	var sslStep, listenStep, portStep *plan.Step
	var hbaSteps []*plan.Step // one per file: hba_file and included files
	sslAfter, listenAfter, portAfter := e.info.ssl, e.info.listen, e.info.port
	for i := range e.p.Steps {
		s := &e.p.Steps[i]
		if s.Kind == plan.KindHBA {
			hbaSteps = append(hbaSteps, s)
		}
		for _, sc := range s.Settings {
			switch strings.ToLower(sc.Name) {
			case "ssl":
				sslStep, sslAfter = s, sc.To
			case "listen_addresses":
				listenStep, listenAfter = s, sc.To
			case "port":
				portStep, portAfter = s, sc.To
			}
		}
	}
	if len(hbaSteps) == 0 && sslStep == nil && listenStep == nil && portStep == nil {
		return nil
	}
	if portStep != nil && strings.TrimSpace(portAfter) != e.info.port {
		return refuse("step %s changes port from %s to %s: every path in, %s among them, uses port %s", portStep.ID, e.info.port, portAfter, e.info.op, e.info.port)
	}
	sslOn := isOn(sslAfter)
	paths, err := e.paths(ctx)
	if err != nil {
		return err
	}
	if listenStep != nil {
		for _, p := range paths {
			if p.Local {
				continue
			}
			sa := ""
			if p == e.info.op {
				sa = e.info.serverAddr
			}
			if !listenKeeps(listenAfter, sa) {
				return refuse("path %s: step %s sets listen_addresses = %q, which would no longer serve it", p, listenStep.ID, listenAfter)
			}
		}
	}
	g, err := e.newGuard(ctx, sslOn)
	if err != nil {
		return err
	}
	rules, stepID := g.cur, ""
	if len(hbaSteps) > 0 {
		// The whole configuration after the change: hba_file with every
		// include, the rewritten files in their new content.
		stepID = stepIDs(hbaSteps)
		f, err := e.candidateHBA(hbaSteps, hba.Options{SSL: sslOn, Version: e.info.version / 10000})
		if err != nil {
			return refuse("step %s: reading %s: %v", stepID, e.info.hbaFile, err)
		}
		if len(f.Errors) > 0 {
			return refuse("step %s: the new pg_hba.conf is invalid: %v", stepID, f.Errors[0])
		}
		rules = f.Rules
	} else if sslStep != nil {
		stepID = sslStep.ID
	} else {
		return nil
	}
	for _, p := range paths {
		if why := g.check(p, rules, stepID, sslOn); why != "" {
			return refuse("lockout guard: %s", why)
		}
	}
	e.logf("lockout guard: %d path(s) stay open", len(paths))
	return nil
}

// isOn reads a boolean setting as the server does (guc.ParseBool).
func isOn(v string) bool {
	on, ok := guc.ParseBool(v)
	return ok && on
}

// newGuard loads what the simulation needs: the current pg_hba.conf and
// pg_ident.conf, roles and memberships, password verifiers (classified on
// the server: no verifier leaves it).
func (e *engine) newGuard(ctx context.Context, sslOn bool) (*guard, error) {
	g := &guard{op: e.info.op, opServerAddr: e.info.serverAddr, hbaFile: e.info.hbaFile}
	c := e.o.Conn
	g.opNoPassword = c.Password == ""
	g.opNeedsTLS = c.TLSConfig != nil
	g.opTriesTLS = c.TLSConfig != nil
	for _, fb := range c.Fallbacks {
		if fb.TLSConfig == nil {
			g.opNeedsTLS = false
		}
	}
	ho := hba.Options{SSL: isOn(e.info.ssl), Version: e.info.version / 10000}
	if f, err := hba.ParseFile(e.info.hbaFile, ho); err == nil {
		g.cur = f.Rules
	} else {
		// Not on the host: the server's own reading of the file in force.
		f, err := e.hbaFromServer(ctx, ho)
		if err != nil {
			return nil, err
		}
		g.cur = f
	}
	if f, err := hba.ParseIdentFile(e.info.identFile, ho); err == nil {
		g.identMaps = f.Maps
	}
	members := map[string][]string{}
	roles := map[string]bool{}
	rows, err := e.conn.Query(ctx, `SELECT r.rolname::text, coalesce(g.rolname::text, '') FROM pg_roles r
		LEFT JOIN pg_auth_members m ON m.member = r.oid LEFT JOIN pg_roles g ON g.oid = m.roleid`)
	if err != nil {
		return nil, fmt.Errorf("reading roles: %w", err)
	}
	for rows.Next() {
		var r, grp string
		if err := rows.Scan(&r, &grp); err != nil {
			rows.Close()
			return nil, err
		}
		roles[r] = true
		if grp != "" {
			members[r] = append(members[r], grp)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	g.env.RoleExists = func(r string) bool { return roles[r] }
	g.env.IsMember = func(role, group string) bool {
		seen := map[string]bool{}
		var walk func(string) bool
		walk = func(r string) bool {
			if r == group {
				return true
			}
			if seen[r] {
				return false
			}
			seen[r] = true
			for _, p := range members[r] {
				if walk(p) {
					return true
				}
			}
			return false
		}
		return roles[role] && walk(role)
	}
	g.env.Version = e.info.version / 10000
	if e.info.onHost {
		g.env.HostAddrs = hostAddrs()
	}
	g.verifiers = map[string]verifier{}
	rows, err = e.conn.Query(ctx, `SELECT rolname::text,
			CASE WHEN rolpassword IS NULL THEN 'none' WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram'
			     WHEN rolpassword ~ '^md5[0-9a-f]{32}$' THEN 'md5' ELSE 'plain' END,
			coalesce(rolvaliduntil < now(), false)
		FROM pg_authid`)
	if err != nil {
		return nil, fmt.Errorf("reading pg_authid: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		var v verifier
		if err := rows.Scan(&n, &v.kind, &v.expired); err != nil {
			return nil, err
		}
		g.verifiers[n] = v
	}
	return g, rows.Err()
}

// hbaFromServer rebuilds the rules in force from pg_hba_file_rules when
// the file itself cannot be read.
func (e *engine) hbaFromServer(ctx context.Context, o hba.Options) ([]hba.Rule, error) {
	// The server's order: 16+ numbers the rules across included files;
	// line numbers alone would interleave the files.
	order := "line_number"
	if e.info.version >= 160000 {
		order = "rule_number"
	}
	rows, err := e.conn.Query(ctx, `SELECT line_number, type, database, user_name, address, netmask, auth_method, options
		FROM pg_hba_file_rules WHERE error IS NULL ORDER BY `+order)
	if err != nil {
		return nil, fmt.Errorf("reading pg_hba_file_rules: %w", err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line int
		var typ, method string
		var dbs, users, opts []string
		var addr, mask *string
		if err := rows.Scan(&line, &typ, &dbs, &users, &addr, &mask, &method, &opts); err != nil {
			return nil, err
		}
		tok := func(v []string) string {
			out := make([]string, len(v))
			for i, s := range v {
				out[i] = s
				if strings.ContainsAny(s, " \t,#\"") {
					out[i], _ = quote.HBAToken(s)
				}
			}
			return strings.Join(out, ",")
		}
		fmt.Fprintf(&b, "%s %s %s", typ, tok(dbs), tok(users))
		if addr != nil {
			fmt.Fprintf(&b, " %s", *addr)
			if mask != nil {
				fmt.Fprintf(&b, " %s", *mask)
			}
		}
		fmt.Fprintf(&b, " %s %s\n", method, strings.Join(opts, " "))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return hba.Parse(e.info.hbaFile, []byte(b.String()), o).Rules, nil
}

func hostAddrs() []netip.Prefix {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// writeSaved writes data over a journalled file with its journalled mode
// and owner (root editing the server's files must not take them over).
func writeSaved(f *plan.SavedFile, data []byte) error {
	if err := safefile.WriteFile(f.Path, data, f.Mode); err != nil {
		return err
	}
	if f.UID >= 0 && (os.Geteuid() == 0 || os.Geteuid() == f.UID) {
		if err := os.Lchown(f.Path, f.UID, f.GID); err != nil {
			return fmt.Errorf("%s: restoring the owner: %w", f.Path, err)
		}
	}
	return nil
}

// hostsslWhileOff is hba.c's message for a hostssl line read while ssl is
// off: a warning in pg_hba_file_rules, not a line the server drops.
const hostsslWhileOff = "hostssl record cannot match because SSL is disabled"

// commands runs the preparation steps (pgaegis tls issue server) before
// the configuration is proven: the throwaway server must find the
// certificate that ssl = on loads. They only add files the server does not
// read yet, they are idempotent, and a refusal later leaves them in place.
func (e *engine) commands(ctx context.Context) error {
	for _, s := range e.p.Steps {
		if s.Kind != plan.KindCommand {
			continue
		}
		// prepare has checked that a runner is set and argv is ours.
		e.logf("step %s: %s", s.ID, strings.Join(s.Command, " "))
		if err := e.o.RunCommand(ctx, s.Command[1:]); err != nil {
			return refuse("step %s (%s): %v", s.ID, strings.Join(s.Command, " "), err)
		}
		if e.ranCommands == nil {
			e.ranCommands = map[string]bool{}
		}
		e.ranCommands[s.ID] = true
	}
	return nil
}

// validate writes the candidate pg_hba.conf and runs ALTER SYSTEM, then
// asks the server whether it would load them; nothing takes effect before
// the reload.
func (e *engine) validate(ctx context.Context) error {
	for i := range e.p.Steps {
		s := &e.p.Steps[i]
		switch s.Kind {
		case plan.KindHBA:
			f := e.m.File(e.hbaPath(s))
			e.changed = true
			if err := writeSaved(f, []byte(s.HBA.Content)); err != nil {
				return refuse("step %s: writing %s: %v", s.ID, f.Path, err)
			}
			// 16+ names the file of each line (includes); before, hba_file.
			fileCol := "''"
			if e.info.version >= 160000 {
				fileCol = "coalesce(file_name, '')"
			}
			rows, err := e.conn.Query(ctx, `SELECT `+fileCol+`, line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number`)
			if err != nil {
				return refuse("step %s: reading pg_hba_file_rules: %v", s.ID, err)
			}
			var probs []string
			for rows.Next() {
				var n *int32
				var file, msg string
				if err := rows.Scan(&file, &n, &msg); err != nil {
					rows.Close()
					return err
				}
				// The server loads a hostssl line while ssl is off (it
				// only warns); whether such a line keeps a path open is the
				// lockout guard's question, and ssl may come on in the
				// same reload.
				if msg == hostsslWhileOff {
					continue
				}
				line := 0
				if n != nil {
					line = int(*n)
				}
				if file == "" {
					file = e.info.hbaFile
				}
				probs = append(probs, fmt.Sprintf("%s:%d: %s", file, line, msg))
			}
			rows.Close()
			if len(probs) > 0 {
				return refuse("step %s: the server would not load the new pg_hba.conf: %s", s.ID, strings.Join(probs, "; "))
			}
			e.logf("step %s: the server accepts the new %s", s.ID, f.Path)
		case plan.KindSettings:
			if err := e.alterSystem(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// alterSQL is plan.AlterSystem without its semicolon: one renderer of
// ALTER SYSTEM for the plan's text, scripts and this engine.
func alterSQL(sc plan.SettingChange) string {
	return strings.TrimSuffix(plan.AlterSystem(sc), ";")
}

type fileErr struct{ file, name, msg string }

func (e *engine) fileSettingErrors(ctx context.Context) (map[fileErr]bool, error) {
	rows, err := e.conn.Query(ctx, `SELECT coalesce(sourcefile, ''), coalesce(name, ''), error FROM pg_file_settings WHERE error IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("reading pg_file_settings: %w", err)
	}
	defer rows.Close()
	out := map[fileErr]bool{}
	for rows.Next() {
		var fe fileErr
		if err := rows.Scan(&fe.file, &fe.name, &fe.msg); err != nil {
			return nil, err
		}
		out[fe] = true
	}
	return out, rows.Err()
}

func (e *engine) alterSystem(ctx context.Context, s *plan.Step) error {
	before, err := e.fileSettingErrors(ctx)
	if err != nil {
		return err
	}
	for _, sc := range s.Settings {
		q := alterSQL(sc)
		e.changed = true
		if _, err := e.conn.Exec(ctx, q); err != nil {
			var pe *pgconn.PgError
			// A module's setting before its library is loaded (auth_delay.*):
			// the server has no definition to check it against, so it goes
			// into postgresql.auto.conf directly and the throwaway server
			// started with the library proves it.
			if errors.As(err, &pe) && pe.Code == "42704" && strings.Contains(sc.Name, ".") && e.info.onHost {
				if werr := e.setAutoConf(sc.Name, sc.To); werr != nil {
					return refuse("step %s: setting %s: %v", s.ID, sc.Name, werr)
				}
				e.restartNames[strings.ToLower(sc.Name)] = true
				continue
			}
			return refuse("step %s: the server refuses %s = %q: %v", s.ID, sc.Name, sc.To, err)
		}
	}
	after, err := e.fileSettingErrors(ctx)
	if err != nil {
		return err
	}
	var probs []string
	for fe := range after {
		if before[fe] {
			continue
		}
		if fe.msg == "setting could not be applied" && e.restartNames[strings.ToLower(fe.name)] {
			continue // needs a restart: proven on a throwaway server
		}
		probs = append(probs, fmt.Sprintf("%s: %s: %s", fe.file, fe.name, fe.msg))
	}
	sort.Strings(probs)
	if len(probs) > 0 {
		return refuse("step %s: the server would not load the new settings: %s", s.ID, strings.Join(probs, "; "))
	}
	e.logf("step %s: the server accepts %d setting(s)", s.ID, len(s.Settings))
	return nil
}

// setAutoConf sets one line of postgresql.auto.conf as ALTER SYSTEM would.
func (e *engine) setAutoConf(name, value string) error {
	f := e.m.File(e.m.AutoConf)
	if f == nil {
		return errors.New("postgresql.auto.conf was not journalled")
	}
	data, err := safefile.ReadFile(f.Path, 16<<20)
	if err != nil {
		return err
	}
	v, err := quote.ConfValue(value)
	if err != nil {
		return err
	}
	name = strings.ToLower(name)
	line := name + " = " + v
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	done := false
	for i, l := range lines {
		k, _, ok := strings.Cut(l, "=")
		if ok && strings.ToLower(strings.TrimSpace(k)) == name {
			lines[i], done = line, true
		}
	}
	if !done {
		lines = append(lines, line)
	}
	return writeSaved(f, []byte(strings.Join(lines, "\n")+"\n"))
}
