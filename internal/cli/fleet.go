package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/fleetreport"
	"github.com/pgaegis/pgaegis/internal/store"
)

// Where the fleet commands find their inventory and store when not told.
const (
	inventoryEnv     = "PGAEGIS_INVENTORY"
	defaultInventory = "pgaegis-inventory.yaml"
	storeEnv         = "PGAEGIS_STORE"
)

// fleetSubcommands are the fleet command's children, one constructor
// each: a new subcommand (worker, schedule) is one more entry.
var fleetSubcommands = []func(*Env) *cobra.Command{fleetScanCmd, fleetDiffCmd, fleetReportCmd, fleetWorkerCmd, fleetScheduleCmd, fleetEnqueueCmd}

func fleetCmd(env *Env) *cobra.Command {
	var subs []*cobra.Command
	for _, mk := range fleetSubcommands {
		subs = append(subs, mk(env))
	}
	c := groupCmd(env, "fleet", "scan many servers into a store; drift between scans; the fleet's report; shared workers (see docs/fleet.md)",
		"  pgaegis fleet scan --inventory fleet.yaml\n  pgaegis fleet diff billing-primary --since 7d\n  pgaegis fleet report --format html -o fleet.html", subs...)
	c.Long = `Scan every server of an inventory (docs/inventory.md) into a store
(docs/store.md): SQLite by default, PostgreSQL for a team. Then compare a
server's scans (fleet diff) and report across the fleet (fleet report).

The store is --store, else $` + storeEnv + `, else the SQLite file
$XDG_STATE_HOME/pgaegis/fleet.db (~/.local/state/pgaegis/fleet.db).
The inventory is --inventory, else $` + inventoryEnv + `, else
./` + defaultInventory + `.`
	return c
}

// defaultStore is the SQLite file used when neither --store nor
// PGAEGIS_STORE names a store.
func defaultStore() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no --store, no %s and no home directory for the default store: give --store", storeEnv)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "pgaegis", "fleet.db"), nil
}

// storeFlag registers --store and returns an opener for the store it
// names.
func storeFlag(cmd *cobra.Command, create bool) func(ctx context.Context) (store.Store, error) {
	url := cmd.Flags().String("store", "", storeFlagHelp)
	return func(ctx context.Context) (store.Store, error) { return openStoreURL(ctx, *url, create) }
}

const storeFlagHelp = "the store: a SQLite file, sqlite://PATH or postgres://… (default $" + storeEnv + ", else $XDG_STATE_HOME/pgaegis/fleet.db)"

// openStoreURL opens the store --store names, else $PGAEGIS_STORE, else
// the default SQLite file (its directory made 0700). Only the commands
// that write scans create a missing store; the others refuse it, so that
// a mistyped --store is an error rather than an empty, all-clear fleet.
func openStoreURL(ctx context.Context, u string, create bool) (store.Store, error) {
	if u == "" {
		u = os.Getenv(storeEnv)
	}
	if u == "" {
		p, err := defaultStore()
		if err != nil {
			return nil, err
		}
		// Private: the store describes every server's weaknesses.
		if !create {
			return store.OpenExisting(ctx, p)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, fmt.Errorf("the default store's directory: %w", err)
		}
		u = p
	}
	if !create {
		return store.OpenExisting(ctx, u)
	}
	return store.Open(ctx, u)
}

// formatFlags registers --format and -o for the fleet documents.
func formatFlags(cmd *cobra.Command) (format, out *string) {
	format = cmd.Flags().String("format", "text", "text, json, html or markdown")
	out = cmd.Flags().StringP("output", "o", "", "write to this file instead of stdout")
	completeValues(cmd, "format", fleetreport.Formats...)
	return format, out
}

// writeDoc writes a rendered document to -o (atomically) or stdout.
func writeDoc(env *Env, path string, fn func(o *output) error) error {
	o, err := openOutput(env, path)
	if err != nil {
		return err
	}
	if err := fn(o); err != nil {
		o.abort()
		return err
	}
	return o.commit()
}

// timeFlag reads --from/--to with the logs command's parser (RFC 3339
// or a date, UTC).
func timeFlag(flag, s string) (time.Time, error) {
	t, err := parseWhen(s)
	if err != nil {
		return time.Time{}, usagef("--%s: %v", flag, err)
	}
	return t, nil
}

// parseAge reads a positive age such as 7d, 36h or 90d.
func parseAge(flag, s string) (time.Duration, error) {
	d, ok := parseDays(strings.TrimSpace(s))
	if !ok || d <= 0 {
		return 0, usagef("--%s %q: want a positive age such as 7d, 36h or 90d", flag, s)
	}
	return d, nil
}
