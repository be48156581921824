package hostcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// secretKey stands for a libsodium key: it must appear nowhere in what
// the host checks keep.
const secretKey = "c2VjcmV0LWtleS1uZXZlci1pbi10aGUtcmVwb3J0IQ=="

func plant(t *testing.T, root, p, content string, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestWALGConfigs(t *testing.T) {
	root := t.TempDir()
	plant(t, root, "root/.walg.json", `{"WALG_S3_PREFIX": "s3://b/p", "WALG_LIBSODIUM_KEY": "`+secretKey+`", "PGHOST": "/run/postgresql"}`, 0o600)
	plant(t, root, "etc/wal-g.d/env/WALG_S3_PREFIX", "s3://b/p\n", 0o600)
	plant(t, root, "etc/wal-g.d/env/WALG_PGP_KEY_PATH", "", 0o600) // empty: envdir unsets it
	plant(t, root, "etc/wal-g.d/env/WALG_S3_SSE", "AES256\n", 0o600)
	// A broken JSON file whose text holds the key: the error keeps none of it.
	plant(t, root, "etc/wal-g.d/broken.json", `{"WALG_LIBSODIUM_KEY": "`+secretKey, 0o600)
	// A FIFO where a config should be: there, but not readable.
	if err := os.MkdirAll(filepath.Join(root, "etc/wal-g"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "etc/wal-g/wal-g.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := Collect(Options{Root: root})
	got := map[string]snapshot.WALGConfig{}
	for _, c := range h.WALG {
		got[c.Path] = c
	}
	if c := got["/root/.walg.json"]; c.Kind != "json" || strings.Join(c.Encryption, ",") != "WALG_LIBSODIUM_KEY" || strings.Join(c.Vars, ",") != "WALG_LIBSODIUM_KEY,WALG_S3_PREFIX" {
		t.Errorf(".walg.json: %+v", c)
	}
	if c := got["/etc/wal-g.d/env"]; c.Kind != "envdir" || len(c.Encryption) != 0 || strings.Join(c.ServerSide, ",") != "WALG_S3_SSE" {
		t.Errorf("envdir (an empty key file sets nothing): %+v", c)
	}
	if c := got["/etc/wal-g.d/broken.json"]; !strings.Contains(c.Unreadable, "not a JSON object") {
		t.Errorf("broken json: %+v", c)
	}
	if c := got["/etc/wal-g/wal-g.json"]; !strings.Contains(c.Unreadable, "/etc/wal-g/wal-g.json not readable") {
		t.Errorf("fifo: %+v", c)
	}
	b, _ := json.Marshal(h)
	if strings.Contains(string(b), secretKey) || strings.Contains(string(b), secretKey[:16]) {
		t.Fatalf("the key reached the host facts: %s", b)
	}
	noKeyInFindings(t, h)
}

// noKeyInFindings runs every rule over the host facts: no finding (its
// evidence, reason or fix) holds the key.
func noKeyInFindings(t *testing.T, h *snapshot.Host) {
	t.Helper()
	fs := rules.Run(&snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, Host: h})
	b, _ := json.Marshal(fs)
	if strings.Contains(string(b), secretKey) || strings.Contains(string(b), secretKey[:16]) {
		t.Fatalf("the key reached a finding: %s", b)
	}
	n := 0
	for _, f := range fs {
		if f.Rule == "BKP-04" && strings.Contains(f.Object, "WAL-G") {
			n++
		}
	}
	if n == 0 {
		t.Error("BKP-04 said nothing of WAL-G")
	}
}

// A real process with WAL-G's key in its environment (as an archiver's
// would be): the scan of /proc finds it and keeps the variable's name.
func TestWALGKeyInARealProcessEnvironment(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "60")
	cmd.Env = []string{"WALG_LIBSODIUM_KEY=" + secretKey, "WALG_S3_PREFIX=s3://bucket/x", "PATH=/bin"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	h := Collect(Options{})
	found := false
	for _, c := range h.WALG {
		if c.Path == fmt.Sprintf("process %d (sleep)", cmd.Process.Pid) {
			found = strings.Join(c.Encryption, ",") == "WALG_LIBSODIUM_KEY"
		}
	}
	if !found {
		t.Errorf("the process's WAL-G key was not seen: %+v", h.WALG)
	}
	b, _ := json.Marshal(h)
	if strings.Contains(string(b), secretKey) {
		t.Fatal("the key reached the host facts")
	}
	noKeyInFindings(t, h)
}

// A process environment with WAL-G's key: names only.
func TestWALGEnvKeepsNoValues(t *testing.T) {
	c := walgEnv([]byte("HOME=/var/lib/postgresql\x00WALG_LIBSODIUM_KEY=" + secretKey + "\x00WALG_S3_PREFIX=s3://x\x00WALG_PGP_KEY=\x00"))
	if c == nil || strings.Join(c.Encryption, ",") != "WALG_LIBSODIUM_KEY" || strings.Join(c.Vars, ",") != "WALG_LIBSODIUM_KEY,WALG_PGP_KEY,WALG_S3_PREFIX" {
		t.Fatalf("%+v", c)
	}
	b, _ := json.Marshal(c)
	if strings.Contains(string(b), secretKey) {
		t.Fatal("key kept")
	}
	if walgEnv([]byte("HOME=/x\x00PATH=/bin")) != nil {
		t.Error("no WAL-G variables: no configuration")
	}
}

func TestBarmanConfig(t *testing.T) {
	root := t.TempDir()
	plant(t, root, "etc/barman.conf", "[barman]\nbarman_home = /var/lib/barman\nconfiguration_files_directory = /etc/barman.d\nencryption = GPG\n; encryption_key_id = nope\n"+
		"encryption_passphrase_command = cat /secret/pass\n", 0o640)
	plant(t, root, "etc/barman.d/pg1.conf", "[pg1]\nconninfo = host=pg1 password=hunter2\nbackup_method = postgres\nbackup_compression = gzip\nencryption_key_id = ABCDEF\n", 0o640)
	plant(t, root, "etc/barman.d/pg2.conf", "[pg2]\nbackup_method = rsync\nencryption = none\n", 0o644)
	if err := syscall.Mkfifo(filepath.Join(root, "etc/barman.d/pg3.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := Collect(Options{Root: root})
	b := h.Barman
	if b == nil {
		t.Fatal("no barman")
	}
	srv := map[string]snapshot.BarmanServer{}
	for _, s := range b.Servers {
		srv[s.Name] = s
	}
	if s := srv["pg1"]; s.Encryption != "gpg" || !s.EncryptionKeyID || s.BackupMethod != "postgres" || s.BackupCompression != "gzip" || s.Config != "/etc/barman.d/pg1.conf:1" {
		t.Errorf("pg1 inherits encryption from [barman]: %+v", s)
	}
	if s := srv["pg2"]; s.Encryption != "none" || s.EncryptionKeyID || s.BackupMethod != "rsync" {
		t.Errorf("pg2 (a commented key id is not set): %+v", s)
	}
	unread := ""
	for _, f := range b.Files {
		unread += f.Unreadable
	}
	if !strings.Contains(unread, "/etc/barman.d/pg3.conf not readable") {
		t.Errorf("fifo config: %+v", b.Files)
	}
	out, _ := json.Marshal(b)
	for _, secret := range []string{"hunter2", "/secret/pass", "ABCDEF"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%q kept: %s", secret, out)
		}
	}
}

// pgbackrest.conf that is there but cannot be read is reported as such,
// never as "no pgBackRest".
func TestPgBackRestUnreadable(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/pgbackrest"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "etc/pgbackrest/pgbackrest.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := Collect(Options{Root: root})
	if h.PgBackRest == nil || !strings.Contains(h.PgBackRest.Unreadable, "/etc/pgbackrest/pgbackrest.conf not readable") || strings.Contains(h.PgBackRest.Unreadable, root) {
		t.Fatalf("%+v", h.PgBackRest)
	}
	plant(t, root, "etc/pgbackrest.conf", "[global]\nrepo1-path=/r\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass="+secretKey+"\n", 0o640)
	os.Remove(filepath.Join(root, "etc/pgbackrest/pgbackrest.conf"))
	h = Collect(Options{Root: root})
	if h.PgBackRest == nil || h.PgBackRest.Unreadable != "" || len(h.PgBackRest.Repos) != 1 || h.PgBackRest.Repos[0].CipherType != "aes-256-cbc" {
		t.Fatalf("%+v", h.PgBackRest)
	}
	if b, _ := json.Marshal(h); strings.Contains(string(b), secretKey) {
		t.Fatal("cipher pass kept")
	}
}

func FuzzParseBarman(f *testing.F) {
	f.Add([]byte("[barman]\nencryption = gpg\nconfiguration_files_directory = /etc/barman.d\n[pg]\nbackup_method: postgres\n"), true)
	f.Add([]byte("[\n]\n=\n;x\n[pg\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, global bool) {
		var b snapshot.Barman
		parseBarman(&b, "/etc/barman.conf", data, global)
		for _, s := range b.Servers {
			if !strings.HasPrefix(s.Config, "/etc/barman.conf:") {
				t.Fatalf("server location %q", s.Config)
			}
		}
	})
}

func FuzzWALGEnv(f *testing.F) {
	f.Add([]byte("WALG_LIBSODIUM_KEY=abc\x00WALG_S3_PREFIX=s3://x\x00"))
	f.Add([]byte("=\x00WALG_=\x00\x00"))
	f.Fuzz(func(t *testing.T, env []byte) {
		c := walgEnv(env)
		if c == nil {
			return
		}
		for _, v := range c.Vars {
			if !isWALGVar(v) {
				t.Fatalf("kept %q", v)
			}
		}
	})
}
