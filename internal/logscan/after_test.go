package logscan

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A success counts as "after failures" only for the role the failures
// were for, or for any role once the source sprayed several: an
// administrator's login after someone else's typos from the same address
// is no compromise.
func TestSuccessAfterFailuresIsPerRole(t *testing.T) {
	line := func(i int, host, msg string) string {
		return fmt.Sprintf("2026-12-02 10:00:%02d.000 UTC [%d] %s(5000) %s\n", i, 100+i, host, msg)
	}
	fail := func(role string) string { return `FATAL:  password authentication failed for user "` + role + `"` }
	ok := func(role string) string { return "LOG:  connection authorized: user=" + role + " database=postgres" }
	for _, c := range []struct {
		name  string
		lines []string // host:message
		want  []string // role of each success-after-failures event
	}{
		{"another role's typos", []string{fail("app"), fail("app"), fail("app"), ok("postgres")}, nil},
		{"the same role", []string{fail("app"), fail("app"), fail("app"), ok("app")}, []string{"app"}},
		{"the same role, twice in one round", []string{fail("app"), fail("app"), fail("app"), ok("app"), ok("app")}, []string{"app"}},
		{"spraying then any role", []string{fail("a"), fail("b"), fail("c"), fail("d"), fail("e"), ok("f")}, []string{"f"}},
		{"too few for the role", []string{fail("app"), fail("app"), fail("x"), ok("app")}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			for i, m := range c.lines {
				b.WriteString(line(i, "10.0.0.7", m))
			}
			path := filepath.Join(t.TempDir(), "pg.log")
			if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := CompilePrefix("%m [%p] %r ")
			if err != nil {
				t.Fatal(err)
			}
			an, _, err := Scan([]string{path}, Options{Prefix: p})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range an.Events() {
				if e.Kind == "success-after-failures" {
					got = append(got, e.Role)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("success-after-failures for %v, want %v", got, c.want)
			}
		})
	}
}
