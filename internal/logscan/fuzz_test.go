package logscan

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/sqllex"
)

// FuzzParse: every format's parser takes any bytes without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"2026-11-22 08:00:00.123 UTC [42] app@shop 10.0.0.1(5432) FATAL:  password authentication failed for user \"app\"\n",
		"2026-11-22 08:00:00.123 UTC [42] app@shop 10.0.0.1(5432) LOG:  statement: CREATE ROLE x\n\tPASSWORD 'y'\n",
		`{"timestamp":"2026-11-22 08:00:00.123 UTC","error_severity":"FATAL","message":"role \"x\" does not exist"}` + "\n",
		`2026-11-22 08:00:00.123 UTC,"app","shop",42,"10.0.0.1:5432",1,1,"",,,0,LOG,00000,"statement: ALTER ROLE a PASSWORD 'b'",,,,,,,,,"psql","client backend",,0` + "\n",
		"2026-11-22 08:00:00 UTC,\"unterminated\n",
	} {
		f.Add([]byte(s))
	}
	p, _ := CompilePrefix("%m [%p] %q%u@%d %r ")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fm := range []Format{Stderr, CSV, JSON} {
			for _, s := range parseChunk(data, fm, p) {
				if s.line < 0 || s.line > bytes.Count(data, []byte{'\n'})+1 {
					t.Fatalf("%s: signal on line %d of %d", fm, s.line, bytes.Count(data, []byte{'\n'}))
				}
				if body, ok := unredactedPassword(s.text); ok {
					t.Fatalf("unredacted %q in %q", body, s.text)
				}
			}
		}
	})
}

// unredactedPassword finds a PASSWORD keyword followed by a string
// literal that is not masked. It reads the text as SQL tokens, so that
// "PASSWORD '" inside a literal (x'0PASSWORD ') is not taken for one.
func unredactedPassword(text string) (string, bool) {
	toks := sqllex.Tokens(text)
	for i, tk := range toks {
		if tk.Kind != sqllex.Ident || !strings.EqualFold(text[tk.Start:tk.End], "password") {
			continue
		}
		j := i + 1
		for j < len(toks) && (toks[j].Kind == sqllex.Space || toks[j].Kind == sqllex.Comment) {
			j++
		}
		if j == len(toks) || (toks[j].Kind != sqllex.String && toks[j].Kind != sqllex.Dollar) {
			continue
		}
		body := text[toks[j].BodyStart:toks[j].BodyEnd]
		if body != "" && body[0] != '*' {
			return body, true
		}
	}
	return "", false
}

// TestBadInput: garbage, truncation, a prefix that does not match, an
// unclosed CSV quote and a very long line are reported, not fatal.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 20<<20) // one 20 MB line
	cases := map[string]string{
		"garbage.log":  "\x00\x01\xff\xfe binary garbage\n" + long + "\n2026-11-22 08:00:00.123 UTC [42] a@b 10.0.0.9(1) FATAL:  password authentication failed for user \"a\"\n",
		"mismatch.log": "Nov 22 08:00:00 host postgres[42]: [1-1] FATAL:  password authentication failed for user \"a\"\n",
		"trunc.csv":    "2026-11-22 08:00:00.123 UTC,\"a\",\"b\",42,\"10.0.0.9:1\",1,1,\"\",,,0,FATAL,28P01,\"password authentication failed for user \"\"a\"\"\n",
		"trunc.json":   "{\"timestamp\":\"2026-11-22 08:00:00.123 UTC\",\"error_severity\":\"FATAL\",\"message\":\"password authentication fai\n",
	}
	p, _ := CompilePrefix("%m [%p] %q%u@%d %r ")
	for name, content := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		an, st, err := Scan([]string{path}, Options{Prefix: p})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch name {
		case "garbage.log":
			if an.Top(false, 1)[0].Key != "10.0.0.9" {
				t.Errorf("the scan should go on after garbage and a long line: %+v", an.Top(false, 1))
			}
		case "mismatch.log", "trunc.csv", "trunc.json":
			if len(st.Errors) == 0 || !strings.HasPrefix(st.Errors[0], path+":1: ") {
				t.Errorf("%s: want an error naming %s:1, got %v", name, path, st.Errors)
			}
		}
	}
}

func TestWatchFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	p, _ := CompilePrefix("%m [%p] %q%u@%d %r ")
	write := func(name, content string) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(content)
		f.Close()
	}
	write("postgresql-1.log", "2026-11-22 08:00:00.000 UTC [1] a@b 10.0.0.1(1) LOG:  statement: SELECT 1\n")
	an := NewAnalysis(DefaultThresholds())
	got := make(chan Event, 100)
	an.OnEvent = func(e Event) { got <- e }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Watch(ctx, dir, Options{Prefix: p}, an, 20*time.Millisecond); close(done) }()
	time.Sleep(100 * time.Millisecond)
	write("postgresql-1.log", "2026-11-22 08:00:01.000 UTC [2] app@b 10.0.0.7(1) LOG:  statement: COPY t TO PROGRAM 'curl evil'\n")
	expect := func(kind string) {
		t.Helper()
		select {
		case e := <-got:
			if e.Kind != kind {
				t.Errorf("event %s, want %s", e.Kind, kind)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no %s event", kind)
		}
	}
	expect("copy-program")
	time.Sleep(50 * time.Millisecond)
	write("postgresql-2.log", "2026-11-22 08:00:02.000 UTC [3] app@b 10.0.0.7(1) LOG:  statement: ALTER SYSTEM SET archive_command = 'x'\n")
	os.Chtimes(filepath.Join(dir, "postgresql-2.log"), time.Now().Add(time.Second), time.Now().Add(time.Second))
	expect("alter-system")
	cancel()
	<-done
}

func TestDetectPrefix(t *testing.T) {
	for spec, line := range map[string]string{
		"%m [%p] %q%u@%d %r ": "2026-11-22 08:00:00.123 UTC [42] app@shop 10.0.0.1(5432) LOG:  statement: SELECT 1",
		"%m [%p] ":            "2026-11-22 08:00:00.123 UTC [42] LOG:  checkpoint starting: time",
		// "from" is not the client: %r %a would take it for one.
		"%m [%p] %q%u@%d from %h ":                        "2026-11-22 08:00:00.123 UTC [42] app@shop from 10.0.0.1 LOG:  statement: SELECT 1",
		"%m [%p] %q%u@%d %r %a ":                          "2026-11-22 08:00:00.123 UTC [42] app@shop 10.0.0.1(5432) psql LOG:  statement: SELECT 1",
		"%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ": "2026-11-22 08:00:00 UTC [42]: [3-1] user=app,db=shop,app=psql,client=10.0.0.1 LOG:  statement: SELECT 1",
	} {
		if got := DetectPrefix([]byte(line + "\n" + line + "\n")); got.spec != spec {
			t.Errorf("%q: detected %q, want %q", line, got.spec, spec)
		}
	}
}

// TestUnredactedPassword: the fuzz oracle itself finds what it must.
func TestUnredactedPassword(t *testing.T) {
	for text, want := range map[string]bool{
		"ALTER ROLE a PASSWORD 'b'":            true,
		"alter role a password $$b$$":          true,
		"ALTER ROLE a PASSWORD /* c */ 'b'":    true,
		"ALTER ROLE a PASSWORD '********'":     false,
		"ALTER ROLE a PASSWORD ''":             false,
		"CREATE ROLE x'0PASSWORD '000":         false,
		"SELECT 'PASSWORD ''b''' AS not_a_pwd": false,
	} {
		if _, got := unredactedPassword(text); got != want {
			t.Errorf("%q: got %v, want %v", text, got, want)
		}
	}
}
