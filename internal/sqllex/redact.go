package sqllex

import (
	"strings"
	"unicode/utf8"

	"github.com/pgaegis/pgaegis/internal/conninfo"
)

// Mask replaces a secret literal's content.
const Mask = "*****"

// maxDepth bounds the recursion into literals that hold SQL (a DO body
// holding an EXECUTE string holding ...).
const maxDepth = 6

// MayHoldSecret is the fast path: only a text holding one of these words
// (in any case) can hold a password that Secrets would find. U& strings
// are included because their escapes can spell any word.
func MayHoldSecret(s string) bool {
	for _, w := range secretWords {
		if containsFold(s, w) {
			return true
		}
	}
	return false
}

var secretWords = []string{"password", "passwd", "secret", "conninfo", "://", "u&"}

// containsFold reports whether s holds w (lower-case ASCII) in any case.
func containsFold(s, w string) bool {
	first, up := w[0], w[0]
	if first >= 'a' && first <= 'z' {
		up = first - 'a' + 'A'
	}
	for i := 0; i+len(w) <= len(s); i++ {
		if c := s[i]; c != first && c != up {
			continue
		}
		k := 1
		for k < len(w) && lower(s[i+k]) == w[k] {
			k++
		}
		if k == len(w) {
			return true
		}
	}
	return false
}

// Redact replaces the content of every secret literal with Mask, keeping
// the statement's shape: PASSWORD 'x' becomes PASSWORD '*****'. It reports
// whether it found any.
func Redact(s string) (string, bool) {
	if !MayHoldSecret(s) {
		return s, false
	}
	sp := Secrets(s)
	return conninfo.Replace(s, sp, Mask), len(sp) > 0
}

// Secrets returns the byte ranges of secrets in SQL text: the literal (or
// literals, continued or not) that follows a PASSWORD keyword or an
// option named like a secret (sslpassword, client_secret), comments and
// '=' / TO in between; passwords in connection strings inside any literal
// (primary_conninfo, dblink_connect, CREATE SERVER options); and, by
// recursion, the same inside literals that hold SQL (DO bodies, EXECUTE
// strings, function bodies) and inside quoted identifiers.
func Secrets(s string) []conninfo.Span { return secrets(s, 0) }

func secrets(s string, depth int) []conninfo.Span {
	toks := Tokens(s)
	var out []conninfo.Span
	sig := make([]int, 0, len(toks)) // indexes of tokens that are not space or comments
	for i, t := range toks {
		if t.Kind != Space && t.Kind != Comment {
			sig = append(sig, i)
		}
	}
	done := map[int]bool{} // significant tokens already redacted whole
	for n, ti := range sig {
		t := toks[ti]
		switch t.Kind {
		case Ident, QuotedIdent:
			name := s[t.Start:t.End]
			if t.Kind == QuotedIdent {
				name = s[t.BodyStart:t.BodyEnd]
			}
			if t.Kind == Ident {
				// PASSWORD$$x$$ lexes as one identifier (identifiers may
				// hold $): what follows the keyword is the secret.
				if k := strings.IndexByte(name, '$'); k > 0 && isSecretKey(name[:k]) {
					out = append(out, conninfo.Span{Start: t.Start + k, End: t.End})
					continue
				}
			}
			if !isSecretKey(name) {
				break
			}
			m := n + 1
			if m < len(sig) {
				nt := toks[sig[m]]
				if v := s[nt.Start:nt.End]; v == "=" || nt.Kind == Ident && strings.EqualFold(v, "to") {
					m++
				}
			}
			// The value: one literal, or several (a string and its
			// continuations lex as one token already).
		values:
			for ; m < len(sig); m++ {
				vt := toks[sig[m]]
				switch vt.Kind {
				case String, Dollar, QuotedIdent:
					out = append(out, literalSpan(s, vt))
				case Number:
					out = append(out, conninfo.Span{Start: vt.Start, End: vt.End})
				default:
					break values
				}
				done[m] = true
			}
		}
		if done[n] {
			continue
		}
		switch t.Kind {
		case String, Dollar, QuotedIdent:
			out = append(out, inner(s, t, toks, ti, depth)...)
		}
	}
	return mergeSpans(out)
}

// literalSpan is what to mask of a secret literal: its content, and for a
// standard string holding a backslash, as far as the literal would run
// were standard_conforming_strings off (a log does not say which it was).
func literalSpan(s string, t Token) conninfo.Span {
	sp := conninfo.Span{Start: t.BodyStart, End: t.BodyEnd}
	if t.Kind == String && t.Prefix != 'E' && t.Prefix != 'B' && t.Prefix != 'X' && strings.IndexByte(s[t.BodyStart:t.BodyEnd], '\\') >= 0 {
		if alt := stringToken(s, t.Start, t.BodyStart-1, 'E'); alt.BodyEnd > sp.End {
			sp.End = alt.BodyEnd
		}
	}
	return sp
}

// inner finds secrets inside a literal's value: connection strings, and
// SQL (recursively).
func inner(s string, t Token, toks []Token, ti, depth int) []conninfo.Span {
	if t.BodyEnd <= t.BodyStart {
		return nil
	}
	v, starts, ends := decode(s, t, uescape(s, t, toks, ti))
	if !MayHoldSecret(v) {
		return nil
	}
	sp := conninfo.SecretSpans(v)
	if depth < maxDepth {
		sp = append(sp, secrets(v, depth+1)...)
	}
	var out []conninfo.Span
	for _, x := range sp {
		if x.End <= x.Start || x.End > len(v) {
			continue
		}
		out = append(out, conninfo.Span{Start: starts[x.Start], End: ends[x.End-1]})
	}
	return out
}

// uescape returns the escape character of a U& literal (toks[ti]): a
// following UESCAPE 'c', or a backslash.
func uescape(s string, t Token, toks []Token, ti int) byte {
	if t.Prefix != 'U' {
		return '\\'
	}
	seen := 0
	for i := ti + 1; i < len(toks); i++ {
		x := toks[i]
		if x.Kind == Space || x.Kind == Comment {
			continue
		}
		if seen == 0 {
			if x.Kind != Ident || !strings.EqualFold(s[x.Start:x.End], "uescape") {
				break
			}
			seen++
			continue
		}
		if x.Kind == String && x.BodyEnd == x.BodyStart+1 {
			return s[x.BodyStart]
		}
		break
	}
	return '\\'
}

// decode returns a literal's value with, for each byte of it, where its
// source starts and ends in s.
func decode(s string, t Token, esc byte) (string, []int, []int) {
	body := s[t.BodyStart:t.BodyEnd]
	var b strings.Builder
	b.Grow(len(body))
	starts := make([]int, 0, len(body))
	ends := make([]int, 0, len(body))
	emit := func(str string, from, to int) {
		for k := 0; k < len(str); k++ {
			b.WriteByte(str[k])
			starts = append(starts, from)
			ends = append(ends, to)
		}
	}
	if t.Kind == Dollar {
		for k := t.BodyStart; k < t.BodyEnd; k++ {
			starts = append(starts, k)
			ends = append(ends, k+1)
		}
		return body, starts, ends
	}
	quote := byte('\'')
	if t.Kind == QuotedIdent {
		quote = '"'
	}
	for j := t.BodyStart; j < t.BodyEnd; {
		c := s[j]
		switch {
		case c == quote && j+1 < t.BodyEnd && s[j+1] == quote:
			emit(s[j:j+1], j, j+2)
			j += 2
		case c == quote: // end of a segment: skip to the continuation's quote
			k, ok := continuation(s, j+1)
			if !ok || k >= t.BodyEnd {
				j = t.BodyEnd
				continue
			}
			j = k + 1
		case t.Prefix == 'E' && c == '\\' && j+1 < t.BodyEnd:
			r, n := unescapeE(s[j+1 : t.BodyEnd])
			emit(r, j, j+1+n)
			j += 1 + n
		case t.Prefix == 'U' && c == esc && j+1 < t.BodyEnd:
			r, n := unescapeU(s[j+1:t.BodyEnd], esc)
			emit(r, j, j+1+n)
			j += 1 + n
		default:
			emit(s[j:j+1], j, j+1)
			j++
		}
	}
	return b.String(), starts, ends
}

// unescapeE decodes one E” backslash escape (after the backslash); it
// returns the bytes and how many source bytes it used.
func unescapeE(s string) (string, int) {
	switch c := s[0]; c {
	case 'b':
		return "\b", 1
	case 'f':
		return "\f", 1
	case 'n':
		return "\n", 1
	case 'r':
		return "\r", 1
	case 't':
		return "\t", 1
	case 'x':
		v, n := digits(s[1:], 16, 2)
		if n == 0 {
			return "x", 1
		}
		return string([]byte{byte(v)}), 1 + n
	case 'u', 'U':
		want := 4
		if c == 'U' {
			want = 8
		}
		v, n := digits(s[1:], 16, want)
		if n != want {
			return s[:1], 1
		}
		return string(rune(v)), 1 + n
	default:
		if c >= '0' && c <= '7' {
			v, n := digits(s, 8, 3)
			return string([]byte{byte(v)}), n
		}
		_, n := utf8.DecodeRuneInString(s)
		return s[:n], n
	}
}

// unescapeU decodes one U&” escape (after the escape character).
func unescapeU(s string, esc byte) (string, int) {
	if s[0] == esc {
		return s[:1], 1
	}
	if s[0] == '+' {
		if v, n := digits(s[1:], 16, 6); n == 6 {
			return string(rune(v)), 7
		}
		return "", 0
	}
	if v, n := digits(s, 16, 4); n == 4 {
		return string(rune(v)), 4
	}
	return "", 0
}

func digits(s string, base, max int) (int, int) {
	v, n := 0, 0
	for n < max && n < len(s) {
		c := s[n]
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = int(c-'A') + 10
		default:
			d = 99
		}
		if d >= base {
			break
		}
		v = v*base + d
		n++
	}
	return v, n
}

// isSecretKey reports whether a keyword or option name introduces a
// secret value: PASSWORD, and names ending like one (sslpassword,
// ldapbindpasswd, client_secret, radiussecrets), not password_encryption.
func isSecretKey(name string) bool {
	n := strings.ToLower(name)
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		n = n[i+1:]
	}
	return strings.HasSuffix(n, "password") || strings.HasSuffix(n, "passwd") || strings.HasSuffix(n, "secret") || strings.HasSuffix(n, "secrets")
}

func mergeSpans(sp []conninfo.Span) []conninfo.Span {
	k := 0
	for _, x := range sp { // an empty literal hides nothing
		if x.End > x.Start {
			sp[k] = x
			k++
		}
	}
	return conninfo.MergeSpans(sp[:k])
}
