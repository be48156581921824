package backup

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// roleGuard rewrites a pg_dumpall globals script on its way to psql so
// that the role the restore connects as keeps its password and the
// attributes its session depends on. pg_dumpall writes each role as
//
//	ALTER ROLE <fmtId(name)> WITH SUPERUSER INHERIT ... LOGIN ... [CONNECTION LIMIT n] [PASSWORD '...'] [VALID UNTIL '...'];
//
// on one line (dumpRoles in pg_dumpall.c, 13 to 18 alike): applied to the
// connecting role it would replace the target's password with the
// source's (with --with-passwords) and lock the operator out of every
// later step. That statement loses PASSWORD, VALID UNTIL, CONNECTION
// LIMIT, [NO]LOGIN and [NO]SUPERUSER; every other line passes unchanged.
//
// The match is at the start of a line, as pg_dumpall writes statements;
// a line inside a multi-line string that happens to start the same way
// is rewritten too, which errs towards keeping the target's password.
type roleGuard struct {
	w    io.Writer
	role string
	buf  []byte // undecided input, starting at a line start unless mid
	mid  bool   // inside a line already decided to pass unchanged
	err  error  // the guard's own error (not the writer's)
	// What was left out of the role's statements (never the values).
	rewrote  bool
	password bool
}

const alterRole = "ALTER ROLE "

// maxRoleStatement bounds what the guard holds back for one statement.
const maxRoleStatement = 1 << 20

func newRoleGuard(w io.Writer, role string) *roleGuard {
	return &roleGuard{w: w, role: role}
}

func (g *roleGuard) Write(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	g.buf = append(g.buf, p...)
	if err := g.drain(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush decides what is left at the end of the input.
func (g *roleGuard) Flush() error {
	if g.err != nil {
		return g.err
	}
	return g.drain(true)
}

func (g *roleGuard) emit(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, err := g.w.Write(b)
	return err
}

func (g *roleGuard) drain(eof bool) error {
	for len(g.buf) > 0 {
		if g.mid {
			i := bytes.IndexByte(g.buf, '\n')
			if i < 0 {
				err := g.emit(g.buf)
				g.buf = g.buf[:0]
				return err
			}
			if err := g.emit(g.buf[:i+1]); err != nil {
				return err
			}
			g.buf = g.buf[i+1:]
			g.mid = false
			continue
		}
		if len(g.buf) < len(alterRole) && !eof && strings.HasPrefix(alterRole, string(g.buf)) {
			return nil // too short to tell
		}
		if !bytes.HasPrefix(g.buf, []byte(alterRole)) {
			g.mid = true
			continue
		}
		n, out, done := g.statement(g.buf, eof)
		if !done {
			if eof {
				// An ALTER ROLE cut short: only ours must not pass.
				if n < 0 {
					g.err = fmt.Errorf("globals: the script ends inside an ALTER ROLE of %q, the role this restore connects as", g.role)
					return g.err
				}
				g.mid = true
				continue
			}
			if len(g.buf) > maxRoleStatement {
				g.err = fmt.Errorf("globals: an ALTER ROLE statement longer than %d bytes", maxRoleStatement)
				return g.err
			}
			return nil
		}
		if out == nil {
			// Another role, or not the WITH form: the identifier passes
			// whole (it may span lines), the rest of its line follows.
			if err := g.emit(g.buf[:n]); err != nil {
				return err
			}
			g.buf = g.buf[n:]
			g.mid = true
			continue
		}
		if err := g.emit(out); err != nil {
			return err
		}
		g.buf = g.buf[n:]
	}
	return nil
}

// statement looks at an ALTER ROLE at the start of b. done=false: more
// input is needed (n < 0 when it is the guarded role's statement); eof:
// no more will come. With
// done, out == nil means b[:n] passes unchanged; otherwise b[:n] is
// replaced by out.
func (g *roleGuard) statement(b []byte, eof bool) (n int, out []byte, done bool) {
	i := len(alterRole)
	name, j, ok := ident(b, i)
	if !ok {
		return 0, nil, false
	}
	if j < 0 {
		return i, nil, true // not an identifier: the line passes
	}
	if name != g.role {
		return j, nil, true
	}
	rest := b[j:]
	if !(bytes.HasPrefix(rest, []byte(" WITH ")) || bytes.HasPrefix(rest, []byte(" WITH;"))) {
		if len(rest) < len(" WITH ") && bytes.HasPrefix([]byte(" WITH "), rest) {
			return -1, nil, false
		}
		return j, nil, true // ALTER ROLE x SET ..., and others
	}
	toks, end, ok := withTokens(b, j+len(" WITH"))
	if !ok {
		return -1, nil, false
	}
	var kept []string
	password := false
	for k := 0; k < len(toks); k++ {
		switch strings.ToUpper(toks[k]) {
		case "SUPERUSER", "NOSUPERUSER", "LOGIN", "NOLOGIN":
		case "ENCRYPTED", "UNENCRYPTED":
			// a PASSWORD follows
		case "PASSWORD":
			password = true
			k++
		case "VALID":
			k += 2 // UNTIL 'timestamp'
		case "CONNECTION":
			k += 2 // LIMIT n
		default:
			kept = append(kept, toks[k])
		}
	}
	if end == len(b) && !eof {
		return -1, nil, false // its newline is still to come
	}
	g.rewrote = true
	g.password = g.password || password
	n = end
	if n < len(b) && b[n] == '\n' {
		n++
	}
	if len(kept) == 0 {
		return n, []byte{}, true
	}
	return n, []byte(string(b[:j]) + " WITH " + strings.Join(kept, " ") + ";\n"), true
}

// ident reads an identifier at b[i:] as fmtId writes it: bare (folded to
// lower case, as the server does) or double-quoted with "" for ".
// ok=false: more input needed; end < 0: no identifier here.
func ident(b []byte, i int) (name string, end int, ok bool) {
	if i >= len(b) {
		return "", 0, false
	}
	if b[i] == '"' {
		var s strings.Builder
		for k := i + 1; k < len(b); k++ {
			if b[k] != '"' {
				s.WriteByte(b[k])
				continue
			}
			if k+1 >= len(b) {
				return "", 0, false
			}
			if b[k+1] == '"' {
				s.WriteByte('"')
				k++
				continue
			}
			return s.String(), k + 1, true
		}
		return "", 0, false
	}
	k := i
	for k < len(b) && (b[k] == '_' || b[k] == '$' || b[k] >= 0x80 || b[k] >= '0' && b[k] <= '9' || b[k] >= 'a' && b[k] <= 'z' || b[k] >= 'A' && b[k] <= 'Z') {
		k++
	}
	if k == len(b) {
		return "", 0, false
	}
	if k == i {
		return "", -(i + 1), true
	}
	return strings.ToLower(string(b[i:k])), k, true
}

// withTokens splits what follows WITH up to the statement's ';' into
// words and string literals ('...' with ”, E'...' with backslash
// escapes), kept as written. ok=false: no ';' yet.
func withTokens(b []byte, i int) (toks []string, end int, ok bool) {
	for i < len(b) {
		c := b[i]
		switch {
		case c == ';':
			return toks, i + 1, true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || (c == 'E' || c == 'e') && i+1 < len(b) && b[i+1] == '\'':
			start := i
			esc := c != '\''
			if esc {
				i++
			}
			i++
			closed := false
			for i < len(b) {
				if esc && b[i] == '\\' {
					i += 2
					continue
				}
				if b[i] == '\'' {
					if i+1 >= len(b) {
						return nil, 0, false
					}
					if b[i+1] == '\'' {
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				i++
			}
			if !closed {
				return nil, 0, false
			}
			toks = append(toks, string(b[start:i]))
		default:
			start := i
			for i < len(b) && !strings.ContainsRune(" \t\r\n;'", rune(b[i])) {
				i++
			}
			toks = append(toks, string(b[start:i]))
		}
	}
	return nil, 0, false
}

// kept is the line for the restore's output: what the guard did, never a
// value.
func (g *roleGuard) kept() string {
	if !g.rewrote {
		return ""
	}
	what := "login, superuser, connection limit and expiry attributes"
	if g.password {
		what = "password and its " + what
	}
	return fmt.Sprintf("kept the target's %s for role %q (the role this restore connects as): the set's ALTER ROLE for it was applied without them", what, g.role)
}

// Err is the guard's own failure (a statement of the role it could not
// decide), nil when the writer underneath failed or nothing did.
func (g *roleGuard) Err() error { return g.err }
