package inventory

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Schedule says when a server is scanned: a 5-field cron expression
// ("30 2 * * 1-5", "@daily") or a fixed interval ("every 6h"). Both are
// read in UTC, so there are no daylight-saving gaps or repeats.
type Schedule struct {
	spec  string
	every time.Duration // > 0 for "every D"
	// cron fields as bit sets: bit i set when value i matches.
	min, hour, dom, month, dow uint64
	domAny, dowAny             bool // the field starts with '*'
}

// maxEvery bounds an interval: a scan less often than yearly is no schedule.
const maxEvery = 366 * 24 * time.Hour

var macros = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// ParseSchedule reads a schedule (see docs/inventory.md).
func ParseSchedule(spec string) (*Schedule, error) {
	s := &Schedule{spec: spec}
	text := strings.TrimSpace(spec)
	if rest, ok := strings.CutPrefix(text, "every "); ok {
		d, err := parseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %v", spec, err)
		}
		if d < time.Minute || d > maxEvery {
			return nil, fmt.Errorf("schedule %q: the interval must be between 1m and 366d", spec)
		}
		if d%time.Minute != 0 {
			return nil, fmt.Errorf("schedule %q: the interval must be whole minutes", spec)
		}
		s.every = d
		return s, nil
	}
	if m, ok := macros[strings.ToLower(text)]; ok {
		text = m
	}
	f := strings.Fields(text)
	if len(f) != 5 {
		return nil, fmt.Errorf("schedule %q: want 5 cron fields (minute hour day-of-month month day-of-week), an @daily-style macro, or \"every 6h\"", spec)
	}
	var err error
	parse := func(i int, name string, lo, hi int, names []string, dst *uint64) {
		if err == nil {
			*dst, err = parseField(f[i], lo, hi, names)
			if err != nil {
				err = fmt.Errorf("schedule %q: %s field %q: %v", spec, name, f[i], err)
			}
		}
	}
	parse(0, "minute", 0, 59, nil, &s.min)
	parse(1, "hour", 0, 23, nil, &s.hour)
	parse(2, "day-of-month", 1, 31, nil, &s.dom)
	parse(3, "month", 1, 12, monthNames, &s.month)
	parse(4, "day-of-week", 0, 7, dayNames, &s.dow)
	if err != nil {
		return nil, err
	}
	if s.dow&(1<<7) != 0 { // 7 is Sunday too
		s.dow |= 1
	}
	s.domAny, s.dowAny = strings.HasPrefix(f[2], "*"), strings.HasPrefix(f[4], "*")
	// "0 0 31 2 *" is well formed and never fires: say so now rather than
	// leave a server silently unscanned. Eleven years cover every
	// 29 February (2096 to 2104 has none for eight).
	from := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if s.next(from, from.AddDate(11, 0, 0)).IsZero() {
		return nil, fmt.Errorf("schedule %q never fires (no such date)", spec)
	}
	return s, nil
}

var (
	monthNames = []string{"", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

// parseDuration is time.ParseDuration plus whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 || d > 3660 {
			return 0, fmt.Errorf("%q is not a duration (30m, 6h, 7d)", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (30m, 6h, 7d)", s)
	}
	return d, nil
}

// parseField reads one cron field: a comma list of *, N, N-M, each with
// an optional /step (N/step means N through the maximum).
func parseField(f string, lo, hi int, names []string) (uint64, error) {
	var set uint64
	for _, item := range strings.Split(f, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > hi {
				return 0, fmt.Errorf("step %q is not a number from 1 to %d", stepText, hi)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case rng == "":
			return 0, errors.New("empty item")
		default:
			from, to, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = fieldValue(from, lo, hi, names); err != nil {
				return 0, err
			}
			b = a
			if isRange {
				if b, err = fieldValue(to, lo, hi, names); err != nil {
					return 0, err
				}
				if b < a {
					return 0, fmt.Errorf("range %q runs backwards", rng)
				}
			} else if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func fieldValue(s string, lo, hi int, names []string) (int, error) {
	for i, n := range names {
		if n != "" && strings.EqualFold(s, n) {
			return i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%q is not a value from %d to %d", s, lo, hi)
	}
	return v, nil
}

// String is the schedule as written ("" for none).
func (s *Schedule) String() string {
	if s == nil {
		return ""
	}
	return s.spec
}

// Every is the interval of an "every D" schedule, else 0.
func (s *Schedule) Every() time.Duration {
	if s == nil {
		return 0
	}
	return s.every
}

// Next returns the first time strictly after t (in UTC, whole minutes)
// when the schedule fires. "every D" fires at the multiples of D since
// the Unix epoch, so every scheduler computes the same times whenever it
// starts. The zero time means never: a nil schedule (a server scanned
// only when asked); a parsed one always fires.
func (s *Schedule) Next(t time.Time) time.Time {
	if s == nil {
		return time.Time{}
	}
	t = t.UTC()
	if s.every > 0 {
		d := int64(s.every / time.Second)
		sec := t.Unix()
		n := sec/d + 1
		if sec < 0 && sec%d != 0 { // floor for times before 1970
			n--
		}
		return time.Unix(n*d, 0).UTC()
	}
	return s.next(t, t.AddDate(11, 0, 0))
}

func (s *Schedule) next(t, limit time.Time) time.Time {
	t = t.Truncate(time.Minute).Add(time.Minute)
	for t.Before(limit) {
		y, m, d := t.Date()
		switch {
		case s.month&(1<<uint(m)) == 0:
			t = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(d, t.Weekday()):
			t = time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<uint(t.Hour())) == 0:
			t = t.Truncate(time.Hour).Add(time.Hour)
		case s.min&(1<<uint(t.Minute())) == 0:
			// Jump to the next matching minute of this hour, or the next hour.
			rest := s.min >> uint(t.Minute()+1)
			if rest == 0 {
				t = t.Truncate(time.Hour).Add(time.Hour)
			} else {
				t = t.Add(time.Duration(bits.TrailingZeros64(rest)+1) * time.Minute)
			}
		default:
			return t
		}
	}
	return time.Time{}
}

// dayMatches follows crontab(5): when both day fields are restricted
// (neither starts with '*'), a day matching either one fires.
func (s *Schedule) dayMatches(d int, wd time.Weekday) bool {
	domOK, dowOK := s.dom&(1<<uint(d)) != 0, s.dow&(1<<uint(wd)) != 0
	if !s.domAny && !s.dowAny {
		return domOK || dowOK
	}
	return domOK && dowOK
}
