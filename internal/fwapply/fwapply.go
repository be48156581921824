// Package fwapply loads a pgaegis firewall ruleset with a timed
// confirmation, like iptables-apply: what it replaces (only pgaegis's own
// nft table, or iptables chain and jumps) is journalled first, a detached
// watchdog is armed, and unless the operator confirms in time, from the
// terminal or from a new session (which proves a new connection gets
// through), the saved state is put back and checked. docs/firewall-apply.md
// has the whole story.
package fwapply

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/plan"
)

// DefaultConfirmWithin is the window when Options.ConfirmWithin is 0.
const DefaultConfirmWithin = 30 * time.Second

// watchdogGrace is how much later than pgaegis the watchdog reverts, so
// that a live pgaegis reverts and verifies itself; the watchdog only
// stands in for a pgaegis that is gone.
const watchdogGrace = 5 * time.Second

// StepKind is the kind of the journal plan's one step.
const StepKind = "firewall"

// Options for Apply.
type Options struct {
	Backend string // "nft", "iptables" or "ip6tables"
	NetNS   string // network namespace; "" = the host's
	Script  []byte // nft -f script, or iptables-restore --noflush script
	// Jumps (iptables) are argument lists ensured in INPUT, such as
	// {"-p","tcp","--dport","5432","-j","PGAEGIS-PG"}.
	Jumps         [][]string
	ConfirmWithin time.Duration
	JournalDir    string // root of the journals (one directory per apply)
	// KeepPorts are TCP ports the script must not drop besides 22 and
	// SSH_CONNECTION's server port.
	KeepPorts []int
	// Prompt, when set, is read for "yes" (a terminal); Out gets the
	// prompt and progress. Confirm from another session works either way.
	Prompt io.Reader `json:"-"`
	Out    io.Writer `json:"-"`
	// ID names the journal; empty = a new id.
	ID string
	// OnLoaded is called once the ruleset is in force and the window
	// starts (the CLI prints how to confirm; tests probe).
	OnLoaded func(id string) `json:"-"`
}

// Result says what happened.
type Result struct {
	ID         string
	Journal    string // the apply's journal directory
	Refused    bool   // nothing was loaded
	Kept       bool   // confirmed: the ruleset stays
	Reverted   bool   // the saved state is back
	RevertedBy string // "pgaegis", "watchdog" or "rollback"
	Verified   bool   // the revert was checked against the saved state
	Nothing    bool   // Rollback: nothing to do
	Message    string
}

func (o *Options) window() time.Duration {
	if o.ConfirmWithin <= 0 {
		return DefaultConfirmWithin
	}
	return o.ConfirmWithin
}

// keepPorts are 22, SSH_CONNECTION's server port and o.KeepPorts.
func (o *Options) keepPorts() []int {
	keep := []int{22}
	if f := strings.Fields(os.Getenv("SSH_CONNECTION")); len(f) == 4 {
		if p, err := strconv.Atoi(f[3]); err == nil && p != 22 {
			keep = append(keep, p)
		}
	}
	return append(keep, o.KeepPorts...)
}

func (o *Options) where() string {
	if o.NetNS == "" {
		return "this host"
	}
	return "network namespace " + o.NetNS
}

func (o *Options) owned() string {
	if o.Backend == "nft" {
		return "nftables table " + Table
	}
	return o.Backend + " chain " + Chain + " (filter table) and its jumps from INPUT"
}

// Describe says what Apply will do, for the caller to print first.
func Describe(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pgaegis will load a %s ruleset on %s, replacing only the %s; other tables and chains are not touched.\n", o.Backend, o.where(), o.owned())
	fmt.Fprintf(&b, "1. check the script: it may drop only the PostgreSQL port (never TCP %s) and must keep established connections\n", ports(o.keepPorts()))
	fmt.Fprintf(&b, "2. save the current %s into a journal under %s\n", o.owned(), o.JournalDir)
	if o.Backend == "nft" {
		b.WriteString("3. validate the script with nft -c -f\n")
	} else {
		fmt.Fprintf(&b, "3. validate the script with %s-restore --test --noflush\n", o.Backend)
	}
	fmt.Fprintf(&b, "4. arm a watchdog (its own session; it survives pgaegis and the SSH session) that reverts after %s + %s\n", o.window(), watchdogGrace)
	b.WriteString("5. load the script")
	for _, j := range o.Jumps {
		fmt.Fprintf(&b, "; ensure INPUT jump %s", strings.Join(j, " "))
	}
	fmt.Fprintf(&b, "\n6. wait %s for a confirmation (type yes, or run the confirm command from a NEW session); otherwise revert and check the revert\n", o.window())
	return b.String()
}

// Apply loads o.Script with a timed confirmation; see the package doc.
// A refusal (guard, journal, validation) returns an error with
// Result.Refused set, and nothing was loaded.
func Apply(ctx context.Context, o Options) (*Result, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	res := &Result{Refused: true}
	b := backend{name: o.Backend, netns: o.NetNS}
	switch o.Backend {
	case "nft":
		if len(o.Jumps) > 0 {
			return res, errors.New("refused: jumps are for iptables; an nft script hooks its own chains")
		}
		if err := GuardNFT(o.Script, o.keepPorts()); err != nil {
			return res, err
		}
	case "iptables", "ip6tables":
		if err := GuardIPTables(o.Script, o.Jumps, o.keepPorts()); err != nil {
			return res, err
		}
	default:
		return res, fmt.Errorf("refused: unknown firewall backend %q (nft, iptables, ip6tables)", o.Backend)
	}
	if o.JournalDir == "" {
		return res, errors.New("refused: no journal directory: pgaegis saves what it replaces before loading")
	}
	if err := lookTools(o.Backend); err != nil {
		return res, fmt.Errorf("refused: %w", err)
	}

	if id := pending(o.JournalDir); id != "" {
		return res, fmt.Errorf("refused: firewall apply %s is still in its confirmation window: confirm it or let it revert first (its revert would undo this one)", id)
	}

	// Save what the script replaces before anything else.
	p := &plan.Plan{FormatVersion: plan.FormatVersion, ID: o.ID, Created: time.Now().UTC(), Source: "firewall",
		Target: o.Backend + " on " + o.where(),
		Steps: []plan.Step{{ID: "1", Kind: StepKind, Summary: "load a " + o.Backend + " ruleset replacing the " + o.owned(),
			Breaks: []string{"connections to the PostgreSQL port from sources the ruleset does not allow"}}}}
	j, err := plan.CreateJournal(o.JournalDir, p)
	if err != nil {
		return res, fmt.Errorf("refused: %w", err)
	}
	res.ID, res.Journal = j.ID, j.Dir
	st, _ := j.State()
	refused := func(err error) (*Result, error) {
		st.State, st.Problem = plan.StateRefused, err.Error()
		j.WriteState(st)
		return res, err
	}
	saved, err := b.snapshot(ctx, o.Jumps)
	if err != nil {
		return refused(fmt.Errorf("refused: reading the current %s: %w", o.owned(), err))
	}
	if o.Backend != "nft" {
		// Jumps already in the firewall reach the chain too: with the
		// new ones they must confine it, or each drop confines itself.
		all := append([][]string{}, o.Jumps...)
		for _, r := range saved.Refs {
			all = append(all, strings.Fields(r)[2:])
		}
		if err := GuardIPTables(o.Script, all, o.keepPorts()); err != nil {
			return refused(fmt.Errorf("%w (with the jumps already in the firewall: %s)", err, strings.Join(saved.Refs, "; ")))
		}
	}
	revert, rfile, rdata := b.revertScript(j.Dir, saved, o.Jumps)
	sj, _ := json.MarshalIndent(saved, "", "  ")
	mj, _ := json.MarshalIndent(map[string]any{"Backend": o.Backend, "NetNS": o.NetNS, "Jumps": o.Jumps}, "", "  ")
	scriptFile := filepath.Join(j.Dir, fileScript)
	for _, w := range []struct {
		name string
		data []byte
	}{{fileScript, o.Script}, {fileMeta, mj}, {fileSaved, sj}, {fileRevert, []byte(revert)}, {filepath.Base(rfile), rdata},
		{fileWatchdog, []byte(watchdogScript(j.Dir, o.window()+watchdogGrace))}} {
		if w.data == nil {
			continue
		}
		if err := j.WriteExtra(w.name, w.data); err != nil {
			return refused(fmt.Errorf("refused: %w", err))
		}
	}
	if err := b.validate(ctx, scriptFile); err != nil {
		return refused(fmt.Errorf("refused: %w", err))
	}
	wd, err := armWatchdog(j.Dir)
	if err != nil {
		return refused(fmt.Errorf("refused: %w", err))
	}
	res.Refused = false

	loadErr := b.load(ctx, scriptFile, o.Jumps)
	st.Applied = []string{"1"}
	j.WriteState(st)
	if loadErr != nil {
		fmt.Fprintf(out, "loading failed: %v; reverting\n", loadErr)
		r, err := finish(j, saved, o, "pgaegis", true)
		wd.disarm()
		if err != nil {
			return r, fmt.Errorf("load failed (%v), and %w", loadErr, err)
		}
		st, _ = j.State()
		st.State, st.Problem = plan.StateFailed, "load failed: "+loadErr.Error()
		j.WriteState(st)
		return r, fmt.Errorf("load failed: %w; the saved state is back", loadErr)
	}
	// The window runs from the load, however long OnLoaded takes; the
	// watchdog, armed just before, fires watchdogGrace after it.
	end := time.Now().Add(o.window())
	if o.OnLoaded != nil {
		o.OnLoaded(j.ID)
	}

	kept, why := wait(ctx, j.Dir, o, out, end)
	if !kept {
		r, err := finish(j, saved, o, "pgaegis", false)
		if err != nil {
			wd.disarm()
			return r, err
		}
		// r.Kept: a Confirm won the lock just before the revert.
		if !r.Kept {
			wd.disarm()
			st, _ = j.State()
			st.State, st.RolledBack = plan.StateRolledBack, time.Now().UTC()
			st.Problem = fmt.Sprintf("%s; reverted by %s and verified", why, r.RevertedBy)
			j.WriteState(st)
			r.Message = st.Problem
			fmt.Fprintln(out, r.Message)
			return r, nil
		}
	}
	wd.disarm()
	if after, err := b.snapshot(context.WithoutCancel(ctx), o.Jumps); err == nil {
		aj, _ := json.MarshalIndent(after, "", "  ")
		j.WriteExtra(fileAfter, aj)
	}
	st, _ = j.State()
	st.State = plan.StateApplied
	j.WriteState(st)
	res.Kept, res.Message = true, fmt.Sprintf("confirmed: the ruleset stays (journal %s; roll back with id %s)", j.Dir, j.ID)
	fmt.Fprintln(out, res.Message)
	return res, nil
}

// wait returns true once the apply is confirmed (prompt or marker), or
// false and why: the window passed, the answer was not yes, ctx ended, or
// the watchdog reverted already.
func wait(ctx context.Context, dir string, o Options, out io.Writer, end time.Time) (bool, string) {
	yes := make(chan struct{}, 1)
	if o.Prompt != nil {
		fmt.Fprintf(out, "type yes within %s to keep it (or confirm from a new session); anything else reverts\n", time.Until(end).Round(time.Second))
		go func() {
			// The goroutine may outlive Apply, blocked on the reader.
			// An answer other than yes reverts at once; the end of the
			// input (no terminal) leaves the window to a confirm from
			// another session.
			s := bufio.NewScanner(o.Prompt)
			for s.Scan() {
				switch strings.TrimSpace(s.Text()) {
				case "yes":
					yes <- struct{}{}
					return
				case "":
				default:
					close(yes)
					return
				}
			}
		}()
	}
	deadline := time.NewTimer(time.Until(end))
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-yes:
			if !ok {
				return false, "the answer at the prompt was not yes"
			}
			unlock, err := lock(dir)
			if err != nil {
				return false, err.Error()
			}
			err = confirmLocked(dir, "prompt")
			unlock()
			if err != nil {
				return false, err.Error()
			}
			return true, ""
		case <-tick.C:
			if exists(dir, fileConfirm) {
				return true, ""
			}
			if exists(dir, fileReverted) {
				return false, "the watchdog reverted first"
			}
		case <-deadline.C:
			return exists(dir, fileConfirm), fmt.Sprintf("not confirmed within %s", o.window())
		case <-ctx.Done():
			return false, fmt.Sprintf("interrupted (%v) before a confirmation", ctx.Err())
		}
	}
}

// finish reverts (unless the watchdog, or without force a racing
// Confirm, got there first) and verifies the result against the saved snapshot.
func finish(j *plan.Journal, saved *Snapshot, o Options, by string, force bool) (*Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := &Result{ID: j.ID, Journal: j.Dir}
	unlock, err := lock(j.Dir)
	if err != nil {
		return res, err
	}
	who, err := revertLocked(j.Dir, by, force)
	unlock()
	if err != nil {
		markFailed(j, err)
		return res, err
	}
	if who == "" {
		res.Kept = true
		return res, nil
	}
	res.Reverted, res.RevertedBy = true, who
	return res, verify(ctx, j, saved, o, res)
}

func verify(ctx context.Context, j *plan.Journal, saved *Snapshot, o Options, res *Result) error {
	b := backend{name: o.Backend, netns: o.NetNS}
	now, err := b.snapshot(ctx, o.Jumps)
	if err == nil && !now.Equal(saved) {
		err = fmt.Errorf("the %s differs from the saved one after the revert:\n--- saved\n%s\n--- now\n%s", o.owned(), saved.Text, now.Text)
	}
	if err != nil {
		err = fmt.Errorf("revert not verified: %w", err)
		markFailed(j, err)
		return err
	}
	res.Verified = true
	return nil
}

func markFailed(j *plan.Journal, err error) {
	if st, e := j.State(); e == nil {
		st.State, st.Problem = plan.StateFailed, err.Error()
		j.WriteState(st)
	}
}

// Confirm keeps apply id (under journalDir), as from another session:
// run over a new SSH login, it proves new connections get through.
func Confirm(journalDir, id string) error {
	j, err := plan.OpenJournal(journalDir, id)
	if err != nil {
		return err
	}
	st, err := j.State()
	if err != nil {
		return err
	}
	if by := readMarker(j.Dir, fileReverted); by != "" {
		// Too late: the window ended and the previous state is back. A
		// watchdog cannot write the journal's state; say it here.
		if st.State == plan.StatePreparing {
			st.State, st.RolledBack = plan.StateRolledBack, time.Now().UTC()
			j.WriteState(st)
		}
		return fmt.Errorf("firewall apply %s was reverted by %s when its window ended: too late to confirm; run firewall plan --apply again", id, by)
	}
	if st.State != plan.StatePreparing && st.State != plan.StateApplied {
		return fmt.Errorf("firewall apply %s is %s: nothing to confirm", id, st.State)
	}
	if _, err := os.Stat(filepath.Join(j.Dir, fileWatchdog)); err != nil {
		return fmt.Errorf("%s is not a firewall apply's journal", j.Dir)
	}
	unlock, err := lock(j.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	return confirmLocked(j.Dir, "session")
}

// journalled reads back what a journal's apply saved and ran with.
func journalled(j *plan.Journal) (*Snapshot, Options, error) {
	var o Options
	p, err := j.Plan()
	if err != nil {
		return nil, o, err
	}
	if len(p.Steps) != 1 || p.Steps[0].Kind != StepKind {
		return nil, o, fmt.Errorf("%s is not a firewall apply's journal", j.Dir)
	}
	var m struct {
		Backend, NetNS string
		Jumps          [][]string
	}
	b, err := j.ReadExtra(fileMeta)
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return nil, o, fmt.Errorf("journal %s: %w", j.Dir, err)
	}
	var s Snapshot
	b, err = j.ReadExtra(fileSaved)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		return nil, o, fmt.Errorf("journal %s: %w", j.Dir, err)
	}
	return &s, Options{Backend: m.Backend, NetNS: m.NetNS, Jumps: m.Jumps}, nil
}

// Rollback puts back what apply id replaced, after a confirmation. A
// second rollback, or one of an apply that was reverted, has nothing to
// do (Result.Nothing). It refuses when pgaegis's table or chain changed
// since the confirmation (a later apply is rolled back first).
func Rollback(ctx context.Context, journalDir, id string) (*Result, error) {
	j, err := plan.OpenJournal(journalDir, id)
	if err != nil {
		return nil, err
	}
	res := &Result{ID: j.ID, Journal: j.Dir}
	st, err := j.State()
	if err != nil {
		return res, err
	}
	saved, o, err := journalled(j)
	if err != nil {
		return res, err
	}
	unlock, err := lock(j.Dir)
	if err != nil {
		return res, err
	}
	defer unlock()
	if r := readMarker(j.Dir, fileReverted); r != "" || st.State == plan.StateRefused {
		res.Nothing = true
		res.Message = fmt.Sprintf("firewall apply %s: nothing to roll back (%s)", id, st.State)
		if r != "" {
			res.Message = fmt.Sprintf("firewall apply %s: nothing to roll back (already reverted by %s)", id, r)
		}
		return res, nil
	}
	if !exists(j.Dir, fileConfirm) {
		return res, fmt.Errorf("firewall apply %s is still in its window (or its pgaegis died): the watchdog reverts it; confirm it first to keep it", id)
	}
	b := backend{name: o.Backend, netns: o.NetNS}
	var after Snapshot
	if data, err := j.ReadExtra(fileAfter); err == nil && json.Unmarshal(data, &after) == nil {
		now, err := b.snapshot(ctx, o.Jumps)
		if err != nil {
			return res, err
		}
		if !now.Equal(&after) {
			return res, fmt.Errorf("the %s changed since apply %s was confirmed: refusing to overwrite it (roll back the later apply first)", o.owned(), id)
		}
	}
	who, err := revertLocked(j.Dir, "rollback", true)
	if err != nil {
		markFailed(j, err)
		return res, err
	}
	res.Reverted, res.RevertedBy = true, who
	if err := verify(ctx, j, saved, o, res); err != nil {
		return res, err
	}
	st.State, st.RolledBack = plan.StateRolledBack, time.Now().UTC()
	j.WriteState(st)
	res.Message = fmt.Sprintf("firewall apply %s rolled back; the %s is as it was before", id, o.owned())
	return res, nil
}
