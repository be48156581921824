package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// core is the SQL both backends share; the dialect says how they differ.
type core struct {
	db *sql.DB
	d  *dialect
}

func (c *core) Close() error { return c.db.Close() }

func (c *core) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := c.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// countFindings tallies a scan's findings for its row.
func countFindings(fs []rules.Finding) Counts {
	n := Counts{FailBySeverity: map[string]int{}}
	for _, f := range fs {
		switch f.Status {
		case rules.Fail:
			n.Fail++
			n.FailBySeverity[f.Severity.String()]++
		case rules.Pass:
			n.Pass++
		case rules.NotChecked:
			n.NotChecked++
		case rules.Waived:
			n.Waived++
		}
	}
	return n
}

type findingKey struct{ rule, object string }

// PutScan writes the server row, the scan and its finding rows in one
// transaction: a reader sees all of a scan or none of it.
func (c *core) PutScan(ctx context.Context, in NewScan) (int64, error) {
	if in.Server == "" {
		return 0, fmt.Errorf("store: a scan needs a server name")
	}
	if len(conninfo.SecretSpans(in.Server)) > 0 {
		// A name is a key: masking it would merge servers, keeping it
		// would store the password. Inventories name servers apart from
		// their connection strings.
		return 0, fmt.Errorf("store: a server name holds a password: name servers apart from their connection strings")
	}
	if !in.Status.valid() {
		return 0, fmt.Errorf("store: scan of %s: unknown status %q (want ok, unreachable, timeout or error)", in.Server, in.Status)
	}
	if in.StartedAt.IsZero() {
		return 0, fmt.Errorf("store: scan of %s: no start time", in.Server)
	}
	if in.FinishedAt.IsZero() {
		in.FinishedAt = in.StartedAt
	}
	var snapJSON, findJSON []byte
	var err error
	if in.Snapshot != nil {
		if snapJSON, err = json.Marshal(in.Snapshot); err != nil {
			return 0, fmt.Errorf("store: snapshot of %s: %w", in.Server, err)
		}
	}
	if in.Findings != nil {
		if findJSON, err = json.Marshal(in.Findings); err != nil {
			return 0, fmt.Errorf("store: findings of %s: %w", in.Server, err)
		}
	}
	snapJSON, findJSON, msg, lab, err := redactScan(snapJSON, findJSON, in.Message, in.Labels)
	if err != nil {
		return 0, fmt.Errorf("store: scan of %s: %w", in.Server, err)
	}
	labels, err := json.Marshal(lab)
	if err != nil {
		return 0, err
	}
	// The finding rows are made from the redacted copy, so that no column
	// holds what the blob hides.
	var findings []rules.Finding
	if findJSON != nil {
		if err := json.Unmarshal(findJSON, &findings); err != nil {
			return 0, err
		}
	}
	var toolVersion, serverVersion string
	if in.Snapshot != nil {
		toolVersion = conninfo.RedactDSN(in.Snapshot.ToolVersion)
		if in.Snapshot.Server != nil {
			serverVersion = conninfo.RedactDSN(in.Snapshot.Server.Version)
		}
	}
	snapBlob, findBlob := compress(snapJSON), compress(findJSON)
	n := countFindings(findings)

	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	d := c.d
	// The upsert also locks the server's row (PostgreSQL), so two writers
	// of one server take turns and each sees the other's previous scan.
	var serverID int64
	if err := tx.QueryRowContext(ctx, d.bind(`INSERT INTO servers (name, labels, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET labels = excluded.labels RETURNING id`),
		in.Server, string(labels), d.ts(time.Now())).Scan(&serverID); err != nil {
		return 0, fmt.Errorf("store: server %s: %w", in.Server, err)
	}
	var jobKey any
	if in.JobKey != "" {
		jobKey = in.JobKey
	}
	// ON CONFLICT DO NOTHING waits for a concurrent writer of the same
	// job key (PostgreSQL) and then inserts no row: the job's scan is
	// already recorded, and that one is the answer.
	// A reached scan names its clean set, what HeldControls reads
	// instead of the finding rows.
	var cleanSet any
	if in.Status == OK {
		b := newCleanSet()
		for _, f := range findings {
			b.add(f.Rule, string(f.Status), f.Title)
		}
		if cleanSet, err = putCleanSet(ctx, tx, d, b.set()); err != nil {
			return 0, fmt.Errorf("store: scan of %s: %w", in.Server, err)
		}
	}
	var scanID int64
	err = tx.QueryRowContext(ctx, d.bind(`INSERT INTO scans (server_id, labels, started_at, finished_at, status, message,
		tool_version, server_version, fail_critical, fail_high, fail_medium, fail_low, fail_info, pass, not_checked, waived, snapshot, findings, job_key, clean_set)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_key) DO NOTHING RETURNING id`),
		serverID, string(labels), d.ts(in.StartedAt), d.ts(in.FinishedAt), string(in.Status), msg,
		toolVersion, serverVersion, n.FailBySeverity["critical"], n.FailBySeverity["high"], n.FailBySeverity["medium"],
		n.FailBySeverity["low"], n.FailBySeverity["info"], n.Pass, n.NotChecked, n.Waived, snapBlob, findBlob, jobKey, cleanSet).Scan(&scanID)
	if errors.Is(err, sql.ErrNoRows) && in.JobKey != "" {
		tx.Rollback()
		if err := c.db.QueryRowContext(ctx, d.bind(`SELECT id FROM scans WHERE job_key = ?`), in.JobKey).Scan(&scanID); err != nil {
			return 0, fmt.Errorf("store: scan of %s for job %s: %w", in.Server, in.JobKey, err)
		}
		return scanID, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: scan of %s: %w", in.Server, err)
	}
	if len(findings) > 0 {
		since, err := c.openSince(ctx, tx, serverID, in.StartedAt)
		if err != nil {
			return 0, err
		}
		if err := c.insertFindings(ctx, tx, scanID, serverID, in.StartedAt, findings, since); err != nil {
			return 0, fmt.Errorf("store: findings of %s: %w", in.Server, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: scan of %s: %w", in.Server, err)
	}
	return scanID, nil
}

// openSince returns, for each failure of the server's previous reached
// scan (before at), since when it has been open: a failure that carries
// on keeps its date, a new one starts at this scan.
func (c *core) openSince(ctx context.Context, tx *sql.Tx, serverID int64, at time.Time) (map[findingKey]time.Time, error) {
	d := c.d
	rows, err := tx.QueryContext(ctx, d.bind(`SELECT f.rule, f.object, f.open_since FROM findings f
		WHERE f.scan_id = (SELECT id FROM scans WHERE server_id = ? AND status = 'ok' AND started_at < ?
			ORDER BY started_at DESC, id DESC LIMIT 1)
		AND f.status = 'fail'`), serverID, d.ts(at))
	if err != nil {
		return nil, fmt.Errorf("store: previous scan: %w", err)
	}
	defer rows.Close()
	m := map[findingKey]time.Time{}
	for rows.Next() {
		var k findingKey
		var t dbTime
		if err := rows.Scan(&k.rule, &k.object, &t); err != nil {
			return nil, err
		}
		if old, ok := m[k]; !ok || t.t.Before(old) {
			m[k] = t.t
		}
	}
	return m, rows.Err()
}

// insertBatch is how many finding rows one INSERT carries: a round trip
// per row would dominate a scan's write on PostgreSQL. 14 columns × 50
// stays far below both backends' parameter limits.
const insertBatch = 50

func (c *core) insertFindings(ctx context.Context, tx *sql.Tx, scanID, serverID int64, at time.Time, fs []rules.Finding, since map[findingKey]time.Time) error {
	d := c.d
	// Full batches share one prepared statement: parsing the long INSERT
	// again for each batch was a sixth of a scan's write on SQLite.
	var full *sql.Stmt
	if len(fs) >= insertBatch {
		var err error
		if full, err = tx.PrepareContext(ctx, d.bind(findingInsert(insertBatch))); err != nil {
			return err
		}
		defer full.Close()
	}
	args := make([]any, 0, 14*insertBatch)
	seen := map[string]bool{}
	for start := 0; start < len(fs); start += insertBatch {
		end := min(start+insertBatch, len(fs))
		args = args[:0]
		for i := start; i < end; i++ {
			f := fs[i]
			var open any
			if f.Status == rules.Fail {
				t, ok := since[findingKey{f.Rule, f.Object}]
				if !ok || t.IsZero() {
					t = at
				}
				open = d.ts(t)
			}
			first := 0
			if !seen[f.Rule] {
				seen[f.Rule], first = true, 1
			}
			args = append(args, scanID, i, serverID, f.Rule, string(f.Status), int(f.Severity), f.Area, f.Title,
				f.Object, f.Location, f.Evidence, d.ts(at), open, first)
		}
		var err error
		if end-start == insertBatch {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, d.bind(findingInsert(end-start)), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// findingInsert is an INSERT of n finding rows.
func findingInsert(n int) string {
	q := `INSERT INTO findings (scan_id, ord, server_id, rule, status, severity, area, title, object, location, evidence, started_at, open_since, rule_first) VALUES `
	for i := range n {
		if i > 0 {
			q += ", "
		}
		q += `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	}
	return q
}

// raw is the database handle, for tests that look under the API.
func (c *core) raw() *sql.DB { return c.db }

// bindq binds a query for the backend, for tests.
func (c *core) bindq(q string) string { return c.d.bind(q) }
