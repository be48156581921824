package rules

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func unknownNames(s *snapshot.Snapshot) []string {
	var out []string
	for _, f := range Run(s) {
		if f.Rule == "AUTH-07.unknown-names" && f.Status == Fail {
			out = append(out, f.Evidence)
		}
	}
	sort.Strings(out)
	return out
}

// From 16 a leading slash makes a regular expression, quoted or not;
// before 16 it is a name, quoted or not. AUTH-07.unknown-names must not
// ask for a role named like a pattern on 16+, and must on 15.
func TestUnknownNamesRegexByMajor(t *testing.T) {
	const p = "/etc/pg/pg_hba.conf"
	cases := []struct {
		name, line string
		want15     []string // also 13, 14
		want16     []string // also 17, 18
	}{
		{"quoted regex matching a role", `host all "/^adm.*$" 127.0.0.1/32 trust`,
			[]string{p + `:1: role "/^adm.*$" does not exist`}, nil},
		{"unquoted regex matching a role", `host all /^adm.*$ 127.0.0.1/32 trust`,
			[]string{p + `:1: role "/^adm.*$" does not exist`}, nil},
		{"regex matching no role", `host all "/^zzz" 127.0.0.1/32 trust`,
			[]string{p + `:1: role "/^zzz" does not exist`}, []string{p + `:1: regular expression "/^zzz" matches no role`}},
		{"database regex", `host /^app all 127.0.0.1/32 trust`,
			[]string{p + `:1: database "/^app" does not exist`}, nil},
		{"database regex matching none", `host "/^nodb" all 127.0.0.1/32 trust`,
			[]string{p + `:1: database "/^nodb" does not exist`}, []string{p + `:1: regular expression "/^nodb" matches no database`}},
		{"plain missing role", `host all ghost 127.0.0.1/32 trust`,
			[]string{p + `:1: role "ghost" does not exist`}, []string{p + `:1: role "ghost" does not exist`}},
	}
	for _, c := range cases {
		for _, v := range []struct {
			num  int
			want []string
		}{{130020, c.want15}, {140017, c.want15}, {150018, c.want15}, {160010, c.want16}, {170006, c.want16}, {180001, c.want16}} {
			s := fixture(c.line+"\n", nil)
			s.Server.VersionNum = v.num
			s.Roles = append(s.Roles, snapshot.Role{OID: 20010, Name: "admin1", CanLogin: true})
			s.Databases = []snapshot.Database{{Name: "postgres"}, {Name: "appdb"}}
			if got := unknownNames(s); strings.Join(got, "|") != strings.Join(v.want, "|") {
				t.Errorf("%s on %d:\n got  %q\n want %q", c.name, v.num/10000, got, v.want)
			}
		}
	}
}

// On a real 16 the quoted pattern lets adm1 in by trust (a wrong
// password works), and the live audit does not call the pattern a
// missing role; on 15 the same line names a role "/^adm.*$" only.
func TestRegexRoleLineOnServer(t *testing.T) {
	for _, major := range []int{15, 16} {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			if _, err := localpg.FindBinDir(strconv.Itoa(major)); err != nil {
				pgtest.Unavailable(t, err)
			}
			hbaText := "host all \"/^adm.*$\" 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
			srv := pgtest.StartMajor(t, major, localpg.Options{HBA: hbaText})
			ctx := pgtest.Ctx(t)
			if err := srv.Exec(ctx, "CREATE ROLE adm1 LOGIN PASSWORD "+quoteLitT(etPassword)); err != nil {
				t.Fatal(err)
			}
			cfg := srv.ConnConfig("postgres")
			cfg.User, cfg.Password = "adm1", "not-the-password"
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err == nil {
				c.Close(ctx)
			}
			if trusted := err == nil; trusted != (major >= 16) {
				t.Fatalf("pg%d: adm1 let in by the pattern line: %v (%v)", major, trusted, err)
			}
			got := unknownNames(collectLive(t, srv))
			var want []string
			if major < 16 {
				want = []string{srv.DataDir + `/pg_hba.conf:1: role "/^adm.*$" does not exist`}
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("pg%d: AUTH-07.unknown-names:\n got  %q\n want %q", major, got, want)
			}
		})
	}
}

func quoteLitT(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
