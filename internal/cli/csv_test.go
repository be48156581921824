package cli

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// access matrix's CSV (its default, also on a terminal) carried role names
// raw: an ESC sequence reached the terminal and =HYPERLINK(...) became a
// live formula in a spreadsheet.
func TestAccessMatrixCSVIsInert(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	evil := "\x1b]0;PWNED\x07\x1b[2J\u202eevil"
	formula := `=HYPERLINK("http://198.51.100.1/","click")`
	if err := srv.Exec(ctx, `CREATE ROLE "`+evil+`" LOGIN`, `CREATE ROLE "`+strings.ReplaceAll(formula, `"`, `""`)+`" LOGIN`,
		`CREATE TABLE t(a int)`, `GRANT SELECT ON t TO "`+evil+`", "`+strings.ReplaceAll(formula, `"`, `""`)+`"`); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, append([]string{"access", "matrix"}, connArgs(t, srv, srv.AdminUser, srv.Password)...)...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.ContainsAny(out, "\x1b\x07\u202e") {
		t.Errorf("raw control or bidi characters in the CSV: %q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "=") || strings.HasPrefix(line, `"=`) {
			t.Errorf("a cell starts with = (a spreadsheet formula): %s", line)
		}
	}
	if !strings.Contains(out, `'=HYPERLINK`) {
		t.Errorf("the formula-named role is missing or not defused:\n%s", out)
	}
	if code, _, errs := runCLI(t, append([]string{"access", "matrix", "--format", "text"}, connArgs(t, srv, srv.AdminUser, srv.Password)...)...); code != ExitError || !strings.Contains(errs, "csv or json") {
		t.Errorf("--format text: exit %d %q, want a usage error", code, errs)
	}
}

func TestWebhookHostHidesTokens(t *testing.T) {
	for in, want := range map[string]string{
		"http://hookuser:hookpass@127.0.0.1:9/alerts?token=s3cr3t":  "http://127.0.0.1:9",
		"https://hooks.example.com/services/T000/B000/XXXXSECRETXX": "https://hooks.example.com",
		"::not a url": "the webhook",
	} {
		if got := webhookHost(in); got != want {
			t.Errorf("webhookHost(%q) = %q, want %q", in, got, want)
		}
	}
}
