// Package store keeps the scans of many servers (their snapshots and
// findings) and answers the history and drift questions fleet commands
// ask. One interface, two backends: SQLite (one file, the default) and
// PostgreSQL (shared by a team). Open picks the backend from the URL.
//
// Nothing secret is stored: every string written (snapshot, findings,
// messages, labels) passes through the connection-string redactor first.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Status is how a scan ended.
type Status string

const (
	OK          Status = "ok"
	Unreachable Status = "unreachable"
	Timeout     Status = "timeout"
	Error       Status = "error"
)

func (s Status) valid() bool {
	return s == OK || s == Unreachable || s == Timeout || s == Error
}

// ErrSchemaTooNew is returned by Open for a database migrated by a newer
// pgaegis: this binary would misread it.
var ErrSchemaTooNew = errors.New("store schema is newer than this pgaegis")

// ErrNotFound is returned for an unknown server or scan.
var ErrNotFound = errors.New("not found")

// NewScan is what a fleet scan of one server records.
type NewScan struct {
	Server     string            // stable name from the inventory
	Labels     map[string]string // the inventory's labels at scan time
	StartedAt  time.Time
	FinishedAt time.Time
	Status     Status
	Message    string             // why the scan was not ok
	Snapshot   *snapshot.Snapshot // nil when the server was not reached
	Findings   []rules.Finding
	// JobKey names the queue job the scan was made for ("" for none).
	// PutScan records a job's scan at most once: a second write with the
	// same key returns the first scan's id and writes nothing.
	JobKey string
}

// Counts are a scan's findings by status; failures also by severity.
type Counts struct {
	FailBySeverity map[string]int `json:"fail_by_severity"`
	Fail           int            `json:"fail"`
	Pass           int            `json:"pass"`
	NotChecked     int            `json:"not_checked"`
	Waived         int            `json:"waived"`
}

// Scan is a stored scan without its blobs.
type Scan struct {
	ID            int64             `json:"id"`
	Server        string            `json:"server"`
	Labels        map[string]string `json:"labels,omitempty"`
	StartedAt     time.Time         `json:"started_at"`
	FinishedAt    time.Time         `json:"finished_at"`
	Status        Status            `json:"status"`
	Message       string            `json:"message,omitempty"`
	ToolVersion   string            `json:"tool_version,omitempty"`
	ServerVersion string            `json:"server_version,omitempty"`
	Counts        Counts            `json:"counts"`
}

// ScanRecord is a scan with its snapshot and findings as written
// (redacted).
type ScanRecord struct {
	Scan
	Snapshot *snapshot.Snapshot
	Findings []rules.Finding
}

// ServerSummary is a server with its most recent scan (nil when none).
type ServerSummary struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Latest *Scan             `json:"latest,omitempty"`
	// LatestOK is the most recent scan that reached the server (the one
	// whose findings are current); nil when none did.
	LatestOK *Scan `json:"latest_ok,omitempty"`
}

// FindingRow is a finding as a queryable row.
type FindingRow struct {
	ScanID   int64          `json:"scan_id"`
	Rule     string         `json:"rule"`
	Status   rules.Status   `json:"status"`
	Severity rules.Severity `json:"severity"`
	Area     string         `json:"area"`
	Title    string         `json:"title"`
	Object   string         `json:"object"`
	Location string         `json:"location,omitempty"`
	Evidence string         `json:"evidence,omitempty"`
	// OpenSince is when the failure was first seen in the unbroken run of
	// failing scans that leads to this one (failures only): taken from the
	// server's previous reached scan when this one was written.
	OpenSince time.Time `json:"open_since,omitzero"`
}

// HistoryPoint is a finding's state in one scan of its server.
type HistoryPoint struct {
	ScanID     int64          `json:"scan_id"`
	At         time.Time      `json:"at"`
	ScanStatus Status         `json:"scan_status"`
	Status     rules.Status   `json:"status,omitempty"` // "" when the scan had no such finding
	Severity   rules.Severity `json:"severity"`
}

// History is one finding (rule and object on one server) across scans.
type History struct {
	Server    string         `json:"server"`
	Rule      string         `json:"rule"`
	Object    string         `json:"object"`
	FirstSeen time.Time      `json:"first_seen,omitzero"` // first failing scan
	LastSeen  time.Time      `json:"last_seen,omitzero"`  // last failing scan
	FixedAt   time.Time      `json:"fixed_at,omitzero"`   // first reached scan after LastSeen without the failure, when it is not open
	Open      bool           `json:"open"`                // failing in the latest reached scan
	Points    []HistoryPoint `json:"points"`
}

// RuleCount is a rule failing across the fleet.
type RuleCount struct {
	Rule     string         `json:"rule"`
	Title    string         `json:"title"`
	Severity rules.Severity `json:"severity"` // worst seen
	Servers  int            `json:"servers"`  // servers failing it
	Findings int            `json:"findings"`
}

// OpenFinding is a failure still open in a server's latest reached scan.
type OpenFinding struct {
	Server string `json:"server"`
	FindingRow
}

// Evidence is what an auditor asks for a period: the controls that
// passed on every reached scan of every server, and what was not seen.
type Evidence struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Scans   int       `json:"scans"`   // reached scans in the period
	Servers int       `json:"servers"` // servers with a reached scan
	// Unreached counts scans that did not reach their server: for their
	// time nothing is proven.
	Unreached int           `json:"unreached"`
	Held      []HeldControl `json:"held"`
}

// HeldControl is a rule that passed in every reached scan of the period.
type HeldControl struct {
	Rule    string `json:"rule"`
	Title   string `json:"title"`
	Scans   int    `json:"scans"`
	Servers int    `json:"servers"`
}

// Store is a fleet's scan history.
type Store interface {
	// PutScan records one scan in one transaction and returns its id.
	PutScan(ctx context.Context, s NewScan) (int64, error)
	// Servers lists every server with its latest scan, by name.
	Servers(ctx context.Context) ([]ServerSummary, error)
	// Scans lists a server's scans started in [from, to), oldest first;
	// a zero bound is open.
	Scans(ctx context.Context, server string, from, to time.Time) ([]Scan, error)
	// LatestScans returns up to n reached scans of a server, newest first
	// (n = 2 gives the drift pair).
	LatestScans(ctx context.Context, server string, n int) ([]Scan, error)
	// LoadScan returns a scan with its snapshot and findings.
	LoadScan(ctx context.Context, id int64) (*ScanRecord, error)
	// Findings returns a scan's finding rows in report order.
	Findings(ctx context.Context, scanID int64) ([]FindingRow, error)
	// FindingHistory follows one finding (rule, object) across a
	// server's scans.
	FindingHistory(ctx context.Context, server, rule, object string) (*History, error)
	// CommonFailures counts failing rules over each server's latest
	// reached scan started before at (zero: now), most servers first.
	CommonFailures(ctx context.Context, at time.Time, limit int) ([]RuleCount, error)
	// OpenLongerThan lists failures in latest reached scans open since
	// before now minus age, oldest first.
	OpenLongerThan(ctx context.Context, age time.Duration, now time.Time) ([]OpenFinding, error)
	// HeldControls is the auditor's evidence for scans started in [from, to).
	HeldControls(ctx context.Context, from, to time.Time) (*Evidence, error)
	// RecentScans returns each server's n latest reached scans, newest
	// first, by server name (the dashboard's trends and drift pairs).
	RecentScans(ctx context.Context, n int) (map[string][]Scan, error)
	// Tokens are the dashboard's and API's tokens (hashed).
	Tokens
	// SchemaVersion is the database's migration version.
	SchemaVersion(ctx context.Context) (int, error)
	// Backend is "sqlite" or "postgres".
	Backend() string
	Close() error
}

var (
	_ Store = (*sqliteStore)(nil)
	_ Store = (*pgStore)(nil)
)
