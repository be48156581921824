package apply

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/safefile"
)

// How long the server may take to come back after a reload or restart;
// generous, since these are waits for an event, not timings.
const serverWait = 2 * time.Minute

// clash are settings a throwaway server must not take from the real one:
// they name the real server's files, sockets or archive.
var clash = map[string]bool{
	"port": true, "data_directory": true, "hba_file": true, "ident_file": true, "config_file": true,
	"external_pid_file": true, "listen_addresses": true, "unix_socket_directories": true,
	"unix_socket_group": true, "log_directory": true, "archive_command": true, "archive_library": true,
	"restore_command": true, "archive_cleanup_command": true, "recovery_end_command": true,
	"primary_conninfo": true, "primary_slot_name": true, "promote_trigger_file": true,
	"stats_temp_directory": true,
}

// sizing are memory settings a throwaway server keeps at its defaults
// unless the plan changes them: a production server's shared_buffers
// must not be allocated a second time just to prove another setting.
var sizing = map[string]bool{"shared_buffers": true, "huge_pages": true, "huge_page_size": true}

var sslFiles = map[string]bool{
	"ssl_cert_file": true, "ssl_key_file": true, "ssl_ca_file": true, "ssl_crl_file": true, "ssl_dh_params_file": true,
}

// binDir is the running postmaster's own binaries: postmaster.pid gives
// its pid, /proc its executable; else the server's pg_config view.
func (e *engine) binDir(ctx context.Context) (string, error) {
	if pid := postmasterPID(e.info.dataDir); pid > 0 {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
			return filepath.Dir(exe), nil
		}
	}
	var d string
	if err := e.conn.QueryRow(ctx, `SELECT setting FROM pg_config WHERE name = 'BINDIR'`).Scan(&d); err != nil {
		return "", fmt.Errorf("finding the server's binaries: %w", err)
	}
	return d, nil
}

// prove starts a throwaway server with the same binaries and the
// candidate configuration when a setting needs a restart, before the real
// server is touched.
func (e *engine) prove(ctx context.Context) error {
	if len(e.restartNames) == 0 && len(e.proveNames) == 0 {
		return nil
	}
	if !e.info.onHost {
		if len(e.restartNames) > 0 {
			return refuse("restart-needing settings are proven on a throwaway server with the server's own binaries: run pgaegis on the database host")
		}
		e.logf("not on the database host: ssl is judged by the reload and the re-audit alone")
		return nil
	}
	bin, err := e.binDir(ctx)
	if err != nil {
		return refuse("%v", err)
	}
	e.binDirCached = bin
	type kv struct{ name, value string }
	var conf []kv
	rows, err := e.conn.Query(ctx, `SELECT name, setting FROM pg_file_settings
		WHERE name IS NOT NULL AND (error IS NULL OR error = 'setting could not be applied') ORDER BY seqno`)
	if err != nil {
		return refuse("reading the candidate configuration (pg_file_settings): %v", err)
	}
	for rows.Next() {
		var c kv
		if err := rows.Scan(&c.name, &c.value); err != nil {
			rows.Close()
			return err
		}
		conf = append(conf, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	names := make([]string, 0, len(e.restartNames))
	for n := range e.restartNames {
		names = append(names, n)
	}
	for n := range e.proveNames {
		if !e.restartNames[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	e.logf("proving %s on a throwaway server (%s)", strings.Join(names, ", "), bin)
	// The certificate files: whatever the candidate names (or the
	// defaults, relative to the data directory), copied for the throwaway
	// server to read; a missing one stays missing, so a server that would
	// fail on it fails here (ssl = on without a certificate).
	sslVals := map[string]string{"ssl_cert_file": "server.crt", "ssl_key_file": "server.key"}
	for _, c := range conf {
		if sslFiles[c.name] {
			sslVals[c.name] = c.value
		}
	}
	init := func(s *localpg.Server) error {
		var b strings.Builder
		b.WriteString("# the candidate configuration of " + e.info.dataDir + ", from pg_file_settings\n")
		for _, c := range conf {
			if clash[c.name] || sslFiles[c.name] || sizing[c.name] && !e.restartNames[c.name] {
				continue
			}
			q, err := quote.ConfValue(c.value)
			if err != nil {
				return fmt.Errorf("setting %s: %w", c.name, err)
			}
			fmt.Fprintf(&b, "%s = %s\n", c.name, q)
		}
		sslCopied := true
		for name, v := range sslVals {
			if v == "" {
				continue
			}
			src := v
			if !filepath.IsAbs(src) {
				src = filepath.Join(e.info.dataDir, src)
			}
			data, err := safefile.ReadFile(src, 1<<20)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				v = src // missing for the real server too
			case err != nil:
				sslCopied = false
				continue
			default:
				v = filepath.Join(s.DataDir, "proof-"+name)
				if err := s.WriteFile(v, string(data), 0o600); err != nil {
					return err
				}
			}
			q, err := quote.ConfValue(v)
			if err != nil {
				return fmt.Errorf("setting %s: %w", name, err)
			}
			fmt.Fprintf(&b, "%s = %s\n", name, q)
		}
		if !sslCopied {
			b.WriteString("ssl = off\n") // a certificate we cannot read: the reload and re-audit judge ssl
		}
		b.WriteString("log_directory = 'log'\n")
		return s.WriteDataFile("postgresql.auto.conf", b.String())
	}
	s, err := localpg.Start(ctx, localpg.Options{BinDir: bin, Init: init, StartupWait: serverWait})
	if err != nil {
		return refuse("a server with the candidate configuration does not start: %s", serverLine(err.Error()))
	}
	s.Stop()
	e.logf("the throwaway server starts with the candidate configuration")
	return nil
}

// serverLine picks the server's own complaint out of a start failure.
func serverLine(msg string) string {
	for _, l := range strings.Split(msg, "\n") {
		for _, lvl := range []string{"FATAL:", "PANIC:", "ERROR:"} {
			if i := strings.Index(l, lvl); i >= 0 {
				return strings.TrimSpace(l[i:])
			}
		}
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		return msg[:i]
	}
	return msg
}

// run makes the changes, in plan order; pg_hba.conf and
// postgresql.auto.conf were written by validate and take effect here.
func (e *engine) run(ctx context.Context) error {
	e.changed = true
	sqlIdx, modeIdx := 0, 0
	for _, s := range e.p.Steps {
		switch s.Kind {
		case plan.KindCommand:
			if e.ranCommands[s.ID] {
				break // run before the proof
			}
			e.logf("step %s: %s", s.ID, strings.Join(s.Command, " "))
			if err := e.o.RunCommand(ctx, s.Command[1:]); err != nil {
				return fmt.Errorf("step %s (%s): %w", s.ID, strings.Join(s.Command, " "), err)
			}
		case plan.KindFileMode:
			for _, mc := range s.Modes {
				sm := &e.m.Modes[modeIdx] // journalled by prepare in the same order
				if err := os.Chmod(sm.Path, mc.To.Perm()); err != nil {
					return fmt.Errorf("step %s: %w", s.ID, err)
				}
				sm.Done = true
				modeIdx++
				if err := e.j.WriteManifest(e.m); err != nil {
					return err
				}
			}
		case plan.KindSQL:
			ss := &e.m.SQL[sqlIdx]
			sqlIdx++
			if err := e.runSQL(ctx, s.Database, s.SQL); err != nil {
				return fmt.Errorf("step %s: %w", s.ID, err)
			}
			ss.Done = true
			if err := e.j.WriteManifest(e.m); err != nil {
				return err
			}
		}
		if s.Apply == plan.ApplyRestart && e.o.NoRestart {
			e.res.Pending = append(e.res.Pending, s.ID)
		} else {
			e.res.Applied = append(e.res.Applied, s.ID)
		}
	}
	for i := range e.m.Files {
		f := &e.m.Files[i]
		if data, err := os.ReadFile(f.Path); err == nil {
			f.AfterSHA256 = plan.Hash(data)
		}
	}
	if err := e.j.WriteManifest(e.m); err != nil {
		return err
	}
	if needsReload(e.p) {
		if err := e.reload(ctx); err != nil {
			return err
		}
		e.res.Reloaded = true
		e.logf("reloaded the configuration")
	}
	if e.needsRestart() && !e.o.NoRestart {
		e.restarted = true // from here on a restore restarts too
		if err := e.restart(ctx); err != nil {
			return err
		}
		e.res.Restarted = true
		e.logf("restarted the server")
	}
	if afterReload != nil {
		if err := afterReload(ctx); err != nil {
			return err
		}
	}
	return nil
}

func needsReload(p *plan.Plan) bool {
	for _, s := range p.Steps {
		if s.Kind == plan.KindHBA || s.Kind == plan.KindSettings || s.Apply == plan.ApplyReload {
			return true
		}
	}
	return false
}

func (e *engine) needsRestart() bool { return e.p.NeedsRestart() || len(e.restartNames) > 0 }

// runSQL runs statements in one transaction in database db, connecting
// there with the operator's settings.
func (e *engine) runSQL(ctx context.Context, db string, stmts []string) error {
	cfg := e.o.Conn.Copy()
	if db != "" {
		cfg.Database = db
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to database %s: %w", quote.Ident(cfg.Database), err)
	}
	defer c.Close(context.Background())
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("in database %s: %s: %w", quote.Ident(cfg.Database), firstLine(q), err)
			}
		}
		return nil
	})
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

// reload asks the server to re-read its files and waits until it has:
// the postmaster reloads first, then signals the backends, so our own
// backend's pg_conf_load_time moving on means new logins see the new files.
func (e *engine) reload(ctx context.Context) error {
	if e.conn == nil || e.conn.IsClosed() {
		return e.reloadBySignal(ctx)
	}
	var before time.Time
	if err := e.conn.QueryRow(ctx, `SELECT pg_conf_load_time()`).Scan(&before); err != nil {
		return e.reloadBySignal(ctx)
	}
	if _, err := e.conn.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		return fmt.Errorf("reloading: %w", err)
	}
	deadline := time.Now().Add(serverWait)
	for time.Now().Before(deadline) {
		var t time.Time
		if err := e.conn.QueryRow(ctx, `SELECT pg_conf_load_time()`).Scan(&t); err != nil {
			return fmt.Errorf("after the reload: %w", err)
		}
		if t.After(before) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("the server did not reload its configuration")
}

// reloadBySignal sends SIGHUP to the postmaster (no login needed: a
// restore must work when the new pg_hba.conf shut pgaegis out) and waits
// for a login along the operator's path.
func (e *engine) reloadBySignal(ctx context.Context) error {
	pid := postmasterPID(e.info.dataDir)
	if pid <= 0 || !e.info.onHost {
		return errors.New("cannot reload: no connection and no postmaster.pid on this host")
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reloading (SIGHUP to postmaster %d): %w", pid, err)
	}
	return nil
}

// restart restarts the server and waits for it to accept the operator.
func (e *engine) restart(ctx context.Context) error {
	if e.binDirCached == "" && len(e.o.RestartCommand) == 0 && e.conn != nil {
		bin, err := e.binDir(ctx)
		if err != nil {
			return err
		}
		e.binDirCached = bin
	}
	if e.conn != nil {
		e.conn.Close(context.Background())
		e.conn = nil
	}
	var cmd *exec.Cmd
	if len(e.o.RestartCommand) > 0 {
		cmd = exec.CommandContext(ctx, e.o.RestartCommand[0], e.o.RestartCommand[1:]...)
		cmd.Env = conninfo.ChildEnv()
	} else {
		if !e.info.onHost {
			return errors.New("restart: the server is not on this host; give a restart command")
		}
		bin := e.binDirCached
		args := []string{"restart", "-D", e.info.dataDir, "-m", "fast", "-w", "-t", strconv.Itoa(int(serverWait / time.Second))}
		if e.o.ServerLog != "" {
			args = append(args, "-l", e.o.ServerLog)
		}
		cmd = exec.CommandContext(ctx, filepath.Join(bin, "pg_ctl"), args...)
		cmd.Env = conninfo.ChildEnv("LC_ALL=C")
		// The server must outlive pgaegis: its own session, no death signal.
		attr := &syscall.SysProcAttr{Setsid: true}
		st, err := os.Stat(e.info.dataDir)
		if err != nil {
			return err
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && sys.Uid != 0 {
			attr.Credential = &syscall.Credential{Uid: sys.Uid, Gid: sys.Gid}
		}
		cmd.SysProcAttr = attr
		cmd.Dir = "/"
	}
	// Output to a file, not a pipe: the server started by pg_ctl keeps
	// its standard output, and a pipe would never reach EOF.
	logPath := filepath.Join(e.j.Dir, "restart.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	err = cmd.Run()
	lf.Close()
	if err != nil {
		out, _ := safefile.ReadFile(logPath, 1<<20)
		return fmt.Errorf("restart (%s): %v: %s", strings.Join(cmd.Args, " "), err, serverLine(string(out)))
	}
	c, err := e.connectWait(ctx)
	if err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	e.conn = c
	return nil
}

// connectWait logs in along the operator's path, retrying while the
// server is still starting up.
func (e *engine) connectWait(ctx context.Context) (*pgx.Conn, error) {
	deadline := time.Now().Add(serverWait)
	for {
		c, err := pgx.ConnectConfig(ctx, e.o.Conn.Copy())
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !startingUp(err) {
			return nil, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startingUp: the server is not (yet) accepting connections.
func startingUp(err error) bool {
	s := err.Error()
	return strings.Contains(s, "the database system is starting up") || strings.Contains(s, "the database system is shutting down") ||
		strings.Contains(s, "connection refused") || strings.Contains(s, "no such file or directory") || strings.Contains(s, "57P03")
}

// verify logs in afresh along the operator's path and re-audits.
func (e *engine) verify(ctx context.Context) error {
	c, err := pgx.ConnectConfig(ctx, e.o.Conn.Copy())
	if err != nil {
		return fmt.Errorf("verification: pgaegis cannot log in again along its own path: %w", err)
	}
	if onVerifyConn != nil {
		onVerifyConn(ctx, c)
	}
	err = c.QueryRow(ctx, `SELECT 1`).Scan(new(int))
	if err != nil {
		err = fmt.Errorf("the fresh connection fails: %w", err)
	}
	if err == nil {
		err = e.settingsInForce(ctx, c)
	}
	c.Close(context.Background())
	if err != nil {
		return fmt.Errorf("verification: %w", err)
	}
	if e.o.ReAudit == nil {
		return nil
	}
	after, err := e.o.ReAudit(ctx)
	if err != nil {
		return fmt.Errorf("verification: re-audit: %w", err)
	}
	failing := map[plan.FindingRef]bool{}
	for _, f := range after {
		failing[refKey(f)] = true
	}
	var probs []string
	pendingIDs := map[string]bool{}
	for _, s := range e.p.Steps {
		if s.Apply == plan.ApplyRestart && e.o.NoRestart {
			pendingIDs[s.ID] = true
		}
	}
	for _, s := range e.p.Steps {
		if pendingIDs[s.ID] {
			continue // not in force yet
		}
		// A step after a pending restart (a library's own settings)
		// takes effect with that restart too.
		waits := false
		for _, a := range s.After {
			waits = waits || pendingIDs[a]
		}
		if waits {
			continue
		}
		for _, f := range s.Closes {
			if failing[refKey(f)] {
				probs = append(probs, fmt.Sprintf("step %s should have closed %s (%s) and it still fails", s.ID, f.Rule, f.Object))
			}
		}
	}
	before := map[plan.FindingRef]bool{}
	for _, f := range e.o.Before {
		before[refKey(f)] = true
	}
	for _, f := range after {
		if !before[refKey(f)] {
			probs = append(probs, fmt.Sprintf("%s (%s) fails now and did not before", f.Rule, f.Object))
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("verification: %s", strings.Join(probs, "; "))
	}
	e.logf("verified: pgaegis logs in again, and the re-audit agrees")
	return nil
}

// settingsInForce: every setting the plan wrote is in force, or waits for
// a restart that was left pending (a bad value slipped past validation
// shows here as a pg_file_settings error, or as a pending restart after
// the restart).
func (e *engine) settingsInForce(ctx context.Context, c *pgx.Conn) error {
	var names []string
	for _, s := range e.p.Steps {
		for _, sc := range s.Settings {
			names = append(names, strings.ToLower(sc.Name))
		}
	}
	if len(names) == 0 {
		return nil
	}
	rows, err := c.Query(ctx, `SELECT f.name, f.error, coalesce(s.pending_restart, false)
		FROM pg_file_settings f LEFT JOIN pg_settings s ON s.name = f.name
		WHERE f.name = ANY($1) AND f.sourcefile LIKE '%/postgresql.auto.conf'
		  AND (f.error IS NOT NULL OR s.pending_restart)`, names)
	if err != nil {
		return fmt.Errorf("reading pg_file_settings: %w", err)
	}
	defer rows.Close()
	var probs []string
	for rows.Next() {
		var name string
		var msg *string
		var pending bool
		if err := rows.Scan(&name, &msg, &pending); err != nil {
			return err
		}
		if !e.restarted && e.restartNames[name] {
			continue // waits for the restart left pending
		}
		why := "waits for a restart after the restart"
		if msg != nil && !pending {
			why = *msg
		}
		probs = append(probs, name+": "+why)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(probs) > 0 {
		sort.Strings(probs)
		return fmt.Errorf("settings not in force: %s", strings.Join(probs, "; "))
	}
	return nil
}

// refKey compares findings by rule and object (severity may be re-rated).
func refKey(f plan.FindingRef) plan.FindingRef {
	return plan.FindingRef{Rule: f.Rule, Object: f.Object}
}

// restoreFiles puts every journalled file back byte for byte, with its
// mode and owner, and removes files the plan created.
func (e *engine) restoreFiles(ctx context.Context) error {
	var errs []error
	for i := range e.m.Files {
		f := &e.m.Files[i]
		if !f.Exists {
			if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		data, err := e.j.FileBytes(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := writeSaved(f, data); err != nil {
			errs = append(errs, err)
		}
	}
	// Settings changed through the server alone (not on the host): put
	// the old postgresql.auto.conf values back by ALTER SYSTEM.
	if e.m.File(e.m.AutoConf) == nil && len(e.m.Settings) > 0 {
		if e.conn == nil {
			return errors.Join(append(errs, errors.New("no connection to restore the settings through"))...)
		}
		for _, ss := range e.m.Settings {
			q := "ALTER SYSTEM RESET " + settingName(ss.Name)
			if ss.InAutoConf {
				q = alterSQL(plan.SettingChange{Name: ss.Name, To: ss.AutoConf})
			}
			if _, err := e.conn.Exec(ctx, q); err != nil {
				errs = append(errs, fmt.Errorf("restoring %s: %w", ss.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func settingName(n string) string {
	parts := strings.Split(n, ".")
	for i, p := range parts {
		parts[i] = quote.Ident(strings.ToLower(p))
	}
	return strings.Join(parts, ".")
}

// restore undoes a plan from its journal: files, reload (restart when the
// plan restarted), a login along the operator's path, the undo SQL of
// committed steps in reverse, and the old modes.
func (e *engine) restore(ctx context.Context, restart bool) error {
	var errs []error
	if err := e.restoreFiles(ctx); err != nil {
		errs = append(errs, err)
	}
	if restart {
		if err := e.restart(ctx); err != nil {
			errs = append(errs, err)
		}
	} else if err := e.reloadBySignal(ctx); err != nil {
		if e.conn == nil || e.conn.IsClosed() {
			errs = append(errs, err)
		} else if _, err := e.conn.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
			errs = append(errs, fmt.Errorf("reloading: %w", err))
		}
	}
	// The operator must get in again; the reload may still be under way.
	var c *pgx.Conn
	deadline := time.Now().Add(serverWait)
	for {
		var err error
		c, err = pgx.ConnectConfig(ctx, e.o.Conn.Copy())
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(append(errs, fmt.Errorf("after restoring, pgaegis cannot log in: %w", err))...)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.Close(context.Background())
	for i := len(e.m.SQL) - 1; i >= 0; i-- {
		ss := &e.m.SQL[i]
		if !ss.Done || len(ss.Undo) == 0 {
			continue
		}
		undo := make([]string, 0, len(ss.Undo))
		for k := len(ss.Undo) - 1; k >= 0; k-- {
			undo = append(undo, ss.Undo[k])
		}
		if err := e.runSQL(ctx, ss.Database, undo); err != nil {
			errs = append(errs, fmt.Errorf("undoing step %s: %w", ss.Step, err))
			continue
		}
		ss.Done = false
	}
	for i := len(e.m.Modes) - 1; i >= 0; i-- {
		sm := &e.m.Modes[i]
		if !sm.Done {
			continue
		}
		if err := os.Chmod(sm.Path, sm.Mode); err != nil {
			errs = append(errs, err)
			continue
		}
		sm.Done = false
	}
	return errors.Join(errs...)
}
