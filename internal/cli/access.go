package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/privileges"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// modelSource loads a snapshot (live or from a file) for access analysis.
type modelSource struct {
	conn     connFlags
	snapPath string
	database string
	stmtTO   time.Duration
}

func (m *modelSource) register(cmd *cobra.Command) {
	m.conn.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&m.snapPath, "snapshot", "", "analyse a snapshot written by pgaegis collect")
	fs.StringVar(&m.database, "database", "", "limit to one database")
	fs.DurationVar(&m.stmtTO, "statement-timeout", 30*time.Second, "limit for each query on the server (the client gives up 5s later)")
}

func (m *modelSource) load(ctx context.Context, env *Env) (*snapshot.Snapshot, *privileges.Model, []privileges.Object, error) {
	var snap *snapshot.Snapshot
	var err error
	if m.snapPath != "" {
		snap, err = snapshot.Read(m.snapPath)
	} else {
		cfg, cerr := m.conn.config(env)
		if cerr != nil {
			return nil, nil, nil, cerr
		}
		snap, err = collect.Collect(ctx, collect.Options{Conn: cfg, NoFiles: true, NoProbe: true, StatementTimeout: m.stmtTO, Progress: progress(env)})
		clearProgress(env)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	// Answering from a partial model would be a confident wrong answer
	// ("no escalation path", "role does not exist"): fail instead.
	if len(snap.Errors) > 0 {
		return nil, nil, nil, incompleteError("the privilege model cannot be built: some reads failed", snap.Errors)
	}
	if snap.Roles == nil {
		return nil, nil, nil, fmt.Errorf("the snapshot has no roles (%s)", snap.Gap(snapshot.GapRoles))
	}
	if g := snap.Gap(snapshot.GapMemberships); g != "" {
		return nil, nil, nil, fmt.Errorf("the snapshot has no role memberships (%s)", g)
	}
	model := privileges.Build(snap)
	objs := model.Objects(snap)
	if m.database != "" {
		var keep []privileges.Object
		for _, o := range objs {
			if o.Database == "" || o.Database == m.database {
				keep = append(keep, o)
			}
		}
		objs = keep
	}
	for _, d := range snap.Databases {
		if !d.Collected && d.AllowConn {
			fmt.Fprintf(env.Stderr, "note: database %q was not read: %s\n", d.Name, esc(d.Gap))
		}
	}
	return snap, model, objs, nil
}

func accessCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access (--role R | --object schema.table [--privilege P]) [connection options | --snapshot S]",
		Short: "who can do what: --role, --object, check, matrix; roles and privileges as code (policy)",
		Long: `Who can do what. With --role: everything a role can do, as has_*_privilege
answers, preceded by "escalation:" lines for what it reaches beyond that
(SET ROLE into a superuser, SECURITY DEFINER functions, untrusted
languages, CREATEROLE before 16, ALTER SYSTEM); with --object:
every role that can use an object. The subcommands answer one question
(check), list every role (matrix) or compare the server with a policy file
(policy check).`,
		Example: `  pgaegis access --role app -h db.example.com -U auditor
  pgaegis access --object shop.orders --privilege SELECT --snapshot snap.json
  pgaegis access check --role app --object shop.orders --privilege DELETE --snapshot snap.json
  pgaegis access matrix --snapshot snap.json > access.csv
  pgaegis access policy check policy.yaml --snapshot snap.json`,
		Args: noArgs,
	}
	policy := &cobra.Command{Use: "policy", Short: "roles and privileges as code: export, plan, apply, test, rollback, check",
		Example: `  pgaegis access policy export -h db.example.com -U postgres -o policy.yaml
  pgaegis access policy plan policy.yaml -h db.example.com -U postgres
  pgaegis access policy apply policy.yaml -h db.example.com -U postgres --check
  pgaegis access policy test policy.yaml -h db.example.com -U postgres
  pgaegis access policy check policy.yaml --snapshot snap.json`}
	policy.AddCommand(accessPolicyCheckCmd(env), policyExportCmd(env), policyPlanCmd(env), policyApplyCmd(env),
		policyRollbackCmd(env), policyTestCmd(env))
	policy.RunE = groupCmd(env, "policy", "", "").RunE
	cmd.AddCommand(accessCheckCmd(env), accessMatrixCmd(env), policy)
	var src modelSource
	src.register(cmd)
	fs := cmd.Flags()
	role := fs.String("role", "", "show everything this role can do")
	object := fs.String("object", "", "show every role that can use this object")
	kind := fs.String("kind", "", "object kind: table, sequence, function, schema, database, language, large object, foreign server")
	priv := fs.String("privilege", "", "with --object: only this privilege")
	format := fs.String("format", "text", "text or json")
	full := fs.Bool("full", false, "with --role: list every object instead of summarising")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if (*role == "") == (*object == "") {
			return ExitError, usagef("give --role or --object")
		}
		snap, model, objs, err := src.load(ctx, env)
		if err != nil {
			return ExitError, err
		}
		if *role != "" {
			ri, ok := model.RoleIndex(*role)
			if !ok {
				return ExitError, fmt.Errorf("role %q does not exist", *role)
			}
			bypass := false
			if r, ok := snap.Role(*role); ok {
				bypass = r.BypassRLS
			}
			hs := model.RoleAccess(ri, objs, bypass)
			if *format == "json" {
				if *full {
					return ExitOK, writeJSON(env, hs)
				}
				return ExitOK, writeJSON(env, privileges.Summarize(hs))
			}
			r := model.Roles[ri]
			env = textEnv(env) // names are chosen by whoever created the objects
			fmt.Fprintf(env.Stdout, "what %s can do%s\n", esc(r.Name), roleNote(snap, r.Name))
			// has_*_privilege's answer is below; what the role reaches by
			// escalating comes first, since it overrides all of it.
			for _, rt := range model.Reach(snap, r.Name) {
				if rt.Everything {
					fmt.Fprintf(env.Stdout, "escalation: every privilege everywhere through %s (superuser)\n", esc(rt.How))
				} else {
					fmt.Fprintf(env.Stdout, "escalation: %s through %s\n", esc(rt.Gains), esc(rt.How))
				}
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "DATABASE\tKIND\tSCHEMA\tCOUNT\tPRIVILEGES\tHOW\tEXAMPLE")
			for _, s := range privileges.Summarize(hs) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", esc(s.Database), esc(string(s.Kind)), esc(s.Schema), s.Count, esc(s.Privileges), esc(s.Via), esc(s.Example))
			}
			return ExitOK, tw.Flush()
		}
		o, err := privileges.Find(objs, *object, src.database, privileges.Kind(*kind))
		if err != nil {
			return ExitError, err
		}
		var only privileges.Bits
		if *priv != "" {
			if only, err = privileges.ParsePrivilege(*priv); err != nil {
				return ExitError, usageError{err.Error()}
			}
			if err := model.CheckExists(only); err != nil {
				return ExitError, usageError{err.Error()}
			}
		}
		bypass := map[string]bool{}
		for _, r := range snap.Roles {
			bypass[r.Name] = r.BypassRLS
		}
		who := model.Who(o, only, bypass)
		if *format == "json" {
			return ExitOK, writeJSON(env, map[string]any{"object": o, "roles": who})
		}
		env = textEnv(env)
		fmt.Fprintf(env.Stdout, "who can use %s %s (database %s, owner %s)\n", esc(string(o.Kind)), esc(o.QualifiedName()), esc(o.Database), esc(o.Owner))
		tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLE\tPRIVILEGE\tHOW\tRLS")
		for _, rh := range who {
			for _, g := range rh.Grants {
				how := esc(string(g.Via))
				if len(g.Path) > 1 {
					how += " " + strings.Join(escAll(g.Path), " → ")
				}
				if g.Column != "" {
					how += " (column " + esc(g.Column) + ")"
				}
				name := esc(rh.Role)
				if rh.Login {
					name += " (login)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, esc(g.Privilege), how, esc(g.RLS))
			}
		}
		return ExitOK, tw.Flush()
	})
	return cmd
}

func roleNote(s *snapshot.Snapshot, name string) string {
	r, ok := s.Role(name)
	if !ok {
		return ""
	}
	var n []string
	if r.Superuser {
		n = append(n, "SUPERUSER: every privilege everywhere")
	}
	if r.BypassRLS {
		n = append(n, "BYPASSRLS: row-level security never applies")
	}
	if !r.CanLogin {
		n = append(n, "NOLOGIN")
	}
	if len(n) == 0 {
		return ""
	}
	return " (" + strings.Join(n, "; ") + ")"
}

// ExitReach is access check's answer when the role lacks the privilege
// but can make itself a superuser: scripts testing "exit 0" still read
// it as no, and those that care tell it from a plain no (1).
const ExitReach = 3

// checkAnswer is access check's JSON: the direct answer (has_*_privilege's)
// and the escalation routes when that answer is no.
type checkAnswer struct {
	privileges.Reason
	// Reachable: allowed directly, or through a route to superuser.
	Reachable  bool               `json:"reachable"`
	Escalation []privileges.Route `json:"escalation,omitempty"`
}

func accessCheckCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check --role R --object O --privilege P [--column C] [--kind K] [connection options | --snapshot S]",
		Short: "does a role have a privilege on an object, and why",
		Long: `Does a role have a privilege on an object, as has_*_privilege answers, and
can it get it anyway by escalating (SET ROLE into a superuser, a
superuser's SECURITY DEFINER function running dynamic SQL, ...)?

Exit codes: 0 the role has the privilege directly; 1 it does not, and no
route to superuser was found (other routes, such as OS command execution,
are listed but do not count); 3 it does not directly, but it can make
itself a superuser (the text says "no directly; yes through ..."); 2 an
error. JSON: "allowed" is the direct answer, "reachable" is allowed or
reachable through escalation, "escalation" lists the routes.`,
		Example: `  pgaegis access check --role app --object shop.orders --privilege DELETE --snapshot snap.json
  pgaegis access check --role app --object shop.orders --privilege SELECT --column card -h db.example.com`,
		Args: noArgs,
	}
	var src modelSource
	src.register(cmd)
	fs := cmd.Flags()
	role := fs.String("role", "", "role")
	object := fs.String("object", "", "object (schema.table, schema.func(args), schema, database)")
	priv := fs.String("privilege", "", "privilege, e.g. SELECT or 'SELECT WITH GRANT OPTION'")
	column := fs.String("column", "", "column (has_column_privilege)")
	kind := fs.String("kind", "", "object kind when the name is ambiguous")
	format := fs.String("format", "text", "text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *role == "" || *object == "" || *priv == "" {
			return ExitError, usagef("--role, --object and --privilege are required")
		}
		snap, model, objs, err := src.load(ctx, env)
		if err != nil {
			return ExitError, err
		}
		ri, ok := model.RoleIndex(*role)
		if !ok {
			return ExitError, fmt.Errorf("role %q does not exist", *role)
		}
		o, err := privileges.Find(objs, *object, src.database, privileges.Kind(*kind))
		if err != nil {
			return ExitError, err
		}
		p := strings.ToUpper(strings.TrimSpace(*priv))
		grantOpt := strings.HasSuffix(p, " WITH GRANT OPTION")
		bits, err := privileges.ParsePrivilege(strings.TrimSuffix(p, " WITH GRANT OPTION"))
		if err != nil {
			return ExitError, usageError{err.Error()}
		}
		if err := model.CheckExists(bits); err != nil {
			return ExitError, usageError{err.Error()}
		}
		var r privileges.Reason
		if *column != "" {
			col, has := o.Column(*column)
			r = model.CheckColumn(ri, o.ACL(), col, has, bits, grantOpt)
		} else {
			r = model.Check(ri, o.Kind, o.ACL(), bits, grantOpt)
		}
		// Escalation matters only when the direct answer is no: a yes is
		// already the whole truth.
		var routes []privileges.Route
		if !r.Allowed {
			routes = model.Reach(snap, *role)
		}
		via, reached := privileges.EverythingRoute(routes)
		code := ExitOK
		switch {
		case reached:
			code = ExitReach
		case !r.Allowed:
			code = ExitFindings
		}
		if *format == "json" {
			return code, writeJSON(env, checkAnswer{Reason: r, Reachable: r.Allowed || reached, Escalation: routes})
		}
		answer := "no"
		switch {
		case r.Allowed:
			answer = "yes"
		case reached:
			answer = "no directly; yes through " + esc(via.How) + " (superuser)"
		}
		env = textEnv(env)
		fmt.Fprintf(env.Stdout, "%s: %s %s %s on %s %s: %s\n", answer, esc(*role), map[bool]string{true: "has", false: "does not have"}[r.Allowed], esc(p), esc(string(o.Kind)), esc(o.QualifiedName()), esc(r.Text))
		for _, rt := range routes {
			if !rt.Everything {
				fmt.Fprintf(env.Stdout, "  also: %s can gain %s through %s (not counted as this privilege)\n", esc(*role), esc(rt.Gains), esc(rt.How))
			}
		}
		return code, nil
	})
	return cmd
}

func accessMatrixCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "matrix [--format csv|json] [connection options | --snapshot S]",
		Short: "every role's privileges, summarised per database, kind and schema",
		Example: `  pgaegis access matrix --snapshot snap.json > access.csv
  pgaegis access matrix --login-only --format json -h db.example.com`,
		Args: noArgs,
	}
	var src modelSource
	src.register(cmd)
	format := cmd.Flags().String("format", "csv", "csv or json")
	logins := cmd.Flags().Bool("login-only", false, "only login roles")
	completeValues(cmd, "format", "csv", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *format != "csv" && *format != "json" {
			return ExitError, usagef("unknown --format %q (csv or json)", *format)
		}
		snap, model, objs, err := src.load(ctx, env)
		if err != nil {
			return ExitError, err
		}
		type row struct {
			Role string `json:"role"`
			privileges.Summary
		}
		var rows []row
		for ri, r := range model.Roles {
			if r.Predefined || (*logins && !r.Login) {
				continue
			}
			bypass := false
			if sr, ok := snap.Role(r.Name); ok {
				bypass = sr.BypassRLS
			}
			for _, s := range privileges.Summarize(model.RoleAccess(ri, objs, bypass)) {
				rows = append(rows, row{r.Name, s})
			}
		}
		if *format == "json" {
			return ExitOK, writeJSON(env, rows)
		}
		w := csv.NewWriter(env.Stdout)
		w.Write([]string{"role", "database", "kind", "schema", "count", "privileges", "via", "example"})
		for _, r := range rows {
			w.Write(csvRow(r.Role, r.Database, string(r.Kind), r.Schema, fmt.Sprint(r.Count), r.Privileges, r.Via, r.Example))
		}
		w.Flush()
		return ExitOK, w.Error()
	})
	return cmd
}

func escalationsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "escalations [connection options | --snapshot S] [--format text|json]",
		Short: "paths by which a login role can gain superuser or OS access",
		Example: `  pgaegis escalations --snapshot snap.json
  pgaegis escalations -h db.example.com -U auditor --format json`,
		Args: noArgs,
	}
	var src modelSource
	src.register(cmd)
	format := cmd.Flags().String("format", "text", "text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		snap, model, _, err := src.load(ctx, env)
		if err != nil {
			return ExitError, err
		}
		chains := model.Escalations(snap)
		if *format == "json" {
			type withFix struct {
				privileges.Chain
				Fix string `json:"fix"`
			}
			out := make([]withFix, len(chains))
			for i, c := range chains {
				out[i] = withFix{c, rules.ChainFix(c)}
			}
			if err := writeJSON(env, out); err != nil {
				return ExitError, err
			}
		} else {
			env = textEnv(env)
			if len(chains) == 0 {
				fmt.Fprintln(env.Stdout, "no escalation path found for any non-superuser login role")
			}
			for _, c := range chains {
				sev := "CRITICAL"
				if c.Severity != "" {
					sev = strings.ToUpper(c.Severity)
				}
				fmt.Fprintf(env.Stdout, "%s %s can gain %s (%s)\n", sev, esc(c.Role), esc(c.Gains), esc(string(c.Kind)))
				for i, s := range c.Steps {
					fmt.Fprintf(env.Stdout, "  %d. %s: %s\n", i+1, esc(s.What), esc(s.Evidence))
				}
				fmt.Fprintf(env.Stdout, "  fix: %s\n", esc(rules.ChainFix(c)))
			}
		}
		if len(chains) > 0 {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	return cmd
}

func accessPolicyCheckCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check FILE.yaml [connection options | --snapshot S]",
		Short: "compare the server with a policy file and print the SQL that closes the differences",
		Long: `Compare the server with a policy file (the format of docs/policy.md, or
the older database/schemas/grants/exclusive one) through the same diff as
policy plan: one line per grantee and object that differs, then the plan's
SQL. With --snapshot the older format is checked against a snapshot's grants.
Exit 1 while the server differs.`,
		Example: `  pgaegis access policy check policy.yaml -h db.example.com -U auditor --format json
  pgaegis access policy check old-policy.yaml --snapshot snap.json`,
	}
	var f policyDiffFlags
	f.register(cmd)
	snapPath := cmd.Flags().String("snapshot", "", "check an older-format policy against a snapshot written by pgaegis collect")
	format := cmd.Flags().String("format", "text", "text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.MarkFlagFilename("snapshot", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, files []string) (int, error) {
		if len(files) != 1 {
			return ExitError, usagef("give one policy file")
		}
		if *format != "text" && *format != "json" {
			return ExitError, usagef("--format %q: want text or json", *format)
		}
		var diffs []policy.Difference
		var sql []string
		var notes []policy.Note
		if *snapPath != "" {
			p, err := privileges.LoadPolicy(files[0])
			if err != nil {
				return ExitError, fmt.Errorf("with --snapshot only the older policy format (database/schemas/grants/exclusive) is checked: %w", err)
			}
			snap, err := snapshot.Read(*snapPath)
			if err != nil {
				return ExitError, err
			}
			pd, psql := privileges.CheckPolicy(p, snap)
			for _, d := range pd {
				diffs = append(diffs, policy.Difference(d))
			}
			sql = psql
		} else {
			p, n, d, err := f.detail(ctx, env, files[0])
			if err != nil {
				return ExitError, err
			}
			diffs, notes = d, n
			for _, st := range policy.MaskVerifiers(p).Steps {
				for _, q := range st.SQL {
					sql = append(sql, q+";    -- database "+quote.Ident(st.Database))
				}
			}
		}
		if *format == "json" {
			if diffs == nil {
				diffs = []policy.Difference{}
			}
			if sql == nil {
				sql = []string{}
			}
			if err := writeJSON(env, map[string]any{"differences": diffs, "sql": sql, "notes": nonNilNotes(notes)}); err != nil {
				return ExitError, err
			}
		} else {
			env = textEnv(env) // the SQL lines are code: the writer escapes them, keeping backslashes
			if len(sql) == 0 {
				fmt.Fprintln(env.Stdout, "the server matches the policy")
			}
			for _, d := range diffs {
				var parts []string
				if d.Missing != "" {
					parts = append(parts, "missing "+esc(d.Missing))
				}
				if d.Extra != "" {
					parts = append(parts, "extra "+esc(d.Extra))
				}
				fmt.Fprintf(env.Stdout, "%s %s %s: %s\n", esc(d.Database), esc(d.Object), esc(d.Role), strings.Join(parts, "; "))
			}
			if len(sql) > 0 {
				fmt.Fprintln(env.Stdout, "\n-- to close the differences:")
				for _, s := range sql {
					fmt.Fprintln(env.Stdout, s)
				}
			}
			writeNotes(env.Stdout, notes)
		}
		if len(sql) > 0 {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	return cmd
}
