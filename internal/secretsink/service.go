package secretsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// NewService sets user= and password= in section [name] of the service
// file at path ("": $PGSERVICEFILE or ~/.pg_service.conf), adding the
// section (with host, port, dbname) when missing, keeping the rest of the
// file byte for byte, mode 0600.
//
// It edits what libpq (fe-connect.c parseServiceFile) reads: the first
// section whose trimmed header is "[name]", and in it the first user= and
// password= lines (libpq keeps the first value of a key); new ones go
// right after the header.
func NewService(path, name string) (Sink, error) {
	if name == "" || bytes.ContainsAny([]byte(name), "\r\n\x00]") {
		return nil, fmt.Errorf("service %q: a service name must be one line without ']'", name)
	}
	if path == "" {
		path = os.Getenv("PGSERVICEFILE")
	}
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("service %s: no path given, no $PGSERVICEFILE and no home directory: %w", name, err)
		}
		path = filepath.Join(home, ".pg_service.conf")
	}
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	return &serviceSink{path: p, name: name}, nil
}

type serviceSink struct{ path, name string }

func (v *serviceSink) String() string {
	return fmt.Sprintf("service [%s] in %s (0600)", v.name, v.path)
}

func (v *serviceSink) Deliver(ctx context.Context, s Secret) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkSecret(s); err != nil {
		return nil, fmt.Errorf("%s: %w", v, err)
	}
	if err := checkDir(v.path); err != nil {
		return nil, err
	}
	was, err := readCurrent(v.path)
	if err != nil {
		return nil, err
	}
	out, note, err := rewriteService(was.data, v.name, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.path, err)
	}
	d, err := replace(v.String(), v.path, was, out)
	if err != nil {
		return nil, err
	}
	d.Note = note
	return d, nil
}

// serviceMaxLine is the longest line libpq reads from a service file, its
// newline included (a 1024-byte fgets buffer; a line that fills it is an
// error).
const serviceMaxLine = 1022

// isCSpace is C's isspace in the C locale, which parseServiceFile trims.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func trimCSpace(b []byte) (lead int, t []byte) {
	for lead < len(b) && isCSpace(b[lead]) {
		lead++
	}
	end := len(b)
	for end > lead && isCSpace(b[end-1]) {
		end--
	}
	return lead, b[lead:end]
}

// serviceHeader reports whether trimmed line t opens section name, as
// libpq tests it: "[" then name then "]", anything after.
func serviceHeader(t []byte, name string) bool {
	return len(t) > len(name)+1 && t[0] == '[' && string(t[1:1+len(name)]) == name && t[1+len(name)] == ']'
}

// checkValue refuses a value libpq would read back differently: a line
// break or NUL ends it, and trailing whitespace is trimmed.
func checkValue(what string, v []byte) error {
	switch {
	case bytes.ContainsAny(v, "\r\n\x00"):
		return fmt.Errorf("the %s holds a line break or NUL, which a service file cannot carry", what)
	case len(v) > 0 && isCSpace(v[len(v)-1]):
		return fmt.Errorf("the %s ends in whitespace, which libpq trims from a service file line", what)
	}
	return nil
}

// rewriteService returns data with user= and password= set in the first
// section [name], or with the section added at the end.
func rewriteService(data []byte, name string, s Secret) ([]byte, string, error) {
	if len(s.Password) == 0 {
		return nil, "", errors.New("empty password")
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, "", errors.New("the file holds a NUL byte, which libpq does not read as text: not changed")
	}
	if err := checkValue("password", s.Password); err != nil {
		return nil, "", err
	}
	for _, f := range []struct{ what, v string }{{"user", s.User}, {"host", s.Host}, {"port", s.Port}, {"database", s.Database}} {
		if err := checkValue(f.what, []byte(f.v)); err != nil {
			return nil, "", err
		}
	}
	set := map[string][]byte{"user": []byte(s.User), "password": s.Password}
	for _, k := range []string{"user", "password"} {
		if len(k)+1+len(set[k])+1 > serviceMaxLine {
			return nil, "", fmt.Errorf("the %s is too long for a service file line (libpq reads at most %d bytes a line)", k, serviceMaxLine)
		}
	}
	lines := splitLines(data)
	eol := ""
	if len(lines) > 0 && lines[0].nl && bytes.HasSuffix(lines[0].text, []byte("\r")) {
		eol = "\r"
	}
	header := -1
	for i, l := range lines {
		if _, t := trimCSpace(l.text); serviceHeader(t, name) {
			header = i
			break
		}
	}
	if header < 0 {
		var add []pgpassLine
		for _, kv := range []struct{ k, v string }{{"host", s.Host}, {"port", s.Port}, {"dbname", s.Database}, {"user", s.User}, {"password", string(s.Password)}} {
			if kv.v != "" {
				add = append(add, pgpassLine{text: []byte(kv.k + "=" + kv.v + eol), nl: true})
			}
		}
		add = append([]pgpassLine{{text: []byte("[" + name + "]" + eol), nl: true}}, add...)
		for _, l := range add {
			if len(l.text)+1 > serviceMaxLine {
				k, _, _ := bytes.Cut(l.text, []byte("="))
				if k[0] == '[' {
					k = []byte("service name")
				}
				return nil, "", fmt.Errorf("the %s is too long for a service file line (libpq reads at most %d bytes a line)", k, serviceMaxLine)
			}
		}
		if len(lines) > 0 {
			// A blank line between sections, as people write them.
			add = append([]pgpassLine{{text: []byte(eol), nl: true}}, add...)
		}
		return joinLines(insertLines(lines, len(lines)-1, add, eol)), "", nil
	}
	done := map[string]bool{}
	for i := header + 1; i < len(lines); i++ {
		lead, t := trimCSpace(lines[i].text)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if t[0] == '[' {
			break
		}
		eq := bytes.IndexByte(t, '=')
		if eq < 0 {
			return nil, "", fmt.Errorf("line %d: no '=' in section [%s], which libpq rejects: fix the file first", i+1, name)
		}
		k := string(t[:eq])
		v, ok := set[k]
		if !ok || done[k] {
			continue
		}
		done[k] = true
		text := lines[i].text
		trail := text[lead+len(t):]
		var b bytes.Buffer
		b.Write(text[:lead+eq+1])
		b.Write(v)
		b.Write(trail)
		if len(b.Bytes())+1 > serviceMaxLine {
			return nil, "", fmt.Errorf("line %d: the %s is too long for a service file line (libpq reads at most %d bytes a line)", i+1, k, serviceMaxLine)
		}
		lines[i].text = b.Bytes()
	}
	var add []pgpassLine
	for _, k := range []string{"user", "password"} {
		if !done[k] {
			add = append(add, pgpassLine{text: append([]byte(k+"="), append(set[k], eol...)...), nl: true})
		}
	}
	return joinLines(insertLines(lines, header, add, eol)), "", nil
}

// insertLines puts add after lines[at] (at -1: at the start). A file
// without a final newline keeps having none.
func insertLines(lines []pgpassLine, at int, add []pgpassLine, eol string) []pgpassLine {
	if len(add) == 0 {
		return lines
	}
	out := append([]pgpassLine{}, lines[:at+1]...)
	if at >= 0 && !out[at].nl {
		out[at] = pgpassLine{text: append(append([]byte{}, out[at].text...), eol...), nl: true}
		if at == len(lines)-1 {
			last := add[len(add)-1]
			add = append(add[:len(add)-1:len(add)-1], pgpassLine{text: bytes.TrimSuffix(last.text, []byte("\r"))})
		}
	}
	out = append(out, add...)
	return append(out, lines[at+1:]...)
}

func joinLines(lines []pgpassLine) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		writeLine(&b, l)
	}
	return b.Bytes()
}
