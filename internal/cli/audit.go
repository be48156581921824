package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/backupscan"
	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/waiver"
)

type sourceFlags struct {
	conn     connFlags
	files    fileFlags
	noFiles  bool
	parallel int
	stmtTO   time.Duration
	pwBudget time.Duration
	noCache  bool
	noProbe  bool
	// sampleData: see collect.Options.SampleData (audit only).
	sampleData bool
}

func (s *sourceFlags) register(cmd *cobra.Command) {
	s.conn.register(cmd)
	s.files.register(cmd.Flags())
	fs := cmd.Flags()
	fs.BoolVar(&s.noFiles, "no-files", false, "do not read the server's files even when they are on this host")
	fs.IntVar(&s.parallel, "parallel", 4, "databases read at once")
	fs.DurationVar(&s.stmtTO, "statement-timeout", 30*time.Second, "limit for each query on the server")
	fs.DurationVar(&s.pwBudget, "password-check-budget", 2*time.Second, "wall time for the offline weak-password search (role names, most common passwords) beside the catalog reads; 0 turns it off, 'pgaegis passwords' goes deeper")
	fs.BoolVar(&s.noCache, "no-password-cache", false, "do not use the cache of weak-password verdicts (also "+noCacheEnv+"=1)")
	fs.BoolVar(&s.noProbe, "no-probe", false, "do not probe the server's port for TLS (plaintext, protocol versions)")
}

// gather collects a snapshot from the sources the flags name.
func gather(ctx context.Context, env *Env, s *sourceFlags, sandbox *localpg.Server) (*snapshot.Snapshot, error) {
	var cfg *pgx.ConnConfig
	if sandbox != nil {
		cfg = sandbox.ConnConfig("postgres")
		env.secrets = append(env.secrets, sandbox.Password)
	} else {
		var err error
		if cfg, err = s.connConfig(env); err != nil {
			return nil, err
		}
	}
	return gatherWith(ctx, env, s, cfg)
}

// connConfig is the connection the flags name, or nil for the files alone.
func (s *sourceFlags) connConfig(env *Env) (*pgx.ConnConfig, error) {
	if s.conn.given() || !s.files.given() {
		return s.conn.config(env)
	}
	return nil, nil
}

// gatherWith collects over cfg (nil: files only); fix collects again after
// a change with the same configuration, without prompting twice.
func gatherWith(ctx context.Context, env *Env, s *sourceFlags, cfg *pgx.ConnConfig) (*snapshot.Snapshot, error) {
	o := collect.Options{
		DataDir: s.files.dataDir, ConfigFile: s.files.configFile, HBAFile: s.files.hbaFile, IdentFile: s.files.identFile,
		NoFiles: s.noFiles, Parallel: s.parallel, StatementTimeout: s.stmtTO, PasswordBudget: s.pwBudget, NoProbe: s.noProbe, Progress: progress(env),
		PasswordCache: passwordCacheDir(s.noCache), SampleData: s.sampleData,
	}
	defer clearProgress(env)
	if cfg != nil {
		o.Conn = cfg.Copy()
	}
	snap, err := collect.Collect(ctx, o)
	if err != nil && o.Conn != nil && !s.conn.given() {
		return nil, fmt.Errorf("%v\nno connection options were given, so libpq's defaults (PG* variables, the local socket) were used: give -d/-h/-p/-U, --pgdata for a files-only audit, or --sandbox for a throwaway local server", err)
	}
	return snap, err
}

// backupDirEnv names backup directories when --backup-dir is not given
// (a list separated like PATH).
const backupDirEnv = "PGAEGIS_BACKUP_DIR"

// backupDirFlags say where pgaegis backups are and how old they may be
// (audit and collect; the BKP rules read what the scan found).
type backupDirFlags struct {
	dirs       []string
	maxAge     time.Duration
	restoreAge time.Duration
}

func (b *backupDirFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&b.dirs, "backup-dir", nil, "a directory of pgaegis backup sets to check (repeatable; also "+backupDirEnv+", separated by ':'): sets' age, verification and restore tests, encryption of every file, modes")
	fs.DurationVar(&b.maxAge, "backup-max-age", backupscan.DefaultMaxAge, "the newest backup set must have finished within this")
	fs.DurationVar(&b.restoreAge, "restore-test-max-age", backupscan.DefaultRestoreTestMaxAge, "the newest passing restore test must be within this")
	cmd.MarkFlagDirname("backup-dir")
}

// list is the directories to scan: the flags, else the environment.
func (b *backupDirFlags) list() []string {
	if len(b.dirs) > 0 {
		return b.dirs
	}
	var out []string
	for _, d := range filepath.SplitList(os.Getenv(backupDirEnv)) {
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}

func (b *backupDirFlags) check() error {
	for _, d := range b.dirs {
		if d == "" {
			return usagef("--backup-dir needs a directory")
		}
	}
	if b.maxAge <= 0 || b.restoreAge <= 0 {
		return usagef("--backup-max-age and --restore-test-max-age must be positive")
	}
	return nil
}

// scan adds the backup directories to the snapshot.
func (b *backupDirFlags) scan(env *Env, snap *snapshot.Snapshot) {
	if dirs := b.list(); len(dirs) > 0 {
		snap.Backups = backupscan.Scan(backupscan.Options{Dirs: dirs, MaxAge: b.maxAge, RestoreTestMaxAge: b.restoreAge})
	}
}

func auditCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit [connection options] [--pgdata DIR | --config-file F --hba-file F] [--snapshot FILE] [--sandbox]",
		Short: "audit a server, its files, or a snapshot against the rule catalogue",
		Long: `Audit a server (over a connection), its files (--pgdata, --config-file,
--hba-file), or a snapshot written by 'pgaegis collect', against the rule
catalogue. With no option, libpq's defaults (PG* variables, the local
socket) are used.`,
		Example: `  sudo -u postgres pgaegis audit
  pgaegis audit -h db.example.com -U auditor -d postgres --format html -o report.html
  pgaegis audit --pgdata /var/lib/postgresql/17/main --profile cis-17
  pgaegis audit --snapshot snap.json --format sarif -o audit.sarif
  pgaegis audit --sandbox
  pgaegis audit --pgdata /var/lib/postgresql/17/main --backup-dir /srv/backups/db1`,
		Args: noArgs,
	}
	var src sourceFlags
	src.register(cmd)
	var bf backupDirFlags
	bf.register(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&src.sampleData, "sample-data", false, "read at most 200 values of each credential-looking column (read-only) to tell hashes and ciphertext from plain text; values stay in memory, only counts are reported")
	format := fs.String("format", "text", "report format: text, json, sarif, html, pdf (needs Chromium), markdown or junit")
	profile := fs.String("profile", "all", "benchmark to audit against: "+rules.ProfileNames())
	waivers := fs.String("waivers", "", "YAML file of accepted findings (rule, object, reason, expires)")
	baseline := fs.String("baseline", "", "previous JSON report: report only what is new or fixed since")
	sarifRoot := fs.String("sarif-root", "", "SARIF: make file locations relative to this directory (default: the working directory)")
	failOn := fs.String("fail-on", "high", "exit 1 when a failing finding is at or above this severity (critical, high, medium, low, info)")
	snapPath := fs.String("snapshot", "", "audit a snapshot written by 'pgaegis collect' instead of collecting")
	sandbox := fs.Bool("sandbox", false, "start a throwaway local PostgreSQL from the installed binaries, audit it, stop it")
	pgVersion := fs.String("pg-version", "", "with --sandbox: the PostgreSQL major to start (13-18; default the newest installed)")
	out := fs.StringP("output", "o", "", "write the report to this file instead of stdout")
	verbose := fs.BoolP("verbose", "v", false, "list passing checks too, and every object of every rule")
	all := fs.Bool("all", false, "list every object of a rule that fails on many (not only the first few)")
	color := fs.String("color", "auto", "colour in the text report: auto, always, never")
	completeValues(cmd, "format", auditFormats...)
	completeValues(cmd, "profile", profileNames()...)
	completeValues(cmd, "pg-version", "13", "14", "15", "16", "17", "18")
	completeValues(cmd, "fail-on", severityNames...)
	completeValues(cmd, "color", "auto", "always", "never")
	cmd.MarkFlagFilename("waivers", "yaml", "yml")
	cmd.MarkFlagFilename("baseline", "json")
	cmd.MarkFlagFilename("snapshot", "json")
	cmd.MarkFlagDirname("pgdata")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		sev, err := rules.ParseSeverity(*failOn)
		if err != nil {
			return ExitError, usageError{err.Error()}
		}
		switch *format {
		case "text", "json", "sarif", "html", "markdown", "md", "junit":
		case "pdf":
			// Say so before collecting, not after.
			if _, err := report.FindChromium(); err != nil {
				return ExitError, err
			}
		default:
			return ExitError, usagef("unknown --format %q (text, json, sarif, html, pdf, markdown or junit)", *format)
		}
		if _, err := rules.Select(*profile); err != nil {
			return ExitError, usageError{err.Error()}
		}
		var wf *waiver.File
		if *waivers != "" {
			if wf, err = waiver.Load(*waivers); err != nil {
				return ExitError, err
			}
		}
		var prev *report.Report
		if *baseline != "" {
			if prev, err = report.LoadBaseline(*baseline); err != nil {
				return ExitError, err
			}
		}
		if *pgVersion != "" && !*sandbox {
			return ExitError, usagef("--pg-version chooses the --sandbox server's major: give --sandbox too")
		}
		if *snapPath != "" && (*sandbox || !src.conn.f.Empty() || src.files.given()) {
			return ExitError, usagef("--snapshot cannot be combined with connection, file or --sandbox options")
		}
		if err := bf.check(); err != nil {
			return ExitError, err
		}
		if *snapPath != "" && len(bf.dirs) > 0 {
			return ExitError, usagef("--snapshot holds the backups its collection saw: give --backup-dir to 'pgaegis collect' instead")
		}

		var snap *snapshot.Snapshot
		switch {
		case *snapPath != "":
			snap, err = snapshot.Read(*snapPath)
		case *sandbox:
			if !src.conn.f.Empty() {
				return ExitError, usagef("--sandbox starts its own server: do not combine it with connection options")
			}
			var srv *localpg.Server
			var stopSandbox func()
			srv, stopSandbox, err = startSandbox(ctx, env, *pgVersion)
			if err != nil {
				return ExitError, err
			}
			defer stopSandbox()
			snap, err = gather(ctx, env, &src, srv)
			if err == nil {
				snap.Target.Description = "sandbox (throwaway server, " + snap.Target.Description + ")"
			}
		default:
			snap, err = gather(ctx, env, &src, nil)
		}
		if err != nil {
			return ExitError, err
		}
		if *snapPath == "" {
			bf.scan(env, snap)
		}
		findings, err := rules.RunProfile(snap, *profile)
		if err != nil {
			return ExitError, err
		}
		// Waivers first: they split aggregated findings, and the plan must
		// see the parts (a waived part's changes stay out of it, the rest's
		// no longer touch the waived members).
		if wf != nil {
			var warns []string
			findings, warns = wf.Apply(findings, time.Now())
			snap.Warnings = append(snap.Warnings, warns...)
		}
		// Every report shows as a finding's fix the step of the one
		// planner, so the report and 'pgaegis fix' agree.
		fix.Build(snap, findings, fix.Options{Target: snap.Target.Description}).Annotate(findings)
		rep := report.Build(snap, findings, sev)
		if prev != nil {
			report.ApplyBaseline(rep, prev, *baseline, sev)
		}

		o, err := openOutput(env, *out)
		if err != nil {
			return ExitError, err
		}
		switch *format {
		case "json":
			err = report.WriteJSON(o.w, rep)
		case "sarif":
			err = report.WriteSARIF(o.w, rep, report.SARIFOptions{Root: *sarifRoot})
		case "html":
			err = report.WriteHTML(o.w, rep)
		case "markdown", "md":
			err = report.WriteMarkdownWith(o.w, rep, report.MarkdownOptions{All: *verbose || *all})
		case "junit":
			err = report.WriteJUnit(o.w, rep)
		case "pdf":
			err = report.WritePDF(ctx, o.w, rep, report.PDFOptions{})
		default:
			useColor := *color == "always" || (*color == "auto" && *out == "" && isTerminal(env.Stdout))
			// --all lists every object; --verbose also lists passing checks.
			err = report.WriteText(o.w, rep, report.TextOptions{Color: useColor, Verbose: *verbose, All: *all})
		}
		if err != nil {
			o.abort()
			return ExitError, err
		}
		if err := o.commit(); err != nil {
			return ExitError, err
		}
		// An audit that could not see what it needed is a runtime error (exit
		// 2), reported after the report is written; failing findings beside
		// it are in the report.
		if rep.Incomplete() {
			return ExitError, incompleteError(rep.Summary.IncompleteReason, snap.Errors)
		}
		if rep.Failed() {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	return cmd
}

// incompleteError names why an audit or collection is incomplete, with
// the collection errors (sorted, so messages are stable).
func incompleteError(reason string, errs map[string]string) error {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("incomplete: " + reason)
	for _, k := range keys {
		b.WriteString("\n  " + errs[k])
	}
	return errors.New(b.String())
}

func collectCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "collect [connection options] [--pgdata DIR] [-o snapshot.json]",
		Short: "write a snapshot (JSON) of a server and its files for a later audit",
		Example: `  sudo -u postgres pgaegis collect -o snap.json
  pgaegis collect -h db.example.com -U auditor -o snap.json
  pgaegis audit --snapshot snap.json`,
		Args: noArgs,
	}
	var src sourceFlags
	src.register(cmd)
	var bf backupDirFlags
	bf.register(cmd)
	out := cmd.Flags().StringP("output", "o", "", "snapshot file to write (default: stdout)")
	cmd.MarkFlagDirname("pgdata")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if err := bf.check(); err != nil {
			return ExitError, err
		}
		snap, err := gather(ctx, env, &src, nil)
		if err != nil {
			return ExitError, err
		}
		bf.scan(env, snap)
		o, err := openOutput(env, *out)
		if err != nil {
			return ExitError, err
		}
		if err := snap.Write(o.w); err != nil {
			o.abort()
			return ExitError, err
		}
		if err := o.commit(); err != nil {
			return ExitError, err
		}
		if len(snap.Errors) > 0 {
			return ExitError, incompleteError("the snapshot was written, but some reads failed (collection_errors)", snap.Errors)
		}
		return ExitOK, nil
	})
	return cmd
}

func rulesCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules [--format text|json|markdown]",
		Short: "list the rules (text or JSON)",
		Example: `  pgaegis rules
  pgaegis rules --format json`,
		Args: noArgs,
	}
	format := cmd.Flags().String("format", "text", "text, json or markdown")
	completeValues(cmd, "format", "text", "json", "markdown")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		all := rules.All()
		switch *format {
		case "json":
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return ExitOK, enc.Encode(all)
		case "markdown":
			return ExitOK, rules.WriteMarkdown(env.Stdout)
		case "text":
			for _, r := range all {
				fmt.Fprintf(env.Stdout, "%-22s %-8s %-14s %s\n%22s needs: %s\n", r.ID, r.Severity, r.Area, r.Title, "", r.Access)
			}
			return ExitOK, nil
		}
		return ExitError, usagef("unknown --format %q", *format)
	})
	return cmd
}
