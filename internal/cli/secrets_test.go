package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TestErrorMasksOnlySecrets (issue #10 defect 16a): a failed connection's
// message keeps ordinary words and the database name intact, and loses
// every password, whichever way it was given.
func TestErrorMasksOnlySecrets(t *testing.T) {
	srv := pgtest.Shared(t)
	base := fmt.Sprintf("host=127.0.0.1 port=%d user=no_such_role", srv.Port)
	cases := []struct {
		name       string
		args       []string
		pgpassword string
		want       []string // must appear
		secrets    []string // must not appear
	}{
		{name: "database name e", args: []string{"-d", "e", "-h", "127.0.0.1", "-p", fmt.Sprint(srv.Port), "-U", "no_such_role"},
			want: []string{"connecting to", "dbname=e", "no_such_role"}},
		{name: "short PGPASSWORD", args: []string{"-d", "e", "-h", "127.0.0.1", "-p", fmt.Sprint(srv.Port), "-U", "no_such_role"},
			pgpassword: "in", want: []string{"connecting to", "dbname=e", "authentication"}},
		{name: "escaped space in the DSN password", args: []string{"-d", base + ` dbname=shop password=Part1\ Part2`},
			want: []string{"connecting to", "dbname=shop"}, secrets: []string{"Part1", "Part2"}},
		{name: "raw @ in a URI password", args: []string{"-d", fmt.Sprintf("postgresql://no_such_role:Le@kB6@127.0.0.1:%d/shop", srv.Port)},
			secrets: []string{"Le@", "kB6"}},
		{name: "long PGPASSWORD", args: []string{"-d", base + " dbname=shop"}, pgpassword: "Long-Secret-Value-1",
			want: []string{"dbname=shop"}, secrets: []string{"Long-Secret-Value-1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PGPASSWORD", c.pgpassword)
			t.Setenv("PGPASSFILE", "/nonexistent")
			code, out, errs := runCLI(t, append([]string{"audit"}, c.args...)...)
			if code != ExitError {
				t.Errorf("exit %d, want 2", code)
			}
			all := out + errs
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q (garbled by masking?)", w)
				}
			}
			for _, s := range c.secrets {
				if strings.Contains(all, s) {
					t.Errorf("output keeps part of the password")
				}
			}
			if c.name != "long PGPASSWORD" && strings.Contains(errs, "xxxxx") && len(c.secrets) == 0 {
				t.Errorf("something that is not a secret was masked: %q", errs)
			}
		})
	}
}
