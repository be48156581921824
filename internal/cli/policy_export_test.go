package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// The export command: a file written atomically, a header that says
// where and when, the same body twice, no secret, a symbolic link
// refused.
func TestPolicyExportCommand(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE exp_app LOGIN PASSWORD 'exp-Secret-77'`, `CREATE DATABASE exp_db OWNER exp_app`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Exec(ctx, `DROP DATABASE IF EXISTS exp_db`, `DROP ROLE IF EXISTS exp_app`) })
	args := append([]string{"access", "policy", "export", "--database", "exp_db"}, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	dir := t.TempDir()
	out := filepath.Join(dir, "policy.yaml")
	code, stdout, stderr := runCLI(t, append(args, "-o", out)...)
	if code != 0 || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"# pgaegis access policy export\n", "# mode: authoritative", "version: 1\n", "  exp_db:\n    owner: exp_app\n", "  exp_app:\n    login: true\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("export lacks %q:\n%s", want, text)
		}
	}
	for _, secret := range []string{"exp-Secret-77", srv.Password, "password:", "SCRAM"} {
		if strings.Contains(text+stderr, secret) {
			t.Errorf("export or stderr holds %q", secret)
		}
	}
	code, again, _ := runCLI(t, args...)
	body := func(s string) string { return s[strings.Index(s, "\nversion: "):] }
	if code != 0 || body(again) != body(text) {
		t.Errorf("a second export (stdout, exit %d) differs from the first", code)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, append(args, "-o", link)...); code != ExitError || !strings.Contains(stderr, "symbolic link") {
		t.Errorf("export through a symbolic link: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, append(slices.Clone(args), "--database", "no_such_db")...); code != ExitError || !strings.Contains(stderr, "no_such_db") {
		t.Errorf("unknown database: exit %d, %s", code, stderr)
	}
}
