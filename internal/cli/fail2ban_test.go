package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/fail2ban"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// ORACLE: the settings come from a real server (SHOW), the written files
// are loaded by the real fail2ban-client (-t tests the configuration);
// --write refuses a hand-written file, journals, and rolls back.
func TestFail2banWriteAndRollback(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{Conf: []string{"logging_collector = on", "log_directory = 'log'",
		"log_line_prefix = '%m [%p] %q%u@%d %h '", "log_timezone = 'UTC'"}})
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	dir, journal := t.TempDir(), t.TempDir()

	code, out, errs := runCLI(t, append([]string{"fail2ban"}, args...)...)
	if code != ExitOK || !strings.Contains(out, "logpath   = "+filepath.Join(srv.DataDir, "log")+"/postgresql-*-*-*_*.log") || !strings.Contains(out, "filter.d/pgaegis-postgresql.conf") {
		t.Fatalf("print: exit %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "jail.d")); err == nil {
		t.Fatal("printing wrote files")
	}
	code, out, errs = runCLI(t, append([]string{"fail2ban", "--format", "json", "--dir", dir}, args...)...)
	var js struct {
		Destination string `json:"log_destination"`
		Files       []struct{ Path, Content string }
		Written     bool
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || code != ExitOK || js.Destination != "stderr" || len(js.Files) != 2 || js.Written ||
		js.Files[0].Path != filepath.Join(dir, "filter.d", fail2ban.Name+".conf") || !strings.Contains(js.Files[0].Content, "failregex") {
		t.Fatalf("json: exit %d %v\n%s\n%s", code, err, out, errs)
	}

	// A hand-written jail is not replaced without --force.
	jail := filepath.Join(dir, "jail.d", fail2ban.Name+".local")
	os.MkdirAll(filepath.Dir(jail), 0o755)
	os.WriteFile(jail, []byte("[mine]\n"), 0o600)
	w := append([]string{"fail2ban", "--write", "--dir", dir, "--journal-dir", journal}, args...)
	code, _, errs = runCLI(t, w...)
	if code != ExitError || !strings.Contains(errs, "not written by pgaegis") {
		t.Fatalf("hand-written file: exit %d: %s", code, errs)
	}
	code, out, errs = runCLI(t, append(w, "--force")...)
	if code != ExitOK || !strings.Contains(errs, "will replace (not written by pgaegis) "+jail) {
		t.Fatalf("--force: exit %d\n%s\n%s", code, out, errs)
	}
	for _, p := range []string{jail, filepath.Join(dir, "filter.d", fail2ban.Name+".conf")} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("%s: %v %v", p, st, err)
		}
	}
	// ORACLE: fail2ban's own reader, over a copy of the host's stock
	// configuration (jail.conf's [DEFAULT] turns banaction into the
	// action), loads the jail with its action and the server's log file.
	if client, err := exec.LookPath("fail2ban-client"); err == nil {
		if _, err := os.Stat("/etc/fail2ban/jail.conf"); err == nil {
			stock := t.TempDir()
			if out, err := exec.Command("cp", "-r", "/etc/fail2ban/.", stock).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			fp := filepath.Join("filter.d", fail2ban.Name+".conf")
			jp := filepath.Join("jail.d", fail2ban.Name+".local")
			for _, f := range []string{fp, jp} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				os.WriteFile(filepath.Join(stock, f), b, 0o644)
			}
			out, err := exec.Command(client, "-c", stock, "-d").CombinedOutput()
			if err != nil {
				t.Fatalf("fail2ban-client -d: %v\n%s", err, out)
			}
			for _, want := range []string{"['add', '" + fail2ban.Name + "', 'auto']", "'addaction', 'nftables-multiport'", "'addlogpath', '" + filepath.Join(srv.DataDir, "log") + "/postgresql-"} {
				if !strings.Contains(string(out), want) && !strings.Contains(string(out), strings.Replace(want, "nftables", "iptables", 1)) {
					t.Errorf("fail2ban-client -d lacks %s", want)
				}
			}
		}
	}
	// The second write replaces our own files without --force.
	code, out, errs = runCLI(t, w...)
	if code != ExitOK {
		t.Fatalf("rewrite: exit %d\n%s", code, errs)
	}
	id := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "journal ") {
			id = strings.TrimSuffix(strings.Fields(l)[1], ":")
		}
	}
	// The printed rollback names the --journal-dir it was written to.
	if !strings.Contains(out, "'pgaegis fail2ban rollback "+id+" --journal-dir "+quote.Shell(journal)+"'") {
		t.Errorf("the printed rollback lacks --journal-dir:\n%s", out)
	}
	code, out, errs = runCLI(t, "fail2ban", "rollback", id, "--journal-dir", journal)
	if code != ExitOK {
		t.Fatalf("rollback: exit %d %s %s", code, out, errs)
	}
	// A second rollback has nothing to do: exit 0, as firewall rollback.
	if code, out, errs := runCLI(t, "fail2ban", "rollback", id, "--journal-dir", journal); code != ExitOK || !strings.Contains(out, "nothing to roll back") {
		t.Fatalf("second rollback: exit %d %s %s", code, out, errs)
	}
	// Back to the first --write's files (the second journal saw them).
	if b, _ := os.ReadFile(jail); !strings.HasPrefix(string(b), fail2ban.Marker) {
		t.Fatalf("rollback left %q", b)
	}
}

// A prefix without the client's address is refused with the one to set.
func TestFail2banRefusesNoHost(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "postgresql.conf")
	os.WriteFile(conf, []byte("log_line_prefix = '%m [%p] %q%u@%d '\nlogging_collector = on\n"), 0o644)
	code, _, errs := runCLI(t, "fail2ban", "--config-file", conf, "--pgdata", dir)
	if code != ExitError || !strings.Contains(errs, fail2ban.RecommendedPrefix) || !strings.Contains(errs, "prints no client address") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}
