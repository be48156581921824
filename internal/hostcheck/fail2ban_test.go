package hostcheck

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func TestFail2banJails(t *testing.T) {
	for _, tc := range []struct {
		name, file, text, logDir string
		yes, logOK, jail         string
	}{
		{"ours", "jail.d/pgaegis-postgresql.local", "[pgaegis-postgresql]\nenabled = true\nfilter = pgaegis-postgresql\nlogpath = /srv/pg/log/postgresql-*.log\n", "/srv/pg/log", "yes", "yes", "pgaegis-postgresql (/etc/fail2ban/jail.d/pgaegis-postgresql.local)"},
		{"hand-written-debian", "jail.local", "[postgresql]\nenabled = yes\nlogpath = /var/log/postgresql/postgresql-17-main.log\n", "", "yes", "yes", "postgresql (/etc/fail2ban/jail.local)"},
		{"wrong-log", "jail.local", "[postgresql]\nenabled = true\nlogpath = /var/lib/pgsql/data/pg_log/*.log\n   /tmp/x.log\n", "/srv/pg/log", "yes", "no", "postgresql (/etc/fail2ban/jail.local)"},
		{"disabled", "jail.local", "[postgresql]\nenabled = false\nlogpath = /srv/pg/log/x.log\n", "/srv/pg/log", "no", "", ""},
		{"default-off", "jail.local", "[DEFAULT]\nenabled = false\n[postgresql]\nlogpath = /srv/pg/log/x.log\n", "/srv/pg/log", "no", "", ""},
		{"sshd-only", "jail.d/defaults-debian.conf", "[sshd]\nenabled = true\n", "", "no", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, "etc/fail2ban", tc.file)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(tc.text), 0o644)
			h := &snapshot.Host{}
			fail2ban(Options{Root: root, LogDir: tc.logDir}, h)
			if h.Fail2ban != tc.yes || h.Fail2banLogOK != tc.logOK || h.Fail2banJail != tc.jail {
				t.Errorf("got %q %q %q, want %q %q %q", h.Fail2ban, h.Fail2banLogOK, h.Fail2banJail, tc.yes, tc.logOK, tc.jail)
			}
		})
	}
}

func FuzzFail2banJails(f *testing.F) {
	for _, s := range []string{"[postgresql]\nenabled = true\nlogpath = /a\n  /b\n", "[DEFAULT]\nenabled=1\n[pg]\nfilter=postgresql\n", "[\n]\n=\n\t\n[x", " a = b\n[p]\n\tcont\n"} {
		f.Add(s)
	}
	root := f.TempDir()
	p := filepath.Join(root, "etc/fail2ban/jail.local")
	os.MkdirAll(filepath.Dir(p), 0o755)
	f.Fuzz(func(t *testing.T, text string) {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		h := &snapshot.Host{}
		fail2ban(Options{Root: root, LogDir: "/srv/log"}, h)
		if h.Fail2ban != "yes" && h.Fail2ban != "no" {
			t.Fatalf("Fail2ban = %q", h.Fail2ban)
		}
	})
}
