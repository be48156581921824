package pgconf

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Issue #10, defects 8 and 9: includes of hostile files end in an error of
// the including line; errors in an included file name it and the line but
// never quote its content; the total read is bounded.
func TestHostileIncludes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	write("shadow", "root:$6$SecretHash:19000::\n")
	write("long.conf", "a = 1\nb = '"+strings.Repeat("x", 2<<20)+"'\n")
	write("nested.conf", "include 'SecretPath'\n")
	// Each level names the next one 20 times: 20^10 reads within the
	// depth limit without a total bound.
	write("wide.conf", strings.Repeat("include 'wide2.conf'\n", 20))
	write("wide2.conf", strings.Repeat("include 'wide.conf'\n", 20))
	main := write("postgresql.conf", strings.Join([]string{
		"port = 5432",
		"include 'fifo.conf'",
		"include '/dev/zero'",
		"include 'shadow'",
		"include 'long.conf'",
		"include 'nested.conf'",
		"bad line here",
	}, "\n")+"\n")
	cfg, err := Load(main, Options{SkipAutoConf: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range cfg.Errors {
		if strings.Contains(e.Error(), "Secret") || strings.Contains(e.Error(), "$6$") || strings.Contains(e.Error(), "root") {
			t.Errorf("error quotes an included file: %s", e.Error())
		}
		got[filepath.Base(e.File)+":"+itoa(e.Line)] = e.Msg
	}
	for loc, want := range map[string]string{
		"postgresql.conf:2": "FIFO",
		"postgresql.conf:3": "character device",
		"shadow:1":          "syntax error",
		"long.conf:2":       "line is longer",
		"nested.conf:1":     "could not open an included configuration file",
		"postgresql.conf:7": `near token "here"`, // the main file's own errors keep their detail
	} {
		if !strings.Contains(got[loc], want) {
			t.Errorf("%s: %q, want %q (all: %v)", loc, got[loc], want, cfg.Errors)
		}
	}

	wide := write("wide-main.conf", "include 'wide.conf'\n")
	cfg, err = Load(wide, Options{SkipAutoConf: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Errors) == 0 {
		t.Error("an include tree of 20^10 files loaded without error")
	}

	for _, p := range []string{fifo, "/dev/zero", dir} {
		if _, err := Load(p, Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load(%s) = %v, want a refusal", p, err)
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// Up to 14 the server keeps a ".." inside an include path; only trailing
// "." and ".." components, doubled and trailing slashes are cleaned.
func TestCanonicalizeOld(t *testing.T) {
	for in, want := range map[string]string{
		"/d/sub/../inc1.conf": "/d/sub/../inc1.conf",
		"/d//x.conf":          "/d/x.conf",
		"/d/conf.d/":          "/d/conf.d",
		"/d/conf.d/.":         "/d/conf.d",
		"/d/a/b/..":           "/d/a",
		"/d/a/b/../..":        "/d",
		"/d/./x":              "/d/./x",
		"/":                   "/",
	} {
		if got := canonicalizeOld(in); got != want {
			t.Errorf("canonicalizeOld(%q) = %q, want %q", in, got, want)
		}
	}
}
