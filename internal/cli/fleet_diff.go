package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/drift"
	"github.com/pgaegis/pgaegis/internal/fleetreport"
	"github.com/pgaegis/pgaegis/internal/store"
)

func fleetDiffCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff SERVER [--since 7d | --scan A --scan B] [--store URL]",
		Short: "what changed on a server between two scans: findings, settings, roles, grants, pg_hba.conf, certificate",
		Long: `Compare two stored scans of one server (both must have reached it):
findings new and fixed (by rule and object), settings changed (with the
file and line of each value), roles added, removed or changed (superuser,
createrole, login, ...), grants added or removed, pg_hba.conf lines added
or removed, and changes to the server certificate.

By default the server's two latest reached scans; --since 7d compares the
latest with the last reached scan at least 7 days older than now; --scan
twice names the two scans by id (older first). 'fleet report --format
json' and the store list scan ids.

Exit codes: 0 nothing changed, 1 something changed, 2 an error.`,
		Example: `  pgaegis fleet diff billing-primary
  pgaegis fleet diff billing-primary --since 7d --format markdown -o drift.md
  pgaegis fleet diff billing-primary --scan 41 --scan 57 --format json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("fleet diff takes one server name (the inventory's)")
			}
			return nil
		},
	}
	openStore := storeFlag(cmd, false)
	since := cmd.Flags().String("since", "", "compare the latest scan with the last one at least this old (7d, 36h)")
	ids := cmd.Flags().Int64Slice("scan", nil, "a scan id; give two (older, newer)")
	format, out := formatFlags(cmd)
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		f, err := fleetreport.CheckFormat(*format)
		if err != nil {
			return ExitError, usageError{err.Error()}
		}
		if *since != "" && len(*ids) > 0 {
			return ExitError, usagef("--since and --scan choose the scans two ways: give one")
		}
		if len(*ids) != 0 && len(*ids) != 2 {
			return ExitError, usagef("--scan: give two scan ids (older, newer), not %d", len(*ids))
		}
		var age time.Duration
		if *since != "" {
			if age, err = parseAge("since", *since); err != nil {
				return ExitError, err
			}
		}
		st, err := openStore(ctx)
		if err != nil {
			return ExitError, err
		}
		defer st.Close()
		from, to, err := diffPair(ctx, st, env.Stderr, args[0], *ids, age)
		if err != nil {
			return ExitError, err
		}
		d := drift.Compare(from, to)
		if err := writeDoc(env, *out, func(o *output) error { return fleetreport.WriteDiff(o.w, f, d) }); err != nil {
			return ExitError, err
		}
		if d.Empty() {
			return ExitOK, nil
		}
		return ExitFindings, nil
	})
	return cmd
}

// diffPair loads the two scans to compare, older first.
// note receives what the reader should know about the choice.
func diffPair(ctx context.Context, st store.Store, note io.Writer, server string, ids []int64, age time.Duration) (from, to *store.ScanRecord, err error) {
	notFound := func(err error) error {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no scans of server %q in the store", server)
		}
		return err
	}
	var a, b int64
	switch {
	case len(ids) == 2:
		a, b = ids[0], ids[1]
	case age > 0:
		latest, err := st.LatestScans(ctx, server, 1)
		if err != nil {
			return nil, nil, notFound(err)
		}
		if len(latest) == 0 {
			return nil, nil, fmt.Errorf("no scan of %s reached the server", server)
		}
		cut := time.Now().Add(-age)
		old, err := st.Scans(ctx, server, time.Time{}, cut)
		if err != nil {
			return nil, nil, err
		}
		for i := len(old) - 1; i >= 0; i-- {
			if old[i].Status == store.OK {
				a = old[i].ID
				break
			}
		}
		if a == 0 {
			// Younger than --since: the oldest reached scan is the nearest
			// to what was asked, and the note says so.
			all, err := st.Scans(ctx, server, time.Time{}, time.Time{})
			if err != nil {
				return nil, nil, err
			}
			for _, s := range all {
				if s.Status == store.OK {
					a = s.ID
					fmt.Fprintf(note, "no scan of %s that reached it is older than %s: comparing with its oldest, scan %d (%s)\n",
						server, ageString(age), s.ID, s.StartedAt.UTC().Format(time.RFC3339))
					break
				}
			}
			if a == latest[0].ID {
				return nil, nil, fmt.Errorf("%s has one scan that reached it: a diff needs two (run 'pgaegis fleet scan' again)", server)
			}
		}
		b = latest[0].ID
	default:
		pair, err := st.LatestScans(ctx, server, 2)
		if err != nil {
			return nil, nil, notFound(err)
		}
		if len(pair) < 2 {
			return nil, nil, fmt.Errorf("%s has %d scan(s) that reached it: a diff needs two (run 'pgaegis fleet scan' again)", server, len(pair))
		}
		a, b = pair[1].ID, pair[0].ID
	}
	if from, err = st.LoadScan(ctx, a); err != nil {
		return nil, nil, err
	}
	if to, err = st.LoadScan(ctx, b); err != nil {
		return nil, nil, err
	}
	for _, r := range []*store.ScanRecord{from, to} {
		if r.Server != server {
			return nil, nil, usagef("scan %d is of server %q, not %q", r.ID, r.Server, server)
		}
		if r.Status != store.OK {
			return nil, nil, fmt.Errorf("scan %d did not reach %s (%s: %s): nothing to compare", r.ID, server, r.Status, r.Message)
		}
	}
	// Given newer first, the diff would read backwards (an added line as
	// removed): compare in time order and say so.
	if to.StartedAt.Before(from.StartedAt) {
		fmt.Fprintf(note, "scan %d is older than scan %d: showing the change from %d to %d\n", to.ID, from.ID, to.ID, from.ID)
		from, to = to, from
	}
	return from, to, nil
}

// ageString prints whole days as days (7d), the rest as Go does.
func ageString(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
