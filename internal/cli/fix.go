package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/apply"
	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

var fixFormats = []string{"text", "json", "sql", "sh"}

// applyFlags are shared by fix --apply and fix rollback.
type applyFlags struct {
	journalDir string
	noRestart  bool
	restartCmd string
}

func (a *applyFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&a.journalDir, "journal-dir", "", "directory of plan journals, private to you (default $XDG_STATE_HOME/pgaegis/plans, else ~/.local/state/pgaegis/plans)")
	fs.BoolVar(&a.noRestart, "no-restart", false, "do not restart the server: restart-needing steps stay pending")
	fs.StringVar(&a.restartCmd, "restart-command", "", "command that restarts the server, split at blanks (default: pg_ctl restart as the data directory's owner)")
	cmd.MarkFlagDirname("journal-dir")
}

func (a *applyFlags) options() apply.Options {
	return apply.Options{JournalRoot: a.journalDir, NoRestart: a.noRestart, RestartCommand: strings.Fields(a.restartCmd)}
}

func fixCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fix [connection options] [--pgdata DIR] [--only RULE...] [--format text|json|sql|sh] [--apply [--yes]]",
		Short: "plan the fixes of the failing findings as one ordered plan, and apply it safely",
		Long: `Plan the fixes of the failing findings: one plan, merged across rules and
ordered so that each step is safe when it runs (pg_hba.conf rewritten
whole, settings merged, SQL grouped per database, file modes). Each step
names the findings it closes, whether it needs a reload or a restart, what
it can break and what must run first.

Without --apply the plan is printed (text, JSON, or a psql or sh script
for review). With --apply it is run: everything it changes is journalled
first, the candidate configuration is proven (the lockout guard keeps the
current connection and every --keep path open), and after the reload the
changed rules are audited again over a fresh connection; on any failure
the journal is restored. 'pgaegis fix rollback PLAN-ID' undoes a plan.

Exit codes: 0 nothing to change, or applied and verified; 1 the plan has
steps (without --apply); 2 an error, a refusal or a rollback.`,
		Example: `  sudo -u postgres pgaegis fix
  pgaegis fix --pgdata /var/lib/postgresql/15/main --format sh -o fix.sh
  pgaegis fix -h db.example.com -U postgres --only AUTH-01,AUTH-05 --format sql
  sudo -u postgres pgaegis fix --min-severity high --apply --yes --keep "replicator@replication from 10.0.0.7 ssl"
  pgaegis fix history`,
		Args: noArgs,
	}
	var src sourceFlags
	src.register(cmd)
	var af applyFlags
	af.register(cmd)
	fs := cmd.Flags()
	only := fs.StringSlice("only", nil, "plan only the findings of these rules (repeatable or comma-separated; AUTH-11 includes AUTH-11.*)")
	exclude := fs.StringSlice("exclude", nil, "leave out the findings of these rules")
	minSev := fs.String("min-severity", "info", "leave out findings below this severity (critical, high, medium, low, info)")
	profile := fs.String("profile", "all", "rules to plan for: "+rules.ProfileNames())
	format := fs.String("format", "text", "plan format: text, json, sql (a psql script) or sh (a POSIX sh script)")
	out := fs.StringP("output", "o", "", "write the plan to this file instead of stdout")
	doApply := fs.Bool("apply", false, "apply the plan (journal, prove, change, verify, roll back on failure)")
	yes := fs.BoolP("yes", "y", false, "apply without asking (needed when standard input is not a terminal)")
	interactive := fs.BoolP("interactive", "i", false, "list the steps and read from standard input which to keep")
	keep := fs.StringArray("keep", nil, `a connection the change must not lock out: "ROLE@DB from ADDR [ssl]" or "ROLE@DB local" (repeatable)`)
	completeValues(cmd, "format", fixFormats...)
	completeValues(cmd, "min-severity", severityNames...)
	completeValues(cmd, "profile", profileNames()...)
	cmd.MarkFlagDirname("pgdata")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		sev, err := rules.ParseSeverity(*minSev)
		if err != nil {
			return ExitError, usageError{"--min-severity: " + err.Error()}
		}
		switch *format {
		case "text", "json", "sql", "sh":
		default:
			return ExitError, usagef("unknown --format %q (text, json, sql or sh)", *format)
		}
		if _, err := rules.Select(*profile); err != nil {
			return ExitError, usageError{err.Error()}
		}
		onlyIDs, err := ruleIDs("--only", *only)
		if err != nil {
			return ExitError, err
		}
		excludeIDs, err := ruleIDs("--exclude", *exclude)
		if err != nil {
			return ExitError, err
		}
		if *yes && !*doApply {
			return ExitError, usagef("--yes only means something with --apply")
		}
		var keeps []apply.Path
		for _, k := range *keep {
			p, err := apply.ParsePath(k)
			if err != nil {
				return ExitError, usagef("--keep %q: %v", k, err)
			}
			keeps = append(keeps, p)
		}
		if *doApply && !*yes && !*interactive && !stdinTerminal(env) {
			return ExitError, usagef("--apply changes the server: standard input is not a terminal to ask on, so give --yes (after reviewing the plan without --apply)")
		}
		cfg, err := src.connConfig(env)
		if err != nil {
			return ExitError, err
		}
		if *doApply && cfg == nil {
			return ExitError, usagef("--apply needs a connection to the server (it validates, reloads and verifies through it): give connection options besides --pgdata, or write a script with --format sh")
		}
		audit := func(ctx context.Context) (*snapshot.Snapshot, []rules.Finding, error) {
			snap, err := gatherWith(ctx, env, &src, cfg)
			if err != nil {
				return nil, nil, err
			}
			findings, err := rules.RunProfile(snap, *profile)
			return snap, findings, err
		}
		snap, findings, err := audit(ctx)
		if err != nil {
			return ExitError, err
		}
		res := fix.Build(snap, findings, fix.Options{Only: onlyIDs, Exclude: excludeIDs, MinSeverity: sev, Target: snap.Target.Description})
		p := res.Plan
		if *interactive && !p.Empty() {
			if p, err = selectSteps(env, p); err != nil {
				return ExitError, err
			}
		}

		o, err := openOutput(env, *out)
		if err != nil {
			return ExitError, err
		}
		if err := writePlan(o.w, p, *format); err != nil {
			o.abort()
			return ExitError, err
		}
		if err := o.commit(); err != nil {
			return ExitError, err
		}
		if len(snap.Errors) > 0 {
			// A plan from a partial view may miss what it could not see, and
			// a re-audit could not prove it: say so, and never apply it.
			err := incompleteError("some reads failed, so the plan may be incomplete (see pgaegis audit)", snap.Errors)
			if *doApply {
				return ExitError, fmt.Errorf("--apply refused: %v", err)
			}
			fmt.Fprintf(env.Stderr, "pgaegis fix: warning: %s\n", textsafe.Code(err.Error()))
		}
		if !*doApply {
			if p.Empty() {
				return ExitOK, nil
			}
			return ExitFindings, nil
		}
		if p.Empty() {
			fmt.Fprintln(env.Stderr, "pgaegis fix: nothing to apply")
			return ExitOK, nil
		}
		if !*yes {
			if *format != "text" || *out != "" {
				plan.WriteText(env.Stderr, p)
			}
			ok, err := confirm(env, fmt.Sprintf("apply plan %s (%d step(s)) to %s? [y/N] ", p.ID, len(p.Steps), p.Target))
			if err != nil {
				return ExitError, err
			}
			if !ok {
				fmt.Fprintln(env.Stderr, "pgaegis fix: not applied")
				return ExitError, nil
			}
		}
		ao := af.options()
		// The superuser applying the plan must not run a login trigger's
		// code either (17+): every connection of the apply goes without.
		ao.Conn, ao.Keep, ao.Before = collect.WithoutEventTriggers(ctx, cfg), keeps, failing(findings)
		ao.ReAudit = func(ctx context.Context) ([]plan.FindingRef, error) {
			_, f, err := audit(ctx)
			if err != nil {
				return nil, err
			}
			return failing(fix.Verifiable(findings, f)), nil
		}
		if isTerminal(env.Stderr) {
			ao.Progress = env.Stderr
		}
		ao.RunCommand = func(ctx context.Context, argv []string) error { return runPlanCommand(argv) }
		r, err := apply.Apply(ctx, p, ao)
		return applyOutcome(env, "applied", r, err)
	})
	cmd.AddCommand(fixRollbackCmd(env), fixHistoryCmd(env))
	return cmd
}

func writePlan(w io.Writer, p *plan.Plan, format string) error {
	switch format {
	case "json":
		return plan.WriteJSON(w, p)
	case "sql":
		return plan.WriteSQL(w, p)
	case "sh":
		return plan.WriteShell(w, p)
	}
	return plan.WriteText(w, p)
}

// ruleIDs splits and checks rule ids, so that a typo is an error rather
// than a plan that silently holds nothing.
func ruleIDs(flag string, vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			if !knownRule(id) {
				return nil, usagef("%s: unknown rule %q (see pgaegis rules)", flag, id)
			}
			out = append(out, id)
		}
	}
	return out, nil
}

func knownRule(id string) bool {
	for _, r := range rules.All() {
		if strings.EqualFold(r.ID, id) || len(r.ID) > len(id) && strings.EqualFold(r.ID[:len(id)], id) && r.ID[len(id)] == '.' {
			return true
		}
	}
	return false
}

// failing names the failing findings, for apply's before/after check.
func failing(findings []rules.Finding) []plan.FindingRef {
	var out []plan.FindingRef
	for _, f := range findings {
		if f.Status == rules.Fail {
			out = append(out, plan.FindingRef{Rule: f.Rule, Object: f.Object, Severity: f.Severity.String()})
		}
	}
	return out
}

// confirm asks on stderr and reads one answer from stdin.
func confirm(env *Env, question string) (bool, error) {
	fmt.Fprint(env.Stderr, textsafe.String(question))
	line, err := readLine(env)
	if err != nil {
		return false, err
	}
	a := strings.ToLower(line)
	return a == "y" || a == "yes", nil
}

// selectSteps lists the steps and keeps those the user names ("1 3-5",
// "all", or empty for all). A step whose prerequisite is left out is
// left out too; what is left out is held, with why.
func selectSteps(env *Env, p *plan.Plan) (*plan.Plan, error) {
	fmt.Fprintf(env.Stderr, "plan %s: %d step(s)\n", p.ID, len(p.Steps))
	for _, s := range p.Steps {
		fmt.Fprintf(env.Stderr, "  %3s  %s\n", s.ID, textsafe.String(s.Summary))
	}
	fmt.Fprint(env.Stderr, "steps to keep (e.g. 1 3-5; all; none) [all]: ")
	line, err := readLine(env)
	if err != nil {
		return nil, fmt.Errorf("--interactive: %v", err)
	}
	keep, err := parseSelection(line, p)
	if err != nil {
		return nil, usageError{"--interactive: " + err.Error()}
	}
	q := *p
	q.Steps, q.Held = nil, append([]plan.Held{}, p.Held...)
	for _, s := range p.Steps {
		why := ""
		if !keep[s.ID] {
			why = "not selected"
		}
		for _, a := range s.After {
			if why == "" && !keep[a] {
				why = "needs step " + a + ", which was not selected"
			}
		}
		if why != "" {
			keep[s.ID] = false
			for _, c := range s.Closes {
				q.Held = append(q.Held, plan.Held{FindingRef: c, Why: why})
			}
			continue
		}
		q.Steps = append(q.Steps, s)
	}
	return &q, nil
}

func parseSelection(s string, p *plan.Plan) (map[string]bool, error) {
	keep := map[string]bool{}
	ids := map[string]bool{}
	for _, st := range p.Steps {
		ids[st.ID] = true
	}
	switch strings.ToLower(s) {
	case "", "all":
		for id := range ids {
			keep[id] = true
		}
		return keep, nil
	case "none":
		return keep, nil
	}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		lo, hi, isRange := strings.Cut(w, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a {
			return nil, fmt.Errorf("%q is not a step number or range", w)
		}
		for n := a; n <= b; n++ {
			id := strconv.Itoa(n)
			if !ids[id] {
				return nil, fmt.Errorf("no step %d in the plan", n)
			}
			keep[id] = true
		}
	}
	return keep, nil
}

// applyOutcome reports an apply or rollback and picks the exit code.
func applyOutcome(env *Env, verb string, r *apply.Result, err error) (int, error) {
	if r != nil {
		switch {
		case r.RolledBack:
			fmt.Fprintf(env.Stderr, "pgaegis fix: plan %s rolled back: %s (journal %s)\n", r.PlanID, textsafe.String(r.Problem), textsafe.String(r.JournalDir))
		case r.Failed:
			fmt.Fprintf(env.Stderr, "pgaegis fix: plan %s FAILED and was not fully restored: %s; restore by hand from the journal %s\n", r.PlanID, textsafe.String(r.Problem), textsafe.String(r.JournalDir))
		case r.Problem != "":
			fmt.Fprintf(env.Stderr, "pgaegis fix: plan %s refused, nothing changed: %s\n", r.PlanID, textsafe.String(r.Problem))
		case err == nil:
			what := []string{fmt.Sprintf("steps %s", strings.Join(r.Applied, ", "))}
			if r.Reloaded {
				what = append(what, "reloaded")
			}
			if r.Restarted {
				what = append(what, "restarted")
			}
			fmt.Fprintf(env.Stdout, "plan %s %s and verified (%s) in %s; journal %s\n", r.PlanID, verb, strings.Join(what, ", "),
				r.Took.Round(time.Millisecond), textsafe.String(r.JournalDir))
			if len(r.Pending) > 0 {
				fmt.Fprintf(env.Stdout, "pending until the server restarts: step %s\n", strings.Join(r.Pending, ", "))
			}
		}
	}
	// Said above already: the error again (and a connection hint read
	// into its words) would only repeat it.
	if r != nil && (r.RolledBack || r.Failed || r.Problem != "") {
		return ExitError, nil
	}
	if err != nil {
		return ExitError, err
	}
	return ExitOK, nil
}

func fixRollbackCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback PLAN-ID [connection options]",
		Short: "restore everything a plan changed, from its journal",
		Long: `Restore everything plan PLAN-ID changed, from its journal: pg_hba.conf and
postgresql.auto.conf byte for byte (with their owner and mode), the SQL
undone in reverse, file modes; then reload, or restart when the plan did.
It refuses when a file changed since the apply, when the plan was rolled
back already, and when the journal is not private to you.

Exit codes: 0 rolled back; 2 an error or a refusal (nothing restored).`,
		Example: `  sudo -u postgres pgaegis fix rollback 20261201-231500-3f2a
  pgaegis fix history`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("fix rollback needs one plan id (see pgaegis fix history)")
			}
			return nil
		},
	}
	var conn connFlags
	conn.register(cmd)
	var af applyFlags
	af.register(cmd)
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		o := af.options()
		o.Conn = collect.WithoutEventTriggers(ctx, cfg)
		if isTerminal(env.Stderr) {
			o.Progress = env.Stderr
		}
		r, err := apply.Rollback(ctx, args[0], o)
		if err == nil && r != nil && r.Problem == "" {
			fmt.Fprintf(env.Stdout, "plan %s rolled back in %s\n", r.PlanID, r.Took.Round(time.Millisecond))
			return ExitOK, nil
		}
		return applyOutcome(env, "rolled back", r, err)
	})
	return cmd
}

func fixHistoryCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history [--journal-dir DIR] [--format text|json]",
		Short: "list the plans in the journal, newest first",
		Example: `  pgaegis fix history
  pgaegis fix history --format json --journal-dir /var/lib/pgaegis/plans`,
		Args: noArgs,
	}
	dir := cmd.Flags().String("journal-dir", "", "directory of plan journals, private to you (default $XDG_STATE_HOME/pgaegis/plans, else ~/.local/state/pgaegis/plans)")
	format := cmd.Flags().String("format", "text", "text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.MarkFlagDirname("journal-dir")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		root := *dir
		if root == "" {
			root = apply.DefaultJournalRoot()
		}
		entries, err := apply.History(root)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return ExitError, err
		}
		if *format == "json" {
			if entries == nil {
				entries = []apply.Entry{}
			}
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return ExitOK, enc.Encode(entries)
		}
		if len(entries) == 0 {
			fmt.Fprintf(env.Stdout, "no plans in %s\n", textsafe.String(root))
			return ExitOK, nil
		}
		for _, e := range entries {
			line := fmt.Sprintf("%s  %s  %-11s %2d step(s)  %s", e.ID, e.Created.Local().Format("2006-01-02 15:04:05"), e.State, e.Steps, e.Target)
			if !e.RolledBack.IsZero() {
				line += "  (rolled back " + e.RolledBack.Local().Format("2006-01-02 15:04:05") + ")"
			}
			fmt.Fprintln(env.Stdout, textsafe.String(line))
		}
		return ExitOK, nil
	})
	return cmd
}

// stdinTerminal reports whether prompts can be answered by a person.
func stdinTerminal(env *Env) bool {
	f, ok := env.Stdin.(*os.File)
	return ok && isTerminal(f)
}

// readLine reads one answer; one buffered reader serves every prompt of a
// run, so an answer typed ahead is not lost between prompts.
func readLine(env *Env) (string, error) {
	if env.in == nil {
		if env.Stdin == nil {
			return "", errors.New("no standard input")
		}
		env.in = bufio.NewReader(env.Stdin)
	}
	line, err := env.in.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("no answer on standard input: %v", err)
	}
	return strings.TrimSpace(line), nil
}

// runPlanCommand runs a command step of a plan in this process. Only the
// commands the planner emits may run: a plan is data, and a step must not
// become a way to run anything else.
func runPlanCommand(argv []string) error {
	if len(argv) < 3 || argv[0] != "tls" || argv[1] != "issue" || argv[2] != "server" {
		return fmt.Errorf("a plan may only run 'pgaegis tls issue server', not %q", strings.Join(argv, " "))
	}
	var out bytes.Buffer
	// Its suggestions are for a person issuing by hand; the plan already
	// holds the settings that follow, so they are shown only on failure.
	if code := MainInput(argv, strings.NewReader(""), &out, &out); code != ExitOK {
		return fmt.Errorf("pgaegis %s (exit %d):\n%s", strings.Join(argv, " "), code, strings.TrimSpace(out.String()))
	}
	return nil
}
