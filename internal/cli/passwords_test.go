package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/pwcheck"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// weakPasswords are the test roles' passwords: the deep search must find
// every one but the strong ones, and never print any.
var weakPasswords = []struct {
	role, password, encryption string
	weak                       bool
	list                       string
}{
	{"md5_name", "md5_name", "md5", true, "name/"},
	{"md5_dict", "qwerty", "md5", true, "common/"},
	{"md5_strong", "Kq9#vLx2!pWz-md5", "md5", false, ""},
	{"sc_name", "sc_name", "scram-sha-256", true, "name/"},
	{"sc_variant", "sc_variant123", "scram-sha-256", true, "variants/"},
	{"sc_top", "changeme", "scram-sha-256", true, "top/"},
	{"sc_dict", "qazwsx", "scram-sha-256", true, "common/"},
	{"sc_word", "purple-elephant-42", "scram-sha-256", true, "wordlist/"},
	{"sc_strong", "Xv7!qLm2#Rt9-scram", "scram-sha-256", false, ""},
}

func startPasswordServer(t *testing.T) (*localpg.Server, []string) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	var stmts []string
	for _, p := range weakPasswords {
		stmts = append(stmts, "SET password_encryption = '"+p.encryption+"'",
			fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", p.role, p.password))
	}
	stmts = append(stmts, `SET password_encryption = 'scram-sha-256'`,
		`CREATE ROLE nologin_weak NOLOGIN PASSWORD 'nologin_weak'`,
		`CREATE ROLE auditor LOGIN PASSWORD 'auditor-Long-pw-77'`)
	must(t, srv.Exec(ctx, stmts...))
	t.Setenv("PGPASSWORD", srv.Password)
	sock := []string{"-d", fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", srv.SocketDir, srv.Port, srv.AdminUser)}
	return srv, sock
}

func passwordsJSON(t *testing.T, wantCode int, args ...string) passwordsResult {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"passwords", "--format", "json"}, args...)...)
	if code != wantCode {
		t.Fatalf("passwords: exit %d, want %d: %s", code, wantCode, errs)
	}
	var r passwordsResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return r
}

func noPasswordIn(t *testing.T, what, text string) {
	t.Helper()
	for _, p := range weakPasswords {
		if p.password != p.role && strings.Contains(text, p.password) {
			t.Errorf("%s shows the password of %s", what, p.role)
		}
	}
}

func TestPasswordsCommand(t *testing.T) {
	srv, sock := startPasswordServer(t)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	words := filepath.Join(t.TempDir(), "words.txt")
	must(t, os.WriteFile(words, []byte("alpha\r\npurple-elephant-42\n\nomega\n"), 0o600))

	r := passwordsJSON(t, ExitFindings, append(sock, "--wordlist", words)...)
	byRole := map[string]passwordRole{}
	for _, p := range r.Roles {
		byRole[p.Role] = p
	}
	for _, p := range weakPasswords {
		got, ok := byRole[p.role]
		if !ok {
			t.Errorf("%s was not searched", p.role)
			continue
		}
		if got.Weak != p.weak || !strings.HasPrefix(got.List, p.list) || !got.Complete || got.Verifier != p.encryption {
			t.Errorf("%s: %+v, want weak=%v list %s… verifier %s", p.role, got, p.weak, p.list, p.encryption)
		}
	}
	if _, ok := byRole["nologin_weak"]; ok {
		t.Error("a NOLOGIN role was searched")
	}
	if r.Summary.Weak != 7 || r.Summary.Incomplete != 0 || r.Summary.Cached != 0 {
		t.Errorf("summary %+v", r.Summary)
	}
	raw, _ := json.Marshal(r)
	noPasswordIn(t, "the JSON output", string(raw))

	// Again: every SCRAM verifier is answered by the cache, so only the
	// md5 ones (cheap, never cached) are hashed.
	r2 := passwordsJSON(t, ExitFindings, append(sock, "--wordlist", words)...)
	for _, p := range r2.Roles {
		if p.Verifier == "scram-sha-256" && !p.Cached {
			t.Errorf("second run: %s was searched again", p.Role)
		}
	}
	md5Max := int64(3 * 100) // three md5 roles, ~90 built-in guesses and the word list each
	if r2.Summary.Guesses > md5Max || r2.Summary.Weak != 7 {
		t.Errorf("second run: %+v, want only md5 guesses", r2.Summary)
	}

	// A new verifier is searched again.
	must(t, srv.Exec(pgtest.Ctx(t), `SET password_encryption = 'scram-sha-256'`, `ALTER ROLE sc_strong PASSWORD 'sc_strong'`))
	r3 := passwordsJSON(t, ExitFindings, sock...)
	for _, p := range r3.Roles {
		if p.Role == "sc_strong" && (p.Cached || !p.Weak) {
			t.Errorf("changed verifier: %+v", p)
		}
	}

	// The cache is private and holds nothing of the verifiers.
	dir := filepath.Join(cache, "pgaegis", "passwords")
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("cache directory: %v %v", st, err)
	}
	ents, _ := os.ReadDir(dir)
	var data []byte
	for _, e := range ents {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o", e.Name(), info.Mode().Perm())
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		data = append(data, b...)
	}
	conn, err := srv.Connect(pgtest.Ctx(t), "postgres")
	must(t, err)
	rows, err := conn.Query(pgtest.Ctx(t), `SELECT rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL`)
	must(t, err)
	var verifiers []string
	for rows.Next() {
		var v string
		must(t, rows.Scan(&v))
		verifiers = append(verifiers, v)
	}
	rows.Close()
	conn.Close(pgtest.Ctx(t))
	for _, v := range verifiers {
		_, keys, _ := strings.Cut(v, "$")
		_, keys, _ = strings.Cut(keys, "$")
		for _, frag := range []string{v, strings.TrimPrefix(v, "md5"), keys} {
			if frag != "" && strings.Contains(string(data), frag) {
				t.Errorf("the cache holds verifier material (%.16s…)", frag)
			}
		}
	}
	noPasswordIn(t, "the cache", string(data))

	// The text table: which list matched, never the password.
	code, out, errs := runCLI(t, append([]string{"passwords"}, sock...)...)
	if code != ExitFindings || !strings.Contains(out, "sc_top") || !strings.Contains(out, "most common passwords") || strings.Contains(out, "md5_strong") {
		t.Errorf("text output (exit %d):\n%s%s", code, out, errs)
	}
	noPasswordIn(t, "the text output", out+errs)
	if errs != "" {
		t.Errorf("stderr is not a terminal, yet the command wrote to it: %q", errs)
	}

	// The audit takes the deep search's verdicts from the cache: sc_dict
	// is beyond the default search, and found with no time to search.
	rep, _, _ := auditJSON(t, append([]string{"--no-probe", "--no-files", "--password-check-budget", "1ns"}, sock...)...)
	expectFail(t, rep, "AUTH-11.dictionary", "role sc_dict")
	expectFail(t, rep, "AUTH-11.dictionary", "role md5_dict")
	if g := rep.Gaps["roles.weak_passwords"]; g != "" {
		t.Errorf("audit after a deep search: gap %q", g)
	}
}

func TestPasswordsBudgetAndRefusals(t *testing.T) {
	srv, sock := startPasswordServer(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())

	// A spent budget: the cheap md5 roles are still searched; the SCRAM
	// ones are not, and the result says so (exit 1 for the weak md5 ones).
	r := passwordsJSON(t, ExitFindings, append(sock, "--budget", "1ns", "--no-cache")...)
	if !r.Summary.BudgetSpent || r.Summary.Incomplete == 0 || r.Summary.Weak != 2 {
		t.Errorf("spent budget: %+v", r.Summary)
	}
	t.Setenv(noCacheEnv, "1")
	must(t, srv.Exec(pgtest.Ctx(t), `DROP ROLE md5_name`, `DROP ROLE md5_dict`))
	code, _, errs := runCLI(t, append([]string{"passwords", "--budget", "1ns"}, sock...)...)
	if code != ExitError || !strings.Contains(errs, "budget") {
		t.Errorf("spent budget, nothing found: exit %d: %s", code, errs)
	}
	if ents, _ := os.ReadDir(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "pgaegis")); len(ents) != 0 {
		t.Errorf("%s=1 still wrote the cache", noCacheEnv)
	}

	// Verifiers never cross plain TCP; only a superuser may read them.
	code, _, errs = runCLI(t, "passwords", "-d", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable", srv.Port, srv.AdminUser))
	if code != ExitError || !strings.Contains(errs, "unencrypted TCP") {
		t.Errorf("plain TCP: exit %d: %s", code, errs)
	}
	t.Setenv("PGPASSWORD", "auditor-Long-pw-77")
	code, _, errs = runCLI(t, "passwords", "-d", fmt.Sprintf("host=%s port=%d user=auditor dbname=postgres", srv.SocketDir, srv.Port))
	if code != ExitError || !strings.Contains(errs, "superuser") {
		t.Errorf("non-superuser: exit %d: %s", code, errs)
	}

	// A bad word list is named with its line, before any connection.
	bad := filepath.Join(t.TempDir(), "bad.txt")
	must(t, os.WriteFile(bad, []byte("fine\nsecret\x00tail\n"), 0o600))
	code, _, errs = runCLI(t, "passwords", "--wordlist", bad, "-d", "host=/nonexistent")
	if code != ExitError || !strings.Contains(errs, bad+":2: a NUL byte") || strings.Contains(errs, "secret") {
		t.Errorf("bad word list: exit %d: %s", code, errs)
	}
	code, _, errs = runCLI(t, "passwords", "--format", "yaml")
	if code != ExitError || !strings.Contains(errs, "--format") {
		t.Errorf("bad format: exit %d: %s", code, errs)
	}
}

// The default search inside the audit still finds the weak server's weak
// passwords (TestWeakServerFindingsLive) and runs beside the catalog
// reads; here: its verdicts are cached between audits.
func TestAuditUsesThePasswordCache(t *testing.T) {
	_, sock := startPasswordServer(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	args := append([]string{"--no-probe", "--no-files", "--password-check-budget", "5m"}, sock...)
	first, _, _ := auditJSON(t, args...)
	expectFail(t, first, "AUTH-11.dictionary", "role sc_top")
	// The second audit has no time to search, and needs none.
	args[3] = "1ns"
	second, _, _ := auditJSON(t, args...)
	for _, rep := range []*report.Report{first, second} {
		for _, role := range []string{"md5_name", "md5_dict", "sc_name", "sc_variant", "sc_top"} {
			expectFail(t, rep, "AUTH-11.dictionary", "role "+role)
		}
		for _, f := range rep.Findings {
			if f.Rule == "AUTH-11.dictionary" && f.Status == rules.Fail && (strings.Contains(f.Object, "sc_dict") || strings.Contains(f.Object, "strong")) {
				t.Errorf("the default search found %s", f.Object)
			}
		}
		if g := rep.Gaps["roles.weak_passwords"]; g != "" {
			t.Errorf("gap %q", g)
		}
		noPasswordIn(t, "the report", mustJSON(t, rep))
	}
}

func TestPasswordsProgressLine(t *testing.T) {
	got := progressLine(pwcheck.Progress{Work: 4000, Done: 1000, Guesses: 12, Weak: 1}, 10*time.Second)
	if got != "searching: 12 guesses, 1 weak, 25.0%, about 30s left" {
		t.Errorf("progress line %q", got)
	}
}

// A cache whose parent directory is a link (or open to others) is not
// used: the search runs without it and says so.
func TestPasswordsUnsafeCacheParent(t *testing.T) {
	_, sock := startPasswordServer(t)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	must(t, os.Mkdir(elsewhere, 0o700))
	must(t, os.Symlink(elsewhere, filepath.Join(cache, "pgaegis")))
	words := filepath.Join(t.TempDir(), "words.txt")
	must(t, os.WriteFile(words, []byte("alpha\npurple-elephant-42\n"), 0o600))

	code, out, errs := runCLI(t, append([]string{"passwords", "--format", "json", "--wordlist", words}, sock...)...)
	if code != ExitFindings || !strings.Contains(errs, "the verdict cache is not used") || !strings.Contains(errs, "symbolic link") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r passwordsResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Summary.Weak != 7 || r.Summary.Incomplete != 0 || r.Cache != "" {
		t.Errorf("without the cache: %+v, cache %q", r.Summary, r.Cache)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("the cache was written through the link: %v", ents)
	}
}
