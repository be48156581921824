package rules

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func TestAUTH20(t *testing.T) {
	for _, tc := range []struct {
		host   snapshot.Host
		status Status
		says   string
	}{
		{snapshot.Host{Fail2ban: "no"}, Fail, "no enabled fail2ban jail"},
		{snapshot.Host{Fail2ban: "yes", Fail2banJail: "postgresql (/etc/fail2ban/jail.local)", Fail2banLogPath: "/var/lib/pgsql/x.log", Fail2banLogOK: "no"}, Fail, "not where the server logs"},
		{snapshot.Host{Fail2ban: "yes", Fail2banJail: "pgaegis-postgresql (/etc/fail2ban/jail.d/pgaegis-postgresql.local)", Fail2banLogPath: "/srv/log/*.log", Fail2banLogOK: "yes"}, Pass, "pgaegis-postgresql"},
		{snapshot.Host{Fail2ban: "yes"}, Pass, "a jail watches PostgreSQL"}, // a snapshot from before the jail fields
	} {
		h := tc.host
		_, fs := runRule(t, "AUTH-20", &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, Host: &h})
		if len(fs) != 1 || fs[0].Status != tc.status || !strings.Contains(fs[0].Evidence, tc.says) {
			t.Fatalf("%+v: %+v", tc.host, fs)
		}
		if tc.status == Fail && !strings.Contains(fs[0].Fix, "pgaegis fail2ban --write [connection options]") {
			t.Errorf("fix %q does not point to pgaegis fail2ban --write (without settings: [connection options])", fs[0].Fix)
		}
	}
}

// The fix reaches the server where it listens: its socket directory and
// port from the snapshot, not a hard-coded /var/run/postgresql.
func TestAUTH20FixConnection(t *testing.T) {
	s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, Host: &snapshot.Host{Fail2ban: "no"}}
	s.Settings = map[string]snapshot.Setting{"unix_socket_directories": {Name: "unix_socket_directories", Value: "/tmp/my pg, /var/run/postgresql"}, "port": {Name: "port", Value: "5433"}}
	_, fs := runRule(t, "AUTH-20", s)
	if len(fs) != 1 || !strings.Contains(fs[0].Fix, "pgaegis fail2ban --write -h '/tmp/my pg' -p 5433 -U postgres &&") {
		t.Fatalf("%+v", fs)
	}
}
