// Package remedy is what a finding asks to change, as data. A rule says
// what must become true ("this pg_hba.conf line uses hostssl", "pgaudit is
// in shared_preload_libraries", "PUBLIC loses INSERT on t"); the planner
// (internal/fix) merges the changes of every finding into one ordered plan
// and renders the text users see. Nothing here talks to a server.
//
// Every name inside a Change is already quoted for its target by
// internal/quote (SQL statements, pg_hba.conf lines); plain fields (setting
// names and values, paths) are raw data that the planner quotes.
package remedy

import "os"

// Change is one thing a finding needs. Exactly one of the pointer fields,
// or Manual, is set.
type Change struct {
	HBA     *HBAEdit  `json:"hba,omitempty"`
	Setting *Setting  `json:"setting,omitempty"`
	SQL     *SQL      `json:"sql,omitempty"`
	File    *FileMode `json:"file,omitempty"`
	// Manual is set when the fix cannot be automated safely: what the
	// administrator must do, one or two sentences.
	Manual string `json:"manual,omitempty"`
	// Breaks says what the change can break for clients ("clients still
	// sending md5 passwords fail: roles a, b have md5 verifiers").
	Breaks string `json:"breaks,omitempty"`
}

// Kind names the target of the change: "hba", "setting", "sql", "file"
// or "manual".
func (c Change) Kind() string {
	switch {
	case c.HBA != nil:
		return "hba"
	case c.Setting != nil:
		return "setting"
	case c.SQL != nil:
		return "sql"
	case c.File != nil:
		return "file"
	}
	return "manual"
}

// HBAEdit changes one line of a pg_hba.conf file, or adds lines to it.
// Edits of several findings to the same line compose: the strongest type
// and method win (hostssl over host, reject over cert over scram-sha-256
// over peer), a delete wins over any rewrite.
type HBAEdit struct {
	File string `json:"file"`
	// Line is the 1-based line number of the rule changed; 0 for edits of
	// the file as a whole (Append).
	Line int `json:"line,omitempty"`
	// Type is the connection type the line must have ("hostssl",
	// "local", ...); "" keeps it.
	Type string `json:"type,omitempty"`
	// Method is the authentication method the line must have; "" keeps it.
	Method string `json:"method,omitempty"`
	// Address replaces the address field (narrowing); "" keeps it.
	Address string `json:"address,omitempty"`
	// Users replaces the user field with these tokens (already quoted
	// with quote.HBAToken): narrowing a line to the roles that need it.
	// Empty keeps it.
	Users []string `json:"users,omitempty"`
	// Delete removes the line.
	Delete bool `json:"delete,omitempty"`
	// Before are whole lines (quoted with quote.HBAToken) to insert
	// before Line.
	Before []string `json:"before,omitempty"`
	// Append are whole lines to add at the end of the file (a final
	// reject); the planner adds each distinct line once.
	Append []string `json:"append,omitempty"`
}

// Setting is a server setting that must have a value.
type Setting struct {
	Name string `json:"name"`
	// Value is the value to set, unquoted, as SHOW prints it. Empty
	// with ListAdd set.
	Value string `json:"value,omitempty"`
	// ListAdd are items a list setting (shared_preload_libraries,
	// log_destination) must contain; the planner unites the items of
	// every finding with what the list holds now.
	ListAdd []string `json:"list_add,omitempty"`
	// Restart is true when the setting takes effect only at a server
	// start (pg_settings.context = postmaster).
	Restart bool `json:"restart,omitempty"`
	// Requires names a prerequisite the planner must satisfy first, or
	// not propose the setting: "server-certificate" (ssl = on),
	// "archive-command" (archive_mode = on), "library:NAME" (the shared
	// library must be installed in the server's library directory).
	Requires []string `json:"requires,omitempty"`
}

// SQL is statements to run in one database, with the statements that undo
// them (for the journal). Undo runs in reverse order.
type SQL struct {
	// Database is where the statements must run; "" for cluster-wide
	// objects (roles, parameters), which run in the connection's database.
	Database   string   `json:"database,omitempty"`
	Statements []string `json:"statements"`
	Undo       []string `json:"undo,omitempty"`
	// Superuser is true when only a superuser can run the statements.
	Superuser bool `json:"superuser,omitempty"`
}

// FileMode is the permission (and optionally owner) a file or directory
// must have.
type FileMode struct {
	Path string      `json:"path"`
	Mode os.FileMode `json:"mode"`
	// From is the mode seen, for the journal and the text.
	From os.FileMode `json:"from"`
}
