package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/rlstest"
)

func policyTestCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test FILE.yaml [connection options] [--format text|json]",
		Short: "prove the file's row-level security by behaviour: run its rls tests as each role, rolled back",
		Long: `Runs every rls test of a policy file on the server: for each, in a
transaction that is always rolled back, the expected rows (sees) are read
without row-level security as the connecting role, then SET ROLE to the
test's role, its settings are set with SET LOCAL, and the rows it sees are
compared with the expected ones; each insert, update and delete runs in a
savepoint and must be allowed or denied as the file says. Only row-level
security counts as denied: a policy refusing the row ("violates
row-level security policy"), or an UPDATE or DELETE changing no row. A
write refused by privileges ("permission denied for sequence ...") says
nothing about the policies: the test fails as inconclusive, whatever it
expected. Rows are named by primary key (ctid without one), never shown
whole.

The connecting role must be able to read the tables without RLS (a
superuser, a role with BYPASSRLS, or the owner of a table whose RLS is not
forced) and to SET ROLE to each test's role. The file's policies are also
linted: current_setting without missing_ok, a permissive USING (true)
beside narrower policies, an owner that bypasses RLS.

Exit status: 0 every test passed, 1 a test failed, 2 an error, or a test
that could not run (a role or table that does not exist, a read the
server refused): such a test is reported with its error, not counted as
failed.`,
		Example: `  pgaegis access policy test policy.yaml -h db.example.com -U postgres
  pgaegis access policy test policy.yaml -d appdb --format json`,
	}
	var conn connFlags
	conn.register(cmd)
	format := cmd.Flags().String("format", "text", "text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, files []string) (int, error) {
		if len(files) != 1 {
			return ExitError, usagef("give one policy file")
		}
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		f, err := policy.Load(files[0])
		if err != nil {
			return ExitError, err
		}
		// Expressions are refused before anything connects.
		if err := rlstest.Validate(f); err != nil {
			return ExitError, err
		}
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		notes := rlstest.Lint(f)
		rep, err := rlstest.Run(ctx, cfg, f, rlstest.Options{})
		if err != nil {
			return ExitError, err
		}
		if *format == "json" {
			if err := writeJSON(env, map[string]any{"tests": rep.Tests, "notes": notes, "failed": rep.Failed() - rep.Errored(), "errored": rep.Errored()}); err != nil {
				return ExitError, err
			}
		} else {
			writeRLSTestText(textEnv(env), rep, notes)
		}
		if rep.Errored() > 0 {
			return ExitError, nil
		}
		if rep.Failed() > 0 {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	return cmd
}

func writeRLSTestText(env *Env, rep *rlstest.Report, notes []policy.Note) {
	w := env.Stdout
	for _, n := range notes {
		fmt.Fprintf(w, "%s: %s: %s\n", esc(n.Level), esc(n.Object), esc(n.Text))
	}
	if len(rep.Tests) == 0 {
		fmt.Fprintln(w, "no rls tests in the file")
		return
	}
	for _, r := range rep.Tests {
		verdict := "PASS"
		switch {
		case len(r.Errors) > 0:
			verdict = "ERROR"
		case !r.Passed:
			verdict = "FAIL"
		}
		var set []string
		for _, k := range slices.Sorted(maps.Keys(r.Set)) {
			set = append(set, esc(k)+"="+esc(r.Set[k]))
		}
		with := ""
		if len(set) > 0 {
			with = " with " + strings.Join(set, ", ")
		}
		counts := ""
		if r.Compared {
			counts = fmt.Sprintf(" (%d rows expected, %d visible)", r.Expected, r.Visible)
		}
		fmt.Fprintf(w, "%s %s.%s.%s test %s: as %s%s%s\n", verdict, esc(r.Database), esc(r.Schema), esc(r.Table), esc(r.Test), esc(r.As), with, counts)
		if r.Leaks > 0 {
			fmt.Fprintf(w, "  leak: %d visible rows do not match sees: %s\n", r.Leaks, strings.Join(escAll(r.LeakKeys), ", "))
		}
		if r.Hidden > 0 {
			fmt.Fprintf(w, "  hidden: %d rows matching sees are not visible: %s\n", r.Hidden, strings.Join(escAll(r.HiddenKeys), ", "))
		}
		for _, h := range r.Hints {
			fmt.Fprintf(w, "  why: %s\n", esc(h))
		}
		for _, x := range r.Writes {
			if x.OK {
				continue
			}
			what := "should be " + x.Expect
			switch {
			case x.Got == "error":
				what = "failed with an error"
			case x.Got == "privileges":
				what = "is inconclusive (expected " + x.Expect + ")"
			case x.Expect == "denied":
				what = "passed but should be denied"
			case x.Expect == "allowed":
				what = "was denied but should be allowed"
			}
			fmt.Fprintf(w, "  %s #%d %s", x.Command, x.Index, what)
			if x.Detail != "" {
				fmt.Fprintf(w, ": %s", esc(x.Detail))
			}
			fmt.Fprintln(w)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  error: %s\n", esc(e))
		}
	}
	fmt.Fprintf(w, "%d of %d tests passed", len(rep.Tests)-rep.Failed(), len(rep.Tests))
	if n := rep.Errored(); n > 0 {
		fmt.Fprintf(w, ", %d could not run", n)
	}
	fmt.Fprintln(w)
}
