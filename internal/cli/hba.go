package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/hbapolicy"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func hbaCmd(env *Env) *cobra.Command {
	return groupCmd(env, "hba", "pg_hba.conf as a policy: explain, lint, diff, matrix, guard",
		`  pgaegis hba explain --file pg_hba.conf --user app --database shop --address 10.1.2.3
  pgaegis hba lint --file pg_hba.conf
  pgaegis hba diff old/pg_hba.conf new/pg_hba.conf`,
		hbaExplainCmd(env), hbaLintCmd(env), hbaDiffCmd(env), hbaMatrixCmd(env), hbaGuardCmd(env))
}

// hbaSource is where the rules (and, when available, the roles) come from:
// a file, a snapshot, a live server, or a file checked against a server.
type hbaSource struct {
	conn     connFlags
	file     string
	snapPath string
	version  int
	// cfg, when set, is the connection configuration already made from
	// conn (so that -W prompts once for a command that connects twice).
	cfg *pgx.ConnConfig
}

func (h *hbaSource) register(cmd *cobra.Command, withFile bool) {
	h.conn.register(cmd)
	fs := cmd.Flags()
	if withFile {
		fs.StringVar(&h.file, "file", "", "pg_hba.conf to read (offline); with a connection, roles come from the server")
		cmd.MarkFlagFilename("file")
	}
	fs.StringVar(&h.snapPath, "snapshot", "", "snapshot (pgaegis collect) for rules and roles")
	fs.IntVar(&h.version, "pg-version", 0, "PostgreSQL major version for an offline file (default: newest semantics)")
	cmd.MarkFlagFilename("snapshot", "json")
}

// load returns the rules, the snapshot (roles, settings) when there is
// one, and the matching environment.
func (h *hbaSource) load(ctx context.Context, env *Env) ([]hba.Rule, *snapshot.Snapshot, hba.Env, error) {
	var snap *snapshot.Snapshot
	var err error
	switch {
	case h.snapPath != "":
		snap, err = snapshot.Read(h.snapPath)
		if err == nil && snap.HBA != nil {
			// A snapshot from an older pgaegis, or written by hand, may
			// still hold credentials: no hba command prints them.
			hba.RedactSecrets(snap.HBA.Rules)
			hba.RedactErrors(snap.HBA.Errors)
		}
	case h.conn.given() || h.file == "":
		cfg, cerr := h.cfg, error(nil)
		if cfg == nil {
			cfg, cerr = h.conn.config(env)
		}
		if cerr != nil {
			return nil, nil, hba.Env{}, cerr
		}
		snap, err = collect.Collect(ctx, collect.Options{Conn: cfg, Progress: progress(env)})
		clearProgress(env)
	}
	if err != nil {
		return nil, nil, hba.Env{}, err
	}
	// The same rule as access: a partial read (roles, memberships, the hba
	// view) would give confident wrong answers about who gets in.
	if snap != nil && len(snap.Errors) > 0 {
		return nil, nil, hba.Env{}, incompleteError("pg_hba.conf cannot be analysed: some reads failed", snap.Errors)
	}
	if snap != nil && snap.HBA != nil && len(snap.HBA.Ambiguous) > 0 && h.file == "" {
		// The server's view drops quotes: "all" and all look the same.
		var lines []string
		seen := map[int]bool{}
		for _, a := range snap.HBA.Ambiguous {
			if !seen[a.Line] {
				seen[a.Line] = true
				lines = append(lines, strconv.Itoa(a.Line))
			}
		}
		fmt.Fprintf(env.Stderr, "warning: pg_hba_file_rules does not show quoting: keywords such as all on line(s) %s may be quoted names; they are read as keywords here (give --file, or connect as a role that may read server files, for certainty)\n",
			strings.Join(lines, ", "))
	}
	var menv hba.Env
	if snap != nil {
		menv = hbapolicy.EnvFromSnapshot(snap)
	}
	if h.version != 0 {
		menv.Version = h.version
	}
	if h.file != "" {
		ssl := true
		if snap != nil {
			if v, ok := snap.Setting("ssl"); ok {
				ssl, _ = guc.ParseBool(v.Value)
			}
		}
		f, err := hba.ParseFile(h.file, hba.Options{SSL: ssl, Version: menv.Version})
		if err != nil {
			return nil, nil, menv, err
		}
		for _, e := range f.Errors {
			fmt.Fprintf(env.Stderr, "warning: %s (the server would refuse to load this file)\n", esc(e.Error()))
		}
		if snap == nil {
			snap = &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, Tool: "pgaegis", ToolVersion: collect.Version,
				CollectedAt: time.Now().UTC().Truncate(time.Second), Target: snapshot.Target{Description: "file " + h.file}}
		}
		snap.HBA = &snapshot.HBA{Source: "file", Path: h.file, Rules: f.Rules, Errors: f.Errors}
		delete(snap.Gaps, snapshot.GapHBA)
		return f.Rules, snap, menv, nil
	}
	if snap.HBA == nil {
		return nil, snap, menv, fmt.Errorf("pg_hba.conf is not readable through this connection (%s): use --file", snap.Gap(snapshot.GapHBA))
	}
	return snap.HBA.Rules, snap, menv, nil
}

func hbaExplainCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain --user U --database D [--address A [--ssl|--no-ssl|--gss] | --local] [--replication] [--file F | connection options]",
		Short: "which pg_hba.conf line a connection meets, or how a role reaches a database from every network",
		Example: `  pgaegis hba explain --file pg_hba.conf --user app --database shop --address 10.1.2.3
  pgaegis hba explain --file pg_hba.conf --user app --database shop --local
  pgaegis hba explain -h db.example.com -U auditor --user app --database shop`,
		Args: noArgs,
	}
	var src hbaSource
	src.register(cmd, true)
	fs := cmd.Flags()
	user := fs.String("user", "", "role that connects")
	db := fs.String("database", "", "database it asks for")
	addr := fs.String("address", "", "client address (omit for the table of every network)")
	ssl := fs.Bool("ssl", true, "the connection uses TLS")
	noSSL := fs.Bool("no-ssl", false, "the connection does not use TLS")
	gss := fs.Bool("gss", false, "the connection uses GSSAPI encryption")
	local := fs.Bool("local", false, "a Unix-socket connection")
	repl := fs.Bool("replication", false, "a physical replication connection")
	format := fs.String("format", "text", "text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *user == "" || (*db == "" && !*repl) {
			return ExitError, usagef("--user and --database are required")
		}
		rs, snap, menv, err := src.load(ctx, env)
		if err != nil {
			return ExitError, err
		}
		// A server with ssl off takes no TLS connection: unless told,
		// explain the plaintext one it would really get.
		if !cmd.Flags().Changed("ssl") && !*noSSL && snap != nil {
			if v, ok := snap.Setting("ssl"); ok {
				if on, _ := guc.ParseBool(v.Value); !on {
					*noSSL = true
					fmt.Fprintln(env.Stderr, "note: the server has ssl = off: explaining a connection without TLS (--ssl to ask about TLS anyway)")
				}
			}
		}
		if *addr == "" && !*local {
			rows := hbapolicy.Reach(rs, *user, *db, *repl, menv)
			if *format == "json" {
				return ExitOK, writeJSON(env, rows)
			}
			env = textEnv(env) // names and rule text are escaped for the terminal
			tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintf(tw, "how %q reaches %q\nCONNECTION\tNETWORK\tMETHOD\tRULE\n", *user, *db)
			for _, r := range rows {
				rule := ""
				if r.Line > 0 {
					rule = fmt.Sprintf("%s:%d", r.File, r.Line)
				}
				if r.Depends != "" {
					rule += " (depends: " + r.Depends + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Class, r.Network, r.Method, rule)
			}
			return ExitOK, tw.Flush()
		}
		c := hba.Conn{User: *user, Database: *db, Local: *local, SSL: *ssl && !*noSSL && !*gss, GSS: *gss, Replication: *repl}
		if !*local {
			a, err := netip.ParseAddr(*addr)
			if err != nil {
				return ExitError, usagef("--address %q is not an IP address", *addr)
			}
			c.Addr = a
		}
		e := hbapolicy.Explain(rs, c, menv)
		if *format == "json" {
			return ExitOK, writeJSON(env, e)
		}
		env = textEnv(env)
		fmt.Fprintf(env.Stdout, "%s\n%s\n", e.Conn, e.Summary)
		if e.Matched {
			fmt.Fprintf(env.Stdout, "  line:    %s\n", e.Text)
			var opts []string
			for k, v := range e.Options {
				opts = append(opts, k+"="+v)
			}
			sort.Strings(opts)
			if len(opts) > 0 {
				fmt.Fprintf(env.Stdout, "  options: %s\n", strings.Join(opts, " "))
			}
		}
		return ExitOK, nil
	})
	return cmd
}

// hbaRuleIDs are the audit rules about pg_hba.conf: lint runs these.
func isHBARule(id string) bool {
	for _, p := range []string{"AUTH-01", "AUTH-02", "AUTH-03", "AUTH-04", "AUTH-05", "AUTH-06", "AUTH-07", "AUTH-08", "AUTH-09", "AUTH-10", "AUTH-12", "AUTH-18", "REPL-04"} {
		if id == p || strings.HasPrefix(id, p+".") {
			return true
		}
	}
	return false
}

func hbaLintCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lint [--file F] [connection options | --snapshot S]",
		Short: "run the audit's pg_hba.conf rules on a file, a snapshot or a server",
		Example: `  pgaegis hba lint --file pg_hba.conf
  pgaegis hba lint --file pg_hba.conf --format sarif > hba.sarif
  pgaegis hba lint --snapshot snap.json --fail-on medium`,
		Args: noArgs,
	}
	var src hbaSource
	src.register(cmd, true)
	fs := cmd.Flags()
	format := fs.String("format", "text", "text, json, sarif, markdown or junit")
	failOn := fs.String("fail-on", "high", "exit 1 at or above this severity (critical, high, medium, low, info)")
	completeValues(cmd, "format", "text", "json", "sarif", "markdown", "junit")
	completeValues(cmd, "fail-on", severityNames...)
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		sev, err := rules.ParseSeverity(*failOn)
		if err != nil {
			return ExitError, usageError{err.Error()}
		}
		_, snap, _, err := src.load(ctx, env)
		if err != nil {
			return ExitError, err
		}
		var findings []rules.Finding
		for _, f := range rules.Run(snap) {
			if !isHBARule(f.Rule) {
				continue
			}
			if f.Rule == "AUTH-18" && f.Status == rules.Fail {
				// The server refuses a pg_hba.conf with any invalid line: for
				// a lint (a gate before deploying the file) that is the worst
				// outcome, whatever --fail-on says.
				f.Severity = rules.Critical
			}
			findings = append(findings, f)
		}
		rep := report.Build(snap, findings, sev)
		switch *format {
		case "json":
			err = report.WriteJSON(env.Stdout, rep)
		case "sarif":
			err = report.WriteSARIF(env.Stdout, rep, report.SARIFOptions{})
		case "markdown":
			err = report.WriteMarkdown(env.Stdout, rep)
		case "junit":
			err = report.WriteJUnit(env.Stdout, rep)
		default:
			err = report.WriteText(env.Stdout, rep, report.TextOptions{Color: isTerminal(env.Stdout)})
		}
		if err != nil {
			return ExitError, err
		}
		if rep.Failed() {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	return cmd
}

func hbaDiffCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff OLD NEW [--allow-widen] [connection options | --snapshot S]",
		Short: "who gains or loses access between two pg_hba.conf files (exit 1 when access widens)",
		Example: `  pgaegis hba diff /etc/postgresql/17/main/pg_hba.conf new/pg_hba.conf
  pgaegis hba diff old.conf new.conf --snapshot snap.json --format json`,
	}
	var src hbaSource
	src.register(cmd, false) // the rules are OLD and NEW
	fs := cmd.Flags()
	allow := fs.Bool("allow-widen", false, "exit 0 even when access widens")
	format := fs.String("format", "text", "text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, files []string) (int, error) {
		if len(files) != 2 {
			return ExitError, usagef("hba diff needs OLD and NEW files")
		}
		var menv hba.Env
		var roles, dbs []string
		if src.snapPath != "" || src.conn.given() {
			_, snap, e, err := src.load(ctx, env)
			if err != nil && snap == nil {
				return ExitError, err
			}
			menv = e
			for _, r := range snap.Roles {
				if !r.Predefined() && r.CanLogin {
					roles = append(roles, r.Name)
				}
			}
			for _, d := range snap.Databases {
				if d.AllowConn {
					dbs = append(dbs, d.Name)
				}
			}
		}
		if src.version != 0 {
			menv.Version = src.version
		}
		var sets [2][]hba.Rule
		for i, p := range files {
			f, err := hba.ParseFile(p, hba.Options{SSL: true, Version: menv.Version})
			if err != nil {
				return ExitError, err
			}
			for _, e := range f.Errors {
				fmt.Fprintf(env.Stderr, "warning: %s (the server would refuse to load this file)\n", esc(e.Error()))
			}
			sets[i] = f.Rules
		}
		changes := hbapolicy.Diff(sets[0], sets[1], menv, roles, dbs)
		widens := 0
		for _, c := range changes {
			if c.Widens {
				widens++
			}
		}
		if *format == "json" {
			if err := writeJSON(env, map[string]any{"changes": changes, "widens": widens}); err != nil {
				return ExitError, err
			}
		} else {
			env = textEnv(env)
			if len(changes) == 0 {
				fmt.Fprintln(env.Stdout, "no change in access")
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
			if len(changes) > 0 {
				fmt.Fprintln(tw, "\tROLE\tDATABASE\tCONNECTION\tNETWORK\tBEFORE\tAFTER")
			}
			for _, c := range changes {
				mark := "-"
				if c.Widens {
					mark = "+"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, c.Role, c.Database, c.Class, c.Network, lineOf(c.Before, c.OldLine), lineOf(c.After, c.NewLine))
			}
			tw.Flush()
			fmt.Fprintf(env.Stdout, "%d changes, %d widen access (+), %d narrow it (-)\n", len(changes), widens, len(changes)-widens)
		}
		if widens > 0 && !*allow {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	return cmd
}

func lineOf(method string, line int) string {
	if line == 0 {
		return method
	}
	return fmt.Sprintf("%s (line %d)", method, line)
}

func hbaMatrixCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "matrix [connection options | --snapshot S] [--file F] [--format text|json|csv]",
		Short: "every login role against every database: the weakest method and widest network that admit it",
		Example: `  pgaegis hba matrix --snapshot snap.json
  pgaegis hba matrix -h db.example.com -U auditor --format csv > matrix.csv`,
		Args: noArgs,
	}
	var src hbaSource
	src.register(cmd, true)
	format := cmd.Flags().String("format", "text", "text, json or csv")
	completeValues(cmd, "format", "text", "json", "csv")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		rs, snap, menv, err := src.load(ctx, env)
		if err != nil {
			return ExitError, err
		}
		if snap == nil || snap.Roles == nil {
			return ExitError, fmt.Errorf("the matrix needs the server's roles and databases: connect, or give --snapshot")
		}
		var roles []hbapolicy.RoleInfo
		for _, r := range snap.Roles {
			if r.CanLogin && !r.Predefined() {
				roles = append(roles, hbapolicy.RoleInfo{Name: r.Name, Superuser: r.Superuser, Replication: r.Replication})
			}
		}
		var dbs []string
		for _, d := range snap.Databases {
			if d.AllowConn {
				dbs = append(dbs, d.Name)
			}
		}
		cells := hbapolicy.Matrix(rs, menv, roles, dbs)
		switch *format {
		case "json":
			return ExitOK, writeJSON(env, cells)
		case "csv":
			w := csv.NewWriter(env.Stdout)
			w.Write([]string{"role", "database", "weakest_method", "widest_network", "connection", "line", "superuser", "replication", "alarm"})
			for _, c := range cells {
				w.Write(csvRow(c.Role, c.Database, c.Weakest, c.Network, c.Class, fmt.Sprint(c.Line), fmt.Sprint(c.Superuser), fmt.Sprint(c.Replication), c.Alarm))
			}
			w.Flush()
			return ExitOK, w.Error()
		}
		env = textEnv(env)
		tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLE\tDATABASE\tWEAKEST\tWIDEST NETWORK\tCONNECTION\tLINE\tATTRIBUTES\tALARM")
		for _, c := range cells {
			var attrs []string
			if c.Superuser {
				attrs = append(attrs, "superuser")
			}
			if c.Replication {
				attrs = append(attrs, "replication")
			}
			line := ""
			if c.Line > 0 {
				line = fmt.Sprint(c.Line)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Role, c.Database, c.Weakest, c.Network, c.Class, line, strings.Join(attrs, ","), c.Alarm)
		}
		return ExitOK, tw.Flush()
	})
	return cmd
}

func hbaGuardCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "guard NEW [connection options]",
		Short: "refuse a pg_hba.conf that would lock out this connection (exit 1)",
		Example: `  pgaegis hba guard new/pg_hba.conf -h /var/run/postgresql -U postgres
  pgaegis hba guard new/pg_hba.conf -d "host=db.example.com user=admin"`,
	}
	var src hbaSource
	src.conn.register(cmd) // the rules come from NEW, the connection is the one checked
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, files []string) (int, error) {
		if len(files) != 1 {
			return ExitError, usagef("hba guard needs the NEW file")
		}
		cfg, err := src.conn.config(env)
		if err != nil {
			return ExitError, err
		}
		current, snap, err := collect.CurrentConnection(ctx, cfg)
		if err != nil {
			return ExitError, err
		}
		menv := hbapolicy.EnvFromSnapshot(snap)
		f, err := hba.ParseFile(files[0], hba.Options{SSL: true, Version: menv.Version})
		if err != nil {
			return ExitError, err
		}
		env = textEnv(env)
		if len(f.Errors) > 0 {
			fmt.Fprintf(env.Stdout, "refused: %s has errors; the server would keep its old rules:\n", files[0])
			for _, e := range f.Errors {
				fmt.Fprintf(env.Stdout, "  %s\n", e.Error())
			}
			return ExitFindings, nil
		}
		if err := hbapolicy.Guard(f.Rules, current, menv); err != nil {
			fmt.Fprintf(env.Stdout, "refused: %v\n", err)
			return ExitFindings, nil
		}
		e := hbapolicy.Explain(f.Rules, current, menv)
		fmt.Fprintf(env.Stdout, "ok: your connection (%s) stays accepted by %s:%d (%s)\n", e.Conn, e.File, e.Line, e.Method)
		return ExitOK, nil
	})
	return cmd
}

func writeJSON(env *Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
