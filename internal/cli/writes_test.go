package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every file pgaegis writes besides -o (keys and certificates, baselines,
// configuration snippets) refuses a symlink planted at the path: the write
// must not land on the link's target.
func TestWritersRefusePlantedSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plant := func(path string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.Symlink(victim, path); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(dir, "pg.log")
	os.WriteFile(log, []byte("2026-12-01 10:00:00 UTC [1] LOG:  connection received: host=10.0.0.1 port=5000\n"), 0o600)

	plant(filepath.Join(dir, "ca", "ca.crt")) // ca.key is refused when it exists at all
	plant(filepath.Join(dir, "baseline"))
	plant(filepath.Join(dir, "snippets", "postgresql.conf"))
	cases := [][]string{
		{"tls", "init-ca", "--name", "test CA", "--out", filepath.Join(dir, "ca")},
		{"logs", "scan", log, "--save-baseline", filepath.Join(dir, "baseline")},
	}
	for _, args := range cases {
		code, _, errs := runCLI(t, args...)
		if code != ExitError || !strings.Contains(errs, "symbolic link") {
			t.Errorf("%v: exit %d, %q; want exit 2 refusing the symbolic link", args, code, errs)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("a symlink's target was overwritten: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca", "ca.key")); err == nil {
		t.Errorf("a refused init-ca left a key behind")
	}

	// --config-out beside a real CA.
	if code, _, errs := runCLI(t, "tls", "init-ca", "--name", "real CA", "--out", filepath.Join(dir, "ca2")); code != 0 {
		t.Fatalf("init-ca: %s", errs)
	}
	code, _, errs := runCLI(t, "tls", "issue", "server", "--ca", filepath.Join(dir, "ca2"), "--host", "db.test",
		"--out", filepath.Join(dir, "srv"), "--config-out", filepath.Join(dir, "snippets"))
	if code != ExitError || !strings.Contains(errs, "symbolic link") {
		t.Errorf("tls issue --config-out: exit %d, %q; want the symbolic link refused", code, errs)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("a symlink's target was overwritten: %q", b)
	}
}
