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
		if tc.status == Fail && !strings.Contains(fs[0].Fix, "pgaegis fail2ban --write") {
			t.Errorf("fix %q does not point to pgaegis fail2ban --write", fs[0].Fix)
		}
	}
}
