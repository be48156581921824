package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/firewall"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestFirewallPlanOffline(t *testing.T) {
	dir := t.TempDir()
	hbaPath, conf := filepath.Join(dir, "pg_hba.conf"), filepath.Join(dir, "postgresql.conf")
	os.WriteFile(hbaPath, []byte("local all all peer\nhost all all 10.1.0.0/16 reject\nhost all all 10.0.0.0/8 scram-sha-256\nhost all all 0.0.0.0/0 reject\n"), 0o600)
	os.WriteFile(conf, []byte("listen_addresses = '*'\nport = 5433\n"), 0o600)
	base := []string{"firewall", "plan", "--hba-file", hbaPath, "--config-file", conf}
	code, out, errs := runCLI(t, base...)
	if code != ExitOK || !strings.Contains(out, "table inet pgaegis {") || !strings.Contains(out, "tcp dport 5433 drop") ||
		!strings.Contains(out, "10.128.0.0/9") || strings.Contains(out, "10.1.0.0/16") {
		t.Errorf("exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, append(base, "--format", "json")...)
	var p firewall.Policy
	if err := json.Unmarshal([]byte(out), &p); code != ExitOK || err != nil || p.Port != 5433 || len(p.Allow4) == 0 {
		t.Errorf("json: exit %d %v\n%s", code, err, out)
	}
	for _, f := range firewall.Formats {
		if code, out, errs := runCLI(t, append(base, "--output", f)...); code != ExitOK || !strings.Contains(out, "5433") {
			t.Errorf("%s: exit %d %s", f, code, errs)
		}
	}
	for _, bad := range [][]string{
		{"firewall", "plan", "--hba-file", hbaPath},
		append(base, "--output", "pf"),
		append(base, "--format", "yaml"),
		{"firewall"},
	} {
		if code, _, _ := runCLI(t, bad...); code != ExitError {
			t.Errorf("%q: exit %d", bad, code)
		}
	}
	// samenet: this machine's interfaces with --on-host, a note without.
	os.WriteFile(hbaPath, []byte("host all all samenet md5\n"), 0o600)
	if _, out, _ := runCLI(t, base...); !strings.Contains(out, "not known here") {
		t.Errorf("no note for samenet offline:\n%s", out)
	}
	if code, out, errs := runCLI(t, append(base, "--on-host")...); code != ExitOK || !strings.Contains(out, "samenet is the host's subnets") {
		t.Errorf("--on-host: exit %d\n%s\n%s", code, out, errs)
	}
	// A file the server would not load gives no plan: a reload would keep
	// the old rules, so the script would not match what is allowed.
	os.WriteFile(hbaPath, []byte("host all all 10.0.0.0/8 scram-sha-256\nhost all all 192.0.2.0/24 scram-sah-256\n"), 0o600)
	if code, out, errs := runCLI(t, base...); code != ExitError || out != "" || !strings.Contains(errs, "pg_hba.conf:2") || !strings.Contains(errs, "refuse to load") {
		t.Errorf("invalid pg_hba.conf: exit %d\n%s\n%s", code, out, errs)
	}
	// Open to everyone: said on stderr too.
	os.WriteFile(hbaPath, []byte("host all all 0.0.0.0/0 md5\n"), 0o600)
	if _, _, errs := runCLI(t, base...); !strings.Contains(errs, "WARNING") {
		t.Errorf("no warning for 0.0.0.0/0: %q", errs)
	}
}

// A live server listening on loopback only: nothing to open, said so,
// and the server's own port is the one filtered.
func TestFirewallPlanLive(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{HBA: "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all 10.0.0.0/8 scram-sha-256\n"})
	args := append([]string{"firewall", "plan"}, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	code, out, errs := runCLI(t, append(args, "--format", "json")...)
	var p firewall.Policy
	if err := json.Unmarshal([]byte(out), &p); code != ExitOK || err != nil {
		t.Fatalf("exit %d %v\n%s\n%s", code, err, out, errs)
	}
	if p.Port != srv.Port || len(p.Allow4) != 0 || !strings.Contains(strings.Join(p.Notes, "\n"), "nothing needs to be opened") {
		t.Errorf("%+v", p)
	}
	if strings.Contains(out+errs, srv.Password) {
		t.Error("the password was printed")
	}
}
