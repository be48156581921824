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
