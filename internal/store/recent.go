package store

import (
	"context"
	"fmt"
)

// RecentScans returns each server's n latest reached scans, newest first,
// by server name: the dashboard's scores, trends and drift pairs in one
// query instead of one per server. The window runs over the
// (server_id, status, started_at, id) index alone; only the chosen
// scans' rows are read.
func (c *core) RecentScans(ctx context.Context, n int) (map[string][]Scan, error) {
	if n < 1 {
		n = 1
	}
	q := `SELECT ` + scanCols("s", "sv") + ` FROM scans s JOIN servers sv ON sv.id = s.server_id
		WHERE s.id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY server_id ORDER BY started_at DESC, id DESC) AS rn
			FROM scans WHERE status = 'ok') w WHERE rn <= ?)
		ORDER BY sv.name, s.started_at DESC, s.id DESC`
	scans, err := c.queryScans(ctx, q, n)
	if err != nil {
		return nil, fmt.Errorf("store: recent scans: %w", err)
	}
	out := map[string][]Scan{}
	for _, s := range scans {
		out[s.Server] = append(out[s.Server], s)
	}
	return out, nil
}
