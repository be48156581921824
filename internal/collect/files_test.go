package collect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// The Debian layout: configuration under /etc, pointing at the data
// directory and pg_hba.conf elsewhere, with a conf.d directory.
func TestFilesOnlyDebianLayout(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc", "postgresql", "15", "main")
	data := filepath.Join(root, "var", "lib", "postgresql", "15", "main")
	for _, d := range []string{filepath.Join(etc, "conf.d"), data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, content string, mode os.FileMode) {
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(etc, "postgresql.conf"), "data_directory = '"+data+"'\nhba_file = '"+filepath.Join(etc, "pg_hba.conf")+"'\nssl = on\ninclude_dir = 'conf.d'\n", 0o644)
	write(filepath.Join(etc, "conf.d", "10-listen.conf"), "listen_addresses = '*'\n", 0o600)
	write(filepath.Join(etc, "pg_hba.conf"), "local all postgres peer\nhostssl all all 10.0.0.0/8 scram-sha-256 ldapbindpasswd=x\nhost all all 10.0.0.0/8 ldap ldapserver=l ldapbasedn=dc=x ldapbindpasswd=hunter2\n", 0o640)
	write(filepath.Join(data, "PG_VERSION"), "15\n", 0o600)
	write(filepath.Join(data, "postgresql.auto.conf"), "log_connections = 'on'\n", 0o600)

	s, err := Collect(context.Background(), Options{ConfigFile: filepath.Join(etc, "postgresql.conf")})
	if err != nil {
		t.Fatal(err)
	}
	if s.Target.DataDir != data || s.MajorVersion() != 15 || !s.Target.OnHost {
		t.Errorf("target %+v, version %d", s.Target, s.MajorVersion())
	}
	la, ok := s.Setting("listen_addresses")
	if !ok || la.Value != "*" || la.File != filepath.Join(etc, "conf.d", "10-listen.conf") || la.Line != 1 {
		t.Errorf("listen_addresses: %+v", la)
	}
	if lc, _ := s.Setting("log_connections"); lc.Value != "on" || !strings.HasSuffix(lc.File, "postgresql.auto.conf") {
		t.Errorf("postgresql.auto.conf should win: %+v", lc)
	}
	if d, _ := s.Setting("log_disconnections"); d.Origin != snapshot.FromDefault || d.Value != "off" {
		t.Errorf("unset settings take the built-in default: %+v", d)
	}
	if s.HBA == nil || s.HBA.Source != "file" || len(s.HBA.Rules) != 2 || len(s.HBA.Errors) != 1 {
		t.Fatalf("hba: %+v", s.HBA)
	}
	for _, r := range s.HBA.Rules {
		if strings.Contains(r.Text, "hunter2") {
			t.Error("ldapbindpasswd survived in the snapshot")
		}
	}
	kinds := map[string]uint32{}
	for _, f := range s.Files {
		kinds[f.Kind+" "+filepath.Base(f.Path)] = f.Mode
	}
	for k, mode := range map[string]uint32{"data_directory main": 0o700, "config_file postgresql.conf": 0o644,
		"config_include 10-listen.conf": 0o600, "hba_file pg_hba.conf": 0o640, "auto_conf postgresql.auto.conf": 0o600} {
		if got, ok := kinds[k]; !ok || got != mode {
			t.Errorf("%s: mode %o (present %v), want %o; all: %v", k, got, ok, mode, kinds)
		}
	}
}

func TestMissingExplicitPathIsAnError(t *testing.T) {
	_, err := Collect(context.Background(), Options{HBAFile: "/nonexistent/pg_hba.conf"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/pg_hba.conf") {
		t.Errorf("err = %v", err)
	}
}
