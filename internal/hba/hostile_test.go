package hba

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Defect 4 of issue #10: credentials in options must not survive parsing,
// whatever the quoting, so no command can print them.
func TestSecretsNeverLeaveTheParser(t *testing.T) {
	for _, c := range []struct{ line, secret string }{
		{`host all all 10.0.0.0/8 ldap ldapserver=l ldapbasedn="dc=x" ldapbinddn=cn=a ldapbindpasswd=Hunter2Sec`, "Hunter2Sec"},
		{`host all all 10.0.0.0/8 ldap ldapserver=l ldapbasedn=dc=x ldapbindpasswd="Qu""oted Sec"`, "oted Sec"},
		{`host all all 10.0.0.0/8 ldap ldapserver=l ldapbasedn=dc=x "ldapbindpasswd=Wh#le"`, "Wh#le"},
		{`host all all 10.0.0.0/8 ldap ldapserver=l ldapbasedn=dc=x ldapbindpasswd=Ha#shTail`, "shTail"},
		{`host all all 10.0.0.0/8 radius radiusservers=10.0.0.1 radiussecrets=RadSecret1`, "RadSecret1"},
		{`host all all 10.0.0.0/8 radius radiusservers="10.0.0.1,10.0.0.2" radiussecrets="RadA,RadB"`, "RadA"},
		{`host all all 10.0.0.0/8 radius radiusservers=10.0.0.1 \` + "\n" + `  radiussecrets=RadCont`, "RadCont"},
		// An unquoted secret with a space or comma: the tail is a stray
		// token for the server, and must not be quoted or echoed either.
		{`host all all 10.0.0.0/8 ldap ldapserver=l ldapbasedn=dc=x ldapbindpasswd=Hp1First Hp2Second`, "Hp2Second"},
		{`host all all 10.0.0.0/8 radius radiusservers=10.0.0.1 radiussecrets=Rs1First,Rs2 Second`, "Rs2"},
		{`host all all 10.0.0.0/8 radius radiusservers=10.0.0.1 radiussecrets=Rs1First,Rs2 Sec0nd`, "Sec0nd"},
		// An error must not quote the secret either.
		{`host all all 10.0.0.0/8 radius radiusservers=10.0.0.1 radiussecrets="RadBad`, "RadBad"},
	} {
		f := Parse("pg_hba.conf", []byte(c.line+"\n"), Options{})
		all := ""
		for _, r := range f.Rules {
			all += r.Text + "|"
			for _, o := range r.Options {
				all += o.Name + "=" + o.Value + "|"
			}
		}
		for _, e := range f.Errors {
			all += e.Error() + "|"
		}
		if strings.Contains(all, c.secret) {
			t.Errorf("%s\nleaks %q: %s", c.line, c.secret, all)
		}
		if len(f.Rules) == 1 && !strings.Contains(f.Rules[0].Text, Masked) {
			t.Errorf("%s: the masked line lost the option: %s", c.line, f.Rules[0].Text)
		}
	}
}

func TestMaskLineKeepsTheRest(t *testing.T) {
	for in, want := range map[string]string{
		`host all all 10.0.0.0/8 ldap ldapserver=l ldapbindpasswd=s ldapbasedn=dc=x`: `host all all 10.0.0.0/8 ldap ldapserver=l ldapbindpasswd=xxxxx ldapbasedn=dc=x`,
		`host  "all",bob  all 0.0.0.0/0 md5  # note`:                                 `host  "all",bob  all 0.0.0.0/0 md5  # note`,
		`host all all 0.0.0.0/0 radius radiusservers=a radiussecrets="x y"`:          `host all all 0.0.0.0/0 radius radiusservers=a radiussecrets=xxxxx`,
	} {
		if got := MaskLine(in); got != want {
			t.Errorf("MaskLine(%s)\n got  %s\n want %s", in, got, want)
		}
	}
}

// Defect 9: an include can name any file on the host; its content must not
// appear in an error message, only its name, line and the kind of problem.
func TestIncludedContentIsNeverQuoted(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const secret = "root:$6$SecretHash"
	write("shadow", secret+":19000:0:99999:7:::\nbadmethod all all 10.0.0.0/8 SecretMethod\nhost all all 10.0.0.0/8 md5 SecretOpt\n")
	write("users", "SecretUser\n")
	write("dbs", "\"unterminated SecretDb\n")
	write("self", "@self\n")
	main := write("pg_hba.conf", "include shadow\nhost all @users 10.0.0.0/8 SecretAfter\n@users all all trust\nhost @dbs all 10.0.0.0/8 md5\nhost @self all 10.0.0.0/8 md5\nhost all all 10.0.0.0/8 badmethod\n")
	f, err := ParseFile(main, Options{Version: 16})
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, e := range f.Errors {
		if strings.Contains(e.Error(), "Secret") || strings.Contains(e.Error(), "$6$") {
			t.Errorf("error quotes an included file: %s", e.Error())
		}
		lines[filepath.Base(e.File)+":"+strconv.Itoa(e.Line)] = true
	}
	for _, want := range []string{"shadow:1", "shadow:2", "shadow:3", "pg_hba.conf:2", "pg_hba.conf:3", "pg_hba.conf:5", "pg_hba.conf:6"} {
		if !lines[want] {
			t.Errorf("no error at %s: %v", want, f.Errors)
		}
	}
	// The file parsed itself is still quoted: that is what helps fix it.
	if last := f.Errors[len(f.Errors)-1]; !strings.Contains(last.Msg, `"badmethod"`) {
		t.Errorf("the main file's error lost its detail: %s", last.Msg)
	}
}

// Defect 8: hostile inputs end with an error naming the file, quickly and
// in bounded memory.
func TestHostileFilesAreRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, "long.conf")
	os.WriteFile(long, []byte("local all all peer\nhost all "+strings.Repeat("a", 2<<20)+" 10.0.0.0/8 md5\n"), 0o600)
	sparse := filepath.Join(dir, "sparse.conf")
	sf, _ := os.Create(sparse)
	sf.Truncate(2 << 30)
	sf.Close()
	for _, c := range []struct{ path, want string }{
		{fifo, "FIFO"},
		{"/dev/zero", "character device"},
		{dir, "directory"},
		{long, "long.conf:2: line is longer"},
		{sparse, "larger than"},
	} {
		_, err := ParseFile(c.path, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("ParseFile(%s) = %v, want an error naming it and %q", c.path, err, c.want)
		}
		_, err = ParseIdentFile(c.path, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseIdentFile(%s) = %v, want %q", c.path, err, c.want)
		}
	}
	// The same through an include, an include_dir member and an @file.
	os.Mkdir(filepath.Join(dir, "d"), 0o700)
	os.Symlink(fifo, filepath.Join(dir, "d", "fifo.conf"))
	os.Symlink("/dev/zero", filepath.Join(dir, "zero"))
	main := filepath.Join(dir, "pg_hba.conf")
	os.WriteFile(main, []byte("include fifo.conf\ninclude_dir d\nhost all @zero 10.0.0.0/8 md5\ninclude long.conf\n"), 0o600)
	f, err := ParseFile(main, Options{Version: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Errors) != 4 {
		t.Fatalf("want 4 errors, got %v", f.Errors)
	}
	for i, want := range []string{"FIFO", "FIFO", "character device", "line is longer"} {
		if !strings.Contains(f.Errors[i].Msg, want) {
			t.Errorf("error %d: %s, want %q", i, f.Errors[i].Error(), want)
		}
	}
}

// A line naming a self-including @file many times would expand 10^k times
// within the depth limit; the budget stops it with an error.
func TestAtFileExpansionIsBounded(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "self")
	os.WriteFile(self, []byte(strings.Repeat("@self,", 30)+"x\n"), 0o600)
	main := filepath.Join(dir, "pg_hba.conf")
	os.WriteFile(main, []byte("host all @self 10.0.0.0/8 md5\n"), 0o600)
	f, err := ParseFile(main, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Errors) != 1 || len(f.Rules) != 0 {
		t.Fatalf("want one error, got %v", f.Errors)
	}
}

// The server's own error text for a bad RADIUS secret list quotes it; the
// live collection passes it through RedactErrors.
func TestRedactErrors(t *testing.T) {
	errs := []ParseError{
		{Msg: `could not parse RADIUS secret list "Zq9,Wx""Y"`},
		{Msg: `invalid authentication method "trusst"`},
	}
	RedactErrors(errs)
	if strings.Contains(errs[0].Msg, "Zq9") || !strings.Contains(errs[0].Msg, "RADIUS secret list") {
		t.Errorf("secret list error: %q", errs[0].Msg)
	}
	if errs[1].Msg != `invalid authentication method "trusst"` {
		t.Errorf("unrelated error changed: %q", errs[1].Msg)
	}
}
