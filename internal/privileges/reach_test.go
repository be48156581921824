package privileges

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Reach on fixed graphs; the server checks the same cases (and walks the
// routes) in internal/cli's TestAccessReachMajors.
func TestReach(t *testing.T) {
	roles := []snapshot.Role{{Name: "boss", Superuser: true, Inherit: true}, {Name: "r", CanLogin: true, Inherit: true},
		{Name: "mid", Inherit: true}, {Name: "cr", CanLogin: true, CreateRole: true, Inherit: true}, {Name: "off", Inherit: true}}
	for _, tc := range []struct {
		name    string
		version int
		grants  []snapshot.Membership
		role    string
		want    string // "" for no route; else kind and How prefix, with a "*" when it gives everything
	}{
		{"direct SET", 160000, []snapshot.Membership{{Role: "boss", Member: "r", Set: true}}, "r", "*membership SET ROLE boss"},
		{"through a role", 150000, []snapshot.Membership{{Role: "mid", Member: "r", Set: true, Inherit: true}, {Role: "boss", Member: "mid", Set: true, Inherit: true}}, "r", "*membership SET ROLE boss"},
		{"no SET on 16", 160000, []snapshot.Membership{{Role: "boss", Member: "r"}}, "r", ""},
		{"inherit only on 16", 160000, []snapshot.Membership{{Role: "boss", Member: "r", Inherit: true}}, "r", ""},
		{"createrole before 16", 150000, nil, "cr", "createrole GRANT pg_execute_server_program TO cr"},
		{"createrole from 16", 160000, nil, "cr", ""},
		{"createrole grants a member of boss", 150000, []snapshot.Membership{{Role: "boss", Member: "off", Set: true, Inherit: true}}, "cr", "*createrole"},
		{"plain", 160000, nil, "r", ""},
		{"superuser has no route", 160000, nil, "boss", ""},
		{"unknown role", 160000, nil, "nobody", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := append([]snapshot.Role{}, roles...)
			rs = append(rs, snapshot.Role{Name: "pg_execute_server_program"})
			s := &snapshot.Snapshot{Server: &snapshot.Server{VersionNum: tc.version}, Roles: rs, Memberships: tc.grants}
			m := Build(s)
			got := m.Reach(s, tc.role)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("want no route, got %+v", got)
				}
				return
			}
			every := strings.HasPrefix(tc.want, "*")
			kind, how, _ := strings.Cut(strings.TrimPrefix(tc.want, "*"), " ")
			for _, r := range got {
				if r.Kind == kind && strings.HasPrefix(r.How, how) && r.Everything == every {
					if _, ok := EverythingRoute(got); ok != every && every {
						t.Errorf("EverythingRoute misses %+v", r)
					}
					return
				}
			}
			t.Errorf("want %q, got %+v", tc.want, got)
		})
	}
}
