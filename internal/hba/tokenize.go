// Package hba parses pg_hba.conf and pg_ident.conf the way the PostgreSQL
// server does (src/backend/libpq/hba.c), so that what we report about a file
// is what the server will do with it.
package hba

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/pgaegis/pgaegis/internal/safefile"
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
	file   string
	line   int
	raw    string
	fields [][]Token
	err    string
	// depth is 0 for the file parsed, more for include files; expanded
	// is set when an @file supplied tokens. Either way errors about the
	// line must not quote it: it holds content of another file.
	depth    int
	expanded bool
}

func (tl tokenLine) quotable() bool { return tl.depth == 0 && !tl.expanded }

// maxIncludeDepth bounds @file and include recursion as the server does.
const maxIncludeDepth = 10

// Bounds on what one parse reads and produces. Depth alone does not bound
// it: a line naming @self ten times expands 10^10 times within depth 10.
const (
	maxTotalBytes  = safefile.ConfigMax
	maxTotalTokens = 8 << 20
	maxFiles       = 10000
)

// budget is shared by a tokenizer and the copies it makes for @files.
type budget struct {
	bytes  int64
	tokens int
	files  int
}

// fileReader reads an included file; tests and offline audits swap it.
type fileReader func(path string) ([]byte, error)

func readFile(path string) ([]byte, error) { return safefile.ReadConfig(path) }

// tokenizer splits files into lines the way the server's
// tokenize_auth_file does.
type tokenizer struct {
	read    fileReader
	readDir func(string) ([]os.DirEntry, error)
	// includes: PostgreSQL 16+ include / include_if_exists / include_dir lines.
	includes bool
	// v16: 16's wording of messages.
	v16 bool
	// customRead: files come from Options.ReadFile, not this host's disk.
	customRead bool
	// continuation: a trailing backslash joins lines (14+).
	continuation bool
	used         *budget
}

func newTokenizer(o Options) *tokenizer {
	t := &tokenizer{read: readFile, readDir: os.ReadDir, includes: o.Version == 0 || o.Version >= 16, v16: o.Version == 0 || o.Version >= 16,
		continuation: o.Version == 0 || o.Version >= 14, used: &budget{}}
	if o.ReadFile != nil {
		t.read, t.customRead = o.ReadFile, true
	}
	if o.ReadDir != nil {
		t.readDir = o.ReadDir
	}
	return t
}

// tokenizeFile splits a file into logical lines. Lines that hold nothing
// (blank, comment only) are dropped, as the server drops them.
func (tz *tokenizer) tokenizeFile(name string, data []byte, depth int) []tokenLine {
	// Sized once: a large file otherwise spends its time regrowing.
	out := make([]tokenLine, 0, bytes.Count(data, []byte{'\n'})+1)
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
			if tz.continuation && strings.HasSuffix(phys, `\`) {
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
		tl := tokenLine{file: name, line: lineNo, raw: raw, depth: depth}
		rest := raw
		for len(rest) > 0 && tl.err == "" {
			field, next, expanded, err := tz.nextFieldExpand(name, rest, depth)
			rest = next
			tl.expanded = tl.expanded || expanded
			if err != "" {
				tl.err = err
				break
			}
			if field != nil {
				tl.fields = append(tl.fields, field)
			}
		}
		lineNo += continuations + 1
		if len(tl.fields) == 0 && tl.err == "" {
			continue
		}
		if tl.err == "" && tz.includes && len(tl.fields) == 2 {
			if inc, handled, err := tz.include(name, tl, depth); handled {
				if err == "" {
					out = append(out, inc...)
					continue
				}
				tl.err = err
			}
		}
		out = append(out, tl)
	}
	return out
}

// include handles the PostgreSQL 16 include directives. handled is false
// when the line is an ordinary rule.
func (tz *tokenizer) include(name string, tl tokenLine, depth int) ([]tokenLine, bool, string) {
	kw, target := tl.fields[0][0].Value, tl.fields[1][0].Value
	switch kw {
	case "include", "include_if_exists":
		lines, err := tz.includeFile(name, target, depth, kw == "include_if_exists")
		return lines, true, err
	case "include_dir":
		dir := resolvePath(name, target)
		entries, err := tz.readDir(dir)
		if err != nil {
			// The server names no reason.
			return nil, true, "could not open directory " + q(dir)
		}
		var names []string
		for _, e := range entries {
			n := e.Name()
			if strings.HasPrefix(n, ".") || len(n) < 6 || !strings.HasSuffix(n, ".conf") || e.IsDir() {
				continue
			}
			names = append(names, filepath.Join(dir, n))
		}
		sort.Strings(names)
		var out []tokenLine
		var errs []string
		for _, n := range names {
			lines, err := tz.includeFile(name, n, depth, false)
			if err != "" {
				errs = append(errs, err)
			}
			out = append(out, lines...)
		}
		return out, true, strings.Join(errs, "\n")
	}
	return nil, false, ""
}

func (tz *tokenizer) includeFile(outer, inc string, depth int, ifExists bool) ([]tokenLine, string) {
	full := resolvePath(outer, inc)
	if depth+1 > maxIncludeDepth {
		return nil, "could not open file " + q(full) + ": maximum nesting depth exceeded"
	}
	data, err := tz.readCounted(full)
	if err != nil {
		if st, e := os.Stat(full); e == nil && st.IsDir() && !tz.customRead {
			// The server opens a directory like a file and reads no
			// line from it: no rules, no error.
			return nil, ""
		}
		if ifExists && errors.Is(err, fs.ErrNotExist) {
			return nil, "" // skipped, as the server does
		}
		return nil, "could not open file " + q(full) + ": " + cleanErr(err)
	}
	return tz.tokenizeFile(full, data, depth+1), ""
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
func (tz *tokenizer) nextFieldExpand(name, s string, depth int) ([]Token, string, bool, string) {
	var toks []Token
	expanded := false
	for {
		tok, quoted, comma, ok, rest := nextToken(s)
		s = rest
		if !ok {
			break
		}
		if !quoted && len(tok) > 1 && tok[0] == '@' {
			expanded = true
			inc, err := tz.includeTokens(name, tok[1:], depth)
			if err != "" {
				return nil, s, expanded, err
			}
			toks = append(toks, inc...)
			// Copies count too: they are what grows with nesting.
			tz.used.tokens += len(inc)
		} else {
			toks = append(toks, Token{Value: tok, Quoted: quoted})
		}
		tz.used.tokens++
		if tz.used.tokens > maxTotalTokens {
			return nil, s, expanded, fmt.Sprintf("the file and its @file inclusions hold more than %d tokens", maxTotalTokens)
		}
		if !comma {
			break
		}
	}
	return toks, s, expanded, ""
}

// readCounted reads an included file against the parse's byte budget.
func (tz *tokenizer) readCounted(path string) ([]byte, error) {
	if tz.used.files >= maxFiles || tz.used.bytes > maxTotalBytes {
		return nil, errBudget
	}
	tz.used.files++
	data, err := tz.read(path)
	if err != nil {
		return nil, err
	}
	tz.used.bytes += int64(len(data))
	if tz.used.bytes > maxTotalBytes {
		return nil, errBudget
	}
	return data, nil
}

var errBudget = fmt.Errorf("the file and its inclusions are more than %d files or %d MiB in total: not read further", maxFiles, maxTotalBytes>>20)

// includeTokens reads an @file: every token of every line, in order.
func (tz *tokenizer) includeTokens(outer, inc string, depth int) ([]Token, string) {
	full := resolvePath(outer, inc)
	if depth+1 > maxIncludeDepth {
		return nil, "could not open file " + q(full) + ": maximum nesting depth exceeded"
	}
	data, err := tz.readCounted(full)
	if err != nil {
		if tz.v16 {
			return nil, "could not open file " + q(full) + ": " + cleanErr(err)
		}
		return nil, "could not open secondary authentication file " + q("@"+inc) + " as " + q(full) + ": " + cleanErr(err)
	}
	var toks []Token
	// Include directives are not followed inside @ files.
	sub := *tz
	sub.includes = false
	for _, l := range sub.tokenizeFile(full, data, depth+1) {
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
		if errno, ok := pe.Err.(syscall.Errno); ok {
			// strerror's wording, as the server prints it.
			m := errno.Error()
			return strings.ToUpper(m[:1]) + m[1:]
		}
		return pe.Err.Error()
	}
	return err.Error()
}
