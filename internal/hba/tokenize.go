// Package hba parses pg_hba.conf and pg_ident.conf the way the PostgreSQL
// server does (src/backend/libpq/hba.c), so that what we report about a file
// is what the server will do with it.
package hba

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Token is one word of a field. Quoted records whether the token began with
// a double quote: a quoted "all" is a role named all, not the keyword.
type Token struct {
	Value  string `json:"value"`
	Quoted bool   `json:"quoted,omitempty"`
}

// IsKeyword reports whether t is the unquoted keyword kw.
func (t Token) IsKeyword(kw string) bool { return !t.Quoted && t.Value == kw }

// String renders the token as it would be written in the file.
func (t Token) String() string {
	if !t.Quoted {
		return t.Value
	}
	return `"` + strings.ReplaceAll(t.Value, `"`, `""`) + `"`
}

// tokenLine is one logical line (after backslash continuation) split into
// fields, each field a comma list of tokens with @file lists expanded.
type tokenLine struct {
	line   int
	raw    string
	fields [][]Token
	err    string
}

// maxIncludeDepth bounds @file recursion as the server does.
const maxIncludeDepth = 10

// fileReader reads an included file; tests and offline audits swap it.
type fileReader func(path string) ([]byte, error)

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

// tokenizeFile splits a file into logical lines. Lines that hold nothing
// (blank, comment only) are dropped, as the server drops them.
func tokenizeFile(name string, data []byte, read fileReader, depth int) []tokenLine {
	var out []tokenLine
	text := string(data)
	lineNo := 1
	for len(text) > 0 {
		// Collect one logical line: a trailing backslash joins the next
		// physical line (also inside a comment, as the server does).
		var buf strings.Builder
		continuations := 0
		for {
			var phys string
			if i := strings.IndexByte(text, '\n'); i >= 0 {
				phys, text = text[:i], text[i+1:]
			} else {
				phys, text = text, ""
			}
			phys = strings.TrimRight(phys, "\r\n")
			if strings.HasSuffix(phys, `\`) {
				buf.WriteString(phys[:len(phys)-1])
				if len(text) == 0 {
					break
				}
				continuations++
				continue
			}
			buf.WriteString(phys)
			break
		}
		raw := buf.String()
		tl := tokenLine{line: lineNo, raw: raw}
		rest := raw
		for len(rest) > 0 && tl.err == "" {
			field, next, err := nextFieldExpand(name, rest, read, depth)
			rest = next
			if err != "" {
				tl.err = err
				break
			}
			if field != nil {
				tl.fields = append(tl.fields, field)
			}
		}
		if len(tl.fields) > 0 || tl.err != "" {
			out = append(out, tl)
		}
		lineNo += continuations + 1
	}
	return out
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// nextToken reads one token from s. It returns the token, whether it began
// with a quote, whether a comma ended it, whether anything was read, and the
// rest of the line. An unquoted # ends the line.
func nextToken(s string) (tok string, initialQuote, comma, ok bool, rest string) {
	i := 0
	for i < len(s) && (isBlank(s[i]) || s[i] == ',') {
		i++
	}
	var b strings.Builder
	inQuote, wasQuote, sawQuote := false, false, false
	for i < len(s) && (!isBlank(s[i]) || inQuote) {
		c := s[i]
		if c == '#' && !inQuote {
			i = len(s)
			break
		}
		if c == ',' && !inQuote {
			comma = true
			i++
			break
		}
		if c != '"' || wasQuote {
			b.WriteByte(c)
		}
		// A doubled quote inside quotes stands for one literal quote.
		if inQuote && c == '"' {
			wasQuote = !wasQuote
		} else {
			wasQuote = false
		}
		if c == '"' {
			inQuote = !inQuote
			sawQuote = true
			if b.Len() == 0 {
				initialQuote = true
			}
		}
		i++
	}
	return b.String(), initialQuote, comma, sawQuote || b.Len() > 0, s[i:]
}

// nextFieldExpand reads one whitespace-separated field: a comma list of
// tokens, with unquoted @file entries replaced by the file's tokens.
func nextFieldExpand(name, s string, read fileReader, depth int) ([]Token, string, string) {
	var toks []Token
	for {
		tok, quoted, comma, ok, rest := nextToken(s)
		s = rest
		if !ok {
			break
		}
		if !quoted && len(tok) > 1 && tok[0] == '@' {
			inc, err := includeTokens(name, tok[1:], read, depth)
			if err != "" {
				return nil, s, err
			}
			toks = append(toks, inc...)
		} else {
			toks = append(toks, Token{Value: tok, Quoted: quoted})
		}
		if !comma {
			break
		}
	}
	return toks, s, ""
}

// includeTokens reads an @file: every token of every line, in order.
func includeTokens(outer, inc string, read fileReader, depth int) ([]Token, string) {
	full := resolvePath(outer, inc)
	if depth+1 > maxIncludeDepth {
		return nil, fmt.Sprintf("could not open file %q: maximum nesting depth exceeded", full)
	}
	data, err := read(full)
	if err != nil {
		return nil, fmt.Sprintf("could not open secondary authentication file \"@%s\" as %q: %v", inc, full, cleanErr(err))
	}
	var toks []Token
	for _, l := range tokenizeFile(full, data, read, depth+1) {
		if l.err != "" {
			return nil, l.err
		}
		for _, f := range l.fields {
			toks = append(toks, f...)
		}
	}
	return toks, ""
}

// resolvePath makes inc absolute relative to the directory of outer.
func resolvePath(outer, inc string) string {
	if filepath.IsAbs(inc) {
		return filepath.Clean(inc)
	}
	return filepath.Join(filepath.Dir(outer), inc)
}

func cleanErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
