package textsafe

import (
	"fmt"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"app", "app"},
		{"café", "café"},
		{"x\x1b]0;owned\x07\x1b[2J", `x\x1b]0;owned\x07\x1b[2J`},
		{"evil\u202egpj.exe", `evil\u202egpj.exe`},
		{"a\nb\tc\rd", `a\nb\tc\rd`},
		{`back\slash`, `back\\slash`},
		{"\xff\xfe", `\xff\xfe`},
		{"c1\u009bcsi", `c1\u009bcsi`},
		{"del\x7f", `del\x7f`},
		{"zw\u200bsp", `zw\u200bsp`},
	}
	for _, c := range cases {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
		if Needs(c.in) != (c.in != c.want) {
			t.Errorf("Needs(%q) disagrees with String", c.in)
		}
	}
}

func TestTextKeepsLines(t *testing.T) {
	in := "REVOKE ...;\n\tALTER \x1b[2J;"
	want := "REVOKE ...;\n\tALTER \\x1b[2J;"
	if got := Text(in); got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
}

func FuzzString(f *testing.F) {
	f.Add("x\x1b[2J\u202e\n")
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		for _, r := range out {
			if unsafe(r) {
				t.Fatalf("String(%q) left %U in %q", s, r, out)
			}
		}
	})
}

func TestCodeKeepsBackslashes(t *testing.T) {
	cases := []struct{ in, want string }{
		{`sed -i 's/\(a\)/b/' f`, `sed -i 's/\(a\)/b/' f`},
		{"SELECT 1;\n\tSELECT '\x1b[2J';", "SELECT 1;\n\tSELECT '\\x1b[2J';"},
		{"x\u202ey\r", `x\u202ey\r`},
	}
	for _, c := range cases {
		if got := Code(c.in); got != c.want {
			t.Errorf("Code(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestWriter(t *testing.T) {
	var b strings.Builder
	w := NewWriter(&b)
	fmt.Fprintf(w, "role %s\tok %s\n", "x\x1b]0;t\x07\u202e", `a\b`)
	if NewWriter(w) != w {
		t.Error("wrapping a Writer again must not escape twice")
	}
	want := "role x\\x1b]0;t\\x07\\u202e\tok a\\b\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestShorten(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef\x1b[2J", 8, "abcdef…"},
		{"abcdef\x1b[2J", 10, "abcdef\\x1b…"},
		{"ééé", 3, "é…"},
	}
	for _, c := range cases {
		if got := Shorten(c.in, c.n); got != c.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 9999: "9999", 10000: "10,000", 15950: "15,950", 1234567: "1,234,567"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
