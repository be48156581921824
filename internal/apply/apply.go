// Package apply runs a plan against a server: journal first, then prove
// the candidate configuration (our hba simulator with the lockout guard,
// the server's own validation, a throwaway server for restart-needing
// settings), change, reload or restart, reconnect along the operator's
// path and re-audit; on any failure restore the journal and say so.
package apply

import (
	"context"
	"errors"
	"io"
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
	// OSUser is the client's OS user for peer authentication on a socket.
	OSUser string `json:"os_user,omitempty"`
}

// ParsePath reads "ROLE@DB from ADDR [ssl]" or "ROLE@DB local".
func ParsePath(s string) (Path, error) { return Path{}, errors.New("apply.ParsePath: not built yet") }

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
	PlanID     string        `json:"plan_id"`
	JournalDir string        `json:"journal_dir"`
	Applied    []string      `json:"applied_steps"`
	Reloaded   bool          `json:"reloaded"`
	Restarted  bool          `json:"restarted"`
	Pending    []string      `json:"pending_steps,omitempty"` // restart-needing steps left for a restart (NoRestart)
	RolledBack bool          `json:"rolled_back"`
	Problem    string        `json:"problem,omitempty"` // why it was refused or rolled back
	Took       time.Duration `json:"took_ns"`
}

// Apply runs p. A refusal before any change returns an error and a Result
// with Problem set; a failure after a change rolls back and says so.
func Apply(ctx context.Context, p *plan.Plan, o Options) (*Result, error) {
	return nil, errors.New("apply.Apply: not built yet")
}

// Rollback restores everything plan id changed, from its journal.
func Rollback(ctx context.Context, id string, o Options) (*Result, error) {
	return nil, errors.New("apply.Rollback: not built yet")
}

// Entry is one plan in the journal.
type Entry struct {
	ID         string    `json:"id"`
	Created    time.Time `json:"created"`
	Target     string    `json:"target"`
	Steps      int       `json:"steps"`
	State      string    `json:"state"` // applied, rolled-back, failed, refused
	RolledBack time.Time `json:"rolled_back,omitzero"`
}

// History lists the plans in the journal, newest first.
func History(root string) ([]Entry, error) { return nil, errors.New("apply.History: not built yet") }

// DefaultJournalRoot is $XDG_STATE_HOME/pgaegis/plans, or
// ~/.local/state/pgaegis/plans.
func DefaultJournalRoot() string { return "" }
