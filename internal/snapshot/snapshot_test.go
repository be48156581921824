package snapshot

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/hba"
)

func TestTimestampJSON(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		inf     int
		err     string
	}{
		{`"infinity"`, `"infinity"`, 1, ""},
		{`"-infinity"`, `"-infinity"`, -1, ""},
		{`"2031-02-03T04:05:06Z"`, `"2031-02-03T04:05:06Z"`, 0, ""},
		{`"2031-02-03T04:05:06.5+02:00"`, `"2031-02-03T04:05:06+02:00"`, 0, ""},
		{`"tomorrow"`, "", 0, `timestamp "tomorrow"`},
		{`42`, "", 0, "timestamp"},
	} {
		var ts Timestamp
		err := json.Unmarshal([]byte(tc.in), &ts)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		b, _ := json.Marshal(ts)
		if string(b) != tc.out || ts.Infinity != tc.inf {
			t.Errorf("%s: wrote %s (infinity %d), want %s (%d)", tc.in, b, ts.Infinity, tc.out, tc.inf)
		}
	}
	// The infinities compare as the server compares them.
	now := Timestamp{}.Time.AddDate(2026, 0, 0)
	if InfiniteTimestamp(1).Before(now) || !InfiniteTimestamp(-1).Before(now) {
		t.Error("infinity must be after and -infinity before any instant")
	}
}

func TestQuotedReading(t *testing.T) {
	h := &HBA{Source: "pg_hba_file_rules", Rules: []hba.Rule{
		{Line: 1, Type: "host", Databases: []hba.Token{{Value: "all"}}, Users: []hba.Token{{Value: "+admins"}, {Value: "bob"}}, Text: "host all +admins,bob 10.0.0.0/8 md5"},
		{Line: 2, Type: "local", Databases: []hba.Token{{Value: "all"}}, Users: []hba.Token{{Value: "all"}}, Text: "local all all peer"},
	}, Ambiguous: []AmbiguousToken{{1, "database", "all"}, {1, "user", "+admins"}}}
	q := h.QuotedReading()
	if got := q.Rules[0].Text; got != `host "all" "+admins",bob 10.0.0.0/8 md5` {
		t.Errorf("line 1 quoted reading: %s", got)
	}
	if got := q.Rules[1].Text; got != "local all all peer" {
		t.Errorf("line 2 has no ambiguity but became %s", got)
	}
	if h.Rules[0].Databases[0].Quoted || h.Rules[0].Text != "host all +admins,bob 10.0.0.0/8 md5" {
		t.Error("QuotedReading changed the original")
	}
	if (&HBA{}).QuotedReading() != nil || (*HBA)(nil).QuotedReading() != nil {
		t.Error("no ambiguity: no second reading")
	}
}
