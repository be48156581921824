package fix

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// A LOG-* change of log_directory (or filename, destination, collector)
// moves the log away from a jail's logpath: the step says so.
func TestFail2banBreaks(t *testing.T) {
	s := &snapshot.Snapshot{Host: &snapshot.Host{Fail2ban: "yes", Fail2banJail: "pgaegis-postgresql (/etc/fail2ban/jail.d/pgaegis-postgresql.local)", Fail2banLogPath: "/srv/pg/log/postgresql-*.log"}}
	if b := fail2banBreaks(s, "log_directory"); !strings.Contains(b, "/srv/pg/log/postgresql-*.log") || !strings.Contains(b, "pgaegis fail2ban --write") {
		t.Errorf("log_directory: %q", b)
	}
	if b := fail2banBreaks(s, "log_connections"); b != "" {
		t.Errorf("log_connections: %q", b)
	}
	s.Host.Fail2ban = "no"
	if b := fail2banBreaks(s, "log_filename"); b != "" {
		t.Errorf("no jail: %q", b)
	}
}
