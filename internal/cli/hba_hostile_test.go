package cli

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// Issue #10, defect 4: the hba commands printed ldapbindpasswd and
// radiussecrets in every format. Every subcommand and format, over a file
// holding credentials (in rules and in a line the server rejects).
func TestHBACommandsNeverPrintSecrets(t *testing.T) {
	srv := pgtest.Shared(t)
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	content := `host all ` + srv.AdminUser + ` 127.0.0.1/32 scram-sha-256
host all all 10.0.0.0/8 ldap ldapserver=ldap.example.com ldapbasedn="dc=example" ldapbinddn=cn=svc ldapbindpasswd=LdapSecret-1
host all all 10.1.0.0/16 radius radiusservers="10.9.0.1,10.9.0.2" radiussecrets="RadSecret-2a,RadSecret-2b"
host all all 10.2.0.0/16 radius radiusservers=10.9.0.1 "radiussecrets=RadSecret-3"
`
	good := writeFile(t, "pg_hba.conf", content)
	bad := writeFile(t, "bad.conf", content+`host all all 10.3.0.0/16 radius radiusservers=10.9.0.1 radiussecrets="RadSecret-4
`)
	var cases [][]string
	for _, f := range []string{good, bad} {
		for _, format := range []string{"text", "json"} {
			cases = append(cases,
				[]string{"hba", "explain", "--file", f, "--user", "u", "--database", "d", "--address", "10.0.0.1", "--format", format},
				[]string{"hba", "explain", "--file", f, "--user", "u", "--database", "d", "--address", "10.1.0.1", "--format", format},
				[]string{"hba", "explain", "--file", f, "--user", "u", "--database", "d", "--format", format},
				[]string{"hba", "diff", "--format", format, good, f},
				append([]string{"hba", "matrix", "--file", f, "--format", format}, args...),
			)
		}
		for _, format := range []string{"text", "json", "sarif", "markdown", "junit"} {
			cases = append(cases, []string{"hba", "lint", "--file", f, "--format", format},
				append([]string{"hba", "lint", "--file", f, "--format", format}, args...))
		}
		cases = append(cases, append([]string{"hba", "matrix", "--file", f, "--format", "csv"}, args...),
			append([]string{"hba", "guard", f}, args...))
	}
	for _, c := range cases {
		code, out, errs := runCLI(t, c...)
		if code == ExitError {
			t.Errorf("%s: exit %d: %s", strings.Join(c, " "), code, errs)
		}
		if strings.Contains(out+errs, "Secret-") {
			t.Errorf("%s prints a credential", strings.Join(c[:3], " "))
		}
	}
}

// Defect 9: a file the server would refuse must fail the lint, and an
// included file's content must never be echoed.
func TestHBALintFailsOnAFileTheServerRefuses(t *testing.T) {
	dir := t.TempDir()
	noise := make([]byte, 4096)
	rand.Read(noise)
	must(t, os.WriteFile(filepath.Join(dir, "random.conf"), noise, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "self"), []byte("@self\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "selfat.conf"), []byte("host all @self 10.0.0.0/8 scram-sha-256\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "private"), []byte("PrivateFirstLine:$6$hash\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "inc.conf"), []byte("host all all 10.0.0.0/8 scram-sha-256\ninclude private\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "loop.conf"), []byte("include loop.conf\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "ok.conf"), []byte("host all all 10.0.0.0/8 scram-sha-256\n"), 0o600))
	for _, c := range []struct {
		file string
		want int
	}{{"random.conf", ExitFindings}, {"selfat.conf", ExitFindings}, {"inc.conf", ExitFindings}, {"loop.conf", ExitFindings}, {"ok.conf", ExitOK}} {
		for _, format := range []string{"text", "sarif"} {
			code, out, errs := runCLI(t, "hba", "lint", "--file", filepath.Join(dir, c.file), "--format", format, "--fail-on", "critical")
			if code != c.want {
				t.Errorf("%s (%s): exit %d, want %d: %s", c.file, format, code, c.want, errs)
			}
			if strings.Contains(out+errs, "PrivateFirstLine") || strings.Contains(out+errs, "$6$") {
				t.Errorf("%s (%s): an included file's content was printed", c.file, format)
			}
			if c.want == ExitFindings && !strings.Contains(out, "AUTH-18") {
				t.Errorf("%s (%s): no AUTH-18 finding:\n%s", c.file, format, out)
			}
		}
	}
}

// Defect 8: non-regular and endless inputs are refused with an error
// naming them (exit 2), never read or waited on.
func TestHBACommandsRefuseHostileFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	must(t, mkfifo(fifo))
	for _, p := range []string{fifo, "/dev/zero", dir} {
		for _, c := range [][]string{
			{"hba", "lint", "--file", p},
			{"hba", "explain", "--file", p, "--user", "u", "--database", "d", "--address", "10.0.0.1"},
			{"hba", "diff", p, p},
		} {
			code, _, errs := runCLI(t, c...)
			if code != ExitError || !strings.Contains(errs, p) || !strings.Contains(errs, "not a regular file") {
				t.Errorf("%s: exit %d: %s", strings.Join(c, " "), code, errs)
			}
		}
	}
}

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
