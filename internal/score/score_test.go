package score

import (
	"testing"

	"github.com/pgaegis/pgaegis/internal/store"
)

func TestOf(t *testing.T) {
	for _, c := range []struct {
		name   string
		counts store.Counts
		want   int
		ok     bool
	}{
		{"nothing decided", store.Counts{}, 0, false},
		{"only not checked", store.Counts{NotChecked: 7}, 0, false},
		{"all pass", store.Counts{Pass: 40}, 100, true},
		{"waived counts as passing", store.Counts{Waived: 3}, 100, true},
		{"one critical among 90", store.Counts{Pass: 90, FailBySeverity: map[string]int{"critical": 1}}, 90, true},
		{"one critical alone", store.Counts{FailBySeverity: map[string]int{"critical": 1}}, 0, true},
		{"mixed", store.Counts{Pass: 80, FailBySeverity: map[string]int{"critical": 1, "high": 1, "medium": 1}}, 82, true}, // 80/97
		{"info costs nothing", store.Counts{Pass: 10, FailBySeverity: map[string]int{"info": 5}}, 100, true},
		{"just under 100 rounds down", store.Counts{Pass: 999, FailBySeverity: map[string]int{"low": 1}}, 99, true},
		{"unknown severity costs nothing", store.Counts{Pass: 10, FailBySeverity: map[string]int{"bogus": 5}}, 100, true},
	} {
		got, ok := Of(c.counts)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: Of = %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// A worse scan never scores higher: one more failure of any weighted
// severity lowers or keeps the score, one more pass raises or keeps it.
func TestOfMonotone(t *testing.T) {
	for pass := 0; pass < 30; pass++ {
		for crit := 0; crit < 4; crit++ {
			for low := 0; low < 4; low++ {
				c := store.Counts{Pass: pass, FailBySeverity: map[string]int{"critical": crit, "low": low}}
				s, ok := Of(c)
				if !ok {
					continue
				}
				worse := store.Counts{Pass: pass, FailBySeverity: map[string]int{"critical": crit, "low": low + 1}}
				if w, _ := Of(worse); w > s {
					t.Fatalf("%+v scores %d, one more low failure %d", c, s, w)
				}
				better := store.Counts{Pass: pass + 1, FailBySeverity: c.FailBySeverity}
				if b, _ := Of(better); b < s {
					t.Fatalf("%+v scores %d, one more pass %d", c, s, b)
				}
			}
		}
	}
}
