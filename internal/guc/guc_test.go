package guc

import "testing"

func TestParseBoolLikeTheServer(t *testing.T) {
	cases := map[string]int{ // 1 true, 0 false, -1 invalid
		"on": 1, "ON": 1, "true": 1, "t": 1, "tr": 1, "yes": 1, "y": 1, "1": 1,
		"off": 0, "of": 0, "false": 0, "f": 0, "no": 0, "n": 0, "0": 0,
		"o": -1, "": -1, "2": -1, "onn": -1, "yess": -1, "enable": -1,
	}
	for in, want := range cases {
		v, ok := ParseBool(in)
		got := -1
		if ok {
			got = map[bool]int{true: 1, false: 0}[v]
		}
		if got != want {
			t.Errorf("ParseBool(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestParseInt(t *testing.T) {
	cases := map[string]int64{"0600": 0o600, "384": 384, "0x1f": 31, " 7 ": 7}
	for in, want := range cases {
		if got, ok := ParseInt(in); !ok || got != want {
			t.Errorf("ParseInt(%q) = %d %v, want %d", in, got, ok, want)
		}
	}
	if _, ok := ParseInt("08"); ok {
		t.Error("08 is not an octal number")
	}
}

func TestSplitList(t *testing.T) {
	got := SplitList(` pgaudit, "pg_stat_statements" ,,auto_explain`)
	if len(got) != 3 || got[1] != "pg_stat_statements" {
		t.Errorf("%q", got)
	}
}
