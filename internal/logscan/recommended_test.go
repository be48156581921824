package logscan

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// testLogFiles are the settings this test fixes so it can find the log
// (the recommendation moves it to /var/log/postgresql with a dated name).
var testLogFiles = []string{"logging_collector = on", "log_directory = 'log'", "log_filename = 'pg'"}

// recommendedLogging is what the audit's logging rules ask of a server
// with default settings: a real audit of one, and the settings of the
// plan `fix` would apply for the failing logging rules.
func recommendedLogging(t *testing.T, ctx context.Context, srv *localpg.Server) map[string]string {
	t.Helper()
	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true, NoProbe: true})
	if err != nil {
		t.Fatal(err)
	}
	var only []string
	for _, r := range rules.All() {
		if r.Area == rules.AreaLogging {
			only = append(only, r.ID)
		}
	}
	res := fix.Build(snap, rules.Run(snap), fix.Options{Only: only})
	out := map[string]string{}
	for _, st := range res.Plan.Steps {
		for _, c := range st.Settings {
			out[c.Name] = c.To
		}
	}
	return out
}

func confLines(settings map[string]string) []string {
	var out []string
	for k, v := range settings {
		switch k {
		case "log_directory", "log_filename", "logging_collector":
			continue // the test's own
		}
		out = append(out, k+" = '"+strings.ReplaceAll(v, "'", "''")+"'")
	}
	sort.Strings(out)
	return append(out, testLogFiles...)
}

// attackKinds are the events the scripted attack must raise.
var attackKinds = []string{"brute-force", "unknown-role", "password-spraying", "success-after-failures", "powerful-role-granted",
	"superuser-granted", "copy-program", "server-file-access", "untrusted-language", "alter-system", "secret-in-log"}

// runAttack plays the attack against srv and returns the kinds of event
// found in each of its log files, and how often.
func runAttack(t *testing.T, ctx context.Context, srv *localpg.Server) map[string]map[string]int {
	t.Helper()
	if err := srv.Exec(ctx, `CREATE ROLE app LOGIN PASSWORD 'app-right-1'`, `CREATE ROLE ops LOGIN SUPERUSER PASSWORD 'ops-right-1'`,
		`CREATE EXTENSION plperlu`, `CREATE TABLE loot (x text)`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		loginFrom(ctx, srv, "127.0.0.2", "app", "guess") // brute force
	}
	for _, u := range []string{"admin", "root", "oracle", "backup", "test"} {
		loginFrom(ctx, srv, "127.0.0.3", u, "Summer2026!") // unknown roles, sprayed
	}
	for i := 0; i < 3; i++ {
		loginFrom(ctx, srv, "127.0.0.4", "ops", "wrong")
	}
	if err := loginFrom(ctx, srv, "127.0.0.4", "ops", "ops-right-1", // success after failures, then the damage
		`GRANT pg_execute_server_program TO app`, `ALTER ROLE app SUPERUSER`,
		`COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'`, `COPY loot FROM PROGRAM 'echo pwned'`,
		`SELECT pg_read_file('postgresql.conf')`, `SELECT pg_read_binary_file('PG_VERSION')`, `SELECT pg_ls_dir('.')`,
		`CREATE FUNCTION shell() RETURNS int LANGUAGE plperlu AS 'return 1;'`,
		`ALTER SYSTEM SET work_mem = '5MB'`, `ALTER ROLE app PASSWORD 'Secret123!'`); err != nil {
		t.Fatal(err)
	}
	// The end: a failed login, which every logging configuration writes.
	loginFrom(ctx, srv, "127.0.0.9", "logwolf_end", "x")
	dir := filepath.Join(srv.DataDir, "log")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		waitForLog(t, "logwolf_end", filepath.Join(dir, e.Name()))
	}
	out := map[string]map[string]int{}
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		an, st, err := Scan([]string{path}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, ev := range an.Events() {
			got[ev.Kind] += ev.Count
			if strings.Contains(ev.Sample, "Secret123!") {
				t.Errorf("%s: a password is in the output: %+v", path, ev)
			}
		}
		if len(st.Errors) > 0 {
			t.Errorf("%s: unparsed: %v", path, st.Errors)
		}
		out[string(st.Format)+" "+e.Name()] = got
	}
	return out
}

// TestRecommendedLoggingSeesAttacks: a server configured with exactly the
// logging the audit recommends logs every attack logs scan detects; the
// same attack on a server with default logging shows what is missed.
func TestRecommendedLoggingSeesAttacks(t *testing.T) {
	if _, err := os.Stat(pgauditLib); err != nil && os.Getenv("CI") != "true" {
		t.Skip("needs Debian's PostgreSQL 15 with pgaudit")
	}
	ctx := pgtest.Ctx(t)
	hba := "local all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n"
	def := pgtest.Start(t, localpg.Options{Version: "15", Conf: testLogFiles, HBA: hba})
	rec := recommendedLogging(t, ctx, def)
	conf := confLines(rec)
	t.Logf("recommended: %s", strings.Join(conf, "; "))
	good := pgtest.Start(t, localpg.Options{Version: "15", Conf: conf, HBA: hba})
	for file, got := range runAttack(t, ctx, good) {
		var missing []string
		for _, k := range attackKinds {
			if got[k] == 0 {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			t.Errorf("recommended logging, %s: attack not visible: %v (found %v)", file, missing, got)
		}
	}
	for file, got := range runAttack(t, ctx, def) {
		var missing []string
		for _, k := range attackKinds {
			if got[k] == 0 {
				missing = append(missing, k)
			}
		}
		t.Logf("default logging, %s: missed %v", file, missing)
	}
}
