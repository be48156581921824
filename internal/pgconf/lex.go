// Package pgconf parses postgresql.conf and postgresql.auto.conf the way
// the server's configuration lexer does (guc-file.l): the same tokens,
// quoting and escapes, include directives and "last value wins".
package pgconf

type tokKind int

const (
	tEOF tokKind = iota
	tEOL
	tID
	tQualifiedID
	tString
	tUnquoted
	tInteger
	tReal
	tEquals
	tError
)

// lexer yields tokens with flex's rules: the longest match wins, and on a
// tie the rule listed first.
type lexer struct {
	s    string
	pos  int
	line int // current line, counted as the server counts it
}

func isLetter(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c >= 0x80
}
func isDigit(c byte) bool         { return c >= '0' && c <= '9' }
func isLetterOrDigit(c byte) bool { return isLetter(c) || isDigit(c) }
func isHex(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
func isUnitLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

func (l *lexer) next() (tokKind, string) {
	s := l.s
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
			continue
		case c == '#':
			for l.pos < len(s) && s[l.pos] != '\n' {
				l.pos++
			}
			continue
		case c == '\n':
			l.pos++
			l.line++
			return tEOL, "\n"
		}
		break
	}
	if l.pos >= len(s) {
		return tEOF, ""
	}
	start := l.pos
	best, kind := 0, tError
	try := func(n int, k tokKind) {
		if n > best {
			best, kind = n, k
		}
	}
	try(matchID(s[start:]), tID)
	try(matchQualifiedID(s[start:]), tQualifiedID)
	try(matchString(s[start:]), tString)
	try(matchUnquoted(s[start:]), tUnquoted)
	try(matchInteger(s[start:]), tInteger)
	try(matchReal(s[start:]), tReal)
	if s[start] == '=' {
		try(1, tEquals)
	}
	if best == 0 {
		best, kind = 1, tError
	}
	l.pos += best
	return kind, s[start:l.pos]
}

func matchID(s string) int {
	if len(s) == 0 || !isLetter(s[0]) {
		return 0
	}
	i := 1
	for i < len(s) && isLetterOrDigit(s[i]) {
		i++
	}
	return i
}

func matchQualifiedID(s string) int {
	n := matchID(s)
	if n == 0 || n >= len(s) || s[n] != '.' {
		return 0
	}
	m := matchID(s[n+1:])
	if m == 0 {
		return 0
	}
	return n + 1 + m
}

func matchUnquoted(s string) int {
	if len(s) == 0 || !isLetter(s[0]) {
		return 0
	}
	i := 1
	for i < len(s) && (isLetterOrDigit(s[i]) || s[i] == '-' || s[i] == '.' || s[i] == '_' || s[i] == ':' || s[i] == '/') {
		i++
	}
	return i
}

// matchString matches '...' with \x escapes and doubled quotes; the
// longest complete string wins, so 'a”b' is one string.
func matchString(s string) int {
	if len(s) == 0 || s[0] != '\'' {
		return 0
	}
	end := 0
	i := 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\n':
			return end
		case c == '\\':
			if i+1 < len(s) && s[i+1] != '\n' {
				i += 2
				continue
			}
			return end
		case c == '\'':
			end = i + 1
			if i+1 < len(s) && s[i+1] == '\'' {
				i += 2
				continue
			}
			return end
		default:
			i++
		}
	}
	return end
}

func signLen(s string) int {
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		return 1
	}
	return 0
}

func matchInteger(s string) int {
	p := signLen(s)
	best := 0
	// decimal digits then unit letters
	i := p
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i > p {
		for i < len(s) && isUnitLetter(s[i]) {
			i++
		}
		best = i
	}
	// 0x hex digits then unit letters
	if len(s) > p+2 && s[p] == '0' && s[p+1] == 'x' && isHex(s[p+2]) {
		j := p + 2
		for j < len(s) && isHex(s[j]) {
			j++
		}
		for j < len(s) && isUnitLetter(s[j]) {
			j++
		}
		if j > best {
			best = j
		}
	}
	return best
}

func matchReal(s string) int {
	i := signLen(s)
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i >= len(s) || s[i] != '.' {
		return 0
	}
	i++
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		j += signLen(s[j:])
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}

// deescape strips the quotes of a string token and resolves its escapes
// the way the server does; an escaped NUL ends the value, as in C.
func deescape(tok string) string {
	s := tok[1 : len(tok)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			switch d := s[i]; d {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case '0', '1', '2', '3', '4', '5', '6', '7':
				v, j := 0, 0
				for ; j < 3 && i+j < len(s) && s[i+j] >= '0' && s[i+j] <= '7'; j++ {
					v = v<<3 + int(s[i+j]-'0')
				}
				i += j - 1
				out = append(out, byte(v))
			default:
				out = append(out, d)
			}
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
			out = append(out, '\'')
		default:
			out = append(out, c)
		}
	}
	for i, b := range out {
		if b == 0 {
			return string(out[:i])
		}
	}
	return string(out)
}
