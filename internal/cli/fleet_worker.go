package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/fleet"
	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/queue"
	"github.com/pgaegis/pgaegis/internal/store"
)

// queueFlags are what fleet worker, schedule and enqueue share.
type queueFlags struct {
	inventory, store string
}

func (f *queueFlags) add(c *cobra.Command) {
	// The same inventory and store as fleet scan finds, so that a worker
	// never quietly uses another file than the scheduler.
	c.Flags().StringVar(&f.inventory, "inventory", "", "the inventory file (default $"+inventoryEnv+", else ./"+defaultInventory+")")
	c.Flags().StringVar(&f.store, "store", "", "the PostgreSQL store that holds the queue and the scans: postgres://… or a libpq key=value string (default $"+storeEnv+")")
	c.MarkFlagFilename("inventory", "yaml", "yml")
}

// open loads the inventory and opens the store and its queue; a SQLite
// (or missing) store is refused: workers on several hosts share a queue
// only through PostgreSQL.
func (f *queueFlags) open(ctx context.Context, env *Env, cmd string) (*inventory.Inventory, store.Store, *queue.Queue, error) {
	if strings.TrimSpace(f.store) == "" {
		f.store = os.Getenv(storeEnv)
	}
	if strings.TrimSpace(f.store) == "" {
		return nil, nil, nil, usagef("%s needs --store postgres://… (or $%s): the queue shared by workers lives in the PostgreSQL store (with SQLite, run fleet scan)", cmd, storeEnv)
	}
	inv, err := loadInventory(f.inventory)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := store.Open(ctx, f.store)
	if err != nil {
		return nil, nil, nil, err
	}
	q, err := queue.Open(ctx, f.store, st)
	if err != nil {
		st.Close()
		if errors.Is(err, queue.ErrNeedsPostgres) {
			return nil, nil, nil, usagef("the store %s is SQLite: %v", f.store, err)
		}
		return nil, nil, nil, err
	}
	return inv, st, q, nil
}

func fleetWorkerCmd(env *Env) *cobra.Command {
	var f queueFlags
	var id string
	var concurrency int
	var rescue, backoff, stopWait time.Duration
	var how func() fleet.Options
	c := &cobra.Command{
		Use:   "worker",
		Short: "run queued scans, sharing one queue in the PostgreSQL store with other workers",
		Long: `Run scan jobs from the queue in the PostgreSQL store until SIGINT or SIGTERM.
Any number of workers on any hosts share the queue: each job is run by one
worker at a time; a job whose worker dies is handed to another after the
rescue time; a scan is recorded once per job, however often it is retried.
Jobs come from 'fleet schedule' and 'fleet enqueue'. The worker reads the
servers' connections from its own --inventory.`,
		Example: `  pgaegis fleet worker --inventory fleet.yaml --store postgres://pgaegis@db.example.com/fleet
  pgaegis fleet worker --store "host=db.example.com dbname=fleet" --concurrency 8 --rescue-after 30m`,
		Args: noArgs,
		RunE: runE(env, func(ctx context.Context, env *Env, _ []string) (int, error) {
			inv, st, q, err := f.open(ctx, env, "fleet worker")
			if err != nil {
				return ExitError, err
			}
			defer st.Close()
			q.Close()
			opts := how()
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
			defer stop()
			w, err := queue.StartWorker(ctx, queue.WorkerConfig{
				URL: f.store, Store: st, Inventory: inv, ID: id,
				Scan:        func(ctx context.Context, srv inventory.Server) store.NewScan { return fleet.ScanOne(ctx, srv, opts) },
				Concurrency: concurrency, RescueAfter: rescue, Backoff: backoff, Log: env.Stderr,
			})
			if err != nil {
				return ExitError, err
			}
			<-ctx.Done()
			fmt.Fprintf(env.Stderr, "worker %s: stopping: letting running scans finish (at most %s)\n", w.ID(), stopWait)
			sctx, cancel := context.WithTimeout(context.Background(), stopWait)
			defer cancel()
			if err := w.Stop(sctx); err != nil {
				fmt.Fprintf(env.Stderr, "worker %s: scans cut short stay queued: %v\n", w.ID(), err)
			}
			return ExitOK, nil
		}),
	}
	f.add(c)
	how = scanHowFlags(c.Flags())
	c.Flags().StringVar(&id, "id", "", "this worker's name in the queue (default host-pid)")
	c.Flags().IntVar(&concurrency, "concurrency", 0, "scans run at once (default: the inventory's concurrency)")
	c.Flags().DurationVar(&rescue, "rescue-after", 0, "a job running this long is taken for dead and handed to another worker; must exceed the longest server timeout (default: that timeout + 5m05s)")
	c.Flags().DurationVar(&backoff, "backoff", queue.DefaultBackoff, "wait before a failed scan's first retry; each next retry waits twice as long")
	c.Flags().DurationVar(&stopWait, "stop-timeout", time.Minute, "on SIGINT/SIGTERM, how long running scans may finish before they are cancelled")
	return c
}

func fleetScheduleCmd(env *Env) *cobra.Command {
	var f queueFlags
	var once bool
	var catchUp, every time.Duration
	var attempts int
	c := &cobra.Command{
		Use:   "schedule",
		Short: "queue the scans the inventory's schedules call for",
		Long: `Queue each scheduled server's scans: the slot that fired within --catch-up
(to run at once) and the next one (to run at its time). A slot is queued
once however many schedulers run, so one per host is safe. Without --once,
schedule again every --every until SIGINT or SIGTERM.`,
		Example: `  pgaegis fleet schedule --once --inventory fleet.yaml --store postgres://pgaegis@db.example.com/fleet
  pgaegis fleet schedule --store postgres://pgaegis@db.example.com/fleet --catch-up 6h`,
		Args: noArgs,
		RunE: runE(env, func(ctx context.Context, env *Env, _ []string) (int, error) {
			if every < time.Second {
				return ExitError, usagef("--every must be at least 1s")
			}
			inv, st, q, err := f.open(ctx, env, "fleet schedule")
			if err != nil {
				return ExitError, err
			}
			defer st.Close()
			defer q.Close()
			q.MaxAttempts = attempts
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
			defer stop()
			for {
				res, err := q.EnqueueSlots(ctx, queue.DueSlots(inv, time.Now(), catchUp))
				if err != nil {
					return ExitError, err
				}
				printEnqueued(env, res)
				if once {
					return ExitOK, nil
				}
				select {
				case <-ctx.Done():
					return ExitOK, nil
				case <-time.After(every):
				}
			}
		}),
	}
	f.add(c)
	c.Flags().BoolVar(&once, "once", false, "queue the due slots once and exit (for cron or a systemd timer)")
	c.Flags().DurationVar(&catchUp, "catch-up", queue.DefaultCatchUp, "a slot that fired less than this long ago is still queued (at most 24h: the queue forgets finished jobs after a day)")
	c.Flags().DurationVar(&every, "every", time.Minute, "without --once: how often to schedule again")
	c.Flags().IntVar(&attempts, "max-attempts", queue.DefaultMaxAttempts, "tries per job before it is discarded (its last result recorded)")
	return c
}

func fleetEnqueueCmd(env *Env) *cobra.Command {
	var f queueFlags
	var all bool
	var attempts int
	c := &cobra.Command{
		Use:   "enqueue SERVER...|--all",
		Short: "queue scans of some servers (or all) now",
		Long: `Queue an ad hoc scan of each named server (or of every server with --all),
to run as soon as a worker is free. A server with a scan still queued or
running is skipped.`,
		Example: `  pgaegis fleet enqueue --store postgres://pgaegis@db.example.com/fleet pg-prod-1 pg-prod-2
  pgaegis fleet enqueue --all --store postgres://pgaegis@db.example.com/fleet`,
		RunE: runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
			if all == (len(args) > 0) {
				return ExitError, usagef("name servers or give --all (not both)")
			}
			inv, st, q, err := f.open(ctx, env, "fleet enqueue")
			if err != nil {
				return ExitError, err
			}
			defer st.Close()
			defer q.Close()
			q.MaxAttempts = attempts
			names := args
			if all {
				names = nil
				for _, s := range inv.Servers {
					names = append(names, s.Name)
				}
			}
			for _, n := range names {
				if _, ok := inv.Lookup(n); !ok {
					return ExitError, fmt.Errorf("server %q is not in %s", n, inv.Path)
				}
			}
			res, err := q.Enqueue(ctx, names)
			if err != nil {
				return ExitError, err
			}
			printEnqueued(env, res)
			return ExitOK, nil
		}),
	}
	f.add(c)
	c.Flags().BoolVar(&all, "all", false, "every server in the inventory")
	c.Flags().IntVar(&attempts, "max-attempts", queue.DefaultMaxAttempts, "tries per job before it is discarded (its last result recorded)")
	return c
}

func printEnqueued(env *Env, res []queue.Enqueued) {
	added := 0
	for _, r := range res {
		when := "now"
		if !r.Slot.IsZero() {
			when = r.Slot.Format(time.RFC3339)
		}
		if r.Duplicate {
			fmt.Fprintf(env.Stdout, "%s\t%s\talready queued (job %d)\n", r.Server, when, r.JobID)
			continue
		}
		added++
		fmt.Fprintf(env.Stdout, "%s\t%s\tqueued (job %d)\n", r.Server, when, r.JobID)
	}
	fmt.Fprintf(env.Stderr, "%d job(s) queued, %d already queued\n", added, len(res)-added)
}
