package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
)

func coreOf(s Store) *core {
	switch s := s.(type) {
	case *sqliteStore:
		return s.core
	case *pgStore:
		return s.core
	}
	panic(fmt.Sprintf("no core in %T", s))
}

// oracleHeld is HeldControls as it was before clean sets: it joins and
// groups every finding row of the period. The new query must answer
// exactly the same.
func oracleHeld(ctx context.Context, c *core, from, to time.Time) (*Evidence, error) {
	ev, err := c.period(ctx, from, to)
	if err != nil {
		return nil, err
	}
	d, from, to := c.d, ev.From, ev.To // to: an open end made far future
	rows, err := c.db.QueryContext(ctx, d.bind(`SELECT f.rule, MAX(f.title), SUM(f.rule_first),
		SUM(CASE WHEN f.status <> 'pass' THEN 1 ELSE 0 END)
		FROM scans s JOIN findings f ON f.scan_id = s.id
		WHERE s.status = 'ok' AND s.started_at >= ? AND s.started_at < ?
		GROUP BY f.rule ORDER BY f.rule`), d.ts(from), d.ts(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h HeldControl
		var bad int
		if err := rows.Scan(&h.Rule, &h.Title, &h.Scans, &bad); err != nil {
			return nil, err
		}
		if bad == 0 && h.Scans == ev.Scans {
			h.Servers = ev.Servers
			ev.Held = append(ev.Held, h)
		}
	}
	return ev, rows.Err()
}

var heldT0 = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

// randomHistory is a fleet's scans: few rules and mostly passes, so that
// rules hold in some windows and not in others; titles differ in case so
// that MAX(title) depends on the collation.
func randomHistory(r *rand.Rand) []NewScan {
	ruleNames := []string{"AUTH-01", "auth-02", "LOG-01", "NET-01", "TLS-01", "Tls-02"}
	titles := []string{"a", "B", "b", "Ä title", ""}
	statuses := []rules.Status{rules.Fail, rules.Waived, rules.NotChecked}
	var out []NewScan
	servers := 1 + r.IntN(5)
	span := time.Duration(1+r.IntN(10)) * 24 * time.Hour
	for srv := range servers {
		for range r.IntN(12) {
			// Whole minutes, so that windows often fall on a scan's start.
			at := heldT0.Add(time.Duration(r.Int64N(int64(span/time.Minute))) * time.Minute)
			in := NewScan{Server: fmt.Sprintf("s%d", srv), StartedAt: at, Status: OK}
			if r.IntN(5) == 0 {
				in.Status = []Status{Unreachable, Timeout, Error}[r.IntN(3)]
			}
			if in.Status == OK || r.IntN(3) == 0 {
				for _, rule := range ruleNames {
					if r.IntN(8) == 0 {
						continue // absent from this scan
					}
					for range 1 + r.IntN(3)*r.IntN(2) {
						f := rules.Finding{Rule: rule, Status: rules.Pass, Title: titles[r.IntN(len(titles))], Object: fmt.Sprint(r.IntN(3))}
						if r.IntN(15) == 0 {
							f.Status = statuses[r.IntN(len(statuses))]
						}
						in.Findings = append(in.Findings, f)
					}
				}
				r.Shuffle(len(in.Findings), func(i, j int) { in.Findings[i], in.Findings[j] = in.Findings[j], in.Findings[i] })
			}
			out = append(out, in)
		}
	}
	return out
}

// randomWindows are periods over the history: on scan starts (the
// boundaries of [from, to)), anywhere, empty, reversed and unbounded.
func randomWindows(r *rand.Rand, h []NewScan) [][2]time.Time {
	pick := func() time.Time {
		switch {
		case len(h) > 0 && r.IntN(2) == 0:
			return h[r.IntN(len(h))].StartedAt
		case r.IntN(10) == 0:
			return time.Time{}
		default:
			return heldT0.Add(time.Duration(r.Int64N(int64(12*24*time.Hour))) - 24*time.Hour)
		}
	}
	var ws [][2]time.Time
	for range 12 {
		a, b := pick(), pick()
		if b.Before(a) && r.IntN(4) != 0 {
			a, b = b, a
		}
		ws = append(ws, [2]time.Time{a, b})
	}
	return ws
}

func checkHeld(t *testing.T, s Store, ws [][2]time.Time, want []*Evidence) {
	t.Helper()
	ctx := pgtest.Ctx(t)
	for i, w := range ws {
		got, err := s.HeldControls(ctx, w[0], w[1])
		if err != nil {
			t.Fatalf("HeldControls(%v, %v): %v", w[0], w[1], err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("HeldControls(%v, %v):\n got %+v\nwant %+v", w[0], w[1], got, want[i])
		}
	}
}

func oracleAll(t *testing.T, s Store, ws [][2]time.Time) []*Evidence {
	t.Helper()
	var out []*Evidence
	for _, w := range ws {
		ev, err := oracleHeld(pgtest.Ctx(t), coreOf(s), w[0], w[1])
		if err != nil {
			t.Fatalf("oracle: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

// TestHeldControlsOracle compares HeldControls with the finding-row query
// it replaced over random histories and windows.
func TestHeldControlsOracle(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		n := 150
		if b.name == "postgres" {
			n = 40 // a database per history
		}
		held := 0
		for seed := range n {
			r := rand.New(rand.NewPCG(uint64(seed), 4))
			s := open(t, b.newURL(t))
			h := randomHistory(r)
			for _, in := range h {
				if _, err := s.PutScan(pgtest.Ctx(t), in); err != nil {
					t.Fatal(err)
				}
			}
			ws := randomWindows(r, h)
			want := oracleAll(t, s, ws)
			for _, ev := range want {
				held += len(ev.Held)
			}
			checkHeld(t, s, ws, want)
			s.Close()
		}
		// The histories must exercise both answers.
		if held == 0 {
			t.Fatalf("no window held any rule: the test proves nothing")
		}
		t.Logf("%d histories, %d held controls compared", n, held)
	})
}

// putScanV3 writes a scan as pgaegis at schema version 3 did: the scan
// row and finding rows, no clean set.
func putScanV3(ctx context.Context, db *sql.DB, d *dialect, in NewScan) error {
	var serverID, scanID int64
	if err := db.QueryRowContext(ctx, d.bind(`INSERT INTO servers (name, labels, created_at) VALUES (?, '{}', ?)
		ON CONFLICT (name) DO UPDATE SET labels = excluded.labels RETURNING id`), in.Server, d.ts(heldT0)).Scan(&serverID); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, d.bind(`INSERT INTO scans (server_id, started_at, finished_at, status) VALUES (?, ?, ?, ?) RETURNING id`),
		serverID, d.ts(in.StartedAt), d.ts(in.StartedAt), string(in.Status)).Scan(&scanID); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, f := range in.Findings {
		first := 0
		if !seen[f.Rule] {
			seen[f.Rule], first = true, 1
		}
		if _, err := db.ExecContext(ctx, d.bind(`INSERT INTO findings (scan_id, ord, server_id, rule, status, severity, title, started_at, rule_first)
			VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)`), scanID, i, serverID, f.Rule, string(f.Status), f.Title, d.ts(in.StartedAt), first); err != nil {
			return err
		}
	}
	return nil
}

// TestHeldControlsAfterMigration: a store left at version 3 with history
// is migrated to 4, and the backfilled clean sets answer as the finding
// rows did before the migration; new scans then add to them.
func TestHeldControlsAfterMigration(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := pgtest.Ctx(t)
		for seed := range 8 {
			r := rand.New(rand.NewPCG(uint64(seed), 5))
			url := b.newURL(t)
			old, err := openAt(ctx, url, 3)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := old.SchemaVersion(ctx); err != nil || v != 3 {
				t.Fatalf("old store at version %d (%v), want 3", v, err)
			}
			h := randomHistory(r)
			for _, in := range h {
				if err := putScanV3(ctx, rawDB(old), coreOf(old).d, in); err != nil {
					t.Fatal(err)
				}
			}
			ws := randomWindows(r, h)
			want := oracleAll(t, old, ws)
			old.Close()

			s := open(t, url)
			if v, err := s.SchemaVersion(ctx); err != nil || v != Latest() || v < 4 {
				t.Fatalf("migrated store at version %d (%v)", v, err)
			}
			checkHeld(t, s, ws, want)
			// Scans written after the migration join the backfilled ones.
			more := randomHistory(r)
			for _, in := range more {
				if _, err := s.PutScan(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			ws = randomWindows(r, append(h, more...))
			checkHeld(t, s, ws, oracleAll(t, s, ws))
			s.Close()
		}
	})
}
