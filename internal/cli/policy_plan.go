package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/inspect"
)

// policyDiffFlags are the flags plan and check share.
type policyDiffFlags struct {
	conn      connFlags
	mode      string
	reassign  string
	dropOwned bool
	stmtTO    time.Duration
}

func (f *policyDiffFlags) register(cmd *cobra.Command) {
	f.conn.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&f.mode, "mode", "", "authoritative, adopt or additive (default: the file's mode, else authoritative)")
	fs.StringVar(&f.reassign, "reassign-owned-to", "", "let a role being removed go: REASSIGN OWNED BY it TO this role first")
	fs.BoolVar(&f.dropOwned, "drop-owned", false, "let a role being removed go: DROP OWNED BY it (its privileges, and what it still owns) first")
	fs.DurationVar(&f.stmtTO, "statement-timeout", 60*time.Second, "limit for each catalog query")
	completeValues(cmd, "mode", policy.Authoritative, policy.Adopt, policy.Additive)
}

// policyDiff loads the file, reads the server (only the databases the
// file names that exist), lets the server normalise policy expressions
// and diffs.
func (f *policyDiffFlags) run(ctx context.Context, env *Env, file string) (*plan.Plan, []policy.Note, error) {
	p, notes, _, err := f.detail(ctx, env, file)
	return p, notes, err
}

func (f *policyDiffFlags) detail(ctx context.Context, env *Env, file string) (*plan.Plan, []policy.Note, []policy.Difference, error) {
	r, err := f.load(ctx, env, file)
	if err != nil {
		return nil, nil, nil, err
	}
	return r.plan, r.notes, r.diffs, nil
}

// policyRun is one load, read and diff, kept whole for apply, which
// needs the file, the live state and the connection again.
type policyRun struct {
	file    string
	desired *policy.File
	cfg     *pgx.ConnConfig
	home    string // the database connected to: cluster-wide statements run there
	dbs     []string
	live    *policy.Live
	plan    *plan.Plan
	notes   []policy.Note
	diffs   []policy.Difference
}

func (f *policyDiffFlags) load(ctx context.Context, env *Env, file string) (*policyRun, error) {
	desired, err := policy.Load(file)
	if err != nil {
		return nil, err
	}
	cfg, err := f.conn.config(env)
	if err != nil {
		return nil, err
	}
	names, home, err := serverDatabases(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := &policyRun{file: file, desired: desired, cfg: cfg, home: home, dbs: fileScope(desired, names, home)}
	if err := f.diff(ctx, r); err != nil {
		return nil, err
	}
	r.plan.Target = policyTarget(cfg)
	return r, nil
}

// fileScope is the databases to read for a file: those it names that
// exist (names), every one for a legacy file, else the connection's.
func fileScope(desired *policy.File, names map[string]bool, connectDB string) []string {
	var dbs []string
	for n := range desired.Databases {
		if names[n] {
			dbs = append(dbs, n)
		}
	}
	if desired.Databases[policy.AllDatabases] != nil {
		return nil // a legacy file without a database: read them all
	}
	if len(dbs) == 0 {
		dbs = []string{connectDB} // roles only, or only new databases: the cluster part is what matters
	}
	return dbs
}

// diff reads the server, lets it normalise policy expressions and diffs
// r's file against it (again, for apply's verification).
func (f *policyDiffFlags) diff(ctx context.Context, r *policyRun) error {
	live, err := inspect.Read(ctx, r.cfg, inspect.Options{Databases: r.dbs, StatementTimeout: f.stmtTO})
	if err != nil {
		return err
	}
	explainLockTimeouts(ctx, r.cfg, live)
	// Normalize runs CREATE POLICY (rolled back): log in so that no login
	// event trigger runs as the role asking (17+, a superuser).
	safe := collect.WithoutEventTriggers(ctx, r.cfg)
	connect := func(ctx context.Context, db string) (*pgx.Conn, error) {
		c := safe.Copy()
		c.Database = db
		return pgx.ConnectConfig(ctx, c)
	}
	if err := policy.Normalize(ctx, connect, r.desired, live); err != nil {
		return err
	}
	p, notes, diffs, err := policy.DiffDetail(r.desired, live, policy.Options{Mode: f.mode, ConnectDatabase: r.home, ReassignOwnedTo: f.reassign, DropOwned: f.dropOwned})
	if err != nil {
		var le *policy.LineError
		if errors.As(err, &le) {
			return fmt.Errorf("%s:%d: %w", r.file, le.Line, le.Err)
		}
		return fmt.Errorf("%s: %w", r.file, err)
	}
	r.live, r.plan, r.notes, r.diffs = live, p, notes, diffs
	return nil
}

// existingDatabases lists the server's databases (one small query), so
// the live read is limited to those the file names.
func existingDatabases(ctx context.Context, cfg *pgx.ConnConfig) (map[string]bool, error) {
	names, _, err := serverDatabases(ctx, cfg)
	return names, err
}

// serverDatabases is existingDatabases and the database connected to
// (where cluster-wide statements run: cfg may name none).
func serverDatabases(ctx context.Context, cfg *pgx.ConnConfig) (map[string]bool, string, error) {
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	defer c.Close(ctx)
	var home string
	if err := c.QueryRow(ctx, "SELECT current_database()").Scan(&home); err != nil {
		return nil, "", err
	}
	rows, err := c.Query(ctx, "SELECT datname FROM pg_database")
	if err != nil {
		return nil, "", err
	}
	names := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, "", err
		}
		names[n] = true
	}
	return names, home, rows.Err()
}

// policyTarget names the server as the audit report does (no secrets).
func policyTarget(cfg *pgx.ConnConfig) string { return conninfo.Describe(cfg) }

func policyPlanCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan FILE.yaml [connection options]",
		Short: "show the changes that make the server match a policy file",
		Long: `Read the server (the databases the file names), compare it with the
policy file and print the plan: cluster additions, CREATE DATABASE, one
transaction per database (grants before revokes), cluster removals.
Exit 1 when there is something to change.`,
		Example: `  pgaegis access policy plan policy.yaml -h db.example.com -U admin
  pgaegis access policy plan policy.yaml --mode adopt --format sql > change.sql`,
	}
	var f policyDiffFlags
	f.register(cmd)
	format := cmd.Flags().String("format", "text", "text, sql or json")
	completeValues(cmd, "format", "text", "sql", "json")
	cmd.MarkFlagFilename("", "yaml", "yml")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, files []string) (int, error) {
		if len(files) != 1 {
			return ExitError, usagef("give one policy file")
		}
		switch *format {
		case "text", "sql", "json":
		default:
			return ExitError, usagef("--format %q: want text, sql or json", *format)
		}
		p, notes, err := f.run(ctx, env, files[0])
		if err != nil {
			return ExitError, err
		}
		if err := writePolicyPlan(env, *format, p, notes); err != nil {
			return ExitError, err
		}
		if p.Empty() {
			return ExitOK, nil
		}
		return ExitFindings, nil
	})
	return cmd
}

func writePolicyPlan(env *Env, format string, p *plan.Plan, notes []policy.Note) error {
	switch format {
	case "json":
		return writeJSON(env, struct {
			Plan  jsonPlan      `json:"plan"`
			Notes []policy.Note `json:"notes"`
		}{jsonPlan{p}, nonNilNotes(notes)})
	case "sql":
		if err := plan.WriteSQL(env.Stdout, p); err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintf(env.Stdout, "-- %s %s: %s\n", esc(n.Level), esc(n.Object), esc(n.Text))
		}
		return nil
	}
	env = textEnv(env)
	if err := plan.WriteText(env.Stdout, policy.MaskVerifiers(p)); err != nil {
		return err
	}
	writeNotes(env.Stdout, notes)
	return nil
}

func writeNotes(w io.Writer, notes []policy.Note) {
	if len(notes) == 0 {
		return
	}
	fmt.Fprintln(w, "\nnotes:")
	for _, n := range notes {
		fmt.Fprintf(w, "  %s %s: %s\n", esc(n.Level), esc(n.Object), esc(n.Text))
	}
}

func nonNilNotes(n []policy.Note) []policy.Note {
	if n == nil {
		return []policy.Note{}
	}
	return n
}

// jsonPlan writes a plan in its stable form (plan.WriteJSON) inside
// another document.
type jsonPlan struct{ p *plan.Plan }

func (j jsonPlan) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := plan.WriteJSON(&b, j.p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
