package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/report"
)

// A pgaegis backup set as the backup flow leaves it (dump | zstd | age by
// the real programs, a manifest naming the file with its digest, a
// verification record with a passing restore test): BKP-01, BKP-06,
// BKP-06.verified and BKP-04.files pass. Then the set is made old, its
// file replaced: the rules fail, naming the set.
func TestAuditBackupSets(t *testing.T) {
	for _, p := range []string{pgDump15, "/usr/bin/age", "/usr/bin/age-keygen", "/usr/bin/zstd"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is not installed: %v", p, err)
		}
	}
	srv := pgtest.Shared(t)
	if srv.Major > 15 {
		t.Skipf("pg_dump 15 cannot dump a PostgreSQL %d server and no newer pg_dump is installed here (nor in CI's Debian)", srv.Major)
	}
	root := filepath.Join(t.TempDir(), "backups")
	setDir := filepath.Join(root, "postgres-20261203T000000Z")
	if err := os.MkdirAll(setDir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o700)
	key := filepath.Join(t.TempDir(), "key.txt")
	if out, err := exec.Command("/usr/bin/age-keygen", "-o", key).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v %s", err, out)
	}
	name := backupset.DumpFileName("postgres", 0)
	if name == "" {
		name = "postgres.dump.zst.age"
	}
	sealed := filepath.Join(setDir, name)
	// ORACLE: the real pg_dump, zstd and age make the set's file.
	sh := exec.Command("/bin/sh", "-c", `set -e; "$0" -Fc -h 127.0.0.1 -p "$1" -U "$2" -d postgres | /usr/bin/zstd -q -c | /usr/bin/age -e -i "$3" -o "$4"`,
		pgDump15, fmt.Sprint(srv.Port), srv.AdminUser, key, sealed)
	sh.Env = append(os.Environ(), "PGPASSWORD="+srv.Password)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("dump | zstd | age: %v\n%s", err, out)
	}
	os.Chmod(sealed, 0o600)
	data, err := os.ReadFile(sealed)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	var mac [32]byte
	now := time.Now().UTC().Truncate(time.Second)
	writeSet := func(finished time.Time) {
		t.Helper()
		m := &backupset.Manifest{Format: backupset.Format, Name: filepath.Base(setDir), Started: finished.Add(-time.Minute), Finished: finished,
			Compression: "zstd", Encryption: "age", Recipients: []string{"age1test"},
			Databases: []backupset.Database{{Name: "postgres", Files: []backupset.File{{Name: name, CipherBytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}}}}}
		m.Sign(mac)
		if err := backupset.WriteManifest(setDir, m); err != nil {
			t.Fatal(err)
		}
		v := &backupset.Verification{Format: backupset.Format, Verified: finished.Add(time.Minute), OK: true, Manifest: m.Digest(), Files: map[string]string{name: hex.EncodeToString(sum[:])},
			RestoreTest: &backupset.RestoreTest{ServerVersion: "15", Tables: 1}}
		v.Sign(mac)
		if err := backupset.WriteVerification(setDir, v); err != nil {
			t.Fatal(err)
		}
	}
	writeSet(now.Add(-time.Hour))
	hbaFile := filepath.Join(t.TempDir(), "pg_hba.conf")
	if err := os.WriteFile(hbaFile, []byte("local all all peer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	status := func(rep *report.Report, rule string) string {
		fs := findingsOf(rep, rule)
		if len(fs) != 1 {
			return fmt.Sprintf("%d findings: %+v", len(fs), fs)
		}
		return string(fs[0].Status) + ": " + fs[0].Evidence + fs[0].Reason
	}
	rep, _, _ := auditJSON(t, "--hba-file", hbaFile, "--backup-dir", root)
	for _, rule := range []string{"BKP-01", "BKP-06", "BKP-06.verified", "BKP-04.files", "BKP-05.dirs", "BKP-03"} {
		if s := status(rep, rule); !strings.HasPrefix(s, "pass") {
			t.Errorf("%s: %s", rule, s)
		}
	}

	// Three days old: BKP-01 names the set and its age.
	writeSet(now.Add(-72 * time.Hour))
	rep, _, _ = auditJSON(t, "--hba-file", hbaFile, "--backup-dir", root)
	if s := status(rep, "BKP-01"); !strings.HasPrefix(s, "fail") || !strings.Contains(s, "newest backup "+filepath.Base(setDir)) || !strings.Contains(s, "3 days 0 h") {
		t.Errorf("BKP-01 of an old set: %s", s)
	}
	if s := status(rep, "BKP-01"); strings.HasPrefix(s, "fail") {
		// --backup-max-age moves the limit.
		rep, _, _ = auditJSON(t, "--hba-file", hbaFile, "--backup-dir", root, "--backup-max-age", "100h")
		if s := status(rep, "BKP-01"); !strings.HasPrefix(s, "pass") {
			t.Errorf("BKP-01 with --backup-max-age 100h: %s", s)
		}
	}

	// The file replaced after verification (one byte more): no longer verified.
	writeSet(now.Add(-time.Hour))
	if err := os.WriteFile(sealed, append(data, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, _, _ = auditJSON(t, "--hba-file", hbaFile, "--backup-dir", root)
	if s := status(rep, "BKP-06.verified"); !strings.HasPrefix(s, "fail") {
		t.Errorf("BKP-06.verified after the file changed: %s", s)
	}
}
