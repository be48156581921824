// Package textsafe makes untrusted text safe to show on a terminal or in a
// plain-text report. Names of roles, databases and files, and fields of log
// records, come from whoever created them (an unauthenticated client can
// choose the user name of a failed login), so a raw ESC or a bidi override
// in them could retitle the terminal, clear the screen or reorder what the
// reader sees. Every human-readable writer passes such values through String.
package textsafe

import (
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// unsafe reports whether r must not reach a terminal as itself: C0 and C1
// controls, DEL, and the Unicode format characters that reorder or hide
// text (bidi embeddings, overrides and isolates, marks, zero-width joiners
// used to hide content, the BOM and line/paragraph separators).
func unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x061c, r == 0x2028, r == 0x2029, r == 0xfeff:
		return true
	}
	return false
}

// Needs reports whether s would be changed by String.
func Needs(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || unsafe(r) || r == '\\' {
			return true
		}
		i += n
	}
	return false
}

// String returns s with every unsafe character written as a visible escape
// (\n, \t, \x1b, \u202e) and invalid UTF-8 bytes as \xNN. A backslash is
// doubled so that an escape in the output always means an escape, and the
// original can be told apart from a name that contains the text "\x1b".
func String(s string) string {
	if !Needs(s) {
		return s
	}
	return escape(s, false, true)
}

// Text is String for multi-line text that is meant to be multi-line (a
// fix of several statements, a report body): newlines and tabs are kept,
// everything else unsafe is escaped.
func Text(s string) string {
	if !Needs(s) {
		return s
	}
	return escape(s, true, true)
}

// Code is Text for something the reader is meant to copy and run (a fix:
// SQL, a shell command, a configuration line): backslashes are kept as they
// are, since doubling them would change what a paste runs. Unsafe
// characters are still escaped, so a fix holding one cannot act on the
// terminal (and is visibly not the original when pasted).
func Code(s string) string {
	if !Needs(s) {
		return s
	}
	return escape(s, true, false)
}

func escape(s string, keepLines, doubleBackslash bool) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r == '\\':
			if doubleBackslash {
				b.WriteString(`\\`)
			} else {
				b.WriteByte('\\')
			}
		case keepLines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unsafe(r):
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case unsafe(r):
			b.WriteString(`\u`)
			q := strconv.FormatInt(int64(r), 16)
			b.WriteString(strings.Repeat("0", 4-len(q)) + q)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// Writer escapes everything written through it as Code does (newlines,
// tabs and backslashes kept). It is for streams that are human-readable only (a command's
// text output), so that a field added later cannot reach the terminal raw.
// Each Write is escaped on its own: callers write whole strings (fmt and
// text/tabwriter do), so a character is never split across two writes.
type Writer struct{ w io.Writer }

// NewWriter wraps w.
func NewWriter(w io.Writer) *Writer {
	if tw, ok := w.(*Writer); ok {
		return tw // escaping twice would double every backslash
	}
	return &Writer{w: w}
}

// Write escapes p and writes it; it reports len(p) on success so that
// callers (fmt, tabwriter) do not see a short write for expanded text.
func (t *Writer) Write(p []byte) (int, error) {
	s := Code(string(p)) // backslashes kept: callers escape their fields with String
	if _, err := io.WriteString(t.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unwrap returns the underlying writer (to ask whether it is a terminal).
func (t *Writer) Unwrap() io.Writer { return t.w }

// FirstUnsafe returns the byte offset of the first character in s that
// must not reach a terminal raw (newlines and tabs allowed), or -1. Tests
// of every human-readable writer use it.
func FirstUnsafe(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || unsafe(r) && r != '\n' && r != '\t' {
			return i
		}
		i += n
	}
	return -1
}

// Shorten escapes s as String does and cuts it to at most n bytes at a
// character boundary (never inside an escape), adding "…" when cut.
func Shorten(s string, n int) string {
	s = String(s)
	if len(s) <= n {
		return s
	}
	cut := 0
	for i := 0; i < len(s); {
		// An escape (\x1b, \u202e, \\) is kept whole.
		w := 1
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'x':
				w = 4
			case 'u':
				w = 6
			default:
				w = 2
			}
		} else {
			_, w = utf8.DecodeRuneInString(s[i:])
		}
		if i+w > n {
			break
		}
		i += w
		cut = i
	}
	return s[:cut] + "…"
}

// Thousands formats a count as a reader reads it: 15,950 (below 10,000
// without a separator).
func Thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 10000 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// OneLine folds a multi-line error (pgx puts each address it tried on a
// line of its own, often the same line twice: with and without TLS) into
// one line, each distinct part once, for messages that are one record
// (a stored scan's message, a report cell, a log line): the last part is
// usually the cause.
func OneLine(msg string) string {
	if !strings.ContainsAny(msg, "\r\n") {
		return msg
	}
	var parts []string
	seen := map[string]bool{}
	for _, l := range strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }) {
		l = strings.TrimSpace(l)
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		parts = append(parts, l)
	}
	return strings.Join(parts, " ")
}
