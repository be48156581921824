package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pgaegis/pgaegis/internal/fleet"
	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/store"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

func fleetScanCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scan [--inventory F] [--store URL] [--jobs N] [--timeout D]",
		Short: "audit every server of the inventory and record the scans in the store",
		Long: `Audit every server of the inventory as 'pgaegis audit' would (read-only
session, the server's profile and waivers) and record each scan in the
store, at most --jobs servers at once. A server that cannot be reached,
does not answer in time or refuses the scan is recorded as unreachable,
timeout or error with the reason, and never holds the others up: each
scan is bounded by the server's timeout (inventory, or --timeout).

Progress goes to stderr when it is a terminal; the summary to stdout.
Ctrl-C stops at once: scans under way are not recorded, finished ones are.

Exit codes: 0 every server scanned and nothing failing at or above
--fail-on; 1 failing findings at or above it; 2 a server not scanned,
or an inventory or store error.`,
		Example: `  pgaegis fleet scan --inventory fleet.yaml --store fleet.db
  pgaegis fleet scan --inventory /etc/pgaegis/fleet.yaml --store postgres://scanner@db.example.com/fleet --jobs 16
  pgaegis fleet scan --inventory fleet.yaml --store fleet.db --server billing-primary --timeout 2m`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	invPath := fs.String("inventory", "", "the inventory file (default $"+inventoryEnv+", else ./"+defaultInventory+")")
	openStore := storeFlag(cmd, true)
	jobs := fs.Int("jobs", 0, "servers scanned at once (default: the inventory's concurrency, 4 when it sets none)")
	timeout := fs.Duration("timeout", 0, "limit for one server's whole scan, replacing the inventory's (default: the inventory's, 5m when it sets none)")
	connTO := fs.Duration("connect-timeout", 0, "limit for connecting, for servers whose inventory entry sets none (default: the connection string's, else 10s)")
	only := fs.StringArray("server", nil, "scan only this server (repeatable)")
	how := scanHowFlags(fs)
	failOn := fs.String("fail-on", "high", "exit 1 when a failing finding is at or above this severity")
	format := fs.String("format", "text", "summary format: text or json")
	completeValues(cmd, "fail-on", severityNames...)
	completeValues(cmd, "format", "text", "json")
	cmd.MarkFlagFilename("inventory", "yaml", "yml")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		sev, err := rules.ParseSeverity(*failOn)
		if err != nil {
			return ExitError, usageError{err.Error()}
		}
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		if *jobs < 0 || *jobs > 1024 {
			return ExitError, usagef("--jobs %d: between 1 and 1024", *jobs)
		}
		if *timeout < 0 || *connTO < 0 {
			return ExitError, usagef("--timeout and --connect-timeout must be positive")
		}
		inv, err := loadInventory(*invPath)
		if err != nil {
			return ExitError, err
		}
		servers, err := pickServers(inv, *only)
		if err != nil {
			return ExitError, err
		}
		st, err := openStore(ctx)
		if err != nil {
			return ExitError, err
		}
		defer st.Close()
		n := *jobs
		if n == 0 {
			n = inv.Concurrency
		}
		opts := how()
		opts.Jobs, opts.Timeout, opts.ConnectTimeout = n, *timeout, *connTO
		if isTerminal(env.Stderr) {
			opts.Progress = func(done, total int, s store.NewScan) {
				fmt.Fprintf(env.Stderr, "\r\x1b[K%s", textsafe.Shorten(fmt.Sprintf("[%d/%d] %s %s", done, total, s.Status, s.Server), 70))
			}
		}
		sum, err := fleet.Scan(ctx, servers, st, opts)
		clearProgress(env)
		if sum != nil {
			if *format == "json" {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				if e := enc.Encode(sum); e != nil && err == nil {
					err = e
				}
			} else {
				writeScanSummary(env.Stdout, sum, st.Backend())
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ExitError, fmt.Errorf("interrupted: %d servers not recorded; the scans that finished are in the store", sum.Interrupted)
			}
			return ExitError, err
		}
		if len(sum.Problems) > 0 {
			return ExitError, fmt.Errorf("%d of %d servers not scanned (recorded as such in the store)", len(sum.Problems), sum.Servers)
		}
		if sum.Worst >= sev {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	return cmd
}

// loadInventory reads --inventory, $PGAEGIS_INVENTORY or the default file.
func loadInventory(path string) (*inventory.Inventory, error) {
	if path == "" {
		path = getenvDefault(inventoryEnv, defaultInventory)
		if _, err := os.Stat(path); os.IsNotExist(err) && path == defaultInventory {
			return nil, usagef("no inventory: give --inventory FILE or set %s (no ./%s here); the format is in docs/inventory.md", inventoryEnv, defaultInventory)
		}
	}
	return inventory.Load(path)
}

func getenvDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// pickServers keeps the --server names (all servers when none), refusing
// a name the inventory does not list.
func pickServers(inv *inventory.Inventory, names []string) ([]inventory.Server, error) {
	if len(names) == 0 {
		return inv.Servers, nil
	}
	var out []inventory.Server
	for _, n := range names {
		s, ok := inv.Lookup(n)
		if !ok {
			return nil, usagef("--server %q: no such server in %s", n, inv.Path)
		}
		out = append(out, s)
	}
	return out, nil
}

func writeScanSummary(w io.Writer, s *fleet.Summary, backend string) {
	var parts []string
	for _, st := range []store.Status{store.OK, store.Unreachable, store.Timeout, store.Error} {
		if n := s.ByStatus[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if s.Interrupted > 0 {
		parts = append(parts, fmt.Sprintf("%d interrupted (not recorded)", s.Interrupted))
	}
	noun := "servers"
	if s.Servers == 1 {
		noun = "server"
	}
	fmt.Fprintf(w, "scanned %d %s in %s: %s; recorded in the %s store\n", s.Servers, noun, s.Elapsed.Round(100*time.Millisecond), strings.Join(parts, ", "), backend)
	var fails []string
	for _, sev := range []rules.Severity{rules.Critical, rules.High, rules.Medium, rules.Low, rules.Info} {
		if n := s.Failed[sev.String()]; n > 0 {
			fails = append(fails, fmt.Sprintf("%d %s", n, sev))
		}
	}
	if len(fails) == 0 {
		fails = []string{"none"}
	}
	fmt.Fprintf(w, "failing findings: %s\n", strings.Join(fails, ", "))
	if len(s.Problems) > 0 {
		fmt.Fprintln(w, "not scanned:")
		width := 0
		for _, p := range s.Problems {
			width = max(width, len(p.Server))
		}
		sort.SliceStable(s.Problems, func(i, j int) bool { return s.Problems[i].Server < s.Problems[j].Server })
		for _, p := range s.Problems {
			fmt.Fprintf(w, "  %-*s  %-11s  %s\n", width, p.Server, p.Status, textsafe.String(p.Message))
		}
	}
	for _, e := range s.WriteErrors {
		fmt.Fprintf(w, "not recorded: %s\n", textsafe.String(e))
	}
}

// scanHowFlags registers how each server is scanned, the same for
// 'fleet scan' and 'fleet worker', and returns the options they give.
func scanHowFlags(fs *pflag.FlagSet) func() fleet.Options {
	stmtTO := fs.Duration("statement-timeout", 30*time.Second, "limit for each query on a server")
	pwBudget := fs.Duration("password-check-budget", 2*time.Second, "wall time per server for the offline weak-password search; 0 turns it off")
	noFiles := fs.Bool("no-files", false, "do not read a server's files even when it runs on this host")
	noProbe := fs.Bool("no-probe", false, "do not probe the servers' ports for TLS")
	return func() fleet.Options {
		return fleet.Options{StatementTimeout: *stmtTO, PasswordBudget: *pwBudget, PasswordCache: passwordCacheDir(false), NoFiles: *noFiles, NoProbe: *noProbe}
	}
}
