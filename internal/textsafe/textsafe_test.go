package textsafe

import "testing"

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
