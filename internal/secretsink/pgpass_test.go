package secretsink

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPgpassKey(t *testing.T) {
	for _, c := range []struct {
		in   Secret
		want PgpassEntry
	}{
		{Secret{User: "u"}, PgpassEntry{"localhost", "5432", "u", "u"}},
		{Secret{User: "u", Host: "/var/run/postgresql", Port: "5433", Database: "d"}, PgpassEntry{"localhost", "5433", "d", "u"}},
		{Secret{User: "u", Host: "/tmp"}, PgpassEntry{"localhost", "5432", "u", "u"}},
		// libpq compares with strcmp: a trailing slash is not the default.
		{Secret{User: "u", Host: "/tmp/"}, PgpassEntry{"/tmp/", "5432", "u", "u"}},
		{Secret{User: "u", Host: "/srv/pg"}, PgpassEntry{"/srv/pg", "5432", "u", "u"}},
		{Secret{User: "u", Host: "::1"}, PgpassEntry{"::1", "5432", "u", "u"}},
		{Secret{User: "u", Host: "127.0.0.1"}, PgpassEntry{"127.0.0.1", "5432", "u", "u"}},
	} {
		if got := PgpassKey(c.in); got != c.want {
			t.Errorf("PgpassKey(%+v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestRewritePgpass(t *testing.T) {
	key := PgpassEntry{"db", "5432", "app", "u"}
	for _, c := range []struct {
		name, in, pw, want, note string
	}{
		{"empty file", "", "new", "db:5432:app:u:new\n", ""},
		{"append", "# mine\nother:5432:*:x:pw\n", "new", "# mine\nother:5432:*:x:pw\ndb:5432:app:u:new\n", ""},
		{"no final newline stays so", "other:1:*:x:pw", "new", "other:1:*:x:pw\ndb:5432:app:u:new", ""},
		{"CRLF kept", "a:1:b:c:d\r\ndb:5432:app:u:old\r\n#x\r\n", "new", "a:1:b:c:d\r\ndb:5432:app:u:new\r\n#x\r\n", ""},
		{"CRLF appended", "a:1:b:c:d\r\n", "new", "a:1:b:c:d\r\ndb:5432:app:u:new\r\n", ""},
		{"first exact wins", "db:5432:app:u:one\ndb:5432:app:u:two\n", "new", "db:5432:app:u:new\ndb:5432:app:u:two\n", ""},
		{"escaped fields match", `d\b:5432:app:u:old` + "\n", "new", `d\b:5432:app:u:new` + "\n", ""},
		{"escaping written", "", `p:w\d`, `db:5432:app:u:p\:w\\d` + "\n", ""},
		{"old escaped password replaced whole", `db:5432:app:u:o\:l\\d:extra` + "\n", "n", `db:5432:app:u:n:extra` + "\n", ""},
		{"comment not matched", "#db:5432:app:u:old\n", "new", "#db:5432:app:u:old\ndb:5432:app:u:new\n", ""},
		{"indented is not a comment and does not match", " db:5432:app:u:old\n", "new", " db:5432:app:u:old\ndb:5432:app:u:new\n", ""},
		{"wildcard first: insert before", "x:1:y:z:w\n*:*:*:u:wild\ndb:5432:app:u:old\n", "new", "x:1:y:z:w\ndb:5432:app:u:new\n*:*:*:u:wild\ndb:5432:app:u:old\n", "line 2 has '*'"},
		{"wildcard in one field", "db:*:app:u:wild\r\n", "new", "db:5432:app:u:new\r\ndb:*:app:u:wild\r\n", "line 1 has '*'"},
		{"escaped star is literal", `db:\*:app:u:lit` + "\n", "new", `db:\*:app:u:lit` + "\ndb:5432:app:u:new\n", ""},
		{"star prefix is literal", "db:*5432:app:u:lit\n", "new", "db:*5432:app:u:lit\ndb:5432:app:u:new\n", ""},
		{"empty lines kept", "\n\n\r\n", "new", "\n\n\r\ndb:5432:app:u:new\n", ""},
		{"short line", "db:5432:app\n", "new", "db:5432:app\ndb:5432:app:u:new\n", ""},
		{"exact line without password field", "db:5432:app:u\n", "new", "db:5432:app:u\ndb:5432:app:u:new\n", ""},
		{"exact line with empty password", "db:5432:app:u:\n", "new", "db:5432:app:u:new\n", ""},
		{"trailing CRs stay", "db:5432:app:u:old\r\r\n", "new", "db:5432:app:u:new\r\r\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, note, err := rewritePgpass([]byte(c.in), key, []byte(c.pw))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got\n%q\nwant\n%q", got, c.want)
			}
			if (c.note == "") != (note == "") || !strings.Contains(note, c.note) {
				t.Errorf("note %q, want %q", note, c.note)
			}
			if pw, ok := libpqPassword(got, key); !ok || pw != c.pw {
				t.Errorf("libpq would read %q (%v), want %q", pw, ok, c.pw)
			}
		})
	}
	for _, c := range []struct {
		key  PgpassEntry
		pw   string
		file string
	}{
		{key, "two\nlines", ""},
		{key, "cr\r", ""},
		{key, "", ""},
		{PgpassEntry{"db", "5432", "a\nb", "u"}, "pw", ""},
		{key, "pw", "a\x00b\n"},
	} {
		_, _, err := rewritePgpass([]byte(c.file), c.key, []byte(c.pw))
		if err == nil || (c.pw != "" && strings.Contains(err.Error(), c.pw)) {
			t.Errorf("rewrite(%q, %+v) = %v", c.file, c.key, err)
		}
	}
}

// libpqPassword reads data as libpq's passwordFromFile does, written
// independently of the code under test (line by line, as C would): the
// password of the first line whose four fields match key, de-escaped.
func libpqPassword(data []byte, key PgpassEntry) (string, bool) {
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		rest, ok := line, true
		for _, tok := range []string{key.Host, key.Port, key.Database, key.User} {
			if strings.HasPrefix(rest, "*:") {
				rest = rest[2:]
				continue
			}
			// Walk the field against tok as pwdfMatchesString does: '\'
			// escapes the next byte, and an unescaped ':' ends the field
			// only once tok is used up; before that it is compared like
			// any other byte, so user "a:b" matches the field "a:b:".
			i, j, closed := 0, 0, false
			for i < len(rest) {
				bslash := false
				if rest[i] == '\\' {
					i++
					bslash = true
				}
				if i < len(rest) && rest[i] == ':' && j == len(tok) && !bslash {
					closed = true
					i++
					break
				}
				if j == len(tok) || i >= len(rest) || rest[i] != tok[j] {
					break
				}
				i++
				j++
			}
			if !closed {
				ok = false
				break
			}
			rest = rest[i:]
		}
		if !ok {
			continue
		}
		var pw strings.Builder
		for i := 0; i < len(rest) && rest[i] != ':'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
			}
			pw.WriteByte(rest[i])
		}
		return pw.String(), true
	}
	return "", false
}

// pgpassEntries is every non-comment line's content, for comparing two
// files apart from the line that changed.
func pgpassEntries(data []byte) []string {
	var out []string
	for _, l := range splitLines(data) {
		out = append(out, string(l.text))
	}
	return out
}

func FuzzRewritePgpass(f *testing.F) {
	f.Add([]byte("a:1:b:c:d\r\n*:*:*:u:w\n#c\n"), "db", "5432", "app", "u", []byte("p:w\\"))
	f.Add([]byte("db:5432:app:u:old"), "db", "5432", "app", "u", []byte("new"))
	f.Add([]byte(`d\:b:5432:app:u:old`+"\n"), "d:b", "5432", "app", "u", []byte("#x"))
	f.Add([]byte("*:*:*:*:all\n"), "*", "*", "*", "*", []byte("x"))
	f.Fuzz(func(t *testing.T, data []byte, host, port, db, user string, pw []byte) {
		key := PgpassEntry{host, port, db, user}
		out, _, err := rewritePgpass(data, key, pw)
		if err != nil {
			if len(pw) > 3 && strings.Contains(err.Error(), string(pw)) {
				t.Fatalf("error holds the password: %v", err)
			}
			return
		}
		got, ok := libpqPassword(out, key)
		if !ok || got != string(pw) {
			t.Fatalf("libpq would read %q (%v), want %q\nin  %q\nout %q", got, ok, pw, data, out)
		}
		// Every other line is kept: the output is the input with one line
		// changed or one inserted.
		a, b := pgpassEntries(data), pgpassEntries(out)
		switch {
		case len(b) == len(a)+1:
			if !oneInserted(a, b) && !(len(a) > 0 && !bytes.HasSuffix(data, []byte("\n"))) {
				t.Fatalf("not one line inserted:\nin  %q\nout %q", data, out)
			}
		case len(b) == len(a):
			diff := 0
			for i := range a {
				if a[i] != b[i] {
					diff++
				}
			}
			if diff > 1 {
				t.Fatalf("%d lines changed:\nin  %q\nout %q", diff, data, out)
			}
		default:
			t.Fatalf("%d lines became %d:\nin  %q\nout %q", len(a), len(b), data, out)
		}
	})
}

func oneInserted(a, b []string) bool {
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	for j := i; j < len(a); j++ {
		if a[j] != b[j+1] {
			return false
		}
	}
	return true
}

func TestPgpassDeliverFixesModeAndUndoes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".pgpass")
	old := []byte("# keep me\r\nother:5432:*:x:pw\r\n")
	os.WriteFile(path, old, 0o644)
	os.Chmod(path, 0o644)
	sink, err := NewPgpass(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := sink.Deliver(context.Background(), Secret{User: "u", Password: []byte("new:pw"), Host: "db", Database: "app"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := string(old) + `db:5432:app:u:new\:pw` + "\r\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %04o", m)
	}
	if !strings.Contains(d.Note, "0644") || strings.Contains(d.Note, "new:pw") {
		t.Errorf("note %q", d.Note)
	}
	if err := d.Undo(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) || mode(t, path) != 0o644 {
		t.Errorf("undo: %q %04o", got, mode(t, path))
	}
	t.Setenv("PGPASSFILE", filepath.Join(dir, "env-pgpass"))
	if s, _ := NewPgpass(""); !strings.Contains(s.String(), "env-pgpass") {
		t.Errorf("$PGPASSFILE not used: %s", s)
	}
}
