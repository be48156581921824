package hba

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// PostgreSQL 16 include directives, as expected by hand; the same files go
// to real 16, 17 and 18 servers in TestIncludeAndRegexAgreeWithServer16.
func TestIncludeDirectives16(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("pg_hba.conf", "local all all peer\ninclude extra.conf\ninclude_if_exists missing.conf\ninclude_dir conf.d\nhost all all 0.0.0.0/0 reject\n")
	write("extra.conf", "# extra\nhostssl app app 10.0.0.0/8 scram-sha-256\ninclude sub/nested.conf\n")
	write("sub/nested.conf", "hostssl app +ops 10.1.0.0/16 cert\n")
	write("conf.d/20-b.conf", "hostssl b all 10.2.0.0/16 scram-sha-256\n")
	write("conf.d/10-a.conf", "hostssl a all 10.3.0.0/16 scram-sha-256\n")
	write("conf.d/.hidden.conf", "host all all 0.0.0.0/0 trust\n")
	write("conf.d/notes.txt", "host all all 0.0.0.0/0 trust\n")

	f, err := ParseFile(filepath.Join(dir, "pg_hba.conf"), Options{SSL: true, Version: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Errors) > 0 {
		t.Fatalf("errors: %v", f.Errors)
	}
	var got []string
	for _, r := range f.Rules {
		rel, _ := filepath.Rel(dir, r.File)
		got = append(got, rel+":"+strconv.Itoa(r.Line)+" "+r.Databases[0].Value)
	}
	want := "pg_hba.conf:1 all|extra.conf:2 app|sub/nested.conf:1 app|conf.d/10-a.conf:1 a|conf.d/20-b.conf:1 b|pg_hba.conf:5 all"
	if strings.Join(got, "|") != want {
		t.Errorf("rules in order:\n got  %s\n want %s", strings.Join(got, "|"), want)
	}

	// Before 16 the same lines are rules with an invalid connection type.
	f15, _ := ParseFile(filepath.Join(dir, "pg_hba.conf"), Options{SSL: true, Version: 15})
	if len(f15.Errors) != 3 || f15.Errors[0].Line != 2 {
		t.Errorf("PostgreSQL 15 should reject the include lines: %v", f15.Errors)
	}
}

func TestIncludeErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "pg_hba.conf")
	os.WriteFile(main, []byte("local all all peer\ninclude nope.conf\ninclude self.conf\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "self.conf"), []byte("include self.conf\n"), 0o600)
	f, err := ParseFile(main, Options{Version: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Errors) != 2 {
		t.Fatalf("want 2 errors, got %v", f.Errors)
	}
	if f.Errors[0].File != main || f.Errors[0].Line != 2 || !strings.Contains(f.Errors[0].Msg, "nope.conf") {
		t.Errorf("missing include: %v", f.Errors[0])
	}
	if !strings.Contains(f.Errors[1].Msg, "nesting depth") {
		t.Errorf("recursive include: %v", f.Errors[1])
	}
}

func TestRegex16(t *testing.T) {
	f := Parse("pg_hba.conf", []byte("host /^app_.*$ /^(alice|bob)$ 10.0.0.0/8 scram-sha-256\nhost /( all 10.0.0.0/8 trust\nhost \"/(\" all 10.0.0.0/8 trust\n"), Options{Version: 16})
	// A quoted "/(" is a regular expression too, as 16-18 load it.
	if len(f.Rules) != 1 || len(f.Errors) != 2 || f.Errors[0].Line != 2 || f.Errors[1].Line != 3 {
		t.Errorf("rules %d, errors %v", len(f.Rules), f.Errors)
	}
}

// The hand-written cases above, against real 16, 17 and 18 servers: the
// same files in each server's data directory, our parse compared row by
// row (file, line, rule number, fields, errors) with pg_hba_file_rules.
func TestIncludeAndRegexAgreeWithServer16(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		if major < 16 {
			t.Skipf("PostgreSQL %d has no include directives or regular expressions", major)
		}
		srv := serverFor(t, major)
		conn := pgtest.Conn(t, srv, "postgres")
		hbaPath := filepath.Join(srv.DataDir, "pg_hba.conf")
		restoreFile(t, srv, hbaPath)
		writeFixtures(t, srv, map[string]string{
			"extra.conf":          "# extra\nhostssl app app 10.0.0.0/8 scram-sha-256\ninclude sub/nested.conf\n",
			"sub/nested.conf":     "hostssl app +ops 10.1.0.0/16 cert\n",
			"conf.d/20-b.conf":    "hostssl b all 10.2.0.0/16 scram-sha-256\n",
			"conf.d/10-a.conf":    "hostssl a all 10.3.0.0/16 scram-sha-256\n",
			"conf.d/.hidden.conf": "host all all 0.0.0.0/0 trust\n",
			"conf.d/notes.txt":    "host all all 0.0.0.0/0 trust\n",
			"self.conf":           "include self.conf\n",
		})
		for name, content := range map[string]string{
			"includes": "local all all peer\ninclude extra.conf\ninclude_if_exists missing.conf\ninclude_dir conf.d\nhost all all 0.0.0.0/0 reject\n",
			"errors":   "local all all peer\ninclude nope.conf\ninclude self.conf\n",
			"regex":    "host /^app_.*$ /^(alice|bob)$ 10.0.0.0/8 scram-sha-256\nhost /( all 10.0.0.0/8 trust\nhost \"/(\" all 10.0.0.0/8 trust\n",
		} {
			if err := srv.WriteFile(hbaPath, content, 0o600); err != nil {
				t.Fatal(err)
			}
			want := serverHBARows(t, conn, major, srv.DataDir)
			var got []hbaRow
			rule := 0
			parseOrdered(hbaPath, []byte(content), Options{SSL: true, Version: major}, func(r *Rule, e *ParseError) {
				if e != nil {
					got = append(got, hbaRow{relLoc(srv.DataDir, e.File, e.Line, major), errDesc(e.Msg)})
					return
				}
				rule++
				got = append(got, hbaRow{relLoc(srv.DataDir, r.File, r.Line, major), "#" + strconv.Itoa(rule) + " " + describeRule(r)})
			})
			if len(want) != len(got) {
				t.Errorf("%s: server %d rows, ours %d\nserver: %v\nours:   %v", name, len(want), len(got), want, got)
				continue
			}
			for k := range want {
				if want[k] != got[k] && !(want[k].loc == got[k].loc && errMatches(want[k].desc, got[k].desc)) {
					t.Errorf("%s row %d:\nserver: %v\nours:   %v", name, k, want[k], got[k])
				}
			}
		}
	})
}
