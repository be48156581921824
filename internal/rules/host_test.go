package rules

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// FS-04 over snapshots from before conn_files (the old fields) and after:
// the same verdicts, and a file of an unreadable mode is not called safe.
func TestConnFilesRule(t *testing.T) {
	cases := []struct {
		name string
		host snapshot.Host
		want []string // "status object"
	}{
		{"legacy pgpass 0644 and a service password",
			snapshot.Host{PgpassFiles: []snapshot.File{{Path: "/home/a/.pgpass", Mode: 0o644}, {Path: "/home/b/.pgpass", Mode: 0o600}},
				SecretLines: []snapshot.SecretLine{{File: "/etc/pg_service.conf", Line: 4, What: "password in a connection service file"}}},
			[]string{"fail file /etc/pg_service.conf", "fail file /home/a/.pgpass"}},
		{"pgpass 0600 with passwords in a home passes; 0640 without fails",
			snapshot.Host{ConnFiles: []snapshot.ConnFile{
				{Path: "/home/a/.pgpass", Kind: "pgpass", Mode: 0o600, Passwords: 2, Sources: []string{"home of user a"}},
				{Path: "/home/b/.pgpass", Kind: "pgpass", Mode: 0o640, Passwords: 0, Ignored: true, Sources: []string{"home of user b"}}}},
			[]string{"pass file /home/a/.pgpass", "fail file /home/b/.pgpass"}},
		{"service file unreadable is not checked; without passwords passes",
			snapshot.Host{ConnFiles: []snapshot.ConnFile{
				{Path: "/etc/pg_service.conf", Kind: "service", Mode: 0o600, Passwords: -1, Sources: []string{"system service file"}},
				{Path: "/root/.pg_service.conf", Kind: "service", Mode: 0o644, Passwords: 0, Sources: []string{"home of user root"}}}},
			[]string{"not_checked file /etc/pg_service.conf", "pass file /root/.pg_service.conf"}},
		{"service password lines are deleted by line",
			snapshot.Host{ConnFiles: []snapshot.ConnFile{{Path: "/srv/app svc.conf", Kind: "service", Mode: 0o640, Passwords: 2, PasswordLines: []int{3, 9}, Sources: []string{"PGSERVICEFILE of a process"}}}},
			[]string{"fail file /srv/app svc.conf"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.host
			var got []string
			for _, f := range Run(&snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, Host: &h}) {
				if f.Rule == "FS-04" {
					got = append(got, string(f.Status)+" "+f.Object)
					if strings.HasPrefix(f.Object, "file /srv/app") && f.Fix != `sed -i '3d;9d' '/srv/app svc.conf'    # and add the entries to ~/.pgpass (0600)` {
						t.Errorf("fix %q", f.Fix)
					}
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("FS-04:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
