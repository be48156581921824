package sqllex

import "testing"

// TestTokens: literal and comment boundaries as scan.l draws them.
func TestTokens(t *testing.T) {
	cases := []struct {
		in   string
		kind Kind
		tok  string // the first token
	}{
		{`'it''s' x`, String, `'it''s'`},
		{`E'a\'b' x`, String, `E'a\'b'`},
		{`e'a\\' x`, String, `e'a\\'`},
		{`'a\' x`, String, `'a\'`}, // standard_conforming_strings on
		{"'a'\n 'b' x", String, "'a'\n 'b'"},
		{"'a' 'b'", String, "'a'"}, // no newline: no continuation
		{"'a'\n-- c\n'b' x", String, "'a'\n-- c\n'b'"},
		{`U&'d\0061t' UESCAPE`, String, `U&'d\0061t'`},
		{`B'01' x`, String, `B'01'`},
		{`X'1F''2' x`, String, `X'1F'`},
		{`$$a'b$$ x`, Dollar, `$$a'b$$`},
		{`$t$ $$ $t$ x`, Dollar, `$t$ $$ $t$`},
		{`$1 x`, Param, `$1`},
		{`a$b$ x`, Ident, `a$b$`},
		{`"a""b" x`, QuotedIdent, `"a""b"`},
		{`U&"a" x`, QuotedIdent, `U&"a"`},
		{"/* a /* b */ c */ x", Comment, "/* a /* b */ c */"},
		{"-- a\nx", Comment, "-- a"},
		{"/* open", Comment, "/* open"},
		{"'open", String, "'open"},
		{"$q$ open", Dollar, "$q$ open"},
		{"1.5e-3x", Number, "1.5e-3x"},
	}
	for _, c := range cases {
		tok := Next(c.in, 0)
		if tok.Kind != c.kind || c.in[tok.Start:tok.End] != c.tok {
			t.Errorf("Next(%q) = kind %d %q, want kind %d %q", c.in, tok.Kind, c.in[tok.Start:tok.End], c.kind, c.tok)
		}
	}
}
