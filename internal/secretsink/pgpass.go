package secretsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// NewPgpass updates (or adds) the line host:port:database:user of the
// pgpass file at path ("": $PGPASSFILE or ~/.pgpass), escaping ':' and
// '\' as libpq reads them, keeping every other byte (comments, CRLF, a
// missing final newline), mode 0600 (libpq ignores a pgpass file others
// can read).
//
// The line updated is the first one libpq would pick for the secret's
// host, port, database and user when it names all four exactly; when a
// line with '*' would be picked first, the exact line is inserted before
// it (and Delivery.Note says so), so only this connection changes.
func NewPgpass(path string) (Sink, error) {
	if path == "" {
		path = os.Getenv("PGPASSFILE")
	}
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("pgpass: no path given, no $PGPASSFILE and no home directory: %w", err)
		}
		path = filepath.Join(home, ".pgpass")
	}
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	return &pgpassSink{path: p}, nil
}

type pgpassSink struct{ path string }

func (p *pgpassSink) String() string { return fmt.Sprintf("pgpass %s (0600)", p.path) }

func (p *pgpassSink) Deliver(ctx context.Context, s Secret) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkDir(p.path); err != nil {
		return nil, err
	}
	was, err := readCurrent(p.path)
	if err != nil {
		return nil, err
	}
	key := PgpassKey(s)
	out, note, err := rewritePgpass(was.data, key, s.Password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.path, err)
	}
	if was.existed && was.mode&0o077 != 0 {
		note = join(note, fmt.Sprintf("it had mode %04o, so libpq ignored the whole file; now 0600", was.mode))
	}
	d, err := replace(p.String(), p.path, was, out)
	if err != nil {
		return nil, err
	}
	d.Note = note
	return d, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// PgpassEntry is the four fields libpq looks a password up by.
type PgpassEntry struct{ Host, Port, Database, User string }

// defaultSocketDirs are the socket directories libpq may be built with as
// DEFAULT_PGSOCKET_DIR (upstream /tmp; Debian, Ubuntu, Red Hat
// /var/run/postgresql; Arch /run/postgresql). libpq looks a connection
// through its default directory up as "localhost", and pgx looks every
// socket up as "localhost"; a socket in any other directory libpq looks
// up by its path.
var defaultSocketDirs = map[string]bool{"/tmp": true, "/var/run/postgresql": true, "/run/postgresql": true}

// PgpassKey is what libpq (fe-connect.c passwordFromFile) compares the
// lines of a pgpass file with for s: an empty host or a default socket
// directory is "localhost", an empty port 5432, an empty database the
// user's name (libpq's default database).
func PgpassKey(s Secret) PgpassEntry {
	e := PgpassEntry{Host: s.Host, Port: s.Port, Database: s.Database, User: s.User}
	if e.Host == "" || defaultSocketDirs[e.Host] {
		e.Host = "localhost"
	}
	if e.Port == "" {
		e.Port = "5432"
	}
	if e.Database == "" {
		e.Database = e.User
	}
	return e
}

// pgpassLine is one line of a pgpass file: its bytes without the final
// "\n" (text) and whether it had one.
type pgpassLine struct {
	text []byte
	nl   bool
}

func splitLines(data []byte) []pgpassLine {
	var out []pgpassLine
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, pgpassLine{text: data})
			break
		}
		out = append(out, pgpassLine{text: data[:i], nl: true})
		data = data[i+1:]
	}
	return out
}

// pgpassMatch reports whether libpq would take the password of line for
// key, where the password starts, and whether every field matched by
// name (no '*').
func pgpassMatch(line []byte, key PgpassEntry) (pw int, exact, ok bool) {
	if len(line) > 0 && line[0] == '#' {
		return 0, false, false
	}
	t := bytes.TrimRight(line, "\r") // pg_strip_crlf; "\n" is already gone
	if len(t) == 0 {
		return 0, false, false
	}
	pos := 0
	exact = true
	for _, tok := range []string{key.Host, key.Port, key.Database, key.User} {
		next, wild, ok := matchField(t, pos, tok)
		if !ok {
			return 0, false, false
		}
		exact = exact && !wild
		pos = next
	}
	return pos, exact, true
}

// matchField is libpq's pwdfMatchesString on t[pos:]: "*:" matches
// anything; otherwise the field, with '\' escaping the next byte, must
// equal tok and end in an unescaped ':'. It returns where the next field
// starts.
func matchField(t []byte, pos int, tok string) (next int, wild, ok bool) {
	at := func(i int) byte {
		if i < len(t) {
			return t[i]
		}
		return 0
	}
	if at(pos) == '*' && at(pos+1) == ':' {
		return pos + 2, true, true
	}
	i, j := pos, 0
	for i < len(t) {
		bslash := false
		if t[i] == '\\' {
			i++
			bslash = true
		}
		if at(i) == ':' && j == len(tok) && !bslash {
			return i + 1, false, true
		}
		if j == len(tok) || at(i) != tok[j] {
			return 0, false, false
		}
		i++
		j++
	}
	return 0, false, false
}

// passwordEnd is where the password starting at pw ends: libpq stops
// de-escaping at the first unescaped ':'.
func passwordEnd(t []byte, pw int) int {
	for i := pw; i < len(t); i++ {
		switch t[i] {
		case ':':
			return i
		case '\\':
			if i+1 < len(t) {
				i++
			}
		}
	}
	return len(t)
}

// pgpassEscape escapes a field as libpq reads it back: '\' and ':' take a
// '\'; a field that is exactly "*" (a wildcard otherwise) or starts with
// '#' (a comment at the start of a line) is escaped too.
func pgpassEscape(b *bytes.Buffer, v []byte, field bool) {
	for i, c := range v {
		if c == '\\' || c == ':' || field && i == 0 && (c == '#' || c == '*' && len(v) == 1) {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
}

func pgpassEntryLine(key PgpassEntry, password []byte) []byte {
	var b bytes.Buffer
	for _, f := range []string{key.Host, key.Port, key.Database, key.User} {
		pgpassEscape(&b, []byte(f), true)
		b.WriteByte(':')
	}
	pgpassEscape(&b, password, false)
	return b.Bytes()
}

func checkPgpass(key PgpassEntry, password []byte) error {
	if bytes.ContainsAny(password, "\r\n\x00") {
		return errors.New("the password holds a line break or NUL, which a pgpass line cannot carry")
	}
	for i, f := range []string{key.Host, key.Port, key.Database, key.User} {
		if strings.ContainsAny(f, "\r\n\x00") {
			return fmt.Errorf("the %s holds a line break or NUL, which a pgpass line cannot carry", [...]string{"host", "port", "database", "user"}[i])
		}
	}
	return nil
}

// rewritePgpass returns data with the password for key set: in the first
// line libpq would pick when it names key exactly, else in a new line
// before the first wildcard line that would pick, else at the end.
func rewritePgpass(data []byte, key PgpassEntry, password []byte) ([]byte, string, error) {
	if len(password) == 0 {
		return nil, "", errors.New("empty password")
	}
	if err := checkPgpass(key, password); err != nil {
		return nil, "", err
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, "", errors.New("the file holds a NUL byte, which libpq does not read as text: not changed")
	}
	lines := splitLines(data)
	nl := []byte("\n")
	if len(lines) > 0 && lines[0].nl && bytes.HasSuffix(lines[0].text, []byte("\r")) {
		nl = []byte("\r\n")
	}
	var out bytes.Buffer
	entry := pgpassEntryLine(key, password)
	for i, l := range lines {
		pw, exact, ok := pgpassMatch(l.text, key)
		if !ok {
			continue
		}
		for _, p := range lines[:i] {
			writeLine(&out, p)
		}
		note := ""
		if exact {
			t := bytes.TrimRight(l.text, "\r")
			end := passwordEnd(t, pw)
			out.Write(l.text[:pw])
			pgpassEscape(&out, password, false)
			out.Write(l.text[end:])
			if l.nl {
				out.WriteByte('\n')
			}
		} else {
			out.Write(entry)
			if l.nl && bytes.HasSuffix(l.text, []byte("\r")) {
				out.WriteString("\r\n")
			} else {
				out.Write(nl)
			}
			writeLine(&out, l)
			note = fmt.Sprintf("line %d has '*' and libpq would have used it for this connection: the exact line was inserted before it (line %d)", i+1, i+1)
		}
		for _, p := range lines[i+1:] {
			writeLine(&out, p)
		}
		return out.Bytes(), note, nil
	}
	out.Write(data)
	switch {
	case len(data) == 0:
		out.Write(entry)
		out.Write(nl)
	case data[len(data)-1] == '\n':
		out.Write(entry)
		out.Write(nl)
	default:
		// The file had no final newline; neither has it now.
		out.Write(nl)
		out.Write(entry)
	}
	return out.Bytes(), "", nil
}

func writeLine(b *bytes.Buffer, l pgpassLine) {
	b.Write(l.text)
	if l.nl {
		b.WriteByte('\n')
	}
}
