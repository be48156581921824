// Package missingok finds current_setting calls in SQL expressions by
// their tokens (internal/sqllex), so a string literal or comment that
// spells the name is not one, and rewrites the calls that lack
// missing_ok. It imports nothing of the policy model, so the policy diff
// and the audit rules can share it with rlstest.
package missingok

import (
	"strings"

	"github.com/pgaegis/pgaegis/internal/sqllex"
)

// Call is a current_setting call found in an expression.
type Call struct {
	Start, End int    // the call, (qualified) name through closing parenthesis
	Setting    string // the first argument's text
	// MissingOK: "absent", "false" or "true"; "expr" when the second
	// argument is not a constant.
	MissingOK string
	// argEnd is where the first argument ends (before "," or ")");
	// secondStart/secondEnd bound the second argument, if any.
	argStart, argEnd, secondStart, secondEnd int
}

// Significant returns the tokens that are neither space nor comment.
func Significant(s string) []sqllex.Token {
	var out []sqllex.Token
	for _, t := range sqllex.Tokens(s) {
		if t.Kind != sqllex.Space && t.Kind != sqllex.Comment {
			out = append(out, t)
		}
	}
	return out
}

// Calls finds the current_setting(...) calls of an expression by
// its tokens, so a string literal or comment that spells the name is not
// one.
func Calls(s string) []Call {
	toks := Significant(s)
	text := func(t sqllex.Token) string { return s[t.Start:t.End] }
	var out []Call
	for i := 0; i+1 < len(toks); i++ {
		t := toks[i]
		name := ""
		switch t.Kind {
		case sqllex.Ident:
			name = strings.ToLower(text(t))
		case sqllex.QuotedIdent:
			if t.Prefix == 0 {
				name = s[t.BodyStart:t.BodyEnd]
			}
		}
		if name != "current_setting" || text(toks[i+1]) != "(" {
			continue
		}
		c := Call{Start: t.Start, argStart: toks[i+1].End, MissingOK: "absent"}
		if i >= 2 && text(toks[i-1]) == "." && (toks[i-2].Kind == sqllex.Ident || toks[i-2].Kind == sqllex.QuotedIdent) {
			c.Start = toks[i-2].Start // pg_catalog.current_setting
		}
		depth, arg, argFrom := 0, 0, -1
		j := i + 1
		for ; j < len(toks); j++ {
			switch text(toks[j]) {
			case "(", "[":
				if depth == 1 && argFrom < 0 {
					argFrom = j
				}
				depth++
				continue
			case ")", "]":
				depth--
				if depth > 0 {
					continue
				}
			case ",":
				if depth != 1 {
					continue
				}
			default:
				if depth == 1 && argFrom < 0 {
					argFrom = j
				}
				continue
			}
			// A top-level "," or the closing ")".
			switch arg {
			case 0:
				c.argEnd = toks[j].Start
			case 1:
				if argFrom < 0 { // "current_setting(x, )": not SQL, not ours to judge
					c.MissingOK = "expr"
					break
				}
				c.secondStart, c.secondEnd = toks[argFrom].Start, toks[j-1].End
				c.MissingOK = constBool(s, toks[argFrom:j])
			}
			arg++
			argFrom = -1
			if depth == 0 {
				break
			}
		}
		if j == len(toks) {
			continue // unterminated: not a call we can judge
		}
		c.End = toks[j].End
		c.Setting = strings.TrimSpace(s[c.argStart:c.argEnd])
		out = append(out, c)
	}
	return out
}

// constBool classifies the missing_ok argument: a boolean constant
// (true, 'on', 't'::boolean ...) or an expression we cannot judge.
func constBool(s string, toks []sqllex.Token) string {
	for len(toks) >= 3 && s[toks[0].Start:toks[0].End] == "(" && s[toks[len(toks)-1].Start:toks[len(toks)-1].End] == ")" {
		toks = toks[1 : len(toks)-1]
	}
	if len(toks) == 0 {
		return "expr"
	}
	var v string
	switch t := toks[0]; t.Kind {
	case sqllex.Ident:
		v = strings.ToLower(s[t.Start:t.End])
	case sqllex.String:
		if t.Prefix != 0 {
			return "expr"
		}
		v = strings.ToLower(strings.TrimSpace(strings.ReplaceAll(s[t.BodyStart:t.BodyEnd], "''", "'")))
	default:
		return "expr"
	}
	// Allow a trailing cast: 'true'::boolean, true::bool.
	if rest := toks[1:]; len(rest) > 0 {
		if len(rest) != 3 || s[rest[0].Start:rest[0].End] != ":" || s[rest[1].Start:rest[1].End] != ":" ||
			!(strings.EqualFold(s[rest[2].Start:rest[2].End], "boolean") || strings.EqualFold(s[rest[2].Start:rest[2].End], "bool")) {
			return "expr"
		}
	}
	switch v {
	case "true", "t", "tr", "tru", "on", "yes", "y", "ye", "1":
		return "true"
	case "false", "f", "fa", "fal", "fals", "off", "of", "no", "n", "0":
		return "false"
	}
	return "expr"
}

// Unsafe returns the calls an expression makes without missing_ok (or
// with it false).
func Unsafe(expr string) []Call {
	var out []Call
	for _, c := range Calls(expr) {
		if c.MissingOK == "absent" || c.MissingOK == "false" {
			out = append(out, c)
		}
	}
	return out
}

// Why says why a current_setting call without missing_ok in a
// policy is a problem.
const Why = "without missing_ok a session that never set it (pg_dump, monitoring, a new code path) gets an error instead of seeing nothing; " +
	"and after a SET LOCAL ends the placeholder stays defined as '', so a cast such as ::int still errors: " +
	"write nullif(current_setting('<name>', true), '')"

// Rewrite returns expr with every unsafe call rewritten as
// nullif(current_setting(<name>, true), <empty string>): a session without the
// setting gets NULL (no rows) instead of an error, and so does one whose
// SET LOCAL has ended. ok is false when there was nothing to rewrite.
func Rewrite(expr string) (string, bool) {
	calls := Unsafe(expr)
	if len(calls) == 0 {
		return expr, false
	}
	var b strings.Builder
	at := 0
	for _, c := range calls {
		if c.Start < at {
			continue // nested in a call already rewritten
		}
		b.WriteString(expr[at:c.Start])
		b.WriteString("nullif(")
		b.WriteString(expr[c.Start:c.argEnd])
		b.WriteString(", true), '')")
		at = c.End
	}
	b.WriteString(expr[at:])
	return b.String(), true
}
