package logscan

import (
	"testing"
	"time"
)

// Each prefix is followed by "FATAL:  x"; the fields must come out whatever
// surrounds them, including a zone with no space after it.
func TestPrefixParse(t *testing.T) {
	when := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	tests := []struct {
		spec, line string
		want       Record
	}{
		{"%m [%p] %q%u@%d %r ", "2026-11-22 07:00:00.000 UTC [42] app@shop 10.0.0.9(5432) ", Record{Time: when, PID: 42, User: "app", Database: "shop", Host: "10.0.0.9"}},
		{"<%t|%p|%u|%d|%h> ", "<2026-11-22 08:00:00 CET|42|app|shop|10.0.0.9> ", Record{Time: when, PID: 42, User: "app", Database: "shop", Host: "10.0.0.9"}},
		{"%t:%r:%u@%d:[%p]:", "2026-11-22 07:00:00 UTC:[local]:app@shop:[42]:", Record{Time: when, PID: 42, User: "app", Database: "shop", Host: "[local]"}},
		{"%m", "2026-11-22 10:00:00.000 +03 ", Record{Time: when}},
		{"%n [%p] ", "1795330800.000 [42] ", Record{Time: when, PID: 42}},
	}
	for _, tt := range tests {
		p, err := CompilePrefix(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		var r Record
		rest, ok := p.parse([]byte(tt.line+"FATAL:  x"), &r)
		if !ok || string(rest) != "FATAL:  x" && string(rest) != " FATAL:  x" {
			t.Errorf("%q on %q: ok %v, rest %q", tt.spec, tt.line, ok, rest)
			continue
		}
		r.Time = r.Time.UTC()
		if r != tt.want {
			t.Errorf("%q on %q = %+v, want %+v", tt.spec, tt.line, r, tt.want)
		}
	}
}
