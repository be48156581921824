package inventory

import (
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestScheduleNext(t *testing.T) {
	for _, tc := range []struct {
		spec, from string
		want       []string // successive Next times
	}{
		{"every 6h", "2026-03-29 00:30", []string{"2026-03-29 06:00", "2026-03-29 12:00", "2026-03-29 18:00", "2026-03-30 00:00"}},
		// Strictly after: a time on the grid moves to the next one.
		{"every 6h", "2026-03-29 06:00", []string{"2026-03-29 12:00"}},
		{"every 90m", "2026-01-01 00:00", []string{"2026-01-01 01:30", "2026-01-01 03:00"}},
		{"every 7d", "2026-01-01 00:00", []string{"2026-01-08 00:00"}}, // the epoch was a Thursday
		{"every 1m", "2026-12-31 23:59", []string{"2027-01-01 00:00"}},
		{"*/15 * * * *", "2026-05-01 10:07", []string{"2026-05-01 10:15", "2026-05-01 10:30", "2026-05-01 10:45", "2026-05-01 11:00"}},
		{"30 2 * * *", "2026-03-29 02:30", []string{"2026-03-30 02:30"}},
		// UTC: the European DST change at 01:00 UTC on 2026-03-29 and the
		// US one on 2026-03-08 leave every hour in place.
		{"0 * * * *", "2026-03-29 00:10", []string{"2026-03-29 01:00", "2026-03-29 02:00", "2026-03-29 03:00"}},
		{"0 2 * * *", "2026-03-07 12:00", []string{"2026-03-08 02:00", "2026-03-09 02:00"}},
		{"0 0 29 2 *", "2026-01-01 00:00", []string{"2028-02-29 00:00", "2032-02-29 00:00"}},
		{"0 0 31 * *", "2026-04-01 00:00", []string{"2026-05-31 00:00", "2026-07-31 00:00"}},
		// Both day fields restricted: either one fires (crontab(5)).
		{"0 0 13 * fri", "2026-02-01 00:00", []string{"2026-02-06 00:00", "2026-02-13 00:00", "2026-02-20 00:00"}},
		// One restricted, the other '*' (or '*/n'): both must match.
		{"0 0 */10 * mon", "2026-06-01 00:00", []string{"2026-08-31 00:00"}},
		{"0 9 * * 1-5", "2026-05-01 10:00", []string{"2026-05-04 09:00"}}, // Friday after nine: Monday
		{"0 0 * * 7", "2026-05-01 00:00", []string{"2026-05-03 00:00"}},   // 7 is Sunday
		{"0 0 1 jan,JUL *", "2026-02-01 00:00", []string{"2026-07-01 00:00", "2027-01-01 00:00"}},
		{"5-59/20 3 * * *", "2026-05-01 00:00", []string{"2026-05-01 03:05", "2026-05-01 03:25", "2026-05-01 03:45", "2026-05-02 03:05"}},
		{"10/25 * * * *", "2026-05-01 00:00", []string{"2026-05-01 00:10", "2026-05-01 00:35", "2026-05-01 01:10"}},
		{"@daily", "2026-12-31 23:59", []string{"2027-01-01 00:00"}},
		{"@hourly", "2026-12-31 23:00", []string{"2027-01-01 00:00"}},
		{"@weekly", "2026-05-01 00:00", []string{"2026-05-03 00:00"}},
		{"@yearly", "2026-05-01 00:00", []string{"2027-01-01 00:00"}},
		// Seconds in the start time: the next whole minute that matches.
		{"* * * * *", "2026-05-01 00:00", []string{"2026-05-01 00:01"}},
	} {
		s, err := ParseSchedule(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		at := utc(tc.from)
		for i, w := range tc.want {
			at = s.Next(at)
			if got := at.Format("2006-01-02 15:04"); got != w || at.Location() != time.UTC {
				t.Errorf("%q from %s, #%d: got %s (%s), want %s", tc.spec, tc.from, i+1, got, at.Location(), w)
				break
			}
		}
	}
}

func TestScheduleNextZoneAndSeconds(t *testing.T) {
	s, _ := ParseSchedule("0 2 * * *")
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	// 2026-03-08 01:30 EST is 06:30 UTC: the next 02:00 UTC is the next day,
	// whatever the caller's zone does that night.
	got := s.Next(time.Date(2026, 3, 8, 1, 30, 0, 0, ny))
	if want := utc("2026-03-09 02:00"); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("got %v, want %v", got, want)
	}
	e, _ := ParseSchedule("every 6h")
	if got := e.Next(utc("2026-01-01 05:59").Add(59*time.Second + 999*time.Millisecond)); !got.Equal(utc("2026-01-01 06:00")) {
		t.Errorf("every 6h just before 06:00: %v", got)
	}
	if got := e.Next(time.Unix(-1, 0)); !got.Equal(time.Unix(0, 0)) {
		t.Errorf("every 6h before the epoch: %v", got)
	}
}

func TestScheduleNil(t *testing.T) {
	var s *Schedule // a server without schedule:
	if !s.Next(utc("2026-05-01 00:00")).IsZero() || s.String() != "" || s.Every() != 0 {
		t.Error("a nil schedule fires")
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"", `want 5 cron fields`},
		{"* * * *", `want 5 cron fields`},
		{"61 * * * *", `minute field "61": "61" is not a value from 0 to 59`},
		{"* 24 * * *", `hour field "24"`},
		{"* * 0 * *", `day-of-month field "0"`},
		{"* * * 13 *", `month field "13"`},
		{"* * * * 8", `day-of-week field "8"`},
		{"*/0 * * * *", `step "0" is not a number`},
		{"5-1 * * * *", `range "5-1" runs backwards`},
		{"1,,2 * * * *", `empty item`},
		{"0 0 31 2 *", `never fires`},
		{"0 0 30 feb *", `never fires`},
		{"every 30s", `between 1m and 366d`},
		{"every 0m", `between 1m and 366d`},
		{"every 90s", `whole minutes`},
		{"every soon", `"soon" is not a duration`},
		{"every 400d", `between 1m and 366d`},
		{"@sometimes", `want 5 cron fields`},
	} {
		_, err := ParseSchedule(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error with %q", tc.spec, err, tc.want)
		}
	}
}

// FuzzSchedule: any text parses or fails, and a parsed schedule's Next
// moves forward.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"every 6h", "*/15 * * * *", "0 0 29 2 *", "0 0 13 * fri", "@daily", "1-5/2,7 1 1 1 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSchedule(spec)
		if err != nil {
			return
		}
		from := utc("2026-05-01 12:34")
		n := s.Next(from)
		if !n.After(from) {
			t.Fatalf("%q: Next(%v) = %v", spec, from, n)
		}
	})
}
