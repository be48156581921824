package execute

import (
	"strings"

	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/sqllex"
)

// word is one significant token of a statement: an identifier (folded
// the way the server folds it), a quoted identifier (its name), or any
// other token's text.
type word struct {
	text   string
	kind   sqllex.Kind
	quoted bool
	// undecodable: a U&"..." identifier, whose escapes we do not decode.
	undecodable bool
}

// words splits a statement into its significant tokens (no spaces, no
// comments).
func words(s string) []word {
	var out []word
	for i := 0; i < len(s); {
		t := sqllex.Next(s, i)
		if t.End <= i { // never loop on a lexer that did not advance
			break
		}
		i = t.End
		switch t.Kind {
		case sqllex.Space, sqllex.Comment:
		case sqllex.Ident:
			out = append(out, word{text: quote.LowerASCII(s[t.Start:t.End]), kind: t.Kind})
		case sqllex.QuotedIdent:
			w := word{kind: t.Kind, quoted: true}
			if t.Prefix != 0 {
				w.undecodable = true
			} else {
				w.text = strings.ReplaceAll(s[t.BodyStart:t.BodyEnd], `""`, `"`)
			}
			out = append(out, w)
		default:
			out = append(out, word{text: s[t.Start:t.End], kind: t.Kind})
		}
	}
	return out
}

func (w word) is(kw string) bool { return w.kind == sqllex.Ident && w.text == kw }

func (w word) name() bool { return w.kind == sqllex.Ident || w.kind == sqllex.QuotedIdent }

// roleStatement says which roles a statement drops, and whose password it
// sets. ok is false when a name could not be decoded (a U& identifier):
// the caller then assumes the worst.
func roleStatement(s string) (dropped, password []string, ok bool) {
	ws := words(s)
	ok = true
	if len(ws) < 3 {
		return nil, nil, true
	}
	switch {
	case ws[0].is("drop") && (ws[1].is("role") || ws[1].is("user") || ws[1].is("group")):
		i := 2
		if len(ws) > 4 && ws[2].is("if") && ws[3].is("exists") {
			i = 4
		}
		for ; i < len(ws); i++ {
			w := ws[i]
			switch {
			case w.undecodable:
				ok = false
			case w.name():
				dropped = append(dropped, w.text)
			case w.text == ",":
			default:
				return dropped, nil, ok
			}
		}
	case ws[0].is("alter") && (ws[1].is("role") || ws[1].is("user")):
		if ws[2].undecodable {
			return nil, nil, !hasWord(ws[3:], "password")
		}
		if ws[2].name() && hasWord(ws[3:], "password") {
			password = append(password, ws[2].text)
		}
	}
	return dropped, password, ok
}

func hasWord(ws []word, kw string) bool {
	for _, w := range ws {
		if w.is(kw) {
			return true
		}
	}
	return false
}

// createdRole is the role a CREATE ROLE / USER / GROUP statement
// creates; ok is false when it is not one or the name is not decodable.
func createdRole(s string) (string, bool) {
	ws := words(s)
	if len(ws) >= 3 && ws[0].is("create") && (ws[1].is("role") || ws[1].is("user") || ws[1].is("group")) && ws[2].name() && !ws[2].undecodable {
		return ws[2].text, true
	}
	return "", false
}

// matchLiteral escapes a name for path.Match (ignore_roles patterns).
func matchLiteral(name string) string {
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isDropRole reports whether s is DROP ROLE / USER / GROUP.
func isDropRole(s string) bool {
	ws := words(s)
	return len(ws) >= 2 && ws[0].is("drop") && (ws[1].is("role") || ws[1].is("user") || ws[1].is("group"))
}

// ownedStatement reports whether s is REASSIGN OWNED or DROP OWNED, and
// which.
func ownedStatement(s string) string {
	ws := words(s)
	if len(ws) >= 2 && ws[1].is("owned") && (ws[0].is("reassign") || ws[0].is("drop")) {
		return ws[0].text
	}
	return ""
}

// createdDatabase is the name a CREATE DATABASE statement creates.
func createdDatabase(s string) (string, bool) {
	ws := words(s)
	if len(ws) >= 3 && ws[0].is("create") && ws[1].is("database") && ws[2].name() && !ws[2].undecodable {
		return ws[2].text, true
	}
	return "", false
}

// firstLine is a statement for an error message: its first line, with
// any secret literal masked.
func firstLine(s string) string {
	s, _ = sqllex.Redact(strings.TrimSpace(s))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i] + " …"
	}
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + " …"
	}
	return s
}
