package queue

import (
	"time"

	"github.com/pgaegis/pgaegis/internal/inventory"
)

// DefaultCatchUp is how long ago a slot may have fired and still be run
// by a scheduler that was not running then.
const DefaultCatchUp = time.Hour

// maxSteps bounds the walk back to the latest slot (a schedule firing
// every minute over a 24 h catch-up window is 1,440 steps).
const maxSteps = 100000

// DueSlots returns, for each server with a schedule, the latest slot
// fired in (now-catchUp, now] (to run at once) and the next slot after
// now (queued ahead, to run at its time). Every scheduler computes the
// same slots, so queueing them twice adds nothing.
func DueSlots(inv *inventory.Inventory, now time.Time, catchUp time.Duration) []Slot {
	var out []Slot
	for _, s := range inv.Servers {
		if s.Schedule == nil {
			continue
		}
		if prev := latest(s.Schedule, now, catchUp); !prev.IsZero() {
			out = append(out, Slot{Server: s.Name, At: prev})
		}
		if next := s.Schedule.Next(now); !next.IsZero() {
			out = append(out, Slot{Server: s.Name, At: next})
		}
	}
	return out
}

// latest is the schedule's last firing in (now-window, now], zero if none.
func latest(sc *inventory.Schedule, now time.Time, window time.Duration) time.Time {
	if window <= 0 {
		return time.Time{}
	}
	var found time.Time
	t := now.Add(-window)
	for range maxSteps {
		n := sc.Next(t)
		if n.IsZero() || n.After(now) {
			break
		}
		found, t = n, n
	}
	return found
}
