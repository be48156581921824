package scram

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// The vector's expected keys were computed with Python's hashlib and hmac,
// an implementation independent of this one (RFC 7677's salt).
func TestVerifierKnownVector(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	got, err := verifier([]byte("pencil"), salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
	if got != want {
		t.Fatalf("verifier = %s, want %s", got, want)
	}
	if !IsVerifier(got) {
		t.Fatal("IsVerifier rejects a verifier")
	}
}

func TestVerifierFreshSaltAndDefaults(t *testing.T) {
	a, err := Verifier([]byte("pencil"), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Verifier([]byte("pencil"), 0)
	if a == b {
		t.Fatal("two verifiers share a salt")
	}
	if !strings.HasPrefix(a, "SCRAM-SHA-256$4096:") {
		t.Fatalf("default iterations: %s", a)
	}
	salt, _ := base64.StdEncoding.DecodeString(strings.Split(strings.Split(a, ":")[1], "$")[0])
	if len(salt) != 16 {
		t.Fatalf("salt is %d bytes", len(salt))
	}
}

func TestVerifierErrorsNeverHoldThePassword(t *testing.T) {
	for _, tc := range []struct {
		name string
		pw   string
		iter int
	}{
		{"empty", "", 0},
		{"nul", "sec\x00ret", 0},
		{"negative iterations", "secret", -1},
		{"huge iterations", "secret", 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verifier([]byte(tc.pw), tc.iter)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.pw != "" && strings.Contains(err.Error(), "sec") {
				t.Fatalf("error holds the password: %v", err)
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"ascii as is", "Pa ss\tword", "Pa ss\tword"},
		{"ascii control chars pass", "a\x01\x7f", "a\x01\x7f"},
		{"nfkc ligature", "\uFB01x", "fix"},
		{"nfkc roman numeral and soft hyphen", "\u2168\u00ADx", "IXx"},
		{"non-ascii space mapped", "a\u00A0b\u3000c", "a b c"},
		{"combining sequence composed", "e\u0301", "\u00E9"},
		{"fullwidth", "\uFF21\uFF22", "AB"},
		{"only mapped to nothing stays raw", "\u00AD\u200D", "\u00AD\u200D"},
		{"zero width space is a space in 3.2", "a\u200Bb", "a b"},
		{"private use stays raw", "a\uE000", "a\uE000"},
		{"unassigned in 3.2 stays raw", "a\u0221\uFB01", "a\u0221\uFB01"},
		{"emoji stays raw", "\U0001F600\uFB01", "\U0001F600\uFB01"},
		{"non-ascii control stays raw", "\u0085\uFB01", "\u0085\uFB01"},
		{"rtl alone", "\u05D0\u05D1", "\u05D0\u05D1"},
		{"rtl mixed with L stays raw", "\u05D0a\u05D1\uFB01", "\u05D0a\u05D1\uFB01"},
		{"rtl not last stays raw", "\u05D01\uFB01", "\u05D01\uFB01"},
		{"rtl with digits inside", "\u05D01\u05D1", "\u05D01\u05D1"},
		{"invalid utf-8 raw", "\xff\uFB01", "\xff\uFB01"},
		{"surrogate encoding raw", "\xed\xa0\x80\uFB01", "\xed\xa0\x80\uFB01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Prepare([]byte(tc.in)); !bytes.Equal(got, []byte(tc.want)) {
				t.Fatalf("Prepare(%+q) = %+q, want %+q", tc.in, got, tc.want)
			}
		})
	}
}

func TestIsVerifier(t *testing.T) {
	for _, s := range []string{"", "md5abc", "SCRAM-SHA-256$", "SCRAM-SHA-256$0:c2FsdA==$a:b", "SCRAM-SHA-256$4096:c2FsdA==$YQ==:YQ=="} {
		if IsVerifier(s) {
			t.Errorf("IsVerifier(%q) = true", s)
		}
	}
}

func TestTablesSorted(t *testing.T) {
	for name, tb := range map[string]table{"nonASCIISpace": nonASCIISpace, "mappedToNothing": mappedToNothing, "prohibitedOutput": prohibitedOutput, "unassigned": unassigned, "randALCat": randALCat, "lCat": lCat} {
		for i, r := range tb {
			if r[0] > r[1] || (i > 0 && tb[i-1][1] >= r[0]) {
				t.Errorf("%s: range %d out of order", name, i)
			}
		}
	}
}

func TestMatches(t *testing.T) {
	v, err := Verifier([]byte("\u2168\u00ADx"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"\u2168\u00ADx", true}, {"IXx", true}, {"IXX", false}, {"", false}} {
		if got := Matches(v, []byte(tc.pw)); got != tc.want {
			t.Errorf("Matches(%+q) = %v", tc.pw, got)
		}
	}
	if Matches("md5abc", []byte("x")) {
		t.Error("a non-verifier matches")
	}
}
