package conninfo

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Span is a byte range [Start, End) of a text.
type Span struct{ Start, End int }

// Mask replaces a password in connection strings.
const Mask = "xxxxx"

// SecretSpans finds the password values in a text that holds connection
// strings: key=value pairs whose key ends in "password" (password,
// sslpassword), read the way libpq's conninfo_parse reads a value (single
// quotes with backslash escapes, or up to unescaped whitespace), and the
// userinfo password and ?password= parameter of postgres:// URIs. A value
// that runs off the end (a truncated message) extends to the end. Each span
// covers the whole written value, quotes and escapes included, so nothing
// of it is left once the span is replaced.
func SecretSpans(s string) []Span {
	var out []Span
	low := asciiLower(s) // same length as s: offsets in one are offsets in the other
	// URIs: libpq ends the userinfo at the first '@' before the first '/';
	// a password that itself holds a raw '@' (which libpq would misparse)
	// must still be hidden whole, so the span ends at the last '@' before
	// the host part ends.
	for from := 0; ; {
		i := strings.Index(low[from:], "postgres")
		if i < 0 {
			break
		}
		i += from
		from = i + 1
		rest := low[i:]
		var n int
		switch {
		case strings.HasPrefix(rest, "postgresql://"):
			n = len("postgresql://")
		case strings.HasPrefix(rest, "postgres://"):
			n = len("postgres://")
		default:
			continue
		}
		start := i + n
		// A URI that is the whole text (a -d value, a primary_conninfo)
		// may hold raw spaces in its userinfo, as libpq reads it; inside a
		// message, whitespace ends it.
		whole := strings.TrimLeft(s[:i], " \t\r\n") == ""
		end := start
		for end < len(s) && s[end] != '/' && s[end] != '?' && s[end] != '#' && (whole || !isSpace(s[end])) {
			end++
		}
		at := strings.LastIndexByte(s[start:end], '@')
		if at < 0 {
			continue
		}
		at += start
		if c := strings.IndexByte(s[start:at], ':'); c >= 0 {
			out = append(out, Span{start + c + 1, at})
		}
	}
	// key=value pairs, and URI query parameters.
	for from := 0; ; {
		i := strings.Index(low[from:], "password")
		if i < 0 {
			break
		}
		i += from
		from = i + 1
		j := i + len("password")
		if j < len(s) && isKeyChar(s[j]) {
			continue // password_encryption, passwords, ...
		}
		k := i
		for k > 0 && isKeyChar(s[k-1]) {
			k--
		}
		inQuery := k > 0 && (s[k-1] == '?' || s[k-1] == '&')
		for j < len(s) && isSpace(s[j]) && !inQuery {
			j++
		}
		if j >= len(s) || s[j] != '=' {
			continue
		}
		j++
		if inQuery {
			e := j
			for e < len(s) && s[e] != '&' && s[e] != '#' && !isSpace(s[e]) {
				e++
			}
			if e > j {
				out = append(out, Span{j, e})
			}
			continue
		}
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		if e := valueEnd(s, j); e > j {
			out = append(out, Span{j, e})
		}
	}
	return MergeSpans(out)
}

// asciiLower lower-cases ASCII letters only; strings.ToLower would change
// the length of invalid UTF-8.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// valueEnd returns where a libpq conninfo value starting at i ends.
func valueEnd(s string, i int) int {
	if i < len(s) && s[i] == '\'' {
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '\'':
				return j + 1
			}
		}
		return len(s)
	}
	j := i
	for j < len(s) && !isSpace(s[j]) {
		if s[j] == '\\' {
			j++
		}
		j++
	}
	if j > len(s) {
		j = len(s)
	}
	return j
}

// MergeSpans sorts spans and joins overlapping ones.
func MergeSpans(sp []Span) []Span {
	if len(sp) < 2 {
		return sp
	}
	for i := 1; i < len(sp); i++ { // insertion sort: a handful of spans
		for j := i; j > 0 && sp[j].Start < sp[j-1].Start; j-- {
			sp[j], sp[j-1] = sp[j-1], sp[j]
		}
	}
	out := sp[:1]
	for _, x := range sp[1:] {
		last := &out[len(out)-1]
		if x.Start <= last.End {
			if x.End > last.End {
				last.End = x.End
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// Replace replaces each span of s with mask.
func Replace(s string, spans []Span, mask string) string {
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.Start])
		b.WriteString(mask)
		prev = sp.End
	}
	b.WriteString(s[prev:])
	return b.String()
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isKeyChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// RedactDSN hides passwords in a URI or key=value connection string, or in
// a message that holds one.
func RedactDSN(s string) string { return Replace(s, SecretSpans(s), Mask) }

// shortSecret is the length below which a secret is masked only where it
// stands as a whole word: a two-letter password must not garble every
// message it happens to occur in, while a longer one is masked wherever it
// occurs.
const shortSecret = 8

// Redact hides connection-string passwords in a message, and each of the
// given passwords wherever it appears as a whole value. Only secrets
// belong here (passwords from the DSN, PGPASSWORD, ~/.pgpass, a service
// file): a database or host name is not one.
func Redact(msg string, passwords ...string) string {
	msg = RedactDSN(msg)
	for _, pw := range passwords {
		if pw == "" {
			continue
		}
		msg = maskValue(msg, pw)
	}
	return msg
}

func maskValue(msg, pw string) string {
	if len(pw) >= shortSecret {
		return strings.ReplaceAll(msg, pw, Mask)
	}
	var b strings.Builder
	prev := 0
	for from := 0; ; {
		i := strings.Index(msg[from:], pw)
		if i < 0 {
			break
		}
		i += from
		e := i + len(pw)
		from = i + 1
		if i < prev {
			continue
		}
		if wordEdge(pw, true) && i > 0 {
			if r, _ := utf8.DecodeLastRuneInString(msg[:i]); isWord(r) {
				continue
			}
		}
		if wordEdge(pw, false) && e < len(msg) {
			if r, _ := utf8.DecodeRuneInString(msg[e:]); isWord(r) {
				continue
			}
		}
		b.WriteString(msg[prev:i])
		b.WriteString(Mask)
		prev = e
		from = e
	}
	if prev == 0 {
		return msg
	}
	b.WriteString(msg[prev:])
	return b.String()
}

// wordEdge reports whether the first (or last) rune of s is a word rune,
// so the text next to it must not be one for a whole-word match.
func wordEdge(s string, first bool) bool {
	var r rune
	if first {
		r, _ = utf8.DecodeRuneInString(s)
	} else {
		r, _ = utf8.DecodeLastRuneInString(s)
	}
	return isWord(r)
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// Secrets are the passwords a configuration will send (from the DSN,
// PGPASSWORD, ~/.pgpass or a service file): what must never be printed.
func Secrets(cfg *pgx.ConnConfig) []string {
	if cfg == nil || cfg.Password == "" {
		return nil
	}
	return []string{cfg.Password}
}

// PasswordOf returns the password a connection string carries, decoded
// (libpq quoting, URI percent-encoding), or "" (a database name carries
// none).
func PasswordOf(dsn string) string {
	if isURI(dsn) {
		if u, err := url.Parse(dsn); err == nil {
			if p, ok := u.User.Password(); ok {
				return p
			}
			return u.Query().Get("password")
		}
		return ""
	}
	if !strings.Contains(dsn, "=") {
		return ""
	}
	for _, sp := range SecretSpans(dsn) {
		return unquoteValue(dsn[sp.Start:sp.End])
	}
	return ""
}

// unquoteValue undoes libpq's value quoting: outer single quotes and
// backslash escapes.
func unquoteValue(v string) string {
	if strings.HasPrefix(v, "'") {
		v = strings.TrimSuffix(v[1:], "'")
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
