package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/rules"
)

// benchSize reads "SERVERSxSCANSxFINDINGS" from env, else def.
func benchSize(b *testing.B, env string, def [3]int) [3]int {
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	var n [3]int
	if _, err := fmt.Sscanf(v, "%dx%dx%d", &n[0], &n[1], &n[2]); err != nil {
		b.Fatalf("%s=%q: want SERVERSxSCANSxFINDINGS", env, v)
	}
	return n
}

// benchFindings is scan k of server s: rules whose failures come and go
// over time, so that history and open-since have something to follow.
func benchFindings(s, k, n int) []rules.Finding {
	fs := make([]rules.Finding, n)
	for i := range fs {
		st := rules.Pass
		switch {
		case (i+s)%7 == 0:
			st = rules.Fail // always failing
		case i%10 == 3 && (s+k/10+i)%3 == 0:
			st = rules.Fail // fails for ten scans out of thirty
		case i%50 == 49:
			st = rules.NotChecked
		}
		fs[i] = rules.Finding{Rule: fmt.Sprintf("R-%03d", i), Status: st, Severity: rules.Severity(i % 5), Title: "rule " + fmt.Sprint(i),
			Area: rules.AreaRoles, Object: fmt.Sprintf("role r%d", i%20), Evidence: fmt.Sprintf("evidence %d on server %d", i, s)}
	}
	return fs
}

// generate writes servers × scans (one a day) × findings through PutScan,
// the write path fleet scans use.
func generate(b *testing.B, s Store, size [3]int) time.Time {
	ctx := context.Background()
	start := time.Now()
	for k := range size[1] {
		for srv := range size[0] {
			at := t0.Add(time.Duration(k)*24*time.Hour + time.Duration(srv)*time.Second)
			in := NewScan{Server: fmt.Sprintf("server-%04d", srv), Labels: map[string]string{"env": "prod", "team": fmt.Sprint(srv % 10)},
				StartedAt: at, FinishedAt: at.Add(5 * time.Second), Status: OK, Findings: benchFindings(srv, k, size[2])}
			if (srv+k)%97 == 0 {
				in.Status, in.Message, in.Findings = Timeout, "timed out after 30s", nil
			}
			if _, err := s.PutScan(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	}
	el := time.Since(start)
	b.Logf("generated %d servers × %d scans × %d findings in %v (%.0f scans/s)", size[0], size[1], size[2], el.Round(time.Second),
		float64(size[0]*size[1])/el.Seconds())
	return t0.Add(time.Duration(size[1]) * 24 * time.Hour)
}

func benchQueries(b *testing.B, s Store, size [3]int, end time.Time) {
	ctx := context.Background()
	mid := fmt.Sprintf("server-%04d", size[0]/2)
	run := func(name string, fn func() error) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("Servers", func() error { _, err := s.Servers(ctx); return err })
	run("ScansLast30Days", func() error { _, err := s.Scans(ctx, mid, end.Add(-30*24*time.Hour), end); return err })
	run("DriftPair", func() error {
		p, err := s.LatestScans(ctx, mid, 2)
		if err == nil && len(p) == 2 {
			_, err = s.Findings(ctx, p[1].ID)
		}
		return err
	})
	run("FindingHistory", func() error { _, err := s.FindingHistory(ctx, mid, "R-003", "role r3"); return err })
	run("CommonFailures", func() error { _, err := s.CommonFailures(ctx, time.Time{}, 20); return err })
	run("OpenLongerThan30Days", func() error { _, err := s.OpenLongerThan(ctx, 30*24*time.Hour, end); return err })
	run("HeldControls7Days", func() error { _, err := s.HeldControls(ctx, end.Add(-7*24*time.Hour), end); return err })
	// A quarter, what fleet reports ask for.
	run("HeldControls90Days", func() error { _, err := s.HeldControls(ctx, end.Add(-90*24*time.Hour), end); return err })
	if os.Getenv("PGAEGIS_STORE_BENCH_OLD") != "" {
		// The finding-row query HeldControls replaced, for comparison on
		// the same store (slow: seconds to minutes an op at full size).
		for _, days := range []int{7, 90} {
			run(fmt.Sprintf("HeldControlsOld%dDays", days), func() error {
				_, err := oracleHeld(ctx, coreOf(s), end.Add(-time.Duration(days)*24*time.Hour), end)
				return err
			})
		}
	}
}

// BenchmarkSQLite: 1,000 servers × 100 scans × 200 findings by default
// (PGAEGIS_STORE_BENCH_SQLITE=SxNxF to change it; generation takes long:
// set PGAEGIS_STORE_BENCH_FILE to keep the file and reuse it).
func BenchmarkSQLite(b *testing.B) {
	size := benchSize(b, "PGAEGIS_STORE_BENCH_SQLITE", [3]int{1000, 100, 200})
	path := os.Getenv("PGAEGIS_STORE_BENCH_FILE")
	reuse := false
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	} else if _, err := os.Stat(path); err == nil {
		reuse = true
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	end := t0.Add(time.Duration(size[1]) * 24 * time.Hour)
	if !reuse {
		end = generate(b, s, size)
	}
	if st, err := os.Stat(path); err == nil {
		b.Logf("store file: %d MB", st.Size()>>20)
	}
	benchQueries(b, s, size, end)
}

// BenchmarkPostgres: 100 servers × 20 scans × 200 findings by default
// (PGAEGIS_STORE_BENCH_PG) in a fresh database of a throwaway server.
func BenchmarkPostgres(b *testing.B) {
	size := benchSize(b, "PGAEGIS_STORE_BENCH_PG", [3]int{100, 20, 200})
	url := backends()[1].newURL(b)
	s, err := Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	end := generate(b, s, size)
	// What autovacuum would have done by the time anyone looks.
	if _, err := rawDB(s).Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	benchQueries(b, s, size, end)
}
