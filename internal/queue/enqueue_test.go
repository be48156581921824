package queue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/store"
)

func loadInventory(t *testing.T, yaml string) *inventory.Inventory {
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// Two schedulers computing the same slots queue each once, and an ad hoc
// scan is queued once until it finishes.
// ORACLE: river's job table in PostgreSQL.
func TestEnqueueOncePerSlot(t *testing.T) {
	ctx := pgtest.Ctx(t)
	url := storeURL(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	q1, err := Open(ctx, url, st)
	if err != nil {
		t.Fatal(err)
	}
	defer q1.Close()
	q2, err := Open(ctx, url, st)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	inv := loadInventory(t, `servers:
  - name: hourly
    conninfo: host=127.0.0.1 dbname=postgres
    schedule: "@hourly"
  - name: six
    conninfo: host=127.0.0.1 dbname=postgres
    schedule: every 6h
  - name: manual
    conninfo: host=127.0.0.1 dbname=postgres
`)
	now := time.Date(2026, 12, 3, 18, 30, 0, 0, time.UTC)
	slots := DueSlots(inv, now, DefaultCatchUp)
	want := []Slot{
		{"hourly", now.Truncate(time.Hour)}, {"hourly", now.Truncate(time.Hour).Add(time.Hour)},
		{"six", time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)}, // 18:00 is within the hour, see below
	}
	// every 6h fires at 18:00, which is within the 1 h catch-up window.
	want = append(want[:2], Slot{"six", time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)}, want[2])
	if len(slots) != len(want) {
		t.Fatalf("DueSlots = %v, want %v", slots, want)
	}
	for i := range want {
		if slots[i].Server != want[i].Server || !slots[i].At.Equal(want[i].At) {
			t.Fatalf("DueSlots[%d] = %v, want %v", i, slots[i], want[i])
		}
	}
	first, err := q1.EnqueueSlots(ctx, slots)
	if err != nil {
		t.Fatal(err)
	}
	again, err := q2.EnqueueSlots(ctx, DueSlots(inv, now.Add(time.Minute), DefaultCatchUp))
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if first[i].Duplicate || !again[i].Duplicate || again[i].JobID != first[i].JobID {
			t.Errorf("slot %v: first %+v, again %+v: want queued once", slots[i], first[i], again[i])
		}
	}
	for range 2 {
		if _, err := q2.Enqueue(ctx, []string{"manual", "hourly"}); err != nil {
			t.Fatal(err)
		}
	}
	db := oracle(t, url)
	if n := count(t, db, `SELECT count(*) FROM pgaegis.river_job`); n != 6 {
		t.Errorf("%d jobs, want 6 (4 slots, 2 ad hoc)", n)
	}
	if n := count(t, db, `SELECT count(*) FROM pgaegis.river_job WHERE state = 'scheduled' AND scheduled_at > $1`, now); n != 2 {
		t.Errorf("%d jobs scheduled ahead, want the 2 next slots", n)
	}
}

func TestSQLiteStoreRefused(t *testing.T) {
	ctx := pgtest.Ctx(t)
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := Open(ctx, "fleet.db", st); !errors.Is(err, ErrNeedsPostgres) {
		t.Fatalf("Open on SQLite: %v, want ErrNeedsPostgres", err)
	}
	_, err = StartWorker(ctx, WorkerConfig{URL: "fleet.db", Store: st, Inventory: &inventory.Inventory{},
		Scan: func(ctx context.Context, srv inventory.Server) store.NewScan { return store.NewScan{} }})
	if !errors.Is(err, ErrNeedsPostgres) {
		t.Fatalf("StartWorker on SQLite: %v, want ErrNeedsPostgres", err)
	}
}
