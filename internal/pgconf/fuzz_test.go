package pgconf

import (
	"strings"
	"testing"
)

// FuzzParse: any input gives entries and errors that point into the input,
// never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"listen_addresses = '*'\nport 5432\n",
		"a.b = 'x''y\\n\\101' # c\n",
		"work_mem = 4MB\ninclude 'x.conf'\n",
		"= 5\nwork_mem =",
		"random_page_cost = .5e-3\nx = 0x1Fkb\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Parse("postgresql.conf", []byte(s))
		lines := strings.Count(s, "\n") + 1
		for _, e := range c.Entries {
			if e.Line < 1 || e.Line > lines || e.Name == "" {
				t.Fatalf("bad entry %+v for %q", e, s)
			}
		}
		for _, e := range c.Errors {
			if e.Line < 0 || e.Line > lines || e.Msg == "" {
				t.Fatalf("bad error %+v for %q", e, s)
			}
		}
	})
}
