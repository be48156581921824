// Package plan is the shape of a change to a server: an ordered list of
// steps, each saying what it changes, which findings it closes, whether it
// needs a reload or a restart and what it can break. The planner
// (internal/fix) builds plans from findings; internal/apply runs them with
// a journal. Roles as code, rotation and firewall plans reuse these types.
package plan

import (
	"os"
	"time"
)

// FormatVersion of the JSON form of a plan (docs/fix.md).
const FormatVersion = 1

// Step kinds.
const (
	KindHBA      = "hba"      // rewrite pg_hba.conf as a whole
	KindSettings = "settings" // ALTER SYSTEM SET / RESET, then reload or restart
	KindSQL      = "sql"      // statements in one transaction in one database
	KindFileMode = "file"     // chmod of files and directories
	KindCommand  = "command"  // a pgaegis command that prepares something (tls issue server)
	KindVerify   = "verify"   // a check that proves the steps before it (rotate's login); Summary says it all
	KindDeliver  = "deliver"  // a secret handed to a destination (rotate); Summary names it
)

// Apply modes: what makes a step take effect.
const (
	ApplyNow     = ""        // immediately (SQL, chmod)
	ApplyReload  = "reload"  // pg_reload_conf()
	ApplyRestart = "restart" // a server restart
)

// Plan is everything one fix run will change, in order.
type Plan struct {
	FormatVersion int       `json:"format_version"`
	ID            string    `json:"id"` // stable for the journal: YYYYMMDD-HHMMSS-xxxx
	Created       time.Time `json:"created"`
	// Source is what made the plan: "" for fix (findings), "policy" for
	// a policy file (access policy plan/apply, roles init).
	Source string `json:"source,omitempty"`
	// Target describes the server (no secrets), as in the audit report.
	Target string `json:"target"`
	Steps  []Step `json:"steps"`
	// Manual are the findings the plan cannot fix automatically, with
	// what to do.
	Manual []Manual `json:"manual,omitempty"`
	// Held are automatic fixes left out of this plan, and why (excluded by
	// a filter, a prerequisite missing, would lock out a kept path).
	Held []Held `json:"held,omitempty"`
	// Filtered counts the failing findings the filters (--only,
	// --exclude, --min-severity, an interactive choice) left out.
	Filtered int `json:"filtered,omitempty"`
}

// FindingRef names a finding a step closes (rules.Finding.Key parts).
type FindingRef struct {
	Rule     string `json:"rule"`
	Object   string `json:"object"`
	Severity string `json:"severity"`
}

// Step is one change. Which fields are set depends on Kind.
type Step struct {
	ID      string       `json:"id"` // "1", "2", ... in plan order
	Kind    string       `json:"kind"`
	Summary string       `json:"summary"`
	Closes  []FindingRef `json:"closes"`
	Apply   string       `json:"apply,omitempty"`
	// Breaks lists what the step can break for clients.
	Breaks []string `json:"breaks,omitempty"`
	// After lists the ids of steps that must have run first (a
	// certificate before ssl = on).
	After []string `json:"after,omitempty"`

	// KindHBA: the whole new file and how each old line maps to it.
	HBA *HBARewrite `json:"hba,omitempty"`
	// KindSettings: the settings, merged across rules.
	Settings []SettingChange `json:"settings,omitempty"`
	// KindSQL: statements for one database, run in one transaction.
	Database  string   `json:"database,omitempty"`
	SQL       []string `json:"sql,omitempty"`
	Undo      []string `json:"undo,omitempty"` // run in reverse order to roll back
	Superuser bool     `json:"superuser,omitempty"`
	// Autocommit: the statements cannot run inside a transaction
	// (CREATE DATABASE); each runs on its own, in order.
	Autocommit bool `json:"autocommit,omitempty"`
	// Cluster: the statements change shared catalogs (roles,
	// memberships): every database sees them, whichever they run in.
	Cluster bool `json:"cluster,omitempty"`
	// KindFileMode.
	Modes []ModeChange `json:"modes,omitempty"`
	// KindCommand: argv of a pgaegis command (argv[0] is "pgaegis").
	Command []string `json:"command,omitempty"`
}

// HBARewrite is a new pg_hba.conf.
type HBARewrite struct {
	Path string `json:"path"`
	// Lines maps every changed old line to its new text; Line 0 marks an
	// added line. New "" means the old line is removed.
	Lines []LineChange `json:"lines"`
	// Content is the whole new file.
	Content string `json:"content"`
}

// LineChange is one line of a rewrite.
type LineChange struct {
	Line  int      `json:"line,omitempty"` // old line number; 0 = added
	Old   string   `json:"old,omitempty"`
	New   string   `json:"new,omitempty"`
	Rules []string `json:"rules"` // the rules that asked for it
}

// SettingChange is one setting's new value.
type SettingChange struct {
	Name    string   `json:"name"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	Restart bool     `json:"restart,omitempty"`
	Rules   []string `json:"rules"`
}

// ModeChange is one chmod.
type ModeChange struct {
	Path string      `json:"path"`
	From os.FileMode `json:"from"`
	To   os.FileMode `json:"to"`
}

// Manual is a finding with no automatic fix.
type Manual struct {
	FindingRef
	What string `json:"what"`
}

// Held is an automatic fix not in this plan.
type Held struct {
	FindingRef
	Why string `json:"why"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return p == nil || len(p.Steps) == 0 }

// NeedsRestart reports whether any step needs a server restart.
func (p *Plan) NeedsRestart() bool {
	for _, s := range p.Steps {
		if s.Apply == ApplyRestart {
			return true
		}
	}
	return false
}
