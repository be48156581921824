package store

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dialect is what differs in the SQL the two backends speak.
type dialect struct {
	name string
	// bootstrap creates the migrations table (inside the migration
	// transaction, after the lock).
	bootstrap []string
	// numbered placeholders ($1) instead of '?'.
	numbered bool
	// timeAsInt stores times as microseconds since the epoch (SQLite).
	timeAsInt bool
}

// bind rewrites '?' placeholders for the dialect. Our queries hold no '?'
// inside literals.
func (d *dialect) bind(q string) string {
	if !d.numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ts is a time as the dialect stores it.
func (d *dialect) ts(t time.Time) any {
	if d.timeAsInt {
		return t.UTC().UnixMicro()
	}
	return t.UTC()
}

// tsOrNil is ts, or NULL for the zero time.
func (d *dialect) tsOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.ts(t)
}

// dbTime scans a time from either dialect's column (NULL: zero time).
type dbTime struct{ t time.Time }

func (x *dbTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		x.t = time.Time{}
	case int64:
		x.t = time.UnixMicro(v).UTC()
	case time.Time:
		x.t = v.UTC()
	default:
		return fmt.Errorf("store: cannot read a time from %T", v)
	}
	return nil
}

var _ driver.Valuer = (*dbTime)(nil)

func (x dbTime) Value() (driver.Value, error) { return x.t, nil }
