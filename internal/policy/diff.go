package policy

import (
	"errors"

	"github.com/pgaegis/pgaegis/internal/plan"
)

// Options shape a diff.
type Options struct {
	// Mode overrides the file's mode (Authoritative when both are empty).
	Mode string
	// ConnectDatabase is where cluster-wide statements (roles,
	// memberships) run when no listed database is readable.
	ConnectDatabase string
	// ReassignOwnedTo and DropOwned let the removal of a role that still
	// owns objects or holds privileges go ahead: REASSIGN OWNED BY ... TO
	// ReassignOwnedTo, then DROP OWNED BY, in every database.
	ReassignOwnedTo string
	DropOwned       bool
}

// Note is something the diff wants the user to know: a named object that
// does not exist, a role removal held by the preflight, a policy that
// calls current_setting without missing_ok.
type Note struct {
	Level  string `json:"level"` // "held", "warning", "info"
	Object string `json:"object"`
	Text   string `json:"text"`
}

// Diff plans the changes that make live match desired.
func Diff(desired *File, live *Live, o Options) (*plan.Plan, []Note, error) {
	return nil, nil, errors.New("policy: diff is not built yet")
}
