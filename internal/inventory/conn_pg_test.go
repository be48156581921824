package inventory

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func secret(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestConnectRealServer resolves inventory entries of every credential
// kind and logs in with them.
// ORACLE: the server's scram-sha-256 authentication decides whether the
// resolved password is the role's, and current_user says who logged in.
func TestConnectRealServer(t *testing.T) {
	isolate(t) // no PGPASSWORD (or any PG*) anywhere in this process
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	pw := map[string]string{}
	for _, r := range []string{"inv_env", "inv_file", "inv_pass", "inv_svc"} {
		pw[r] = secret(t) // hex: safe inside the quotes below
		if err := srv.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", r, pw[r])); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	write("inv_file.pw", pw["inv_file"]+"\n", 0o600)
	pgpass := write("inv.pgpass", fmt.Sprintf("127.0.0.1:%d:*:inv_pass:%s\n", srv.Port, pw["inv_pass"]), 0o600)
	write("svc.conf", fmt.Sprintf("[fleet]\nhost=127.0.0.1\nport=%d\nuser=inv_svc\ndbname=postgres\nsslmode=disable\n", srv.Port), 0o644)
	base := fmt.Sprintf("host=127.0.0.1 port=%d dbname=postgres sslmode=disable", srv.Port)
	inv := write("fleet.yaml", fmt.Sprintf(`defaults:
  connect_timeout: 30s
servers:
  - name: by-env
    conninfo: %[1]s user=inv_env
    password_env: PGAEGIS_INVENTORY_TEST_ENV_PW
  - name: by-uri
    conninfo: postgresql://inv_env@127.0.0.1:%[2]d/postgres?sslmode=disable
    password_env: PGAEGIS_INVENTORY_TEST_ENV_PW
  - name: by-file
    conninfo: %[1]s user=inv_file
    password_file: inv_file.pw
  - name: by-passfile
    conninfo: %[1]s user=inv_pass
    passfile: inv.pgpass
  - name: by-service
    service: fleet
    servicefile: svc.conf
    password_env: PGAEGIS_INVENTORY_TEST_SVC_PW
`, base, srv.Port), 0o644)
	t.Setenv("PGAEGIS_INVENTORY_TEST_ENV_PW", pw["inv_env"])
	t.Setenv("PGAEGIS_INVENTORY_TEST_SVC_PW", pw["inv_svc"])

	loaded, err := Load(inv)
	if err != nil {
		t.Fatal(err)
	}
	wantUser := map[string]string{"by-env": "inv_env", "by-uri": "inv_env", "by-file": "inv_file", "by-passfile": "inv_pass", "by-service": "inv_svc"}
	for _, s := range loaded.Servers {
		c, err := s.ConnConfig()
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		// Every way of printing the resolved configuration hides the password.
		js, _ := json.Marshal(c)
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("conn", "c", c)
		shown := fmt.Sprintf("%v %+v %#v %s %v", c, c, c, c, s) + string(js) + logged.String()
		for _, p := range pw {
			if strings.Contains(shown, p) {
				t.Errorf("%s: a password is printed", s.Name)
			}
		}
		if !strings.Contains(shown, "password=xxxxx") {
			t.Errorf("%s: %s", s.Name, c)
		}
		conn, err := pgx.ConnectConfig(ctx, c.Config)
		if err != nil {
			t.Errorf("%s (%s): %v", s.Name, c, err)
			continue
		}
		var who string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != wantUser[s.Name] {
			t.Errorf("%s: logged in as %q (%v), want %s", s.Name, who, err, wantUser[s.Name])
		}
		conn.Close(ctx)
		t.Logf("%s: %s", s.Name, c)
	}
	if v, ok := os.LookupEnv("PGPASSWORD"); ok || v != "" {
		t.Error("PGPASSWORD is set")
	}
	// Nothing of it reached argv, where every user of the host can read it.
	if argv, err := os.ReadFile("/proc/self/cmdline"); err == nil {
		for _, p := range pw {
			if strings.Contains(string(argv), p) {
				t.Error("a password is in argv")
			}
		}
	}

	byName := map[string]Server{}
	for _, s := range loaded.Servers {
		byName[s.Name] = s
	}
	// A wrong password in the variable: the server refuses it.
	t.Setenv("PGAEGIS_INVENTORY_TEST_ENV_PW", "wrong-"+pw["inv_env"])
	s := byName["by-env"]
	c, err := s.ConnConfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.ConnectConfig(ctx, c.Config); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("wrong password: %v", err)
	}
	// An unset variable is an error naming it, before any connection.
	os.Unsetenv("PGAEGIS_INVENTORY_TEST_ENV_PW")
	if _, err := s.ConnConfig(); err == nil || !strings.Contains(err.Error(), "password_env PGAEGIS_INVENTORY_TEST_ENV_PW is not set") {
		t.Errorf("unset variable: %v", err)
	}
	// Files opened to others after loading are refused at connect time.
	os.Chmod(filepath.Join(dir, "inv_file.pw"), 0o640)
	if _, err := byName["by-file"].ConnConfig(); err == nil || !strings.Contains(err.Error(), "has mode 0640") {
		t.Errorf("open password file: %v", err)
	}
	os.Chmod(pgpass, 0o604)
	if _, err := byName["by-passfile"].ConnConfig(); err == nil || !strings.Contains(err.Error(), "has mode 0604") {
		t.Errorf("open passfile: %v", err)
	}
}

func TestPasswordFileContents(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ content, want string }{
		{"pw\n", ""},
		{"pw\r\n", ""},
		{"pw", ""},
		{"", "is empty"},
		{"\n", "is empty"},
		{"pw\nmore\n", "more than one line"},
		{"p\x00w", "NUL byte"},
		{strings.Repeat("x", maxPasswordFile+1), "larger than 64 KiB"},
	} {
		p := filepath.Join(dir, "pw")
		os.WriteFile(p, []byte(tc.content), 0o600)
		got, err := readPasswordFile(p)
		switch {
		case tc.want == "" && (err != nil || got != "pw"):
			t.Errorf("%q: %q, %v", tc.content, got, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want %q", tc.content, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") && !strings.Contains(err.Error(), p) {
			t.Errorf("%q: the error shows the contents: %v", tc.content, err)
		}
	}
	if _, err := readPasswordFile(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("absent: %v", err)
	}
}
