package secretsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// libpqService reads section name of data as libpq's parseServiceFile
// does, written independently of the code under test: the first value of
// each key in the first section named name (found false when there is
// none), or an error where libpq reports one.
func libpqService(data []byte, name string) (map[string]string, bool, error) {
	kv := map[string]string{}
	in, found := false, false
	rest := string(data)
	for n := 1; rest != ""; n++ {
		line := rest
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = ""
		}
		if len(line) >= 1023 {
			return nil, found, fmt.Errorf("line %d too long", n)
		}
		line = strings.TrimFunc(line, func(r rune) bool { return r < 0x80 && isCSpace(byte(r)) })
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			if in {
				return kv, true, nil
			}
			in = strings.HasPrefix(line[1:], name) && len(line) > len(name)+1 && line[len(name)+1] == ']'
			found = found || in
			continue
		}
		if !in {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, true, fmt.Errorf("syntax error, line %d", n)
		}
		if _, seen := kv[k]; !seen {
			kv[k] = v
		}
	}
	return kv, found, nil
}

func TestRewriteService(t *testing.T) {
	s := Secret{User: "app_b", Password: []byte(" p=w #1 ü"), Host: "db", Port: "5433", Database: "app"}
	for _, c := range []struct {
		name, in, want string
	}{
		{"empty file", "", "[svc]\nhost=db\nport=5433\ndbname=app\nuser=app_b\npassword= p=w #1 ü\n"},
		{"appended after another", "[other]\nuser=x\n", "[other]\nuser=x\n\n[svc]\nhost=db\nport=5433\ndbname=app\nuser=app_b\npassword= p=w #1 ü\n"},
		{"no final newline", "[other]\nuser=x", "[other]\nuser=x\n\n[svc]\nhost=db\nport=5433\ndbname=app\nuser=app_b\npassword= p=w #1 ü"},
		{"CRLF", "[other]\r\nuser=x\r\n", "[other]\r\nuser=x\r\n\r\n[svc]\r\nhost=db\r\nport=5433\r\ndbname=app\r\nuser=app_b\r\npassword= p=w #1 ü\r\n"},
		{"values replaced in place", "# c\n[svc]\n  host=db\n\tuser=old   \npassword=old\r\n[next]\nuser=n\n", "# c\n[svc]\n  host=db\n\tuser=app_b   \npassword= p=w #1 ü\r\n[next]\nuser=n\n"},
		{"first value wins, later kept", "[svc]\nuser=a\nuser=b\npassword=x\n", "[svc]\nuser=app_b\nuser=b\npassword= p=w #1 ü\n"},
		{"missing keys after the header", "  [svc] # mine\nhost=db\n#user=no\n", "  [svc] # mine\nuser=app_b\npassword= p=w #1 ü\nhost=db\n#user=no\n"},
		{"header is the last line", "[svc]", "[svc]\nuser=app_b\npassword= p=w #1 ü"},
		{"first section of the name", "[svc]\nuser=a\n[svc]\nuser=b\n", "[svc]\npassword= p=w #1 ü\nuser=app_b\n[svc]\nuser=b\n"},
		{"prefix names differ", "[svcx]\nuser=a\n[sv]\n", "[svcx]\nuser=a\n[sv]\n\n[svc]\nhost=db\nport=5433\ndbname=app\nuser=app_b\npassword= p=w #1 ü\n"},
		{"key with spaces is not ours", "[svc]\nuser =a\n", "[svc]\nuser=app_b\npassword= p=w #1 ü\nuser =a\n"},
		{"lines outside any section ignored", "user=nobody\nnonsense\n[svc]\n", "user=nobody\nnonsense\n[svc]\nuser=app_b\npassword= p=w #1 ü\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := rewriteService([]byte(c.in), "svc", s)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got\n%q\nwant\n%q", got, c.want)
			}
			kv, found, err := libpqService(got, "svc")
			// "user =a" is a syntax error libpq reports once it reads that
			// far; ours comes first, but libpq reads the whole section.
			if c.name != "key with spaces is not ours" && (err != nil || !found || kv["user"] != "app_b" || kv["password"] != string(s.Password)) {
				t.Errorf("libpq would read %v %v %v", kv, found, err)
			}
		})
	}
	for _, c := range []struct {
		name string
		in   string
		s    Secret
		want string
	}{
		{"trailing space", "", Secret{User: "u", Password: []byte("pw ")}, "ends in whitespace"},
		{"newline", "", Secret{User: "u", Password: []byte("p\nw")}, "line break"},
		{"too long", "", Secret{User: "u", Password: bytes.Repeat([]byte("x"), 1013)}, "too long"},
		{"syntax error in the section", "[svc]\nbroken\n", Secret{User: "u", Password: []byte("pw")}, "line 2: no '='"},
		{"NUL in file", "[svc]\x00\n", Secret{User: "u", Password: []byte("pw")}, "NUL"},
	} {
		_, _, err := rewriteService([]byte(c.in), "svc", c.s)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), string(c.s.Password)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// The longest password a line holds is accepted, and libpq reads it.
	long := Secret{User: "u", Password: bytes.Repeat([]byte("x"), serviceMaxLine-len("password=")-1)}
	out, _, err := rewriteService(nil, "svc", long)
	if kv, _, perr := libpqService(out, "svc"); err != nil || perr != nil || kv["password"] != string(long.Password) {
		t.Errorf("longest password: %v %v", err, perr)
	}
}

func FuzzRewriteService(f *testing.F) {
	f.Add([]byte("[svc]\nuser=a\r\n  password=b\n[x]\n"), "svc", "u", []byte("p w"))
	f.Add([]byte("# c\n[svc] x\nhost=h"), "svc", "u", []byte("=#"))
	f.Add([]byte("[s]\n[svc"), "svc", "u", []byte("x"))
	f.Fuzz(func(t *testing.T, data []byte, name, user string, pw []byte) {
		if name == "" || strings.ContainsAny(name, "\r\n\x00]") {
			return
		}
		s := Secret{User: user, Password: pw, Host: "h", Port: "1", Database: "d"}
		out, _, err := rewriteService(data, name, s)
		if err != nil {
			if len(pw) > 3 && strings.Contains(err.Error(), string(pw)) {
				t.Fatalf("error holds the password: %v", err)
			}
			return
		}
		// What libpq read before in other sections is unchanged, and the
		// section now gives our user and password.
		kv, found, perr := libpqService(out, name)
		var lineErr bool
		if perr != nil {
			_, _, before := libpqService(data, name)
			lineErr = before != nil
		}
		if !lineErr && (perr != nil || !found || kv["user"] != user || kv["password"] != string(pw)) {
			t.Fatalf("libpq would read %q %v %v\nin  %q\nout %q", kv, found, perr, data, out)
		}
		// Apart from user= and password= lines, the file is as it was, or
		// as it was with the new section after it.
		_, had, _ := libpqService(data, name)
		a, b := otherLines(data), otherLines(out)
		if had && strings.Join(a, "\n") != strings.Join(b, "\n") || !had && (len(b) < len(a) || strings.Join(a, "\n") != strings.Join(b[:len(a)], "\n")) {
			t.Fatalf("other lines changed:\nin  %q\nout %q", data, out)
		}
	})
}

// otherLines is every line that is not a user= or password= line.
func otherLines(data []byte) []string {
	var out []string
	for _, l := range pgpassEntries(data) {
		t := strings.TrimLeft(l, " \t\v\f\r")
		if !strings.HasPrefix(t, "user=") && !strings.HasPrefix(t, "password=") {
			out = append(out, strings.TrimSuffix(l, "\r"))
		}
	}
	return out
}

func TestServiceDeliverAndUndo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pg_service.conf")
	old := []byte("[svc]\nhost=db\nuser=old\npassword=old\n")
	os.WriteFile(path, old, 0o644)
	os.Chmod(path, 0o644)
	sink, err := NewService(path, "svc")
	if err != nil {
		t.Fatal(err)
	}
	d, err := sink.Deliver(context.Background(), Secret{User: "u", Password: []byte("new")})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "[svc]\nhost=db\nuser=u\npassword=new\n" || mode(t, path) != 0o600 {
		t.Errorf("got %q mode %04o", got, mode(t, path))
	}
	if err := d.Undo(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) || mode(t, path) != 0o644 {
		t.Errorf("undo: %q %04o", got, mode(t, path))
	}
	for _, bad := range []string{"", "a]b", "a\nb"} {
		if _, err := NewService(path, bad); err == nil {
			t.Errorf("service name %q accepted", bad)
		}
	}
	if _, err := NewService("", "svc"); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("default path: %v", err)
	}
}
