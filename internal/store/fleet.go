package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/rules"
)

// farFuture stands for "no upper bound" in time comparisons.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// latestOK returns each server's latest reached scan started before
// at, as an SQL list of ids ("" when there is none). The ids come first
// and the findings query names them, so both planners probe the findings
// key scan by scan; a join against a correlated subquery let PostgreSQL
// choose a scan of every finding.
func (c *core) latestOK(ctx context.Context, at time.Time) (string, error) {
	rows, err := c.db.QueryContext(ctx, c.d.bind(`SELECT (SELECT id FROM scans WHERE server_id = sv.id AND status = 'ok' AND started_at < ?
		ORDER BY started_at DESC, id DESC LIMIT 1) FROM servers sv`), c.d.ts(at))
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id sql.NullInt64
		if err := rows.Scan(&id); err != nil {
			return "", err
		}
		if !id.Valid {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id.Int64, 10)) // an integer from the database: nothing to quote
	}
	return b.String(), rows.Err()
}

func (c *core) CommonFailures(ctx context.Context, at time.Time, limit int) ([]RuleCount, error) {
	if at.IsZero() {
		at = farFuture
	}
	if limit <= 0 {
		limit = 20
	}
	ids, err := c.latestOK(ctx, at)
	if err != nil || ids == "" {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, c.d.bind(`SELECT f.rule, MAX(f.title), MAX(f.severity), COUNT(DISTINCT f.server_id), COUNT(*)
		FROM findings f WHERE f.scan_id IN (`+ids+`) AND f.status = 'fail'
		GROUP BY f.rule ORDER BY COUNT(DISTINCT f.server_id) DESC, MAX(f.severity) DESC, f.rule LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("store: common failures: %w", err)
	}
	defer rows.Close()
	var out []RuleCount
	for rows.Next() {
		var r RuleCount
		var sev int
		if err := rows.Scan(&r.Rule, &r.Title, &sev, &r.Servers, &r.Findings); err != nil {
			return nil, err
		}
		r.Severity = rules.Severity(sev)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (c *core) OpenLongerThan(ctx context.Context, age time.Duration, now time.Time) ([]OpenFinding, error) {
	if now.IsZero() {
		now = time.Now()
	}
	ids, err := c.latestOK(ctx, farFuture)
	if err != nil || ids == "" {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, c.d.bind(`SELECT `+findingCols+`, sv.name
		FROM findings f JOIN servers sv ON sv.id = f.server_id
		WHERE f.scan_id IN (`+ids+`) AND f.status = 'fail' AND f.open_since < ?
		ORDER BY f.open_since, sv.name, f.rule, f.object`), c.d.ts(now.Add(-age)))
	if err != nil {
		return nil, fmt.Errorf("store: open findings: %w", err)
	}
	defer rows.Close()
	var out []OpenFinding
	for rows.Next() {
		var o OpenFinding
		var err error
		if o.FindingRow, err = scanFinding(rows, &o.Server); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// period counts the scans of [from, to) for the evidence: reached ones,
// the servers they reached, unreached ones.
func (c *core) period(ctx context.Context, from, to time.Time) (*Evidence, error) {
	if to.IsZero() {
		to = farFuture
	}
	ev := &Evidence{From: from, To: to}
	d := c.d
	err := c.db.QueryRowContext(ctx, d.bind(`SELECT COALESCE(SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END), 0),
		COUNT(DISTINCT CASE WHEN status = 'ok' THEN server_id END),
		COALESCE(SUM(CASE WHEN status <> 'ok' THEN 1 ELSE 0 END), 0)
		FROM scans WHERE started_at >= ? AND started_at < ?`), d.ts(from), d.ts(to)).Scan(&ev.Scans, &ev.Servers, &ev.Unreached)
	if err != nil {
		return nil, fmt.Errorf("store: evidence: %w", err)
	}
	return ev, nil
}

// HeldControls reads the clean sets of the period's reached scans: a
// rule held when every one of those scans had it in its clean set
// (decided, nothing but pass), which is the same as "in every reached
// scan and never anything but pass" over the finding rows, without
// reading them. Scans share sets, so the work follows the number of
// distinct sets, not findings.
func (c *core) HeldControls(ctx context.Context, from, to time.Time) (*Evidence, error) {
	ev, err := c.period(ctx, from, to)
	if err != nil {
		return nil, err
	}
	d, from, to := c.d, ev.From, ev.To // to: an open end made far future
	if ev.Scans == 0 {
		return ev, nil
	}
	rows, err := c.db.QueryContext(ctx, d.bind(`SELECT DISTINCT clean_set FROM scans
		WHERE started_at >= ? AND started_at < ? AND status = 'ok'`), d.ts(from), d.ts(to))
	if err != nil {
		return nil, fmt.Errorf("store: evidence: %w", err)
	}
	var b strings.Builder
	sets := 0
	for rows.Next() {
		var id sql.NullInt64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		if !id.Valid {
			// Every reached scan gets a set when written or migrated.
			rows.Close()
			return nil, fmt.Errorf("store: evidence: a reached scan has no clean set")
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id.Int64, 10)) // an integer from the database: nothing to quote
		sets++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = c.db.QueryContext(ctx, d.bind(`SELECT rule, MAX(title) FROM clean_set_rules
		WHERE set_id IN (`+b.String()+`) GROUP BY rule HAVING COUNT(DISTINCT set_id) = ? ORDER BY rule`), sets)
	if err != nil {
		return nil, fmt.Errorf("store: evidence: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		h := HeldControl{Scans: ev.Scans, Servers: ev.Servers}
		if err := rows.Scan(&h.Rule, &h.Title); err != nil {
			return nil, err
		}
		ev.Held = append(ev.Held, h)
	}
	return ev, rows.Err()
}
