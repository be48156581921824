package logscan

import (
	"bytes"
	"encoding/csv"
	"io"
	"reflect"
	"testing"
)

func TestSplitCSVRecord(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"a,b,c\n", []string{"a", "b", "c"}, true},
		{`2026-11-22 08:00:00 UTC,"app","shop",42,,FATAL,28P01,"password for ""app"", retry"` + "\n", []string{"2026-11-22 08:00:00 UTC", "app", "shop", "42", "", "FATAL", "28P01", `password for "app", retry`}, true},
		{"\"multi\nline\",x,\n", []string{"multi\nline", "x", ""}, true},
		{`"never closed,x`, nil, false},
		{`"closed"junk,x`, nil, false},
		{",,", []string{"", "", ""}, true},
	}
	for _, tt := range tests {
		got, ok := splitCSVRecord([]byte(tt.in), nil)
		if ok != tt.ok || (ok && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("splitCSVRecord(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzSplitCSVRecord holds the splitter to encoding/csv wherever the
// standard reader accepts the input as exactly one record.
func FuzzSplitCSVRecord(f *testing.F) {
	f.Add([]byte("a,\"b,\"\"c\"\"\",d\n"))
	f.Add([]byte("2026-11-22 08:00:00 UTC,\"u\",\"d\",1,\"10.0.0.1:5\",x,1,\"\",,,0,LOG,00000,\"connection received\"\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := splitCSVRecord(in, nil)
		if bytes.ContainsRune(in, '\r') || len(in) == 0 || in[0] == '\n' {
			return // encoding/csv normalises CR and skips blank lines
		}
		rd := csv.NewReader(bytes.NewReader(in))
		rd.FieldsPerRecord = -1
		want, err := rd.Read()
		if err != nil {
			return
		}
		if _, err := rd.Read(); err != io.EOF {
			return // more than one record
		}
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("splitCSVRecord(%q) = %q, %v; encoding/csv says %q", in, got, ok, want)
		}
	})
}

// csvInterestingRef is csvInteresting as it was, a csvNext call per field.
func csvInterestingRef(rec []byte) bool {
	whole := rec
	var f []byte
	more, ok := true, true
	for i := 0; i <= csvSeverityColumn; i++ {
		if !more {
			return false
		}
		f, rec, _, more, ok = csvNext(rec)
		if !ok {
			return bytes.Contains(whole, []byte(",FATAL,"))
		}
	}
	if !more || len(rec) < 8 || rec[5] != ',' || rec[6] != '"' {
		return false
	}
	msg, _, _, _, ok := csvNext(rec[6:])
	if !ok {
		return true
	}
	return interestingMessage(f, msg, nil)
}

// FuzzCSVInteresting: the in-line field skipper decides as csvNext does.
func FuzzCSVInteresting(f *testing.F) {
	for _, s := range []string{
		`2026-12-02 02:39:48.250 UTC,"postgres","bench",12297,"127.0.0.1:49534",6b0f84f4.3009,184,"UPDATE",2026-12-02 02:39:48 UTC,6/19,805,LOG,00000,"AUDIT: SESSION,66,1,ROLE,ALTER ROLE,,,alter role x password 'y',<not logged>",,,,,,,,,"pgbench","client backend",,0`,
		`2026-12-02 02:39:48.250 UTC,"po""st,gres","bench",12294,"127.0.0.1:49492",6b0f84f4.3006,160,"SELECT",2026-12-02 02:39:48 UTC,3/87,806,LOG,00000,"execute P_2: GRANT x TO y;","parameters: $1 = '104057'",,,,,,,,"pgbench","client backend",,0`,
		`2026-11-22 08:00:00.000 UTC,"app","shop",42,"10.0.0.9:5432",1.1,1,"authentication",2026-11-22 08:00:00 UTC,1/1,0,FATAL,28P01,"password authentication failed for user ""app""",,,,,,,,,"","client backend",,0`,
		`2026-11-22 08:00:00.000 UTC,"app,"shop",42,FATAL,`, `a,b"c,d`, `"x"y,FATAL,`, `,,,,,,,,,,,LOG,00000,"statement: copy x to program 'y'"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		if got, want := csvInteresting(rec, nil), csvInterestingRef(rec); got != want {
			t.Fatalf("csvInteresting(%q) = %v, csvNext per field says %v", rec, got, want)
		}
	})
}
