package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
)

const pgDump15 = "/usr/lib/postgresql/15/bin/pg_dump"

// dumpTo runs the real pg_dump 15 against srv into path (custom format),
// the password in the child's environment only.
func dumpTo(t *testing.T, port int, user, password, path string) {
	t.Helper()
	cmd := exec.Command(pgDump15, "-Fc", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", user, "-d", "postgres", "-f", path)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
}

func findingsOf(rep *report.Report, rule string) []rules.Finding {
	var out []rules.Finding
	for _, f := range rep.Findings {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// A backup directory as the guide's scripts leave it: a plaintext dump
// made by the real pg_dump beside one encrypted by the real age CLI, in a
// directory anyone can list. The audit names the plaintext dump as
// critical, leaves the age file alone, and fails the directory's mode.
func TestAuditBackupDirPlaintextAndModes(t *testing.T) {
	for _, p := range []string{pgDump15, "/usr/bin/age", "/usr/bin/age-keygen"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is not installed: %v", p, err)
		}
	}
	srv := pgtest.Shared(t)
	if srv.Major > 15 {
		t.Skipf("pg_dump 15 cannot dump a PostgreSQL %d server and no newer pg_dump is installed here (nor in CI's Debian)", srv.Major)
	}
	if err := srv.Exec(pgtest.Ctx(t), "CREATE TABLE IF NOT EXISTS bkp_secret(card text)", "INSERT INTO bkp_secret VALUES ('4111111111111111')"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "backups")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	plain := filepath.Join(dir, "nightly.dump")
	dumpTo(t, srv.Port, srv.AdminUser, srv.Password, plain)
	os.Chmod(plain, 0o600)

	// ORACLE: the age CLI encrypts a copy of the same dump.
	key := filepath.Join(t.TempDir(), "key.txt")
	if out, err := exec.Command("/usr/bin/age-keygen", "-o", key).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v %s", err, out)
	}
	sealed := filepath.Join(dir, "nightly.dump.age")
	if out, err := exec.Command("/usr/bin/age", "-e", "-i", key, "-o", sealed, plain).CombinedOutput(); err != nil {
		t.Fatalf("age: %v %s", err, out)
	}
	os.Chmod(sealed, 0o600)

	hbaFile := filepath.Join(t.TempDir(), "pg_hba.conf")
	if err := os.WriteFile(hbaFile, []byte("local all all peer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, _, _ := auditJSON(t, "--hba-file", hbaFile, "--backup-dir", dir)

	enc := findingsOf(rep, "BKP-04.files")
	if len(enc) != 1 || enc[0].Status != rules.Fail || enc[0].Severity != rules.Critical || enc[0].Location != plain ||
		!strings.Contains(enc[0].Evidence, "plaintext pg_dump archive (PGDMP 1.") {
		t.Errorf("BKP-04.files: %+v", enc)
	}
	modes := findingsOf(rep, "BKP-05.dirs")
	if len(modes) != 1 || modes[0].Status != rules.Fail || modes[0].Location != dir || !strings.Contains(modes[0].Evidence, "mode 0755") {
		t.Errorf("BKP-05.dirs: %+v", modes)
	}

	// Remove the plaintext dump and close the directory: both pass.
	os.Remove(plain)
	os.Chmod(dir, 0o700)
	rep, _, _ = auditJSON(t, "--hba-file", hbaFile, "--backup-dir", dir)
	for _, rule := range []string{"BKP-04.files", "BKP-05.dirs"} {
		fs := findingsOf(rep, rule)
		if len(fs) != 1 || fs[0].Status != rules.Pass {
			t.Errorf("%s after the fix: %+v", rule, fs)
		}
	}

	// PGAEGIS_BACKUP_DIR names the directory when the flag does not.
	t.Setenv(backupDirEnv, dir)
	rep, _, _ = auditJSON(t, "--hba-file", hbaFile)
	if fs := findingsOf(rep, "BKP-05.dirs"); len(fs) != 1 || fs[0].Status != rules.Pass || !strings.Contains(fs[0].Object, dir) {
		t.Errorf("%s: %+v", backupDirEnv, fs)
	}

	// collect keeps what it saw; audit --snapshot judges it elsewhere.
	t.Setenv(backupDirEnv, "")
	os.Chmod(dir, 0o750)
	snap := filepath.Join(t.TempDir(), "snap.json")
	if code, _, errs := runCLI(t, "collect", "--hba-file", hbaFile, "--backup-dir", dir, "-o", snap); code != ExitOK {
		t.Fatalf("collect: exit %d %s", code, errs)
	}
	os.Chmod(dir, 0o700)
	rep, _, _ = auditJSON(t, "--snapshot", snap)
	if fs := findingsOf(rep, "BKP-05.dirs"); len(fs) != 1 || fs[0].Status != rules.Fail || !strings.Contains(fs[0].Evidence, "mode 0750") {
		t.Errorf("from the snapshot: %+v", fs)
	}
}

// Without a backup directory or a backup tool, BKP-01 and BKP-06 say
// what they need instead of passing.
func TestAuditBackupRulesNeedADirectory(t *testing.T) {
	t.Setenv(backupDirEnv, "")
	hbaFile := filepath.Join(t.TempDir(), "pg_hba.conf")
	if err := os.WriteFile(hbaFile, []byte("local all all peer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, _, _ := auditJSON(t, "--hba-file", hbaFile)
	for _, rule := range []string{"BKP-01", "BKP-06", "BKP-04.files", "BKP-05.dirs", "BKP-06.verified"} {
		fs := findingsOf(rep, rule)
		if len(fs) != 1 || fs[0].Status != rules.NotChecked || !strings.Contains(fs[0].Reason, "--backup-dir") {
			t.Errorf("%s: %+v", rule, fs)
		}
	}
	for _, args := range [][]string{
		{"audit", "--snapshot", "x.json", "--backup-dir", "/srv"},
		{"audit", "--hba-file", hbaFile, "--backup-max-age", "0s", "--backup-dir", "/srv"},
	} {
		if code, _, errs := runCLI(t, args...); code != ExitError || errs == "" {
			t.Errorf("%v: exit %d %s", args, code, errs)
		}
	}
}
