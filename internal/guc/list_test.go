package guc

import (
	"reflect"
	"testing"
)

func TestSplitQuotedList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"pgaudit", []string{"pgaudit"}, true},
		{"pgaudit, auth_delay", []string{"pgaudit", "auth_delay"}, true},
		{` "pgaudit,auth_delay" `, []string{"pgaudit,auth_delay"}, true},
		{`"a""b", c d ,e`, []string{`a"b`, "c d", "e"}, true},
		{`"$libdir/plugins/x"`, []string{"$libdir/plugins/x"}, true},
		{`"open`, nil, false},
		{`"a"b`, []string{"a"}, false},
		{"a,,b", []string{"a"}, false},
		{"a,", []string{"a"}, false},
	} {
		got, ok := SplitQuotedList(c.in)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitQuotedList(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestJoinQuotedListRoundTrip(t *testing.T) {
	for _, items := range [][]string{{"pgaudit", "auth_delay"}, {"pgaudit,auth_delay"}, {`a"b`, "$libdir/plugins/x", "Upper"}} {
		got, ok := SplitQuotedList(JoinQuotedList(items))
		if !ok || !reflect.DeepEqual(got, items) {
			t.Errorf("%q -> %q -> %q, %v", items, JoinQuotedList(items), got, ok)
		}
	}
	if got := JoinQuotedList([]string{"pgaudit", "auth_delay"}); got != "pgaudit, auth_delay" {
		t.Errorf("SHOW form: %q", got)
	}
}
