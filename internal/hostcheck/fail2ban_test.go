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
			Fail2ban(Options{Root: root, LogDir: tc.logDir}, h)
			if h.Fail2ban != tc.yes || h.Fail2banLogOK != tc.logOK || h.Fail2banJail != tc.jail {
				t.Errorf("got %q %q %q, want %q %q %q", h.Fail2ban, h.Fail2banLogOK, h.Fail2banJail, tc.yes, tc.logOK, tc.jail)
			}
		})
	}
}

// The trial: log_directory moved from log to log2 (ALTER SYSTEM, reload)
// while the jail still watched log/; then log_filename changed under the
// same directory. Both must fail; the live names must pass.
func TestFail2banLogpathAgainstLiveSettings(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "etc/fail2ban/jail.d/pgaegis-postgresql.local")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("[pgaegis-postgresql]\nenabled = true\nfilter = pgaegis-postgresql\nlogpath = /tmp/trialpg/data/log/postgresql-*-*-*_*.log\n"), 0o644)
	for _, tc := range []struct{ dir, name, dest, want string }{
		{"/tmp/trialpg/data/log", "postgresql-%Y-%m-%d_%H%M%S.log", "stderr", "yes"},
		{"/tmp/trialpg/data/log2", "postgresql-%Y-%m-%d_%H%M%S.log", "stderr", "no"},
		{"/tmp/trialpg/data/log", "pg-%a.log", "stderr", "no"},
		{"/tmp/trialpg/data/log", "postgresql-%Y-%m-%d_%H%M%S.log", "csvlog", "yes"}, // stderr's file is still written
		{"/tmp/trialpg/data/log", "", "", "yes"},                                     // log_filename unknown: directory only
	} {
		h := &snapshot.Host{}
		Fail2ban(Options{Root: root, LogDir: tc.dir, LogFilename: tc.name, LogDestination: tc.dest}, h)
		if h.Fail2banLogOK != tc.want {
			t.Errorf("%s/%s: Fail2banLogOK = %q, want %q", tc.dir, tc.name, h.Fail2banLogOK, tc.want)
		}
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
		Fail2ban(Options{Root: root, LogDir: "/srv/log"}, h)
		if h.Fail2ban != "yes" && h.Fail2ban != "no" {
			t.Fatalf("Fail2ban = %q", h.Fail2ban)
		}
	})
}
