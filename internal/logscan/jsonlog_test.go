package logscan

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeJSONRecord(t *testing.T) {
	tests := []struct {
		in      string
		want    jsonRecord
		wantErr bool
	}{
		{`{"timestamp":"2026-11-22 08:00:00.123 UTC","user":"app","dbname":"shop","pid":42,"remote_host":"10.0.0.9","error_severity":"FATAL","message":"password authentication failed for user \"app\""}`,
			jsonRecord{Timestamp: "2026-11-22 08:00:00.123 UTC", User: "app", Dbname: "shop", PID: 42, RemoteHost: "10.0.0.9", Severity: "FATAL", Message: `password authentication failed for user "app"`}, false},
		{`{ "message" : "tab\there \u00e9 \\", "txid":0, "ps":"idle" }`, jsonRecord{Message: "tab\there é \\"}, false},
		{`{"nested":{"a":1},"user":"x"}`, jsonRecord{User: "x"}, false}, // through encoding/json
		{`{"user":"never closed}`, jsonRecord{}, true},
		{`{"pid":"x"}`, jsonRecord{}, true},
		{`not json`, jsonRecord{}, true},
		{`{"USER":"x","dbname":"d"}`, jsonRecord{User: "x", Dbname: "d"}, false}, // encoding/json folds case
	}
	for _, tt := range tests {
		var got jsonRecord
		err := decodeJSONRecord([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("decodeJSONRecord(%s) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzDecodeJSONRecord holds the fast decoder to encoding/json on
// records written the way the server writes them, with arbitrary text.
func FuzzDecodeJSONRecord(f *testing.F) {
	f.Add("app", "shop", "password authentication failed for user \"app\"", "10.0.0.1", 42)
	f.Add("a\\b", "\u00e9\x01", "line\nbreak\t\"q\"", "", -1)
	f.Fuzz(func(t *testing.T, user, db, msg, host string, pid int) {
		line, err := json.Marshal(map[string]any{"timestamp": "2026-11-22 08:00:00.123 UTC", "user": user, "dbname": db, "pid": pid,
			"remote_host": host, "error_severity": "LOG", "message": msg, "txid": 0, "ps": "idle"})
		if err != nil {
			return
		}
		var want, got jsonRecord
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		if err := decodeJSONRecord(line, &got); err != nil || got != want {
			t.Fatalf("decodeJSONRecord(%s) = %+v, %v; encoding/json says %+v", line, got, err, want)
		}
		// Arbitrary bytes never panic and agree on acceptance where the
		// fast path answers.
		var fast jsonRecord
		if decodeFlatJSON([]byte(msg), &fast) {
			var slow jsonRecord
			if json.Unmarshal([]byte(msg), &slow) == nil && fast != slow {
				t.Fatalf("decodeFlatJSON(%q) = %+v; encoding/json says %+v", msg, fast, slow)
			}
		}
	})
}

func TestJSONSeverityValue(t *testing.T) {
	tests := []struct {
		in   string
		want string // the severity found, "" for none
	}{
		{`{"pid":1,"error_severity":"FATAL","message":"x"}`, "FATAL"},
		{`{"message":"a \"error_severity\":\"LOG\" quoted","error_severity":"ERROR"}`, "ERROR"},
		{`{"severity":"LOG","vxid":"3/1"}`, ""},
		{`verity":"`, ""},
	}
	for _, tt := range tests {
		got := ""
		if i := jsonSeverityValue([]byte(tt.in)); i >= 0 {
			got = tt.in[i:]
			got = got[:strings.IndexByte(got, '"')]
		}
		if got != tt.want {
			t.Errorf("jsonSeverityValue(%s) found %q, want %q", tt.in, got, tt.want)
		}
	}
}
