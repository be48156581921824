package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/pwmigrate"
)

// migrateHBA: md5 lines over TCP for an application role, a group with
// a person's md5 role, and a SCRAM role; the admin over the socket.
const migrateHBA = `local all all scram-sha-256
host all postgres 127.0.0.1/32 scram-sha-256
host all app_md5 127.0.0.1/32 md5
host all +grp 127.0.0.1/32 md5
host all scram_user 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
`

// migrateSecrets are the test roles' old passwords: no output may show one.
var migrateSecrets = map[string]string{"app_md5": "app-Old-pw-1", "batch_md5": "batch-Old-pw-5", "human_md5": "human-Old-pw-2", "nolog_md5": "nolog-Old-pw-3", "scram_user": "scram-pw-4"}

func startMigrateServer(t *testing.T) (*localpg.Server, []string) {
	t.Helper()
	srv := pgtest.Start(t, localpg.Options{HBA: migrateHBA})
	ctx := pgtest.Ctx(t)
	must(t, srv.Exec(ctx,
		`CREATE ROLE grp NOLOGIN`,
		`SET password_encryption = 'md5'`,
		`CREATE ROLE app_md5 LOGIN PASSWORD 'app-Old-pw-1'`,
		`CREATE ROLE batch_md5 LOGIN PASSWORD 'batch-Old-pw-5'`,
		`CREATE ROLE human_md5 LOGIN PASSWORD 'human-Old-pw-2' IN ROLE grp`,
		`CREATE ROLE nolog_md5 NOLOGIN PASSWORD 'nolog-Old-pw-3'`,
		`SET password_encryption = 'scram-sha-256'`,
		`CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw-4'`,
		`ALTER ROLE human_md5 SET password_encryption = 'md5'`,
		`ALTER SYSTEM SET password_encryption = 'md5'`,
		`SELECT pg_reload_conf()`))
	t.Setenv("PGPASSWORD", srv.Password)
	t.Setenv("XDG_STATE_HOME", t.TempDir()) // the journals: the test's own
	sock := []string{"-d", fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", srv.SocketDir, srv.Port, srv.AdminUser)}
	return srv, sock
}

func migrateJSON(t *testing.T, wantCode int, args ...string) *pwmigrate.Report {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"passwords", "migrate", "--format", "json"}, args...)...)
	noMigrateSecret(t, out+errs)
	if wantCode >= 0 && code != wantCode {
		t.Fatalf("passwords migrate %v: exit %d, want %d\n%s\n%s", args, code, wantCode, out, errs)
	}
	var r pwmigrate.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("passwords migrate %v (exit %d): not JSON: %v\n%s\n%s", args, code, err, out, errs)
	}
	return &r
}

var md5Verifier = regexp.MustCompile(`md5[0-9a-f]{32}`)

func noMigrateSecret(t *testing.T, text string) {
	t.Helper()
	for role, pw := range migrateSecrets {
		if strings.Contains(text, pw) {
			t.Errorf("output shows the password of %s", role)
		}
	}
	if strings.Contains(text, "SCRAM-SHA-256$") || md5Verifier.MatchString(text) {
		t.Errorf("output shows a verifier")
	}
}

func actionsOf(r *pwmigrate.Report) map[string]string {
	out := map[string]string{}
	for _, rr := range r.Roles {
		out[rr.Name] = rr.Action
	}
	return out
}

// serverValue asks a fresh session of user what it sees (ORACLE).
func serverValue(t *testing.T, srv *localpg.Server, q string) string {
	t.Helper()
	c := pgtest.Conn(t, srv, "postgres")
	var v string
	if err := c.QueryRow(pgtest.Ctx(t), q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

const overrideQuery = `SELECT coalesce(string_agg(cfg, ','), '') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole,
	unnest(s.setconfig) cfg WHERE r.rolname = 'human_md5'`

func TestPasswordsMigrate(t *testing.T) {
	srv, sock := startMigrateServer(t)

	t.Run("usage", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--rotate", "app_md5", "--rotate-all"}, "contradict"},
			{[]string{"--yes"}, "--yes only means something with --apply"},
			{[]string{"--format", "yaml"}, "unknown --format"},
			{[]string{"--rotate", "nosuch"}, "no such role"},
			{[]string{"--rotate", "app_md5", "--apply", "--yes"}, "name where the new passwords go"},
		} {
			code, out, errs := runCLI(t, append(append([]string{"passwords", "migrate"}, sock...), tc.args...)...)
			if code != ExitError || !strings.Contains(errs, tc.want) {
				t.Errorf("%v: exit %d, stderr %q, want %q\n%s", tc.args, code, errs, tc.want, out)
			}
		}
		// Nothing changed: the refusals come before any change (ORACLE).
		if v := serverValue(t, srv, `SHOW password_encryption`); v != "md5" {
			t.Errorf("password_encryption = %s after refusals", v)
		}
	})

	t.Run("report", func(t *testing.T) {
		r := migrateJSON(t, ExitFindings, append(sock, "--rotate", "app_md5")...)
		want := map[string]string{"app_md5": "rotate", "batch_md5": "password", "human_md5": "password", "nolog_md5": "clear", "postgres": "none", "scram_user": "none"}
		if got := actionsOf(r); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("actions %v, want %v", got, want)
		}
		if !r.PasswordEncryption.Set || len(r.PasswordEncryption.Overrides) != 1 || !r.PasswordEncryption.Overrides[0].Reset {
			t.Errorf("password_encryption: %+v", r.PasswordEncryption)
		}
		var states []string
		for _, h := range r.HBA {
			states = append(states, fmt.Sprintf("%d:%s:%s", h.Line, h.State, strings.Join(h.MD5Roles, ",")))
		}
		if got, want := strings.Join(states, " "), "3:can-become-scram-sha-256: 4:still-used-by-md5-roles:human_md5 5:can-become-scram-sha-256:"; got != want {
			t.Errorf("hba: %s, want %s", got, want)
		}
		if r.Fix != "pgaegis fix --only AUTH-02" {
			t.Errorf("fix: %q", r.Fix)
		}
		code, out, errs := runCLI(t, append(append([]string{"passwords", "migrate"}, sock...), "--rotate", "app_md5")...)
		noMigrateSecret(t, out+errs)
		for _, w := range []string{`\password`, "still used by md5 roles human_md5", "pgaegis fix --only AUTH-02", "ALTER ROLE nolog_md5 PASSWORD NULL",
			"ALTER ROLE human_md5 SET password_encryption = 'md5'", "--apply sets it to scram-sha-256"} {
			if !strings.Contains(out, w) {
				t.Errorf("text report lacks %q:\n%s", w, out)
			}
		}
		if code != ExitFindings {
			t.Errorf("text: exit %d", code)
		}
	})

	t.Run("apply-settings-and-rollback", func(t *testing.T) {
		r := migrateJSON(t, ExitFindings, append(sock, "--apply", "--yes")...)
		if r.Applied == nil || r.Applied.PlanID == "" || strings.HasPrefix(r.Applied.Settings, "FAILED") {
			t.Fatalf("applied: %+v", r.Applied)
		}
		// ORACLE: fresh sessions after the reload, and the catalog.
		if v := serverValue(t, srv, `SHOW password_encryption`); v != "scram-sha-256" {
			t.Errorf("after --apply: password_encryption = %s", v)
		}
		if v := serverValue(t, srv, overrideQuery); v != "" {
			t.Errorf("after --apply: human_md5 still has %s", v)
		}
		if r.PasswordEncryption.Set || r.PasswordEncryption.Value != "scram-sha-256" {
			t.Errorf("report after: %+v", r.PasswordEncryption)
		}
		// Nobody was rotated: the md5 roles are still there, for people.
		if got := actionsOf(r); got["app_md5"] != "password" || got["human_md5"] != "password" {
			t.Errorf("after --apply without rotations: %v", got)
		}

		code, out, errs := runCLI(t, append([]string{"fix", "rollback", r.Applied.PlanID}, sock...)...)
		if code != ExitOK {
			t.Fatalf("fix rollback: exit %d\n%s\n%s", code, out, errs)
		}
		if v := serverValue(t, srv, `SHOW password_encryption`); v != "md5" {
			t.Errorf("after rollback: password_encryption = %s", v)
		}
		if v := serverValue(t, srv, overrideQuery); v != "password_encryption=md5" {
			t.Errorf("after rollback: human_md5 has %q", v)
		}
	})

	t.Run("apply-rotate", func(t *testing.T) {
		if !(&sinkFlags{files: []string{"x"}}).given() {
			t.Skip("the destination flags (sinkFlags) are not built yet")
		}
		// app_md5's destination directory is missing: its rotation fails
		// (and is undone), and batch_md5's goes on.
		dir := t.TempDir()
		must(t, os.Mkdir(filepath.Join(dir, "batch_md5"), 0o700))
		dest := filepath.Join(dir, "{role}", "pw")
		r := migrateJSON(t, -1, append(sock, "--rotate", "app_md5", "--rotate", "batch_md5", "--to-file", dest, "--apply", "--yes")...)
		if r.Applied == nil || len(r.Applied.Rotations) != 2 {
			t.Fatalf("applied: %+v", r.Applied)
		}
		if rot := r.Applied.Rotations[1]; !rot.OK && strings.Contains(rot.Error, "not built yet") {
			t.Skip("rotate is not built yet")
		}
		if a, b := r.Applied.Rotations[0], r.Applied.Rotations[1]; a.Role != "app_md5" || a.OK || !a.Restored || b.Role != "batch_md5" || !b.OK {
			t.Fatalf("rotations: %+v", r.Applied.Rotations)
		}
		if got := actionsOf(r); got["app_md5"] != "rotate" || got["batch_md5"] != "none" {
			t.Errorf("after a failed rotation: %v", got)
		}
		// ORACLE: pg_authid, and real logins with psql over the md5 lines
		// (the server does SCRAM for a SCRAM verifier there).
		kinds := `SELECT string_agg(rolname || '=' || ` + pwmigrate.ClassifySQL + `, ',' ORDER BY rolname) FROM pg_authid
			WHERE rolname IN ('app_md5', 'batch_md5', 'human_md5', 'scram_user')`
		if got := serverValue(t, srv, kinds); got != "app_md5=md5,batch_md5=scram-sha-256,human_md5=md5,scram_user=scram-sha-256" {
			t.Errorf("pg_authid after the first run: %s", got)
		}
		if err := psqlLogin(srv, "app_md5", migrateSecrets["app_md5"]); err != nil {
			t.Errorf("app_md5's restored password does not log in: %v", err)
		}
		batchPW := readSecret(t, filepath.Join(dir, "batch_md5", "pw"))
		if err := psqlLogin(srv, "batch_md5", batchPW); err != nil {
			t.Errorf("batch_md5 cannot log in with the new password: %v", err)
		}

		must(t, os.Mkdir(filepath.Join(dir, "app_md5"), 0o700))
		r = migrateJSON(t, ExitFindings, append(sock, "--rotate", "app_md5", "--to-file", dest, "--apply", "--yes")...)
		if len(r.Applied.Rotations) != 1 || !r.Applied.Rotations[0].OK {
			t.Fatalf("second rotation: %+v", r.Applied.Rotations)
		}
		newPW := readSecret(t, filepath.Join(dir, "app_md5", "pw"))
		if got := serverValue(t, srv, kinds); got != "app_md5=scram-sha-256,batch_md5=scram-sha-256,human_md5=md5,scram_user=scram-sha-256" {
			t.Errorf("pg_authid after: %s", got)
		}
		if err := psqlLogin(srv, "app_md5", newPW); err != nil {
			t.Errorf("app_md5 cannot log in with the new password: %v", err)
		}
		if err := psqlLogin(srv, "app_md5", migrateSecrets["app_md5"]); err == nil {
			t.Errorf("app_md5 still logs in with the old password")
		}
		if err := psqlLogin(srv, "human_md5", migrateSecrets["human_md5"]); err != nil {
			t.Errorf("human_md5 (untouched) cannot log in: %v", err)
		}
		// A later run reports only the person's role (and the NOLOGIN one).
		code, out, errs := runCLI(t, append([]string{"passwords", "migrate", "--format", "json"}, sock...)...)
		for _, secret := range []string{newPW, batchPW} {
			if strings.Contains(out+errs, secret) {
				t.Errorf("the report shows a new password")
			}
		}
		var again pwmigrate.Report
		if err := json.Unmarshal([]byte(out), &again); err != nil || code != ExitFindings {
			t.Fatalf("exit %d, %v\n%s", code, err, errs)
		}
		want := map[string]string{"app_md5": "none", "batch_md5": "none", "human_md5": "password", "nolog_md5": "clear", "postgres": "none", "scram_user": "none"}
		if got := actionsOf(&again); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("later run: %v, want %v", got, want)
		}
		var states []string
		for _, h := range again.HBA {
			states = append(states, fmt.Sprintf("%d:%s", h.Line, h.State))
		}
		if got := strings.Join(states, " "); got != "3:can-become-scram-sha-256 4:still-used-by-md5-roles 5:can-become-scram-sha-256" {
			t.Errorf("hba after: %s", got)
		}
	})
}

func readSecret(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// psqlLogin logs in as role over TCP with psql, the password in its
// environment only.
func psqlLogin(srv *localpg.Server, role, password string) error {
	cmd := exec.Command(filepath.Join(srv.BinDir, "psql"), "-X", "-w", "-At", "-c", "SELECT 1",
		fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable connect_timeout=30", srv.Port, role))
	cmd.Env = []string{"PGPASSWORD=" + password, "PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
