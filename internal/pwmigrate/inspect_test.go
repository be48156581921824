package pwmigrate_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/pwmigrate"
)

// testHBA: the admin's own way in, then md5 lines for a rotated role, a
// group with an md5 member, a SCRAM role, an @file list and a password line.
const testHBA = `local all all scram-sha-256
host all postgres 127.0.0.1/32 scram-sha-256
host all app_md5 127.0.0.1/32 md5
host all +grp 127.0.0.1/32 md5
host all scram_user 127.0.0.1/32 md5
host all @extra 127.0.0.1/32 md5
host all scram_user ::1/128 password
host all all 127.0.0.1/32 scram-sha-256
`

// setupMigrate starts a server of major with md5, SCRAM and NOLOGIN roles,
// password_encryption = md5 by ALTER SYSTEM and a per-role override.
func setupMigrate(t *testing.T, major int) *localpg.Server {
	t.Helper()
	srv := pgtest.StartMajor(t, major, localpg.Options{HBA: testHBA, Init: func(s *localpg.Server) error {
		return s.WriteDataFile("extra", "human_md5\n")
	}})
	ctx := pgtest.Ctx(t)
	stmts := []string{
		`CREATE ROLE grp NOLOGIN`,
		`SET password_encryption = 'md5'`,
		`CREATE ROLE app_md5 LOGIN PASSWORD 'app-Old-pw-1'`,
		`CREATE ROLE human_md5 LOGIN PASSWORD 'human-Old-pw-2' IN ROLE grp`,
		`CREATE ROLE nolog_md5 NOLOGIN PASSWORD 'nolog-Old-pw-3'`,
		`SET password_encryption = 'scram-sha-256'`,
		`CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw-4'`,
		`CREATE ROLE nopw LOGIN`,
		`ALTER ROLE human_md5 SET password_encryption = 'md5'`,
		`ALTER SYSTEM SET password_encryption = 'md5'`,
		`SELECT pg_reload_conf()`,
	}
	if err := srv.Exec(ctx, stmts...); err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestInspectAndBuild(t *testing.T) {
	// 15 (the reference), 13 (pg_hba_file_rules without file_name and
	// rule_number) and 17 (with them).
	for _, major := range []int{15, 13, 17} {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			srv := setupMigrate(t, major)
			c := pgtest.Conn(t, srv, "postgres")
			ctx := pgtest.Ctx(t)
			in, err := pwmigrate.Inspect(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			// ORACLE: the server's own pg_settings after the reload.
			var show string
			if err := c.QueryRow(ctx, `SELECT setting FROM pg_settings WHERE name = 'password_encryption'`).Scan(&show); err != nil {
				t.Fatal(err)
			}
			if in.Encryption.Value != "md5" || show != "md5" || !strings.HasSuffix(in.Encryption.File, "postgresql.auto.conf") {
				t.Errorf("password_encryption = %q from %q (server says %q)", in.Encryption.Value, in.Encryption.File, show)
			}
			if want := []pwmigrate.Override{{Role: "human_md5", Value: "md5"}}; !reflect.DeepEqual(in.Encryption.Overrides, want) {
				t.Errorf("overrides %+v, want %+v", in.Encryption.Overrides, want)
			}
			kinds := map[string]string{}
			for _, r := range in.Roles {
				kinds[r.Name] = r.Verifier
			}
			for role, want := range map[string]string{"app_md5": "md5", "human_md5": "md5", "nolog_md5": "md5", "scram_user": "scram-sha-256", "nopw": "none", "grp": "none"} {
				if kinds[role] != want {
					t.Errorf("role %s: verifier %q, want %q", role, kinds[role], want)
				}
			}

			r, err := pwmigrate.Build(in, "test", pwmigrate.Options{Rotate: []string{"app_md5"}})
			if err != nil {
				t.Fatal(err)
			}
			actions := map[string]string{}
			for _, rr := range r.Roles {
				actions[rr.Name] = rr.Action
				if rr.Name == "human_md5" {
					if !strings.Contains(rr.Instruction, `\password`) || !strings.Contains(rr.Instruction, "ALTER ROLE human_md5 SET password_encryption = 'md5'") {
						t.Errorf("human_md5 instruction: %s", rr.Instruction)
					}
					if !reflect.DeepEqual(rr.MemberOf, []string{"grp"}) {
						t.Errorf("human_md5 member of %v", rr.MemberOf)
					}
				}
			}
			wantActions := map[string]string{"app_md5": "rotate", "human_md5": "password", "nolog_md5": "clear", "postgres": "none", "scram_user": "none"}
			if !reflect.DeepEqual(actions, wantActions) {
				t.Errorf("actions %v, want %v", actions, wantActions)
			}
			type line struct {
				n          int
				state, md5 string
				rotated    string
			}
			var got []line
			for _, h := range r.HBA {
				got = append(got, line{h.Line, h.State, strings.Join(h.MD5Roles, ","), strings.Join(h.Rotated, ",")})
				if h.Line == 3 && h.Address != "127.0.0.1/32" {
					t.Errorf("line 3 address %q", h.Address)
				}
				if filepath.Base(h.File) != "pg_hba.conf" {
					t.Errorf("line %d in %s", h.Line, h.File)
				}
			}
			// The @file list is expanded by the server (line 6 names human_md5).
			want := []line{{3, pwmigrate.HBAReady, "", "app_md5"}, {4, pwmigrate.HBAMD5, "human_md5", ""}, {5, pwmigrate.HBAReady, "", ""},
				{6, pwmigrate.HBAMD5, "human_md5", ""}, {7, pwmigrate.HBAReady, "", ""}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("hba lines %+v, want %+v", got, want)
			}
			if !r.Summary.Remaining || r.Summary.MD5Roles != 3 || r.Summary.Rotate != 1 || r.Summary.AskUser != 1 || r.Summary.Clear != 1 {
				t.Errorf("summary %+v", r.Summary)
			}

			// --rotate-all leaves out the role pgaegis runs as; an unknown or
			// NOLOGIN role is an error.
			all, err := pwmigrate.Build(in, "test", pwmigrate.Options{RotateAll: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(all.RotateRoles(), ","); got != "app_md5,human_md5" {
				t.Errorf("--rotate-all rotates %s", got)
			}
			for _, bad := range []string{"nosuch", "nolog_md5"} {
				if _, err := pwmigrate.Build(in, "test", pwmigrate.Options{Rotate: []string{bad}}); err == nil {
					t.Errorf("--rotate %s: no error", bad)
				}
			}

			p := pwmigrate.SettingsPlan(r)
			if len(p.Steps) != 2 || p.Steps[0].Settings[0].To != "scram-sha-256" ||
				p.Steps[1].SQL[0] != "ALTER ROLE human_md5 RESET password_encryption" || p.Steps[1].Undo[0] != "ALTER ROLE human_md5 SET password_encryption = 'md5'" {
				t.Errorf("settings plan: %+v", p.Steps)
			}
		})
	}
}

// testNotSuperuser: a non-superuser learns what it cannot see.
func testNotSuperuser(t *testing.T, srv *localpg.Server) {
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE plain LOGIN PASSWORD 'plain-pw-5'`); err != nil {
		t.Fatal(err)
	}
	cfg := srv.ConnConfig("postgres")
	cfg.User, cfg.Password = "plain", "plain-pw-5"
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	_, err = pwmigrate.Inspect(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "pg_authid") || !strings.Contains(err.Error(), "********") {
		t.Errorf("non-superuser: %v", err)
	}
}

func TestClassifierAndNonSuperuser(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	t.Run("classifier", func(t *testing.T) { testClassifier(t, srv) })
	t.Run("not-superuser", func(t *testing.T) { testNotSuperuser(t, srv) })
}

// testClassifier runs the server-side classification on values no
// PostgreSQL 10+ stores any more (a clear text from before 10).
func testClassifier(t *testing.T, srv *localpg.Server) {
	c := pgtest.Conn(t, srv, "postgres")
	ctx := pgtest.Ctx(t)
	cases := []struct{ stored, want string }{
		{"", "none"},
		{"md5" + strings.Repeat("0a", 16), "md5"},
		{"md5" + strings.Repeat("0A", 16), "plaintext"}, // upper-case hex is no md5 verifier
		{"md5" + strings.Repeat("0a", 15), "plaintext"}, // too short
		{"md5" + strings.Repeat("0a", 16) + "x", "plaintext"},
		{"SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2Vydg==", "scram-sha-256"},
		{"correct horse battery staple", "plaintext"},
	}
	for _, tc := range cases {
		var got string
		if err := c.QueryRow(ctx, `SELECT `+pwmigrate.ClassifySQL+` FROM (VALUES ($1::text)) AS v(rolpassword)`, tc.stored).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%q: %s, want %s", tc.stored, got, tc.want)
		}
	}
	var got string
	if err := c.QueryRow(ctx, `SELECT `+pwmigrate.ClassifySQL+` FROM (VALUES (NULL::text)) AS v(rolpassword)`).Scan(&got); err != nil || got != "none" {
		t.Errorf("NULL: %s %v", got, err)
	}
}
