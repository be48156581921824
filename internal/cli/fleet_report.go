package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/fleetreport"
)

func fleetReportCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report [--older-than 30d] [--since 90d | --from DATE --to DATE] [--store URL]",
		Short: "the fleet from the store: worst servers, common failures, old findings, controls that held, unreachable servers",
		Long: `Report across the fleet from the store: the worst servers (lowest
score of their latest reached scan, the dashboard's score), the most
common failing rules, findings open longer than --older-than, the controls
that passed on every reached scan of every server in the period (evidence
for an auditor; scans that did not reach their server are counted, since
nothing is proven for their time), and servers whose latest scan did not
reach them.

The period is --since (default 90d, ending now) or --from/--to;
--no-evidence leaves out the controls that held.`,
		Example: `  pgaegis fleet report
  pgaegis fleet report --older-than 14d --format markdown -o fleet.md
  pgaegis fleet report --from 2026-07-01 --to 2026-10-01 --format html -o q3-evidence.html`,
		Args: noArgs,
	}
	openStore := storeFlag(cmd, false)
	fs := cmd.Flags()
	older := fs.String("older-than", "30d", "list findings open longer than this")
	since := fs.String("since", "", "the evidence period: this long before now (default 90d)")
	from := fs.String("from", "", "the evidence period's start (2026-07-01 or RFC 3339)")
	to := fs.String("to", "", "the evidence period's end, exclusive (default now)")
	limit := fs.Int("limit", 20, "servers and rules listed in the worst-servers and common-failures tables")
	noEvidence := fs.Bool("no-evidence", false, "leave out the controls-that-held table")
	format, out := formatFlags(cmd)
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		f, err := fleetreport.CheckFormat(*format)
		if err != nil {
			return ExitError, usageError{err.Error()}
		}
		o := fleetreport.Options{Now: time.Now(), Limit: *limit, NoEvidence: *noEvidence}
		if *limit <= 0 {
			return ExitError, usagef("--limit must be positive")
		}
		if o.OlderThan, err = parseAge("older-than", *older); err != nil {
			return ExitError, err
		}
		if *since != "" && (*from != "" || *to != "") {
			return ExitError, usagef("--since and --from/--to choose the period two ways: give one")
		}
		if *since != "" {
			age, err := parseAge("since", *since)
			if err != nil {
				return ExitError, err
			}
			o.From = o.Now.Add(-age)
		}
		if *from != "" {
			if o.From, err = timeFlag("from", *from); err != nil {
				return ExitError, err
			}
		}
		if *to != "" {
			if o.To, err = timeFlag("to", *to); err != nil {
				return ExitError, err
			}
		}
		if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
			return ExitError, usagef("--from must be before --to")
		}
		st, err := openStore(ctx)
		if err != nil {
			return ExitError, err
		}
		defer st.Close()
		rep, err := fleetreport.Build(ctx, st, o)
		if err != nil {
			return ExitError, err
		}
		if err := writeDoc(env, *out, func(o *output) error { return fleetreport.WriteReport(o.w, f, rep) }); err != nil {
			return ExitError, err
		}
		return ExitOK, nil
	})
	return cmd
}
