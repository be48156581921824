// Package sqllex splits SQL text into tokens the way the server's lexer
// (src/backend/parser/scan.l) does, as far as redaction needs: where each
// string literal, dollar-quoted string, quoted identifier and comment
// begins and ends, and what a literal's value is. It never rejects input:
// an unterminated literal or comment (a statement cut off in a log) runs
// to the end of the text.
package sqllex

// Kind is a token's kind.
type Kind uint8

// Token kinds.
const (
	Space       Kind = iota // whitespace
	Comment                 // -- to end of line, or /* nested */
	String                  // '...', E'...', U&'...', B'...', X'...', N'...' (continuations included)
	Dollar                  // $tag$...$tag$
	QuotedIdent             // "..." or U&"..."
	Ident                   // identifier or keyword
	Number                  // numeric literal
	Param                   // $1
	Op                      // any other character (operators, punctuation)
)

// Token is one token of a text.
type Token struct {
	Kind       Kind
	Start, End int // the whole token
	// Body is the content between the delimiters of a String, Dollar or
	// QuotedIdent (for a continued string, from the first segment's content
	// to the last one's).
	BodyStart, BodyEnd int
	// Prefix of a String or QuotedIdent: 0, 'E', 'U' (U&), 'B', 'X' or 'N'.
	Prefix byte
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentCont(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Next returns the token that starts at i (i < len(s)).
func Next(s string, i int) Token {
	c := s[i]
	switch {
	case isSpace(c):
		j := i + 1
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		return Token{Kind: Space, Start: i, End: j}
	case c == '-' && i+1 < len(s) && s[i+1] == '-':
		j := i + 2
		for j < len(s) && s[j] != '\n' && s[j] != '\r' {
			j++
		}
		return Token{Kind: Comment, Start: i, End: j}
	case c == '/' && i+1 < len(s) && s[i+1] == '*':
		return Token{Kind: Comment, Start: i, End: commentEnd(s, i)}
	case c == '\'':
		return stringToken(s, i, i, 0)
	case c == '"':
		return quotedIdent(s, i, i, 0)
	case c == '$':
		if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			return Token{Kind: Param, Start: i, End: j}
		}
		if t, ok := dollarToken(s, i); ok {
			return t
		}
		return Token{Kind: Op, Start: i, End: i + 1}
	case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
		j := i + 1
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '_' || isIdentStart(s[j]) && s[j] < 0x80) {
			if (s[j] == 'e' || s[j] == 'E') && j+1 < len(s) && (s[j+1] == '+' || s[j+1] == '-') {
				j++
			}
			j++
		}
		return Token{Kind: Number, Start: i, End: j}
	case isIdentStart(c):
		// Literal prefixes: E'', B'', X'', N'', U&'' and U&"".
		if i+1 < len(s) && s[i+1] == '\'' {
			switch lower(c) {
			case 'e', 'b', 'x', 'n':
				return stringToken(s, i, i+1, c&^0x20)
			}
		}
		if lower(c) == 'u' && i+2 < len(s) && s[i+1] == '&' {
			if s[i+2] == '\'' {
				return stringToken(s, i, i+2, 'U')
			}
			if s[i+2] == '"' {
				return quotedIdent(s, i, i+2, 'U')
			}
		}
		j := i + 1
		for j < len(s) && isIdentCont(s[j]) {
			j++
		}
		return Token{Kind: Ident, Start: i, End: j}
	}
	return Token{Kind: Op, Start: i, End: i + 1}
}

// commentEnd finds the end of a /* comment starting at i; they nest.
func commentEnd(s string, i int) int {
	depth := 0
	for j := i; j < len(s); {
		switch {
		case s[j] == '/' && j+1 < len(s) && s[j+1] == '*':
			depth++
			j += 2
		case s[j] == '*' && j+1 < len(s) && s[j+1] == '/':
			depth--
			j += 2
			if depth == 0 {
				return j
			}
		default:
			j++
		}
	}
	return len(s)
}

// stringToken lexes a quoted string whose opening quote is at q. Inside:
// ” is a quote; in E” strings a backslash escapes the next byte; B”
// and X” end at the first quote. A closing quote followed by whitespace
// that holds a newline (and -- comments) and another quote continues the
// literal (scan.l quotecontinue).
func stringToken(s string, start, q int, prefix byte) Token {
	t := Token{Kind: String, Start: start, BodyStart: q + 1, Prefix: prefix}
	j := q + 1
	for {
		end, closed := segmentEnd(s, j, prefix)
		if !closed {
			t.BodyEnd, t.End = len(s), len(s)
			return t
		}
		t.BodyEnd, t.End = end, end+1
		next, ok := continuation(s, end+1)
		if !ok {
			return t
		}
		j = next + 1
	}
}

// segmentEnd returns the index of the quote that closes a segment whose
// content starts at j, and whether there is one.
func segmentEnd(s string, j int, prefix byte) (int, bool) {
	for j < len(s) {
		switch s[j] {
		case '\\':
			if prefix == 'E' {
				j += 2
				continue
			}
		case '\'':
			if prefix != 'B' && prefix != 'X' && j+1 < len(s) && s[j+1] == '\'' {
				j += 2
				continue
			}
			return j, true
		}
		j++
	}
	return len(s), false
}

// continuation reports whether a string literal continues after its
// closing quote (before i): whitespace with at least one newline, then a
// quote. It returns the position of that quote.
func continuation(s string, i int) (int, bool) {
	newline := false
	for i < len(s) {
		switch c := s[i]; {
		case c == '\n' || c == '\r':
			newline = true
			i++
		case isSpace(c):
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-' && newline:
			for i < len(s) && s[i] != '\n' && s[i] != '\r' {
				i++
			}
		case c == '\'' && newline:
			return i, true
		default:
			return 0, false
		}
	}
	return 0, false
}

func quotedIdent(s string, start, q int, prefix byte) Token {
	t := Token{Kind: QuotedIdent, Start: start, BodyStart: q + 1, Prefix: prefix}
	for j := q + 1; j < len(s); j++ {
		if s[j] == '"' {
			if j+1 < len(s) && s[j+1] == '"' {
				j++
				continue
			}
			t.BodyEnd, t.End = j, j+1
			return t
		}
	}
	t.BodyEnd, t.End = len(s), len(s)
	return t
}

// dollarToken lexes $tag$...$tag$ starting at i, if a delimiter starts
// there ($$ or $ident$, where the tag has no $).
func dollarToken(s string, i int) (Token, bool) {
	j := i + 1
	if j < len(s) && isIdentStart(s[j]) {
		j++
		for j < len(s) && isIdentCont(s[j]) && s[j] != '$' {
			j++
		}
	}
	if j >= len(s) || s[j] != '$' {
		return Token{}, false
	}
	delim := s[i : j+1]
	t := Token{Kind: Dollar, Start: i, BodyStart: j + 1}
	for k := j + 1; k+len(delim) <= len(s); k++ {
		if s[k] == '$' && s[k:k+len(delim)] == delim {
			t.BodyEnd, t.End = k, k+len(delim)
			return t, true
		}
	}
	t.BodyEnd, t.End = len(s), len(s)
	return t, true
}

// Tokens lexes the whole text.
func Tokens(s string) []Token {
	var out []Token
	for i := 0; i < len(s); {
		t := Next(s, i)
		out = append(out, t)
		i = t.End
	}
	return out
}
