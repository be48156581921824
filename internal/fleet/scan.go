// Package fleet scans the servers of an inventory: each one audited as
// `pgaegis audit` would (collect a snapshot over a read-only session,
// run the server's profile, apply its waivers, attach the planner's
// fixes), with bounded concurrency and a time limit per server, and the
// results recorded in a store.
//
// ScanOne scans one server and returns what to record; it never fails:
// a server that cannot be reached, that times out or that refuses the
// scan comes back as a store.NewScan with status unreachable, timeout or
// error and a message that holds no secret. It is what a queue worker
// calls for one job:
//
//	ns := fleet.ScanOne(ctx, srv, opts)
//	if ctx.Err() != nil {
//		return // interrupted: nothing to record, the job runs again
//	}
//	id, err := st.PutScan(ctx, ns)
//
// Scan runs ScanOne over many servers and writes each result as it
// arrives. When its context is cancelled (Ctrl-C), scans under way are
// dropped (never recorded half-done), scans already finished are still
// written, and Scan returns the context's error beside the summary.
package fleet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/store"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// Options shape a scan. The zero value is usable.
type Options struct {
	// Jobs is how many servers are scanned at once (Scan only; default
	// DefaultJobs).
	Jobs int
	// Timeout, when not 0, replaces every server's inventory timeout
	// (the bound on one whole scan of it).
	Timeout time.Duration
	// ConnectTimeout, when not 0, is used for servers whose inventory
	// entry sets no connect_timeout.
	ConnectTimeout time.Duration
	// StatementTimeout bounds each query on a server (default 30s).
	StatementTimeout time.Duration
	// PasswordBudget is the wall time of the offline weak-password search
	// per server (0: off).
	PasswordBudget time.Duration
	// PasswordCache is the weak-password verdict cache directory ("": none).
	PasswordCache string
	// NoFiles skips reading a server's files even when it runs on this host.
	NoFiles bool
	// NoProbe skips the TLS probe of each server's port.
	NoProbe bool
	// Progress, when set, is called after each server (from one
	// goroutine at a time): how many are done of how many, and the scan.
	Progress func(done, total int, s store.NewScan)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// DefaultJobs is how many servers Scan reads at once when not told.
const DefaultJobs = 8

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// ScanOne audits one server within its time limit and returns the scan
// to record. When ctx is cancelled before the scan completes, the result
// (status error, "interrupted") must not be recorded: check ctx.Err().
func ScanOne(ctx context.Context, srv inventory.Server, opts Options) store.NewScan {
	ns := store.NewScan{Server: srv.Name, Labels: srv.Labels, StartedAt: opts.now().UTC()}
	limit := srv.Timeout
	if opts.Timeout > 0 {
		limit = opts.Timeout
	}
	if limit <= 0 {
		limit = inventory.DefaultTimeout
	}
	finish := func(st store.Status, msg string) store.NewScan {
		ns.Status, ns.Message, ns.FinishedAt = st, textsafe.OneLine(msg), opts.now().UTC()
		return ns
	}
	if srv.ConnectTimeout == 0 && opts.ConnectTimeout > 0 {
		srv.ConnectTimeout = opts.ConnectTimeout
	}
	conn, err := srv.ConnConfig()
	if err != nil {
		// Credentials or files the inventory names: the message says which,
		// never what they hold.
		return finish(store.Error, err.Error())
	}
	secrets := conn.Secrets()
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	type result struct {
		snap *snapshot.Snapshot
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			// One odd server must not end the whole fleet's scan.
			if p := recover(); p != nil {
				done <- result{nil, fmt.Errorf("internal error while collecting (please report): %v", p)}
			}
		}()
		snap, err := collect.Collect(sctx, collect.Options{Conn: conn.Config, NoFiles: opts.NoFiles, NoProbe: opts.NoProbe,
			StatementTimeout: opts.StatementTimeout, PasswordBudget: opts.PasswordBudget, PasswordCache: opts.PasswordCache})
		done <- result{snap, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-sctx.Done():
		// The collection honours its context, but a server must never hold
		// the fleet up: past the limit its goroutine is left to unwind.
	}
	switch {
	case ctx.Err() != nil:
		return finish(store.Error, "interrupted")
	case sctx.Err() != nil && (r.snap == nil || r.err != nil):
		return finish(store.Timeout, fmt.Sprintf("no complete scan within %s (the server's timeout)", limit))
	case r.err != nil:
		msg := conninfo.Redact(r.err.Error(), secrets...)
		return finish(classify(msg), msg)
	}
	snap := r.snap
	findings, err := analyse(snap, srv, opts)
	if err != nil {
		return finish(store.Error, err.Error())
	}
	ns.Snapshot, ns.Findings = snap, findings
	msg := ""
	if len(snap.Errors) > 0 {
		msg = fmt.Sprintf("incomplete: %d reads failed (see the snapshot's collection_errors)", len(snap.Errors))
	}
	return finish(store.OK, conninfo.Redact(msg, secrets...))
}

// analyse runs the server's profile and waivers over the snapshot and
// attaches the planner's fixes, as 'pgaegis audit' does.
func analyse(snap *snapshot.Snapshot, srv inventory.Server, opts Options) (findings []rules.Finding, err error) {
	defer func() {
		if p := recover(); p != nil {
			findings, err = nil, fmt.Errorf("internal error while analysing (please report): %v", p)
		}
	}()
	findings, err = rules.RunProfile(snap, srv.Profile)
	if err != nil {
		return nil, err
	}
	if srv.Waivers != nil {
		var warns []string
		findings, warns = srv.Waivers.Apply(findings, opts.now())
		snap.Warnings = append(snap.Warnings, warns...)
	}
	// The stored fixes are the planner's steps, as in every report.
	fix.Build(snap, findings, fix.Options{Target: snap.Target.Description}).Annotate(findings)
	return findings, nil
}

// classify reads a collection error: a server that could not be reached
// at all, one that stopped answering, or anything else (a refused login,
// a missing privilege). collect's messages do not wrap the network
// error, so it is their text that says which.
func classify(msg string) store.Status {
	m := strings.ToLower(msg)
	for _, s := range []string{"did not complete the login in time", "stopped answering", "i/o timeout", "timeout expired", "deadline exceeded"} {
		if strings.Contains(m, s) {
			return store.Timeout
		}
	}
	for _, s := range []string{"connection refused", "no such host", "network is unreachable", "no route to host",
		"host is down", "connection reset", "server closed the connection", "no such file or directory", "cannot assign requested address", "hostname resolving error", "lookup "} {
		if strings.Contains(m, s) {
			return store.Unreachable
		}
	}
	return store.Error
}

// Summary is how a fleet scan went.
type Summary struct {
	Servers  int                  `json:"servers"`
	ByStatus map[store.Status]int `json:"by_status"`
	// Interrupted counts servers not recorded because the scan was
	// cancelled before they finished (or started).
	Interrupted int `json:"interrupted,omitempty"`
	// Failed counts failing findings over the reached servers, by severity.
	Failed   map[string]int `json:"failed"`
	Elapsed  time.Duration  `json:"elapsed_ns"`
	Problems []Problem      `json:"problems,omitempty"` // servers not scanned ok, by name
	// Worst is the highest severity failing anywhere (-1: none).
	Worst rules.Severity `json:"-"`
	// WriteErrors are scans that could not be recorded.
	WriteErrors []string `json:"write_errors,omitempty"`
}

// Problem is a server that was not scanned, and why.
type Problem struct {
	Server  string       `json:"server"`
	Status  store.Status `json:"status"`
	Message string       `json:"message"`
}

// Scan scans every server, at most opts.Jobs at once, and records each
// result in st as it arrives. One slow server holds one job slot for at
// most its timeout. The error is the context's when cancelled, or the
// first write error (every scan is still attempted).
func Scan(ctx context.Context, servers []inventory.Server, st store.Store, opts Options) (*Summary, error) {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	start := time.Now()
	sum := &Summary{Servers: len(servers), ByStatus: map[store.Status]int{}, Failed: map[string]int{}, Worst: -1}
	work := make(chan inventory.Server)
	results := make(chan store.NewScan)
	var wg sync.WaitGroup
	for range min(jobs, max(len(servers), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for srv := range work {
				results <- ScanOne(ctx, srv, opts)
			}
		}()
	}
	go func() {
		defer close(work)
		for _, s := range servers {
			select {
			case work <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	var firstErr error
	done := 0
	// Cancelled, the workers return at once ("interrupted") and the
	// feeder stops, so this loop ends soon after Ctrl-C.
	for ns := range results {
		if ctx.Err() != nil && ns.Status != store.OK && ns.Message == "interrupted" {
			continue // never recorded: the scan did not finish
		}
		// A scan that finished is written even if Ctrl-C comes now: the
		// write is one transaction, whole or not at all.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		_, err := st.PutScan(wctx, ns)
		cancel()
		done++
		if err != nil {
			sum.WriteErrors = append(sum.WriteErrors, err.Error())
			if firstErr == nil {
				firstErr = err
			}
		}
		sum.add(ns)
		if opts.Progress != nil {
			opts.Progress(done, len(servers), ns)
		}
	}
	sum.Elapsed = time.Since(start)
	sort.Slice(sum.Problems, func(i, j int) bool { return sum.Problems[i].Server < sum.Problems[j].Server })
	if err := ctx.Err(); err != nil {
		sum.Interrupted = len(servers) - done
		return sum, err
	}
	return sum, firstErr
}

func (s *Summary) add(ns store.NewScan) {
	s.ByStatus[ns.Status]++
	if ns.Status != store.OK {
		s.Problems = append(s.Problems, Problem{Server: ns.Server, Status: ns.Status, Message: ns.Message})
		return
	}
	for _, f := range ns.Findings {
		if f.Status == rules.Fail {
			s.Failed[f.Severity.String()]++
			if f.Severity > s.Worst {
				s.Worst = f.Severity
			}
		}
	}
}
