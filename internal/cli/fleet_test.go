package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/drift"
	"github.com/pgaegis/pgaegis/internal/fleet"
	"github.com/pgaegis/pgaegis/internal/fleetreport"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/store"
)

// weakness is one server's planted weakness and the rule that must fail
// on it (and pass on the baseline server).
type weakness struct {
	name  string
	rule  string
	sql   []string
	hba   string // a line put first in pg_hba.conf
	after string // a line appended to pg_hba.conf
}

var weaknesses = []weakness{
	{name: "baseline"},
	{name: "trust", rule: "AUTH-01", hba: "host all all 127.0.0.1/32 trust"},
	{name: "superuser-app", rule: "PRIV-01", sql: []string{"CREATE ROLE app LOGIN SUPERUSER"}},
	{name: "public-grant", rule: "PRIV-08", sql: []string{"CREATE TABLE public.orders (id int)", "GRANT SELECT ON public.orders TO PUBLIC"}},
	{name: "ssl-off", rule: "TLS-01", sql: []string{"ALTER SYSTEM SET ssl = off"}},
	{name: "log-errors-off", rule: "LOG-14", sql: []string{"ALTER SYSTEM SET log_min_error_statement = panic"}},
	{name: "md5-line", rule: "AUTH-02", after: "host all all 10.0.0.0/8 md5"},
	{name: "md5-encryption", rule: "AUTH-11", sql: []string{"ALTER SYSTEM SET password_encryption = md5"}},
	{name: "md5-verifier", rule: "AUTH-11.verifiers", sql: []string{"SET password_encryption = md5", "CREATE ROLE legacy LOGIN PASSWORD 'Kq8-long-enough-password'"}},
	{name: "db-create", rule: "PRIV-12", sql: []string{"GRANT CREATE ON DATABASE postgres TO PUBLIC"}},
	{name: "schema-create", rule: "PRIV-09", sql: []string{"GRANT CREATE ON SCHEMA public TO PUBLIC"}},
	{name: "secdef", rule: "PRIV-06", sql: []string{"CREATE FUNCTION public.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'"}},
	{name: "fsync-off", rule: "EXT-08", sql: []string{"ALTER SYSTEM SET fsync = off"}},
	{name: "debug-plan", rule: "LOG-17", sql: []string{"ALTER SYSTEM SET debug_print_plan = on"}},
	{name: "member-of-super", rule: "PRIV-02", sql: []string{"CREATE ROLE boss SUPERUSER NOLOGIN", "CREATE ROLE dev LOGIN IN ROLE boss"}},
	{name: "default-privs", rule: "PRIV-15", sql: []string{"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC"}},
	{name: "server-files", rule: "PRIV-17", sql: []string{"CREATE ROLE reader LOGIN", "GRANT pg_read_server_files TO reader"}},
	{name: "log-hostname", rule: "LOG-22", sql: []string{"ALTER SYSTEM SET log_hostname = on"}},
	{name: "log-messages-off", rule: "LOG-13", sql: []string{"ALTER SYSTEM SET log_min_messages = panic"}},
	{name: "ident-line", rule: "AUTH-03", after: "host all all 10.0.0.0/8 ident"},
}

// plant applies a weakness to a running server and reloads it.
func plant(ctx context.Context, srv *localpg.Server, w weakness) error {
	if err := srv.Exec(ctx, w.sql...); err != nil {
		return err
	}
	if w.hba != "" || w.after != "" {
		old, err := os.ReadFile(filepath.Join(srv.DataDir, "pg_hba.conf"))
		if err != nil {
			return err
		}
		body := string(old)
		if w.hba != "" {
			body = w.hba + "\n" + body
		}
		if w.after != "" {
			body += w.after + "\n"
		}
		if err := srv.WriteDataFile("pg_hba.conf", body); err != nil {
			return err
		}
	}
	return srv.Exec(ctx, "SELECT pg_reload_conf()")
}

// TestFleetTwentyServers: twenty real servers, each with its own
// weakness, scanned by 'fleet scan' into SQLite and into PostgreSQL (a
// twenty-first server); every weakness shows up as its finding on its
// server and not on the baseline. Then a trust line and a superuser
// appear on the baseline, a rescan records them, and 'fleet diff' shows
// both (JSON and text) from both stores; 'fleet report' lists the
// unreachable entry and the worst servers.
// ORACLE: the findings come from the servers' own catalogs and files,
// after real changes and a real reload.
func TestFleetTwentyServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 21 servers")
	}
	started := time.Now()
	srvs := pgtest.StartClones(t, len(weaknesses)+1, localpg.Options{
		// Small servers: twenty-one of them share two cores.
		Conf: []string{"ssl = on", "shared_buffers = 16MB", "max_connections = 30", "max_wal_senders = 0", "max_replication_slots = 0", "wal_level = minimal"},
		Init: pgtest.SelfSignedTLS})
	t.Logf("%d servers started from one initdb in %s", len(srvs), time.Since(started).Round(time.Millisecond))
	ctx := pgtest.Ctx(t)
	storeSrv := srvs[len(weaknesses)]
	var wg sync.WaitGroup
	planted := make([]error, len(weaknesses))
	for i, w := range weaknesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			planted[i] = plant(ctx, srvs[i], w)
		}()
	}
	wg.Wait()
	for i, err := range planted {
		if err != nil {
			t.Fatalf("planting %s: %v", weaknesses[i].name, err)
		}
	}
	if err := srvs[0].Exec(ctx, "CREATE ROLE app LOGIN"); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	var inv strings.Builder
	inv.WriteString("defaults:\n  labels: {env: test}\n  connect_timeout: 10s\nservers:\n")
	for i, w := range weaknesses {
		fmt.Fprintf(&inv, "  - name: %s\n    conninfo: host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=prefer\n    password_env: FLEET_PW\n",
			w.name, srvs[i].Port, srvs[i].AdminUser)
	}
	port := pgtest.ClosedPorts(t, 1)[0]
	fmt.Fprintf(&inv, "  - name: gone\n    conninfo: host=127.0.0.1 port=%d user=x dbname=postgres\n    password_env: FLEET_PW\n", port)
	invPath := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLEET_PW", srvs[0].Password) // the clones share the template's
	// The PostgreSQL store's password comes from the environment, as a
	// user would give it: never on the command line.
	t.Setenv("PGPASSWORD", storeSrv.Password)
	if err := storeSrv.Exec(ctx, "CREATE DATABASE fleet"); err != nil {
		t.Fatal(err)
	}
	stores := map[string]string{
		"sqlite":   filepath.Join(dir, "fleet.db"),
		"postgres": fmt.Sprintf("postgres://%s@127.0.0.1:%d/fleet?sslmode=disable", storeSrv.AdminUser, storeSrv.Port),
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		url := stores[backend]
		start := time.Now()
		args := []string{"fleet", "scan", "--inventory", invPath, "--store", url, "--jobs", "8", "--password-check-budget", "0", "--format", "json"}
		if backend == "postgres" {
			// The servers' files are on this host: the SQLite scan read them
			// (and ran the host checks twenty times); this one proves the
			// weaknesses show through the server's own views alone.
			args = append(args, "--no-files")
		}
		code, out, errs := runCLI(t, args...)
		t.Logf("fleet scan of %d servers into %s: %s (exit %d)", len(weaknesses)+1, backend, time.Since(start).Round(time.Millisecond), code)
		if code != ExitError || !strings.Contains(errs, "1 of 21 servers not scanned") {
			t.Fatalf("%s: exit %d, want 2 for the unreachable entry; stderr:\n%s", backend, code, errs)
		}
		var sum fleet.Summary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("%s: summary: %v\n%s", backend, err, out)
		}
		if sum.ByStatus[store.OK] != len(weaknesses) || sum.ByStatus[store.Unreachable] != 1 {
			t.Errorf("%s: by status %v (problems %v)", backend, sum.ByStatus, sum.Problems)
		}
		checkWeaknesses(t, backend, url)
	}

	// The drift: a trust line and a superuser on the baseline server.
	if err := plant(ctx, srvs[0], weakness{hba: "host all all 127.0.0.1/32 trust", sql: []string{"ALTER ROLE app SUPERUSER"}}); err != nil {
		t.Fatal(err)
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		url := stores[backend]
		if code, _, errs := runCLI(t, "fleet", "scan", "--inventory", invPath, "--store", url, "--server", "baseline", "--password-check-budget", "0"); code == ExitError {
			t.Fatalf("%s: rescan: %s", backend, errs)
		}
		code, out, errs := runCLI(t, "fleet", "diff", "baseline", "--store", url, "--format", "json")
		if code != ExitFindings {
			t.Fatalf("%s: fleet diff: exit %d, want 1 (changed): %s", backend, code, errs)
		}
		var d drift.Diff
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatal(err)
		}
		if !hasHBA(d.HBAAdded, "host all all 127.0.0.1/32 trust") {
			t.Errorf("%s: the trust line is not among the added pg_hba.conf lines: %+v", backend, d.HBAAdded)
		}
		if !hasRoleChange(d.RoleChanges, "app", "superuser", "false", "true") {
			t.Errorf("%s: app becoming superuser is not among the role changes: %+v", backend, d.RoleChanges)
		}
		if !hasNew(d.New, "AUTH-01") || !hasNew(d.New, "PRIV-01") {
			t.Errorf("%s: AUTH-01 and PRIV-01 should be new findings: %+v", backend, d.New)
		}
		code, out, _ = runCLI(t, "fleet", "diff", "baseline", "--store", url)
		if code != ExitFindings || !regexp.MustCompile(`\+ \S+pg_hba.conf:1 +host all all 127.0.0.1/32 trust`).MatchString(out) ||
			!regexp.MustCompile(`~ app +superuser +false +true`).MatchString(out) {
			t.Errorf("%s: fleet diff text (exit %d):\n%s", backend, code, out)
		}
		// Scan ids given newer first are compared in time order, with a note.
		code, out, errs = runCLI(t, "fleet", "diff", "baseline", "--store", url, "--format", "json",
			"--scan", strconv.FormatInt(d.To.ID, 10), "--scan", strconv.FormatInt(d.From.ID, 10))
		var back drift.Diff
		if err := json.Unmarshal([]byte(out), &back); err != nil || code != ExitFindings || back.From.ID != d.From.ID ||
			!hasHBA(back.HBAAdded, "host all all 127.0.0.1/32 trust") || !strings.Contains(errs, "is older than") {
			t.Errorf("%s: fleet diff with the newer scan first (exit %d, %v): from %d, stderr %s", backend, code, err, back.From.ID, errs)
		}
	}

	code, out, errs := runCLI(t, "fleet", "report", "--store", stores["sqlite"], "--format", "json", "--since", "1d")
	if code != ExitOK {
		t.Fatalf("fleet report: exit %d: %s", code, errs)
	}
	var rep fleetreport.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Unreachable) != 1 || rep.Unreachable[0].Server != "gone" || rep.Unreachable[0].Status != store.Unreachable {
		t.Errorf("unreachable: %+v", rep.Unreachable)
	}
	if len(rep.Worst) != len(weaknesses) || rep.Worst[0].Score == nil || rep.Worst[len(rep.Worst)-1].Score == nil || *rep.Worst[0].Score > *rep.Worst[len(rep.Worst)-1].Score || len(rep.Common) == 0 || rep.Evidence == nil {
		t.Errorf("report: %d worst servers, %d common failures, evidence %v", len(rep.Worst), len(rep.Common), rep.Evidence)
	}
	for _, f := range []string{"markdown", "html", "text"} {
		if code, _, errs := runCLI(t, "fleet", "report", "--store", stores["postgres"], "--format", f, "-o", filepath.Join(dir, "report."+f)); code != ExitOK {
			t.Errorf("fleet report --format %s: exit %d: %s", f, code, errs)
		}
	}
}

func checkWeaknesses(t *testing.T, backend, url string) {
	t.Helper()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	servers, err := st.Servers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	failing := map[string]map[string]bool{}
	for _, s := range servers {
		if s.LatestOK == nil {
			continue
		}
		rows, err := st.Findings(context.Background(), s.LatestOK.ID)
		if err != nil {
			t.Fatal(err)
		}
		failing[s.Name] = map[string]bool{}
		for _, f := range rows {
			if f.Status == rules.Fail {
				failing[s.Name][f.Rule] = true
			}
		}
	}
	for _, w := range weaknesses[1:] {
		if failing[w.name] == nil {
			t.Errorf("%s: %s was not scanned", backend, w.name)
			continue
		}
		if !failing[w.name][w.rule] {
			t.Errorf("%s: %s: %s does not fail", backend, w.name, w.rule)
		}
		if failing["baseline"][w.rule] {
			t.Errorf("%s: %s fails on the baseline server too: it does not single out %s", backend, w.rule, w.name)
		}
	}
}

func hasHBA(ls []drift.HBALine, text string) bool {
	for _, l := range ls {
		if l.Text == text {
			return true
		}
	}
	return false
}

func hasRoleChange(cs []drift.RoleChange, role, attr, old, cur string) bool {
	for _, c := range cs {
		if c.Role == role && c.Attribute == attr && c.Old == old && c.New == cur {
			return true
		}
	}
	return false
}

func hasNew(fs []drift.Finding, rule string) bool {
	for _, f := range fs {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

// TestFleetDefaultStore: without --store or PGAEGIS_STORE the store is
// $XDG_STATE_HOME/pgaegis/fleet.db (else under ~/.local/state), created
// private; PGAEGIS_STORE wins over it, and a relative XDG_STATE_HOME is
// ignored as the XDG specification says.
func TestFleetDefaultStore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PGAEGIS_STORE", "")
	t.Setenv("XDG_STATE_HOME", dir)
	// A command that only reads refuses a store that does not exist
	// rather than report an empty, all-clear fleet (or create one).
	for _, args := range [][]string{{"fleet", "report", "--no-evidence"}, {"fleet", "diff", "a"}, {"serve", "token", "list"}, {"serve", "token", "revoke", "x"},
		{"fleet", "report", "--store", filepath.Join(dir, "typo.db")}} {
		code, out, errs := runCLI(t, args...)
		if code != ExitError || !strings.Contains(errs, "no pgaegis store there") || out != "" {
			t.Errorf("%v with no store: exit %d, stdout %q, stderr %s", args, code, out, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "pgaegis")); !os.IsNotExist(err) {
		t.Fatalf("a read-only command made the default store or its directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "typo.db")); !os.IsNotExist(err) {
		t.Fatalf("a read-only command made the store it was given: %v", err)
	}
	// fleet scan's opener creates it, private.
	st, err := openStoreURL(context.Background(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if code, _, errs := runCLI(t, "fleet", "report", "--no-evidence"); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	fi, err := os.Stat(filepath.Join(dir, "pgaegis"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("store directory: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "pgaegis", "fleet.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file: %v %v", fi, err)
	}
	other := filepath.Join(dir, "other.db")
	t.Setenv("PGAEGIS_STORE", other)
	if code, _, errs := runCLI(t, "fleet", "report", "--no-evidence"); code != ExitError || !strings.Contains(errs, "other.db") {
		t.Errorf("PGAEGIS_STORE was not used: exit %d, %s", code, errs)
	}
	t.Setenv("XDG_STATE_HOME", "relative/dir")
	t.Setenv("HOME", dir)
	if p, err := defaultStore(); err != nil || p != filepath.Join(dir, ".local", "state", "pgaegis", "fleet.db") {
		t.Errorf("default store with a relative XDG_STATE_HOME: %q %v", p, err)
	}
}
