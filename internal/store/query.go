package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pgaegis/pgaegis/internal/rules"
)

// scanCols selects a scan row (alias a) and its server's name (alias v).
func scanCols(a, v string) string {
	return fmt.Sprintf(`%[1]s.id, %[2]s.name, %[1]s.labels, %[1]s.started_at, %[1]s.finished_at, %[1]s.status, %[1]s.message,
		%[1]s.tool_version, %[1]s.server_version, %[1]s.fail_critical, %[1]s.fail_high, %[1]s.fail_medium, %[1]s.fail_low,
		%[1]s.fail_info, %[1]s.pass, %[1]s.not_checked, %[1]s.waived`, a, v)
}

// scanDest reads what scanCols selects; NULL everywhere (an outer join
// with no scan) leaves ok false.
type scanDest struct {
	id                         sql.NullInt64
	name, labels, status, msg  sql.NullString
	tool, server               sql.NullString
	started, finished          dbTime
	crit, high, med, low, info sql.NullInt64
	pass, notChecked, waived   sql.NullInt64
}

func (s *scanDest) ptrs() []any {
	return []any{&s.id, &s.name, &s.labels, &s.started, &s.finished, &s.status, &s.msg, &s.tool, &s.server,
		&s.crit, &s.high, &s.med, &s.low, &s.info, &s.pass, &s.notChecked, &s.waived}
}

func (s *scanDest) scan() (*Scan, error) {
	if !s.id.Valid {
		return nil, nil
	}
	sc := &Scan{ID: s.id.Int64, Server: s.name.String, StartedAt: s.started.t, FinishedAt: s.finished.t,
		Status: Status(s.status.String), Message: s.msg.String, ToolVersion: s.tool.String, ServerVersion: s.server.String}
	if err := decodeLabels(s.labels.String, &sc.Labels); err != nil {
		return nil, err
	}
	sev := map[string]int{}
	for name, n := range map[string]sql.NullInt64{"critical": s.crit, "high": s.high, "medium": s.med, "low": s.low, "info": s.info} {
		if n.Int64 > 0 {
			sev[name] = int(n.Int64)
			sc.Counts.Fail += int(n.Int64)
		}
	}
	sc.Counts.FailBySeverity = sev
	sc.Counts.Pass, sc.Counts.NotChecked, sc.Counts.Waived = int(s.pass.Int64), int(s.notChecked.Int64), int(s.waived.Int64)
	return sc, nil
}

func decodeLabels(s string, l *map[string]string) error {
	if s == "" || s == "{}" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), l); err != nil {
		return fmt.Errorf("store: labels: %w", err)
	}
	return nil
}

// latestScanSQL picks a server's (alias sv) latest scan id; ok limits it
// to reached scans.
func latestScanSQL(ok bool, before string) string {
	cond := ""
	if ok {
		cond = " AND status = 'ok'"
	}
	if before != "" {
		cond += " AND started_at < " + before
	}
	return `(SELECT id FROM scans WHERE server_id = sv.id` + cond + ` ORDER BY started_at DESC, id DESC LIMIT 1)`
}

func (c *core) Servers(ctx context.Context) ([]ServerSummary, error) {
	q := `SELECT sv.name, sv.labels, ` + scanCols("l", "sv") + `, ` + scanCols("o", "sv") + ` FROM servers sv
		LEFT JOIN scans l ON l.id = ` + latestScanSQL(false, "") + `
		LEFT JOIN scans o ON o.id = ` + latestScanSQL(true, "") + `
		ORDER BY sv.name`
	rows, err := c.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: servers: %w", err)
	}
	defer rows.Close()
	var out []ServerSummary
	for rows.Next() {
		var s ServerSummary
		var labels string
		var l, o scanDest
		if err := rows.Scan(append(append([]any{&s.Name, &labels}, l.ptrs()...), o.ptrs()...)...); err != nil {
			return nil, err
		}
		if err := decodeLabels(labels, &s.Labels); err != nil {
			return nil, err
		}
		if s.Latest, err = l.scan(); err != nil {
			return nil, err
		}
		if s.LatestOK, err = o.scan(); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// serverID finds a server by name.
func (c *core) serverID(ctx context.Context, name string) (int64, error) {
	var id int64
	err := c.db.QueryRowContext(ctx, c.d.bind(`SELECT id FROM servers WHERE name = ?`), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: server %q: %w", name, ErrNotFound)
	}
	return id, err
}

func (c *core) queryScans(ctx context.Context, q string, args ...any) ([]Scan, error) {
	rows, err := c.db.QueryContext(ctx, c.d.bind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: scans: %w", err)
	}
	defer rows.Close()
	var out []Scan
	for rows.Next() {
		var d scanDest
		if err := rows.Scan(d.ptrs()...); err != nil {
			return nil, err
		}
		s, err := d.scan()
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, rows.Err()
}

func (c *core) Scans(ctx context.Context, server string, from, to time.Time) ([]Scan, error) {
	id, err := c.serverID(ctx, server)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + scanCols("s", "sv") + ` FROM scans s JOIN servers sv ON sv.id = s.server_id WHERE s.server_id = ?`
	args := []any{id}
	if !from.IsZero() {
		q += ` AND s.started_at >= ?`
		args = append(args, c.d.ts(from))
	}
	if !to.IsZero() {
		q += ` AND s.started_at < ?`
		args = append(args, c.d.ts(to))
	}
	return c.queryScans(ctx, q+` ORDER BY s.started_at, s.id`, args...)
}

func (c *core) LatestScans(ctx context.Context, server string, n int) ([]Scan, error) {
	id, err := c.serverID(ctx, server)
	if err != nil {
		return nil, err
	}
	return c.queryScans(ctx, `SELECT `+scanCols("s", "sv")+` FROM scans s JOIN servers sv ON sv.id = s.server_id
		WHERE s.server_id = ? AND s.status = 'ok' ORDER BY s.started_at DESC, s.id DESC LIMIT ?`, id, n)
}

func (c *core) LoadScan(ctx context.Context, id int64) (*ScanRecord, error) {
	var d scanDest
	var snap, finds []byte
	err := c.db.QueryRowContext(ctx, c.d.bind(`SELECT `+scanCols("s", "sv")+`, s.snapshot, s.findings
		FROM scans s JOIN servers sv ON sv.id = s.server_id WHERE s.id = ?`), id).Scan(append(d.ptrs(), &snap, &finds)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: scan %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: scan %d: %w", id, err)
	}
	s, err := d.scan()
	if err != nil {
		return nil, err
	}
	r := &ScanRecord{Scan: *s}
	if snap != nil {
		if err := unpackJSON(snap, &r.Snapshot); err != nil {
			return nil, fmt.Errorf("store: scan %d snapshot: %w", id, err)
		}
	}
	if finds != nil {
		if err := unpackJSON(finds, &r.Findings); err != nil {
			return nil, fmt.Errorf("store: scan %d findings: %w", id, err)
		}
	}
	return r, nil
}

const findingCols = `f.scan_id, f.rule, f.status, f.severity, f.area, f.title, f.object, f.location, f.evidence, f.open_since`

func scanFinding(rows *sql.Rows, extra ...any) (FindingRow, error) {
	var f FindingRow
	var status string
	var sev int
	var since dbTime
	err := rows.Scan(append([]any{&f.ScanID, &f.Rule, &status, &sev, &f.Area, &f.Title, &f.Object, &f.Location, &f.Evidence, &since}, extra...)...)
	f.Status, f.Severity, f.OpenSince = rules.Status(status), rules.Severity(sev), since.t
	return f, err
}

func (c *core) Findings(ctx context.Context, scanID int64) ([]FindingRow, error) {
	rows, err := c.db.QueryContext(ctx, c.d.bind(`SELECT `+findingCols+` FROM findings f WHERE f.scan_id = ? ORDER BY f.ord`), scanID)
	if err != nil {
		return nil, fmt.Errorf("store: findings of scan %d: %w", scanID, err)
	}
	defer rows.Close()
	var out []FindingRow
	for rows.Next() {
		f, err := scanFinding(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func (c *core) FindingHistory(ctx context.Context, server, rule, object string) (*History, error) {
	id, err := c.serverID(ctx, server)
	if err != nil {
		return nil, err
	}
	// One row per scan; a scan with several findings of this rule and
	// object (there should be none) reports its worst status first.
	rows, err := c.db.QueryContext(ctx, c.d.bind(`SELECT s.id, s.started_at, s.status, f.status, f.severity
		FROM scans s LEFT JOIN findings f ON f.scan_id = s.id AND f.rule = ? AND f.object = ?
		WHERE s.server_id = ? ORDER BY s.started_at, s.id, f.ord`), rule, object, id)
	if err != nil {
		return nil, fmt.Errorf("store: history of %s %s: %w", rule, object, err)
	}
	defer rows.Close()
	h := &History{Server: server, Rule: rule, Object: object}
	for rows.Next() {
		var p HistoryPoint
		var at dbTime
		var scanStatus string
		var st sql.NullString
		var sev sql.NullInt64
		if err := rows.Scan(&p.ScanID, &at, &scanStatus, &st, &sev); err != nil {
			return nil, err
		}
		p.At, p.ScanStatus, p.Status, p.Severity = at.t, Status(scanStatus), rules.Status(st.String), rules.Severity(sev.Int64)
		if n := len(h.Points); n > 0 && h.Points[n-1].ScanID == p.ScanID {
			if p.Status == rules.Fail {
				h.Points[n-1] = p
			}
			continue
		}
		h.Points = append(h.Points, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	h.settle()
	return h, nil
}

// settle derives first/last seen, open and fixed from the points.
func (h *History) settle() {
	for _, p := range h.Points {
		if p.ScanStatus != OK {
			continue // an unreached server proves nothing either way
		}
		if p.Status == rules.Fail {
			if h.FirstSeen.IsZero() {
				h.FirstSeen = p.At
			}
			h.LastSeen, h.Open, h.FixedAt = p.At, true, time.Time{}
			continue
		}
		if h.Open {
			h.Open, h.FixedAt = false, p.At
		}
	}
}
