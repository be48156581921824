package hba

import (
	"errors"
	"regexp"
	"strings"
)

// compileRegex compiles a pg_hba.conf / pg_ident.conf regular expression.
// The server's engine is Spencer's ARE, Go's is RE2; they agree on the
// patterns these files use, and where ARE is stricter the stricter rule
// is checked here first, so a line the server rejects is rejected.
//
// A pattern ARE accepts that RE2 cannot compile (lookahead, back
// references, ARE's own escapes such as \m or \y) gives a nil Regexp and
// no error: the line loads, and what it matches is not decided here.
func compileRegex(p string) (*regexp.Regexp, error) {
	if err := areBounds(p); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(strings.ReplaceAll(p, `\Z`, `\z`))
	if err != nil && areOnly.MatchString(p) {
		return nil, nil
	}
	return re, err
}

// areOnly finds constructs of ARE that RE2 lacks.
var areOnly = regexp.MustCompile(`\\[mMyY1-9]|\(\?[=!]|^\*\*\*[:=]`)

// areDupMax is ARE's largest repetition count (RE2 allows 1000).
const areDupMax = 255

// areBounds checks {m}, {m,}, {m,n} outside bracket expressions: in ARE an
// opening brace always starts a bound (RE2 reads a malformed one as a
// literal brace).
func areBounds(p string) error {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '[':
			// Skip the bracket expression; ] first is literal.
			j := i + 1
			if j < len(p) && p[j] == '^' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				if p[j] == '[' && j+1 < len(p) && (p[j+1] == ':' || p[j+1] == '.' || p[j+1] == '=') {
					end := j + 2
					for end+1 < len(p) && !(p[end] == p[j+1] && p[end+1] == ']') {
						end++
					}
					j = end + 1
				}
				j++
			}
			i = j
		case '{':
			if i+1 >= len(p) || p[i+1] < '0' || p[i+1] > '9' {
				continue // a literal brace, in ARE as in RE2
			}
			j := i + 1
			m, ok := digits(p, &j)
			if !ok {
				return errors.New("invalid repetition count(s)")
			}
			n := m
			if j < len(p) && p[j] == ',' {
				j++
				n = areDupMax
				if j < len(p) && p[j] != '}' {
					if n, ok = digits(p, &j); !ok {
						return errors.New("invalid repetition count(s)")
					}
				}
			}
			if j >= len(p) || p[j] != '}' {
				return errors.New("braces {} not balanced")
			}
			if m > areDupMax || n > areDupMax || m > n {
				return errors.New("invalid repetition count(s)")
			}
			i = j
		}
	}
	return nil
}

func digits(p string, j *int) (int, bool) {
	start, n := *j, 0
	for *j < len(p) && p[*j] >= '0' && p[*j] <= '9' {
		if n <= areDupMax {
			n = n*10 + int(p[*j]-'0')
		}
		*j++
	}
	return n, *j > start
}
