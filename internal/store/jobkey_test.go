package store

import (
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// A queue job's scan is recorded once, however often (and however
// concurrently) its worker writes it.
func TestPutScanJobKeyOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := pgtest.Ctx(t)
		s := open(t, b.newURL(t))
		start := time.Now().UTC().Truncate(time.Second)
		first, err := s.PutScan(ctx, NewScan{Server: "db1", StartedAt: start, Status: OK, JobKey: "job-7"})
		if err != nil {
			t.Fatal(err)
		}
		// Concurrent rewrites of the same job, and plain scans beside them.
		var wg sync.WaitGroup
		ids := make([]int64, 8)
		errs := make([]error, 8)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := "job-7"
				if i%2 == 1 {
					key = ""
				}
				ids[i], errs[i] = s.PutScan(ctx, NewScan{Server: "db1", StartedAt: start.Add(time.Duration(i+1) * time.Second),
					Status: Unreachable, JobKey: key})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			if i%2 == 0 && ids[i] != first {
				t.Errorf("rewrite %d of job-7 returned scan %d, want the first one %d", i, ids[i], first)
			}
		}
		// ORACLE: the database counts the rows.
		var withKey, all int
		db := rawDB(s)
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scans WHERE job_key = 'job-7'`).Scan(&withKey); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scans`).Scan(&all); err != nil {
			t.Fatal(err)
		}
		if withKey != 1 || all != 5 {
			t.Fatalf("scans: %d with job-7 (want 1), %d in all (want 5: one per job, plus 4 without a job)", withKey, all)
		}
		got, err := s.LoadScan(ctx, first)
		if err != nil || got.Status != OK {
			t.Fatalf("the first write stands: %+v, %v", got, err)
		}
	})
}
