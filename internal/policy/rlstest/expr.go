// Package rlstest proves a policy file's row-level security by behaviour:
// each test runs as its role with its session settings on the real server,
// in a transaction that is always rolled back, and compares the rows the
// role sees and the writes it may make with what the file expects. It
// also lints policy expressions (current_setting without missing_ok, a
// permissive USING (true) beside narrower policies, an owner that bypasses
// RLS).
package rlstest

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/sqllex"
)

// checkExpr refuses text that is not one balanced SQL expression: the
// file's expressions are spliced into our own (...) wrapping, so a
// top-level ';', a stray ')' or an unterminated literal or comment would
// let them escape it.
func checkExpr(s string) error {
	depth, seen := 0, false
	for _, t := range sqllex.Tokens(s) {
		text := s[t.Start:t.End]
		switch t.Kind {
		case sqllex.Space:
			continue
		case sqllex.Comment:
			if strings.HasPrefix(text, "/*") && !blockClosed(text) {
				return fmt.Errorf("unterminated /* comment")
			}
			continue
		case sqllex.String, sqllex.QuotedIdent, sqllex.Dollar:
			if t.BodyEnd == t.End {
				return fmt.Errorf("unterminated quoted text at offset %d", t.Start)
			}
		case sqllex.Op:
			switch text {
			case "(", "[":
				depth++
			case ")", "]":
				depth--
				if depth < 0 {
					return fmt.Errorf("unbalanced %q at offset %d", text, t.Start)
				}
			case ";":
				return fmt.Errorf("';' at offset %d: one expression only", t.Start)
			}
		}
		seen = true
	}
	if depth != 0 {
		return fmt.Errorf("unbalanced parentheses")
	}
	if !seen {
		return fmt.Errorf("empty expression")
	}
	return nil
}

// blockClosed reports whether a /* comment token closes its nesting.
func blockClosed(c string) bool {
	depth := 0
	for i := 0; i+1 < len(c); {
		switch {
		case c[i] == '/' && c[i+1] == '*':
			depth++
			i += 2
		case c[i] == '*' && c[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i == len(c)
			}
		default:
			i++
		}
	}
	return false
}

// wrap puts a checked expression in parentheses; the newline ends a
// trailing -- comment before our closing one.
func wrap(e string) string { return "(" + e + "\n)" }
