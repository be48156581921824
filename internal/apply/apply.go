// Package apply runs a plan against a server: journal first, then prove
// the candidate configuration (our hba simulator with the lockout guard,
// the server's own validation, a throwaway server for restart-needing
// settings), change, reload or restart, reconnect along the operator's
// path and re-audit; on any failure restore the journal and say so.
package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/plan"
)

// Path is a way in that must still work after the change (--keep, the
// operator's own connection, replication and monitoring sessions seen).
type Path struct {
	Role     string `json:"role"`
	Database string `json:"database"` // "replication" for a replication connection
	// Local is a unix-socket connection; otherwise Address is the
	// client's IP address.
	Local   bool   `json:"local,omitempty"`
	Address string `json:"address,omitempty"`
	SSL     bool   `json:"ssl,omitempty"`
	// OSUser is the client's OS user for peer authentication on a socket
	// (empty: an OS user named like the role).
	OSUser string `json:"os_user,omitempty"`
	// ClientCert: the client presents a certificate (pg_stat_ssl.client_dn).
	ClientCert bool `json:"client_cert,omitempty"`
}

// Options shape one apply or rollback.
type Options struct {
	// Conn is how pgaegis connects; verification opens a fresh
	// connection with the same settings.
	Conn *pgx.ConnConfig
	// JournalRoot holds one directory per plan (mode 0700); empty means
	// DefaultJournalRoot().
	JournalRoot string
	// Keep are paths the lockout guard must keep open, besides the
	// operator's own connection.
	Keep []Path
	// RestartCommand restarts the server (argv); empty means pg_ctl
	// restart with the running server's own binaries, as the data
	// directory's owner. NoRestart leaves restart-needing steps pending.
	RestartCommand []string
	NoRestart      bool
	// ServerLog is where pg_ctl restart sends the restarted server's
	// output (pg_ctl -l, opened as the server's OS user); empty: the
	// journal's restart.log.
	ServerLog string
	// RunCommand runs a KindCommand step's pgaegis command (argv without
	// "pgaegis"); a plan with such a step is refused when it is nil.
	RunCommand func(ctx context.Context, argv []string) error
	// Before are the failing findings the plan was built from; ReAudit
	// returns the failing findings after the change. Apply fails (and
	// rolls back) when a finding the plan closes still fails or a finding
	// not in Before now fails.
	Before  []plan.FindingRef
	ReAudit func(ctx context.Context) ([]plan.FindingRef, error)
	// Progress receives one line per action; nil for none.
	Progress io.Writer
}

// Result says what happened.
type Result struct {
	PlanID     string   `json:"plan_id"`
	JournalDir string   `json:"journal_dir"`
	Applied    []string `json:"applied_steps"`
	Reloaded   bool     `json:"reloaded"`
	Restarted  bool     `json:"restarted"`
	Pending    []string `json:"pending_steps,omitempty"` // restart-needing steps left for a restart (NoRestart)
	RolledBack bool     `json:"rolled_back"`
	// Failed: changes were made and the plan did not hold; with
	// RolledBack false the restore failed too (see Problem and the
	// journal).
	Failed  bool          `json:"failed,omitempty"`
	Problem string        `json:"problem,omitempty"` // why it was refused or rolled back
	Took    time.Duration `json:"took_ns"`
}

// Entry is one plan in the journal.
type Entry struct {
	ID         string    `json:"id"`
	Created    time.Time `json:"created"`
	Target     string    `json:"target"`
	Steps      int       `json:"steps"`
	State      string    `json:"state"` // applied, rolled-back, failed, refused
	RolledBack time.Time `json:"rolled_back,omitzero"`
	Problem    string    `json:"problem,omitempty"`
}

// History lists the plans in the journal, newest first.
func History(root string) ([]Entry, error) {
	if root == "" {
		root = DefaultJournalRoot()
	}
	js, err := plan.ListJournals(root)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(js))
	for _, j := range js {
		st, err := j.State()
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{ID: j.ID, Created: st.Created, Target: st.Target, Steps: st.Steps, State: st.State, RolledBack: st.RolledBack, Problem: st.Problem})
	}
	sort.SliceStable(out, func(a, b int) bool {
		if !out[a].Created.Equal(out[b].Created) {
			return out[a].Created.After(out[b].Created)
		}
		return out[a].ID > out[b].ID
	})
	return out, nil
}

// DefaultJournalRoot is $XDG_STATE_HOME/pgaegis/plans, or
// ~/.local/state/pgaegis/plans.
func DefaultJournalRoot() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "pgaegis", "plans")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/"
	}
	return filepath.Join(home, ".local", "state", "pgaegis", "plans")
}

// Rollback restores everything plan id changed, from its journal:
// pg_hba.conf and postgresql.auto.conf byte for byte, the undo SQL in
// reverse, the old file modes; then reloads (restarts when the plan did).
// It refuses a plan that is not applied, or whose files changed since.
func Rollback(ctx context.Context, id string, o Options) (*Result, error) {
	start := time.Now()
	res := &Result{PlanID: id}
	defer func() { res.Took = time.Since(start) }()
	root := o.JournalRoot
	if root == "" {
		root = DefaultJournalRoot()
	}
	j, st, err := plan.OpenApplied(root, id)
	if j != nil {
		res.JournalDir = j.Dir
	}
	if err != nil {
		return res, err
	}
	if p, err := j.Plan(); err == nil && p.Source == "rotate" {
		// Its verifiers and destinations are in files this engine does
		// not read: it would mark the rotation rolled back, undone nothing.
		return res, fmt.Errorf("plan %s is a password rotation: roll it back with pgaegis rotate rollback %s", id, id)
	}
	m, err := j.Manifest()
	if err != nil {
		return res, err
	}
	var changed []string
	for _, f := range m.Files {
		data, err := os.ReadFile(f.Path)
		switch {
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return res, fmt.Errorf("reading %s: %w", f.Path, err)
		case err != nil:
			changed = append(changed, f.Path+" (removed)")
		case f.AfterSHA256 == "" && f.SHA256 != "" && plan.Hash(data) != f.SHA256:
			// No record of what the apply wrote (it stopped before): only
			// a file still as it was before the plan is known to be ours.
			changed = append(changed, f.Path+" (no record of the applied content)")
		case f.AfterSHA256 != "" && plan.Hash(data) != f.AfterSHA256:
			changed = append(changed, f.Path)
		}
	}
	if len(changed) > 0 {
		return res, fmt.Errorf("plan %s: refusing to roll back: changed since the apply: %s (restore by hand from %s)", id, strings.Join(changed, ", "), filepath.Join(j.Dir, "files"))
	}
	if o.Conn == nil {
		return res, errors.New("rollback: no connection settings")
	}
	conn, err := pgx.ConnectConfig(ctx, o.Conn.Copy())
	if err != nil {
		return res, fmt.Errorf("connecting to the server: %w", err)
	}
	p, err := j.Plan()
	if err != nil {
		conn.Close(ctx)
		return res, err
	}
	e := &engine{o: o, p: p, j: j, m: m, st: st, conn: conn, res: res, restartNames: map[string]bool{}, proveNames: map[string]bool{}}
	defer func() {
		if e.conn != nil {
			e.conn.Close(context.Background())
		}
	}()
	if err := e.inspect(ctx); err != nil {
		return res, err
	}
	if filepath.Clean(e.info.dataDir) != filepath.Clean(m.DataDirectory) {
		return res, fmt.Errorf("plan %s changed the server at %s; this connection reaches %s", id, m.DataDirectory, e.info.dataDir)
	}
	// A plan only ever writes the server's hba files (hba_file and, 16+,
	// the files it includes) and postgresql.auto.conf: a journal naming
	// another file is not ours.
	allowed, err := e.hbaFiles(ctx)
	if err != nil {
		return res, err
	}
	allowed[filepath.Join(filepath.Clean(e.info.dataDir), "postgresql.auto.conf")] = true
	for _, f := range m.Files {
		if !allowed[filepath.Clean(f.Path)] {
			return res, fmt.Errorf("plan %s: the journal names %s, which is neither one of this server's hba files (pg_hba.conf and its includes) nor its postgresql.auto.conf: refusing to restore it", id, f.Path)
		}
	}
	unlock, err := lockDataDir(e.info)
	if err != nil {
		return res, err
	}
	defer unlock()
	e.logf("rolling back plan %s", id)
	if err := e.restore(ctx, st.Restarted); err != nil {
		res.Problem = err.Error()
		st.Problem = "rollback: " + err.Error()
		j.WriteManifest(m)
		j.WriteState(st)
		return res, fmt.Errorf("rollback of plan %s: %w (journal %s)", id, err, j.Dir)
	}
	res.RolledBack, res.Reloaded, res.Restarted = true, true, st.Restarted
	st.State, st.RolledBack = plan.StateRolledBack, time.Now().UTC()
	if err := j.WriteManifest(m); err != nil {
		return res, err
	}
	if err := j.WriteState(st); err != nil {
		return res, err
	}
	e.logf("rolled back plan %s", id)
	return res, nil
}
