package fix

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// The breaks note of a method change lists the roles a 16+ pattern
// matches, quoted or not; before 16 the token names one role only.
func TestMethodBreaksRegexByMajor(t *testing.T) {
	const p = "/etc/pg/pg_hba.conf"
	cases := []struct {
		name, user string
		want15     string // also 13, 14
		want16     string // also 17, 18
	}{
		{"quoted pattern", `"/^adm.*$"`, "", "adm1, admx"},
		{"unquoted pattern", `/^adm`, "", "adm1, admx"},
		{"pattern and a name", `/^admx$,bob`, "bob", "admx, bob"},
		{"role named like the pattern", `"/^x$"`, `"/^x$"`, ""},
		{"plain name", `adm1`, "adm1", "adm1"},
	}
	for _, c := range cases {
		for _, v := range []struct {
			num  int
			want string
		}{{130020, c.want15}, {140017, c.want15}, {150018, c.want15}, {160010, c.want16}, {170006, c.want16}, {180001, c.want16}} {
			s := &snapshot.Snapshot{Server: &snapshot.Server{VersionNum: v.num}}
			for _, n := range []string{"adm1", "admx", "bob", "carol", "/^x$"} {
				s.Roles = append(s.Roles, snapshot.Role{Name: n, CanLogin: true, Password: snapshot.PasswordMD5})
			}
			notes := methodBreaks(s, "host all "+c.user+" 127.0.0.1/32 trust", "host all "+c.user+" 127.0.0.1/32 scram-sha-256", p, 3)
			want := ""
			if v.want != "" {
				want = "clients of roles " + v.want + " (md5 passwords) will fail over " + p + ":3"
			}
			got := ""
			for _, n := range notes {
				if strings.HasPrefix(n, "clients of roles ") {
					got, _, _ = strings.Cut(n, " until")
				}
			}
			if got != want {
				t.Errorf("%s on %d:\n got  %q\n want %q", c.name, v.num/10000, got, want)
			}
		}
	}
}
