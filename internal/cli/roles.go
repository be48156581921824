package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/execute"
	"github.com/pgaegis/pgaegis/internal/policy/inspect"
	"github.com/pgaegis/pgaegis/internal/policy/template"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/scram"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

func rolesCmd(env *Env) *cobra.Command {
	return groupCmd(env, "roles", "least-privilege role layouts from the guides, as policy files",
		"  pgaegis roles init --database appdb --app app --readonly report\n  pgaegis roles verifier --password-file app.pw",
		rolesInitCmd(env), rolesVerifierCmd(env))
}

var rolesFormats = []string{"text", "sql", "json", "yaml"}

func rolesInitCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init --database DB --app ROLE --readonly ROLE [--owner ROLE] [--schema S ...] [template options] [connection options] [--format text|sql|json|yaml] [--apply [--yes]]",
		Short: "plan (or apply) the guides' least-privilege layout: owner, app, read-only, PUBLIC revoked",
		Long: `Build the guides' least-privilege layout as a policy file in adopt mode and
plan it against the server: a NOLOGIN owner role owning the database and
its schemas; an app role with CONNECT, USAGE and SELECT, INSERT, UPDATE,
DELETE on every table, USAGE, SELECT on every sequence (EXECUTE on
functions with --app-execute); a read-only role with SELECT; PUBLIC's
privileges on the database and the schemas revoked; default privileges
FOR ROLE every role that creates objects there, so future tables and
sequences get the same grants. Roles the file does not name are left
alone. A database that does not exist is created.

Passwords are never put in SQL: --app-password-file,
--readonly-password-file, --migration-password-file and
--monitoring-password-file (- for standard input, for one of them) are
read, turned into a SCRAM-SHA-256 verifier on the client and dropped.
To change a password later, use psql's \password ROLE (it also computes
the verifier on the client).

With --tenant-table the app gets a policy for every command and the
read-only role one for SELECT, both keyed on --tenant-setting; RLS is
forced, so the owner sees no rows. The table's other policies are kept.

--format yaml prints the policy file itself, to keep and re-apply with
'pgaegis access policy apply FILE'. --apply runs the plan (one
transaction per database, journalled; asks first unless --yes).

Exit codes: 0 nothing to change, or applied and verified; 1 the plan has
steps (without --apply); 2 an error.`,
		Example: `  pgaegis roles init --database appdb --app app --readonly report
  pgaegis roles init --database appdb --app app --readonly report --owner app_owner --schema public --schema billing
  pgaegis roles init --database appdb --app app --readonly report --migration deployer --monitoring monitor --format sql
  pgaegis roles init --database appdb --app app --readonly report --tenant-table orders --tenant-column tenant_id
  pgaegis roles init --database appdb --app app --readonly report --format yaml -o appdb-roles.yaml
  pgaegis roles init -h db.example.com -U postgres --database appdb --app app --readonly report --app-password-file app.pw --apply`,
		Args: noArgs,
	}
	var c connFlags
	c.register(cmd)
	var o template.Options
	t := &template.Tenant{}
	fs := cmd.Flags()
	fs.StringVar(&o.Database, "database", "", "the application's database (created when missing)")
	fs.StringVar(&o.App, "app", "", "the application's LOGIN role (CRUD)")
	fs.StringVar(&o.ReadOnly, "readonly", "", "the read-only LOGIN role (SELECT)")
	fs.StringVar(&o.Owner, "owner", "", "the NOLOGIN role owning the database and schemas (default <database>_owner)")
	fs.StringArrayVar(&o.Schemas, "schema", nil, "a schema of the layout (repeatable; default public)")
	fs.BoolVar(&o.AppExecute, "app-execute", false, "grant the app EXECUTE on the schemas' functions (now and future)")
	fs.StringVar(&o.Migration, "migration", "", "a LOGIN role for migrations: member of the owner, DDL only after SET ROLE")
	fs.StringVar(&o.Monitoring, "monitoring", "", "a LOGIN role for monitoring: member of pg_monitor, CONNECT")
	fs.IntVar(&o.AppConnLimit, "app-connection-limit", template.DefaultAppConnLimit, "the app's connection limit (-1 none)")
	fs.IntVar(&o.ReadOnlyConnLimit, "readonly-connection-limit", template.DefaultReadOnlyConnLimit, "the read-only role's connection limit (-1 none)")
	fs.IntVar(&o.MigrationConnLimit, "migration-connection-limit", template.DefaultMigrationConnLimit, "the migration role's connection limit (-1 none)")
	fs.IntVar(&o.MonitoringConnLimit, "monitoring-connection-limit", template.DefaultMonitoringConnLimit, "the monitoring role's connection limit (-1 none)")
	fs.StringVar(&o.AppAudit, "app-audit", "", "the app's pgaudit.log (write,ddl)")
	fs.StringVar(&o.ReadOnlyAudit, "readonly-audit", "", "the read-only role's pgaudit.log (read)")
	appPW := fs.String("app-password-file", "", "file holding the app's password on one line (- for stdin); only its SCRAM verifier is sent")
	roPW := fs.String("readonly-password-file", "", "file holding the read-only role's password (- for stdin)")
	migPW := fs.String("migration-password-file", "", "file holding the migration role's password (- for stdin)")
	monPW := fs.String("monitoring-password-file", "", "file holding the monitoring role's password (- for stdin)")
	fs.StringArrayVar(&t.Tables, "tenant-table", nil, "a table for per-tenant row-level security (repeatable; schema.table or a table in the first schema)")
	fs.StringVar(&t.Column, "tenant-column", "", "the tenant column of the --tenant-table tables")
	fs.StringVar(&t.Setting, "tenant-setting", "app.tenant_id", "the session setting holding the current tenant")
	format := fs.String("format", "text", "output: text, sql (a psql script), json (the plan) or yaml (the policy file)")
	out := fs.StringP("output", "o", "", "write the output to this file instead of stdout")
	doApply := fs.Bool("apply", false, "apply the plan (one transaction per database, journalled, verified)")
	yes := fs.BoolP("yes", "y", false, "apply without asking (needed when standard input is not a terminal)")
	lockTimeout := fs.Duration("lock-timeout", 5*time.Second, "with --apply: how long each statement may wait for a lock")
	journalDir := fs.String("journal-dir", "", "with --apply: journal directory (default: $XDG_STATE_HOME/pgaegis/plans, as access policy apply)")
	completeValues(cmd, "format", rolesFormats...)
	cmd.MarkFlagDirname("journal-dir")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		switch *format {
		case "text", "sql", "json", "yaml":
		default:
			return ExitError, usagef("unknown --format %q (text, sql, json or yaml)", *format)
		}
		if *yes && !*doApply {
			return ExitError, usagef("--yes only means something with --apply")
		}
		if o.Database == "" || o.App == "" || o.ReadOnly == "" {
			return ExitError, usagef("--database, --app and --readonly are required")
		}
		pwFiles := []struct {
			flag, path string
			into       *string
			role       string
		}{
			{"--app-password-file", *appPW, &o.AppVerifier, o.App}, {"--readonly-password-file", *roPW, &o.ReadOnlyVerifier, o.ReadOnly},
			{"--migration-password-file", *migPW, &o.MigrationVerifier, o.Migration}, {"--monitoring-password-file", *monPW, &o.MonitoringVerifier, o.Monitoring},
		}
		var stdinFlags []string
		for _, p := range pwFiles {
			if p.path != "" && p.role == "" {
				return ExitError, usagef("%s needs %s", p.flag, strings.TrimSuffix(p.flag, "-password-file"))
			}
			if p.path == "-" {
				stdinFlags = append(stdinFlags, p.flag)
			}
		}
		if len(stdinFlags) > 1 {
			return ExitError, usagef("%s cannot all read standard input: give files", strings.Join(stdinFlags, " and "))
		}
		if (len(t.Tables) > 0) != (t.Column != "") {
			return ExitError, usagef("--tenant-table and --tenant-column go together")
		}
		if *lockTimeout <= 0 {
			return ExitError, usagef("--lock-timeout must be positive")
		}
		if *doApply && !*yes && !stdinTerminal(env) {
			return ExitError, usagef("--apply changes the server: standard input is not a terminal to ask on, so give --yes (after reviewing the plan without --apply)")
		}
		var err error
		for _, p := range pwFiles {
			if *p.into, err = verifierFrom(env, p.flag, p.path); err != nil {
				return ExitError, err
			}
		}
		cfg, err := c.config(env)
		if err != nil {
			return ExitError, err
		}
		// As access policy apply: no login trigger's code runs in our
		// sessions (17+).
		cfg = collect.WithoutEventTriggers(ctx, cfg)
		if len(t.Tables) > 0 {
			o.Tenant = t
		}
		rp, err := planRoles(ctx, cfg, o)
		if err != nil {
			return ExitError, err
		}
		file, p, notes := rp.file, rp.plan, rp.notes

		w, err := openOutput(env, *out)
		if err != nil {
			return ExitError, err
		}
		if *format == "yaml" {
			err = writePolicyYAML(w.w, file)
		} else {
			shown := p
			if *format == "text" {
				shown = policy.MaskVerifiers(p) // a verifier still allows offline guessing
			}
			err = writePlan(w.w, shown, *format)
		}
		if err != nil {
			w.abort()
			return ExitError, err
		}
		if err := w.commit(); err != nil {
			return ExitError, err
		}
		for _, n := range notes {
			fmt.Fprintf(env.Stderr, "pgaegis roles init: %s: %s: %s\n", n.Level, textsafe.String(n.Object), textsafe.Code(n.Text))
		}
		if !*doApply {
			if p.Empty() {
				return ExitOK, nil
			}
			return ExitFindings, nil
		}
		if p.Empty() {
			fmt.Fprintln(env.Stderr, "pgaegis roles init: nothing to apply")
			return ExitOK, nil
		}
		if !*yes {
			if *format != "text" || *out != "" {
				plan.WriteText(env.Stderr, policy.MaskVerifiers(p))
			}
			ok, err := confirm(env, fmt.Sprintf("apply plan %s (%d step(s)) to %s? [y/N] ", p.ID, len(p.Steps), p.Target))
			if err != nil {
				return ExitError, err
			}
			if !ok {
				fmt.Fprintln(env.Stderr, "pgaegis roles init: not applied")
				return ExitError, nil
			}
		}
		ao := execute.Options{JournalRoot: *journalDir, LockTimeout: *lockTimeout}
		if isTerminal(env.Stderr) {
			ao.Progress = env.Stderr
		}
		r, err := rp.apply(ctx, cfg, ao)
		return policyOutcome(env, "applied", r, err)
	})
	return cmd
}

// rolesPlan is a template built against the live state and its plan.
type rolesPlan struct {
	o     template.Options
	live  *policy.Live
	file  *policy.File
	plan  *plan.Plan
	notes []policy.Note
	diff  policy.Options
}

// planRoles reads the server, builds the template's file and diffs it.
func planRoles(ctx context.Context, cfg *pgx.ConnConfig, o template.Options) (*rolesPlan, error) {
	// Read refuses a database that does not exist; the template creates
	// it, so the cluster is read through the connection's database then.
	scope, err := readScope(ctx, cfg, o.Database)
	if err != nil {
		return nil, err
	}
	live, err := inspect.Read(ctx, cfg, inspect.Options{Databases: []string{scope}})
	if err != nil {
		return nil, err
	}
	explainLockTimeouts(ctx, cfg, live)
	if why, ok := live.Unreadable[o.Database]; ok && slices.Contains(live.Databases, o.Database) {
		return nil, fmt.Errorf("database %s could not be read (%s): the plan would be built blind", textsafe.String(o.Database), textsafe.String(why))
	}
	if o.Tenant != nil {
		l := &tenantLookups{ctx: ctx, cfg: cfg, database: o.Database}
		defer l.close()
		o.Tenant.ColumnType, o.Tenant.Deparse = l.columnType, l.deparse
	}
	file, notes, err := template.Init(o, live)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	rp := &rolesPlan{o: o, live: live, file: file, notes: notes, diff: policy.Options{ConnectDatabase: cfg.Database}}
	p, dnotes, err := policy.Diff(file, live, rp.diff)
	if err != nil {
		return nil, err
	}
	p.Target = policyTarget(cfg)
	rp.plan, rp.notes = p, append(rp.notes, dnotes...)
	return rp, nil
}

// readScope is the database to read: database when it exists, else the
// one the connection reaches.
func readScope(ctx context.Context, cfg *pgx.ConnConfig, database string) (string, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var exists bool
	var current string
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = $1), pg_catalog.current_database()`, database).Scan(&exists, &current); err != nil {
		return "", err
	}
	if exists {
		return database, nil
	}
	return current, nil
}

// apply runs the plan as access policy apply runs a file's; the server
// is read again after it and the file must then plan nothing.
func (rp *rolesPlan) apply(ctx context.Context, cfg *pgx.ConnConfig, ao execute.Options) (*execute.Result, error) {
	ao.Verify = func(ctx context.Context) error {
		again, err := inspect.Read(ctx, cfg, inspect.Options{Databases: []string{rp.o.Database}}) // created by now
		if err != nil {
			return err
		}
		rest, _, err := policy.Diff(rp.file, again, rp.diff)
		if err != nil {
			return err
		}
		if !rest.Empty() {
			return fmt.Errorf("after the apply the plan still has %d step(s)", len(rest.Steps))
		}
		return nil
	}
	return execute.Apply(ctx, cfg, rp.plan, execute.Before(rp.file, rp.live), ao)
}

// verifierFrom reads a password file (or stdin) and returns its SCRAM
// verifier; the clear text goes no further than this function.
func verifierFrom(env *Env, flag, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	var r io.Reader
	if path == "-" {
		r = env.Stdin
		if r == nil {
			return "", usagef("%s -: no standard input", flag)
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", usagef("%s: %v", flag, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(env.Stderr, "pgaegis roles: warning: %s %s is readable by others (mode %04o); 0600 keeps the password to you\n", flag, textsafe.String(path), st.Mode().Perm())
		}
		r = f
	}
	line, err := bufio.NewReader(io.LimitReader(r, 1<<16)).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: reading: %v", flag, err)
	}
	defer clear(line)
	pw := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(pw) == 0 {
		return "", usagef("%s: the first line is empty", flag)
	}
	env.secrets = append(env.secrets, string(pw))
	v, err := scram.Verifier(pw, 0)
	if err != nil {
		return "", usagef("%s: %v", flag, err)
	}
	return v, nil
}

// tenantLookups answer the tenant template's questions in the target
// database over one connection, opened on first use.
type tenantLookups struct {
	ctx      context.Context
	cfg      *pgx.ConnConfig
	database string
	conn     *pgx.Conn
}

func (l *tenantLookups) open() (*pgx.Conn, error) {
	if l.conn == nil {
		dc := l.cfg.Copy()
		dc.Database = l.database
		conn, err := pgx.ConnectConfig(l.ctx, dc)
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", textsafe.String(l.database), err)
		}
		l.conn = conn
	}
	return l.conn, nil
}

func (l *tenantLookups) close() {
	if l.conn != nil {
		l.conn.Close(context.Background())
	}
}

// columnType is the column's type as format_type spells it
// (schema-qualified when not on the search path).
func (l *tenantLookups) columnType(schema, table, column string) (string, error) {
	conn, err := l.open()
	if err != nil {
		return "", err
	}
	var typ *string
	var found bool
	err = conn.QueryRow(l.ctx, `SELECT true, (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, table, column).Scan(&found, &typ)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", errors.New("no such table in " + textsafe.String(l.database))
	case err != nil:
		return "", err
	case typ == nil:
		return "", fmt.Errorf("no column %s", textsafe.String(column))
	}
	return *typ, nil
}

// deparse has the server print an expression back the way pg_get_expr
// shows a policy's (casts and parentheses added), on a temporary copy of
// the table's columns in a rolled-back transaction: the real table is
// neither locked nor changed.
func (l *tenantLookups) deparse(schema, table, expr string) (string, error) {
	conn, err := l.open()
	if err != nil {
		return "", err
	}
	tx, err := conn.Begin(l.ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.Background())
	for _, q := range []string{
		`SET LOCAL lock_timeout = '5s'`,
		`CREATE TEMPORARY TABLE pgaegis_deparse (LIKE ` + quote.Qualified(schema, table) + `) ON COMMIT DROP`,
		`CREATE POLICY pgaegis_deparse ON pg_temp.pgaegis_deparse USING (` + expr + `)`,
	} {
		if _, err := tx.Exec(l.ctx, q); err != nil {
			return "", fmt.Errorf("the server rejects the policy expression: %w", err)
		}
	}
	var out string
	err = tx.QueryRow(l.ctx, `SELECT pg_catalog.pg_get_expr(polqual, polrelid) FROM pg_catalog.pg_policy
		WHERE polrelid = 'pg_temp.pgaegis_deparse'::regclass`).Scan(&out)
	return out, err
}

func writePolicyYAML(w io.Writer, f *policy.File) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return err
	}
	return enc.Close()
}
