// Package textsafe makes untrusted text safe to show on a terminal or in a
// plain-text report. Names of roles, databases and files, and fields of log
// records, come from whoever created them (an unauthenticated client can
// choose the user name of a failed login), so a raw ESC or a bidi override
// in them could retitle the terminal, clear the screen or reorder what the
// reader sees. Every human-readable writer passes such values through String.
package textsafe

import (
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
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r == '\\':
			b.WriteString(`\\`)
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

// Text is String for multi-line text that is meant to be multi-line (a
// fix of several statements, a report body): newlines and tabs are kept,
// everything else unsafe is escaped.
func Text(s string) string {
	if !Needs(s) {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		parts := strings.Split(l, "\t")
		for j, p := range parts {
			parts[j] = String(p)
		}
		lines[i] = strings.Join(parts, "\t")
	}
	return strings.Join(lines, "\n")
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}
