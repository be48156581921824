// Package queue shares scan jobs between pgaegis workers on many hosts.
// The jobs live in the PostgreSQL store's own database, in river's tables
// (github.com/riverqueue/river) under the store's schema "pgaegis", so
// that a fleet needs one database, not a database and a broker.
//
// What the queue promises, and who keeps each promise:
//   - one worker per job at a time: river locks a job FOR UPDATE SKIP
//     LOCKED as it fetches it and marks it running;
//   - no job lost when a worker dies: a job left running longer than the
//     rescue time (longer than any server's timeout) is rescued by the
//     elected leader among the live workers and retried;
//   - no duplicate result: a scan carries its job's key and the store
//     records one scan per key (store.NewScan.JobKey);
//   - retries with exponential backoff, and a job that fails its last
//     attempt is discarded, its last result recorded in the store;
//   - one job per (server, scheduled slot), however many schedulers run.
package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/store"
)

// Schema holds river's tables beside the store's.
const Schema = "pgaegis"

// QueueName is river's queue the scan jobs go to.
const QueueName = "pgaegis_scan"

// migrateLock serialises workers migrating river's tables at once
// ("pgaegisQ" in ASCII; the store's own migrations use "pgaegis\0").
const migrateLock = 0x7067616567697351

// ErrNeedsPostgres is returned for a store that is not PostgreSQL.
var ErrNeedsPostgres = errors.New("a shared queue needs a PostgreSQL store (--store postgres://…); with SQLite, use fleet scan")

// ScanFunc audits one server; the worker bounds ctx by the server's
// timeout and records what it returns.
type ScanFunc func(ctx context.Context, srv inventory.Server) store.NewScan

// ScanArgs is one job: scan this server (for this scheduled slot, zero
// when asked for ad hoc).
type ScanArgs struct {
	Server string    `json:"server" river:"unique"`
	Slot   time.Time `json:"slot,omitzero" river:"unique"`
}

// Kind names the job type in river's tables.
func (ScanArgs) Kind() string { return "pgaegis_scan" }

// Queue is a connection to the shared queue.
type Queue struct {
	// MaxAttempts is how often the jobs this Queue enqueues are tried
	// before they are discarded (DefaultMaxAttempts when 0). It is fixed
	// per job at enqueue time.
	MaxAttempts int
	pool        *pgxpool.Pool
	client      *river.Client[pgx.Tx] // insert-only
}

// Open connects to the queue in the PostgreSQL store named by url and
// creates or upgrades river's tables. st, already opened from the same
// url, proves the store is PostgreSQL and has created the schema.
func Open(ctx context.Context, url string, st store.Store) (*Queue, error) {
	pool, err := openPool(ctx, url, st, 4)
	if err != nil {
		return nil, err
	}
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: Schema})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	return &Queue{pool: pool, client: c}, nil
}

// Close releases the connections.
func (q *Queue) Close() { q.pool.Close() }

func openPool(ctx context.Context, url string, st store.Store, maxConns int32) (*pgxpool.Pool, error) {
	if st == nil || st.Backend() != "postgres" {
		return nil, ErrNeedsPostgres
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("queue: %s", conninfo.RedactDSN(err.Error()))
	}
	cfg.MaxConns = maxConns
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "pgaegis-queue"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("queue: %s", conninfo.RedactDSN(err.Error()))
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue: %s", conninfo.RedactDSN(err.Error()))
	}
	return pool, nil
}

// migrate brings river's tables up to date under an advisory lock, so
// that workers starting together migrate once. River's migrations run
// each in its own transaction (one adds an enum value another then
// uses), so the lock is a session lock held on a connection of its own.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: Schema})
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrateLock))
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrating river's tables in schema %s: %w", Schema, err)
	}
	return nil
}

// Enqueued is what an enqueue did for one job.
type Enqueued struct {
	Server string
	Slot   time.Time // zero: ad hoc
	JobID  int64
	// Duplicate is true when the job was already queued (the same slot,
	// or an ad hoc scan not yet finished): nothing was added.
	Duplicate bool
}

// adHocStates keeps one ad hoc scan per server until it finishes.
var adHocStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}

// slotStates keeps one job per slot in every state, done ones included
// (until river's cleaner drops them, 24 h for completed jobs by default,
// longer than any catch-up window).
var slotStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled, rivertype.JobStateCompleted,
	rivertype.JobStateDiscarded, rivertype.JobStateCancelled,
}

// Enqueue queues ad hoc scans of the servers, to run now.
func (q *Queue) Enqueue(ctx context.Context, servers []string) ([]Enqueued, error) {
	ps := make([]river.InsertManyParams, len(servers))
	for i, s := range servers {
		ps[i] = river.InsertManyParams{Args: ScanArgs{Server: s}, InsertOpts: &river.InsertOpts{
			Queue: QueueName, MaxAttempts: q.maxAttempts(), UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: adHocStates}}}
	}
	return q.insert(ctx, ps)
}

// Slot is a scheduled scan.
type Slot struct {
	Server string
	At     time.Time
}

// EnqueueSlots queues the slots, each to run at its time; a slot queued
// before (by this or any other scheduler) is skipped.
func (q *Queue) EnqueueSlots(ctx context.Context, slots []Slot) ([]Enqueued, error) {
	ps := make([]river.InsertManyParams, len(slots))
	for i, s := range slots {
		ps[i] = river.InsertManyParams{Args: ScanArgs{Server: s.Server, Slot: s.At.UTC()}, InsertOpts: &river.InsertOpts{
			Queue: QueueName, MaxAttempts: q.maxAttempts(), ScheduledAt: s.At, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: slotStates}}}
	}
	return q.insert(ctx, ps)
}

func (q *Queue) maxAttempts() int {
	if q.MaxAttempts > 0 {
		return q.MaxAttempts
	}
	return DefaultMaxAttempts
}

// insertBatch bounds one InsertMany: a fleet of thousands is queued in
// a few round trips, none of them huge.
const insertBatch = 500

func (q *Queue) insert(ctx context.Context, ps []river.InsertManyParams) ([]Enqueued, error) {
	var out []Enqueued
	for start := 0; start < len(ps); start += insertBatch {
		res, err := q.client.InsertMany(ctx, ps[start:min(start+insertBatch, len(ps))])
		if err != nil {
			return out, fmt.Errorf("queue: enqueue: %w", err)
		}
		for i, r := range res {
			a := ps[start+i].Args.(ScanArgs)
			out = append(out, Enqueued{Server: a.Server, Slot: a.Slot, JobID: r.Job.ID, Duplicate: r.UniqueSkippedAsDuplicate})
		}
	}
	return out, nil
}

// JobKey is the store's key for a job's scan: the job's id and its
// creation time, both fixed across retries; the time keeps the key unique
// should river's tables ever be recreated and ids start again.
func JobKey(j *rivertype.JobRow) string {
	return fmt.Sprintf("river:%d@%s", j.ID, j.CreatedAt.UTC().Format(time.RFC3339Nano))
}
