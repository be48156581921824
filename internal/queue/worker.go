package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/store"
)

// Defaults for a worker.
const (
	DefaultMaxAttempts = 3
	DefaultBackoff     = 30 * time.Second
	maxBackoff         = time.Hour
	// timeoutMargin lets the scan's own timeout (the server's) fire, and
	// its result be written, before river cancels the job.
	timeoutMargin = 5 * time.Second
)

// WorkerConfig says how a worker runs.
type WorkerConfig struct {
	URL       string // the PostgreSQL store's URL
	Store     store.Store
	Inventory *inventory.Inventory
	Scan      ScanFunc
	// ID names this worker in river's tables (attempted_by) and in its
	// output; "" is host-pid.
	ID string
	// Concurrency is how many scans run at once (0: the inventory's).
	Concurrency int
	// RescueAfter is how long a job may stay running before the queue
	// takes it for dead and hands it to another worker. It must exceed
	// the longest server timeout: a live scan is never rescued (0: that
	// timeout plus 5 minutes).
	RescueAfter time.Duration
	// Backoff is the wait before the first retry; each next one doubles
	// (up to an hour), with a little jitter.
	Backoff time.Duration
	Log     io.Writer // progress lines; nil: none
}

// Worker is a running worker.
type Worker struct {
	client *river.Client[pgx.Tx]
	pool   interface{ Close() }
	id     string
}

// afterWrite runs after a scan is written and before the job is marked
// done; tests set it to die in that gap.
var afterWrite = func() {}

// StartWorker starts fetching and running jobs until Stop.
func StartWorker(ctx context.Context, c WorkerConfig) (*Worker, error) {
	if c.Inventory == nil || c.Scan == nil {
		return nil, fmt.Errorf("queue: a worker needs an inventory and a scan function")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = c.Inventory.Concurrency
	}
	if c.Concurrency <= 0 {
		c.Concurrency = inventory.DefaultConcurrency
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	longest := longestTimeout(c.Inventory)
	jobTimeout := longest + timeoutMargin
	if c.RescueAfter == 0 {
		c.RescueAfter = jobTimeout + 5*time.Minute
	}
	if c.RescueAfter <= jobTimeout {
		return nil, fmt.Errorf("queue: the rescue time (%s) must exceed the longest server timeout in %s (%s) plus %s: a scan still running would be handed to a second worker",
			c.RescueAfter, c.Inventory.Path, longest, timeoutMargin)
	}
	pool, err := openPool(ctx, c.URL, c.Store, int32(c.Concurrency)+5)
	if err != nil {
		return nil, err
	}
	w := &scanWorker{cfg: c}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, w); err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		ID:                   c.ID,
		Schema:               Schema,
		Queues:               map[string]river.QueueConfig{QueueName: {MaxWorkers: c.Concurrency}},
		Workers:              workers,
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: c.RescueAfter,
		RetryPolicy:          backoff{base: c.Backoff},
		Logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue: starting worker: %w", err)
	}
	w.logf("worker %s: running up to %d scans at once; a job running longer than %s is handed to another worker", c.ID, c.Concurrency, c.RescueAfter)
	return &Worker{client: client, pool: pool, id: c.ID}, nil
}

// ID is the worker's name in river's tables.
func (w *Worker) ID() string { return w.id }

// Stop lets the running scans finish (until ctx ends, then cancels
// them) and disconnects. Their jobs stay in the queue if cut short.
func (w *Worker) Stop(ctx context.Context) error {
	err := w.client.Stop(ctx)
	if err != nil {
		err = w.client.StopAndCancel(context.Background())
	}
	w.pool.Close()
	return err
}

func longestTimeout(inv *inventory.Inventory) time.Duration {
	d := inventory.DefaultTimeout
	if len(inv.Servers) > 0 {
		d = 0
	}
	for _, s := range inv.Servers {
		d = max(d, s.Timeout)
	}
	return d
}

// backoff doubles the wait after each failed attempt.
type backoff struct{ base time.Duration }

func (b backoff) NextRetry(j *rivertype.JobRow) time.Time {
	d := b.base
	for i := 1; i < j.Attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	// ±10 %, so that jobs failing together do not retry together.
	d += time.Duration((rand.Float64()*0.2 - 0.1) * float64(d))
	return time.Now().Add(d)
}

type scanWorker struct {
	river.WorkerDefaults[ScanArgs]
	cfg WorkerConfig
}

func (w *scanWorker) logf(format string, args ...any) {
	if w.cfg.Log != nil {
		fmt.Fprintf(w.cfg.Log, format+"\n", args...)
	}
}

// Timeout is the server's own timeout plus the margin to record it.
func (w *scanWorker) Timeout(j *river.Job[ScanArgs]) time.Duration {
	if srv, ok := w.cfg.Inventory.Lookup(j.Args.Server); ok {
		return srv.Timeout + timeoutMargin
	}
	return 0
}

func (w *scanWorker) Work(ctx context.Context, j *river.Job[ScanArgs]) error {
	name := j.Args.Server
	try := fmt.Sprintf("job %d, attempt %d of %d", j.ID, j.Attempt, j.MaxAttempts)
	srv, ok := w.cfg.Inventory.Lookup(name)
	if !ok {
		// Another worker's inventory may know it: retry, not discard.
		then := "will retry"
		if j.Attempt >= j.MaxAttempts {
			then = "job discarded"
		}
		w.logf("worker %s: %s (%s): not in inventory %s; %s", w.cfg.ID, name, try, w.cfg.Inventory.Path, then)
		return fmt.Errorf("server %q is not in inventory %s of worker %s", name, w.cfg.Inventory.Path, w.cfg.ID)
	}
	sctx, cancel := context.WithTimeout(ctx, srv.Timeout)
	res := w.cfg.Scan(sctx, srv)
	cancel()
	if err := ctx.Err(); err != nil {
		// The worker is stopping: an interrupted scan says nothing about
		// the server. Nothing is written; the job runs again later.
		return err
	}
	res.Server = srv.Name
	if res.Labels == nil {
		res.Labels = srv.Labels
	}
	res.JobKey = JobKey(j.JobRow)
	last := j.Attempt >= j.MaxAttempts
	if res.Status != store.OK && !last {
		w.logf("worker %s: %s (%s): %s: %s; will retry", w.cfg.ID, name, try, res.Status, res.Message)
		return fmt.Errorf("scan of %s: %s: %s", name, res.Status, res.Message)
	}
	id, err := w.cfg.Store.PutScan(ctx, res)
	if err != nil {
		w.logf("worker %s: %s (%s): writing the scan: %v", w.cfg.ID, name, try, err)
		return err
	}
	afterWrite()
	if res.Status != store.OK {
		w.logf("worker %s: %s (%s): %s: %s; last attempt, recorded as scan %d; job discarded", w.cfg.ID, name, try, res.Status, res.Message, id)
		return fmt.Errorf("scan of %s: %s: %s (last attempt; recorded as scan %d)", name, res.Status, res.Message, id)
	}
	w.logf("worker %s: %s (%s): ok, scan %d", w.cfg.ID, name, try, id)
	return nil
}
