// Package quote renders names and values into the languages pgaegis prints
// fixes in: PostgreSQL SQL (identifiers and literals), POSIX shell words,
// postgresql.conf values, pg_hba.conf/pg_ident.conf tokens and
// pg_service.conf entries. Every name in a printed fix comes from whoever
// created the object, so each function here either produces text the target
// parser reads back as exactly that one name, on one line, or refuses.
package quote

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// Category is a keyword category of the PostgreSQL grammar.
type Category int

// Keyword categories, as pg_get_keywords() reports them (U, C, T, R).
const (
	Unreserved Category = iota + 1
	ColName
	TypeFuncName
	Reserved
)

var keywords = func() map[string]Category {
	m := map[string]Category{}
	for c, list := range keywordList {
		for _, w := range strings.Fields(list) {
			m[w] = c
		}
	}
	return m
}()

// Keyword reports the category of word if it is a PostgreSQL keyword.
func Keyword(word string) (Category, bool) {
	c, ok := keywords[word]
	return c, ok
}

// oneLine reports whether r may appear as itself in printed text: no
// controls, no bidi or invisible format characters, nothing that ends a line.
func oneLine(r rune) bool {
	return r != utf8.RuneError && !textsafe.Needs(string(r))
}

// Ident quotes a PostgreSQL identifier as quote_ident() does: bare when it
// is lower-case letters, digits and underscores, does not start with a
// digit and is not a keyword other than an unreserved one; otherwise in
// double quotes with quotes doubled. A name holding a control, bidi or
// invalid character is written as U&"..." with \XXXX escapes instead, so
// it stays on one line and cannot end a comment or start a statement.
func Ident(name string) string {
	if bare(name) {
		return name
	}
	for _, r := range name {
		if !oneLine(r) {
			return unicodeIdent(name)
		}
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func bare(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	c, kw := keywords[name]
	return !kw || c == Unreserved
}

// unicodeIdent writes U&"..." (scan.l xui): the escape character is the
// default backslash, valid in every server regardless of
// standard_conforming_strings. Invalid UTF-8 bytes cannot be named by the
// server at all (it rejects them), so they become U+FFFD: the statement
// then fails to find the object rather than touching another.
func unicodeIdent(name string) string {
	var b strings.Builder
	b.WriteString(`U&"`)
	writeUnicodeEscaped(&b, name, '"')
	b.WriteByte('"')
	return b.String()
}

func writeUnicodeEscaped(b *strings.Builder, s string, q byte) {
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte(q)
			b.WriteByte(q)
		case oneLine(r):
			b.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(b, `\%04X`, r)
		default:
			fmt.Fprintf(b, `\+%06X`, r)
		}
	}
}

// Qualified quotes each part and joins them with dots (schema.name).
func Qualified(parts ...string) string {
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = Ident(p)
	}
	return strings.Join(q, ".")
}

// ErrArgs is returned for an argument list that is not the server's own
// rendering of argument types.
var ErrArgs = errors.New("not an argument list as the server renders it")

// Args re-renders an argument list as pg_get_function_identity_arguments()
// returns it ("a integer, VARIADIC b text[]", with odd names in double
// quotes) onto one line: every double-quoted name goes through Ident, and
// the text between them may hold only letters, digits, underscores, spaces,
// commas, dots, parentheses and brackets. Anything else (a quote, a
// semicolon, a comment, a newline), which the server never writes there,
// means the list did not come from the server, and Args refuses it.
func Args(args string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(args); {
		c := args[i]
		switch {
		case c == '"':
			var name strings.Builder
			j := i + 1
			for {
				if j >= len(args) {
					return "", ErrArgs
				}
				if args[j] == '"' {
					if j+1 < len(args) && args[j+1] == '"' {
						name.WriteByte('"')
						j += 2
						continue
					}
					break
				}
				name.WriteByte(args[j])
				j++
			}
			if name.Len() == 0 {
				return "", ErrArgs
			}
			b.WriteString(Ident(name.String()))
			i = j + 1
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("_ ,.()[]", c) >= 0:
			b.WriteByte(c)
			i++
		default:
			return "", ErrArgs
		}
	}
	return b.String(), nil
}

// Function renders schema.name(args) for ALTER/REVOKE ... FUNCTION, or an
// error when args is not a server-rendered argument list.
func Function(schema, name, args string) (string, error) {
	a, err := Args(args)
	if err != nil {
		return "", fmt.Errorf("function %s: %w", Qualified(schema, name), err)
	}
	return Qualified(schema, name) + "(" + a + ")", nil
}

// Literal quotes a string constant as quote_literal() does ('...' with
// quotes doubled, E'...' with backslashes doubled when there is a
// backslash). A value holding a control, bidi or invalid character is
// written as E'...' with \n, \r, \t, \xHH or \uXXXX escapes, on one line.
// E” and plain ” without a backslash mean the same under either setting
// of standard_conforming_strings.
func Literal(s string) string {
	plain := true
	for _, r := range s {
		if r == '\\' || !oneLine(r) {
			plain = false
			break
		}
	}
	if plain {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	var b strings.Builder
	b.WriteString("E'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			// An invalid byte stays invalid: the server rejects it.
			fmt.Fprintf(&b, `\x%02X`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\'':
			b.WriteString(`''`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case oneLine(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02X`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			fmt.Fprintf(&b, `\U%08X`, r)
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// Shell quotes one POSIX shell word: bare when it holds only characters no
// shell treats specially, otherwise in single quotes with each ' written as
// '\”. Inside single quotes nothing is special, a newline included, so the
// word stays one argument whatever it holds.
func Shell(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:,=@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ErrNotRepresentable is wrapped by the errors of the file-format quoters
// for values their format cannot hold.
var ErrNotRepresentable = errors.New("cannot be written in this file format")

// ConfValue quotes a postgresql.conf value (guc-file.l): single quotes, a
// quote doubled, a backslash doubled, and line breaks and other controls as
// the escapes the server's GUC_scanstr reads back (\n, \r, \t, \b, \f,
// \ooo). A raw newline cannot appear inside a quoted value, and NUL ends
// the C string, so a value holding NUL is refused.
func ConfValue(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("value with a NUL byte: %w", ErrNotRepresentable)
	}
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\'':
			b.WriteString("''")
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case n == 1 && r == utf8.RuneError || !oneLine(r):
			// Other controls, bidi overrides and invalid bytes: octal, byte
			// by byte, so the file holds the same bytes and shows one line.
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\%03o`, c)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String(), nil
}

// hbaKeywords are the words that pg_hba.conf reads as keywords when bare
// (in the database, user or address field); quoted they are names.
var hbaKeywords = map[string]bool{
	"all": true, "sameuser": true, "samerole": true, "samegroup": true, "replication": true,
	"samehost": true, "samenet": true,
}

// HBAToken renders one pg_hba.conf/pg_ident.conf token for a name: bare
// when hba.c's next_token reads it back unchanged and as a plain name,
// otherwise in double quotes with each quote doubled. Quoting is needed for
// the keywords (all, sameuser, samerole, samegroup, replication, samehost,
// samenet), a leading + (group membership), @ (file inclusion) or / (a
// regular expression, PostgreSQL 16 on), and blanks, commas, # and quotes.
// The format has no escapes: a line break cannot be written inside a token
// at all, and other controls (ESC, bidi overrides) only raw, where they
// would reach whoever reads the line on a terminal. Such names return an
// error, and the caller must print an explanation instead of a line.
func HBAToken(name string) (string, error) {
	if name == "" {
		return `""`, nil
	}
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("a name that is not valid UTF-8: %w", ErrNotRepresentable)
	}
	plain := !hbaKeywords[name] && strings.IndexAny(name[:1], "+@/") < 0
	for _, r := range name {
		if !oneLine(r) {
			return "", fmt.Errorf("a name with a line break or control character: %w", ErrNotRepresentable)
		}
		if r == '"' || r == ',' || r == '#' || r == ' ' {
			plain = false
		}
	}
	if plain {
		return name, nil
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`, nil
}

// ServiceName and ServiceValue render a pg_service.conf section name and a
// value (libpq's parseServiceFile): a line is taken whole, trailing blanks
// are dropped and nothing is unquoted, so a value with a line break or
// trailing blank, and a section name with "]", cannot be written.
func ServiceName(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "]\n\r\x00") {
		return "", fmt.Errorf("service name %s: %w", Literal(name), ErrNotRepresentable)
	}
	return "[" + name + "]", nil
}

// ServiceValue: see ServiceName.
func ServiceValue(v string) (string, error) {
	if strings.ContainsAny(v, "\n\r\x00") || strings.TrimRight(v, " \t\v\f") != v || strings.TrimLeft(v, " \t\v\f") != v {
		return "", fmt.Errorf("service file value %s: %w", Literal(v), ErrNotRepresentable)
	}
	return v, nil
}

// LowerASCII folds an unquoted identifier or keyword the way the server's
// downcase_identifier does in a UTF-8 database: ASCII letters only.
func LowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
