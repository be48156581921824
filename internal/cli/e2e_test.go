package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// connArgs connects to srv as its admin; the password travels in the
// environment, never in argv.
func connArgs(t *testing.T, srv *localpg.Server, user, password string) []string {
	t.Setenv("PGPASSWORD", password)
	return []string{"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=prefer", srv.Port, user)}
}

func auditJSON(t *testing.T, args ...string) (*report.Report, int, string) {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"audit", "--format", "json"}, args...)...)
	if code == ExitError {
		t.Fatalf("audit failed (exit %d): %s", code, errs)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("audit output is not JSON: %v\n%s", err, out)
	}
	return &rep, code, errs
}

// expectFail asserts a failing finding of rule whose object, location or
// evidence mentions each of the given fragments.
func expectFail(t *testing.T, rep *report.Report, rule string, fragments ...string) {
	t.Helper()
	for _, f := range rep.Findings {
		if f.Rule != rule || f.Status != rules.Fail {
			continue
		}
		text := f.Object + "\n" + f.Location + "\n" + f.Evidence
		ok := true
		for _, frag := range fragments {
			if !strings.Contains(text, frag) {
				ok = false
			}
		}
		if ok {
			if f.Fix == "" {
				t.Errorf("%s %v: failing finding without a fix", rule, fragments)
			}
			return
		}
	}
	var seen []string
	for _, f := range rep.Findings {
		if f.Rule == rule {
			seen = append(seen, fmt.Sprintf("%s %s @%s: %s", f.Status, f.Object, f.Location, f.Evidence+f.Reason))
		}
	}
	t.Errorf("no failing %s mentioning %q; %s findings: %s", rule, fragments, rule, strings.Join(seen, " | "))
}

func status(rep *report.Report, rule string) []rules.Status {
	var out []rules.Status
	for _, f := range rep.Findings {
		if f.Rule == rule {
			out = append(out, f.Status)
		}
	}
	return out
}

const weakHBA = `local all all trust
host all all 0.0.0.0/0 trust
host all all 127.0.0.1/32 scram-sha-256
host all all 10.0.0.0/8 md5
host all all 192.168.0.0/16 password
hostnossl all all 172.16.0.0/12 ident
host replication all 0.0.0.0/0 md5
`

func startWeak(t *testing.T) *localpg.Server {
	srv := pgtest.Start(t, localpg.Options{
		Conf: []string{"listen_addresses = '*'", "password_encryption = md5", "ssl_min_protocol_version = 'TLSv1'",
			"log_line_prefix = ''", "log_statement = 'none'", "unix_socket_permissions = 0777",
			"lo_compat_privileges = on", "log_min_duration_statement = 0"},
		HBA: weakHBA,
	})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx,
		`SET password_encryption = 'scram-sha-256'`,
		`CREATE ROLE same_name LOGIN PASSWORD 'same_name'`,
		`CREATE ROLE common_pw LOGIN PASSWORD 'changeme'`,
		`CREATE ROLE no_pw LOGIN`,
		`CREATE ROLE expired LOGIN PASSWORD 'Xk2#9vLq!m' VALID UNTIL '2020-01-01'`,
		`GRANT SELECT ON pg_authid TO common_pw`,
		`GRANT SET ON PARAMETER log_statement TO common_pw`,
		`CREATE TABLE public.tenants_data (id int, tenant_id int, secret text)`,
		`GRANT SELECT, INSERT ON public.tenants_data TO PUBLIC`,
		`CREATE TABLE public.orders (id int, org_id int)`,
		`ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY open_all ON public.orders USING (true)`,
		`CREATE VIEW public.all_orders AS SELECT * FROM public.orders`,
		`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC`,
		`CREATE FUNCTION public.run_sql(q text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN EXECUTE 'SELECT ' || q; END $$`,
		`CREATE EXTENSION adminpack`,
		`CREATE EXTENSION postgres_fdw`,
		`CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1')`,
		`CREATE USER MAPPING FOR PUBLIC SERVER loop OPTIONS (user 'postgres', password_required 'false')`,
	); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/usr/share/postgresql/15/extension/plperlu.control"); err == nil {
		must(t, srv.Exec(ctx, `CREATE EXTENSION plperlu`, `UPDATE pg_language SET lanpltrusted = true WHERE lanname = 'plperlu'`))
	} else if os.Getenv("CI") == "true" {
		t.Fatal("postgresql-plperl-15 is required under CI=true")
	}
	// The untrusted-language backdoor that gives OS access: PL/Python has
	// no trusted interpreter, so marked trusted it runs shell commands for
	// any role with USAGE (plperlu marked trusted runs in Safe instead).
	if _, err := os.Stat("/usr/share/postgresql/15/extension/plpython3u.control"); err == nil {
		must(t, srv.Exec(ctx, `CREATE EXTENSION plpython3u`, `UPDATE pg_language SET lanpltrusted = true WHERE lanname = 'plpython3u'`))
	} else if os.Getenv("CI") == "true" {
		t.Fatal("postgresql-plpython3-15 is required under CI=true")
	}
	if err := srv.Exec(ctx,
		`CREATE ROLE weak_md5 LOGIN PASSWORD 'correct horse'`,
		`CREATE ROLE extra_su SUPERUSER LOGIN`,
		`CREATE ROLE admins NOLOGIN`,
		`GRANT extra_su TO admins`,
		`CREATE ROLE app LOGIN IN ROLE admins`,
		`GRANT pg_execute_server_program TO app`,
		`GRANT CREATE ON SCHEMA public TO PUBLIC`,
		`ALTER ROLE app SET log_statement = 'none'`,
	); err != nil {
		t.Fatal(err)
	}
	must(t, os.Chmod(srv.DataDir, 0o750))
	must(t, os.Chmod(filepath.Join(srv.DataDir, "postgresql.conf"), 0o644))
	must(t, os.Chmod(filepath.Join(srv.DataDir, "pg_hba.conf"), 0o666))
	return srv
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWeakServerFindingsLive(t *testing.T) {
	srv := startWeak(t)
	hbaPath := filepath.Join(srv.DataDir, "pg_hba.conf")
	start := time.Now()
	rep, code, _ := auditJSON(t, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	t.Logf("live audit of the weak server: %s, %d findings", time.Since(start).Round(time.Millisecond), len(rep.Findings))
	if code != ExitFindings {
		t.Errorf("exit code %d, want %d (high findings)", code, ExitFindings)
	}
	line := func(n int) string { return fmt.Sprintf("%s:%d", hbaPath, n) }
	expectFail(t, rep, "TLS-01", "setting ssl")
	expectFail(t, rep, "TLS-02", "TLSv1")
	expectFail(t, rep, "AUTH-04", line(1))
	expectFail(t, rep, "AUTH-01", line(2))
	expectFail(t, rep, "AUTH-02", line(4), "md5")
	expectFail(t, rep, "AUTH-02", line(5), "password")
	expectFail(t, rep, "AUTH-03", line(6), "ident")
	expectFail(t, rep, "AUTH-05", line(4))
	expectFail(t, rep, "AUTH-05", line(6))
	expectFail(t, rep, "AUTH-06", line(2), "any address")
	expectFail(t, rep, "AUTH-07.final-reject", hbaPath)
	expectFail(t, rep, "AUTH-08", "role "+srv.AdminUser, line(2))
	expectFail(t, rep, "AUTH-08", "role extra_su", line(2))
	expectFail(t, rep, "REPL-04", line(7))
	expectFail(t, rep, "AUTH-11", "password_encryption", "md5")
	expectFail(t, rep, "AUTH-11.verifiers", "role weak_md5")
	expectFail(t, rep, "PRIV-01", "role extra_su", "SUPERUSER")
	expectFail(t, rep, "PRIV-02", "role app", "extra_su")
	expectFail(t, rep, "PRIV-17", "role app", "pg_execute_server_program")
	expectFail(t, rep, "PRIV-09", "schema postgres.public")
	expectFail(t, rep, "LOG-19", "log_connections")
	expectFail(t, rep, "LOG-20", "log_disconnections")
	expectFail(t, rep, "LOG-24", "log_statement")
	expectFail(t, rep, "LOG-23", "log_line_prefix")
	expectFail(t, rep, "LOG-26", "shared_preload_libraries")
	expectFail(t, rep, "LOG-26.overrides", `role "app"`, "log_statement=none")
	expectFail(t, rep, "NET-04", "unix_socket_permissions")
	expectFail(t, rep, "FS-05", srv.DataDir, "0750")
	expectFail(t, rep, "FS-06", filepath.Join(srv.DataDir, "postgresql.conf"), "0644")
	expectFail(t, rep, "FS-07", hbaPath, "0666")
	// Over TCP without verified TLS the verifiers are not fetched (they
	// would cross the network); over the local socket they are.
	for _, f := range rep.Findings {
		if f.Rule == "AUTH-11.dictionary" && (f.Status != rules.NotChecked || !strings.Contains(f.Reason, "unencrypted TCP")) {
			t.Errorf("AUTH-11.dictionary over plain TCP: %s %s (%s), want not_checked naming the transport", f.Status, f.Object, f.Reason)
		}
	}
	sock, _, _ := auditJSON(t, "--no-probe", "-d", fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", srv.SocketDir, srv.Port, srv.AdminUser))
	expectFail(t, sock, "AUTH-11.dictionary", "role same_name", "role name")
	expectFail(t, sock, "AUTH-11.dictionary", "role common_pw", "common passwords")
	expectFail(t, rep, "AUTH-12", "role no_pw", line(1))
	expectFail(t, rep, "AUTH-19", "role expired", "expired on 2020-01-01")
	expectFail(t, rep, "PRIV-11", "pg_authid", "common_pw")
	expectFail(t, rep, "PRIV-17.parameters", "parameter log_statement", "common_pw")
	expectFail(t, rep, "PRIV-08", "schema postgres.public", "INSERT")
	expectFail(t, rep, "PRIV-16", "tenants_data", "tenant_id")
	expectFail(t, rep, "PRIV-16", "orders", "USING (true)")
	expectFail(t, rep, "PRIV-18", "all_orders", "public.orders")
	expectFail(t, rep, "PRIV-15", "default privileges", "PUBLIC")
	expectFail(t, rep, "PRIV-06", "run_sql", "no SET search_path", "EXECUTE for PUBLIC")
	expectFail(t, rep, "OTH-04", "run_sql", "concatenated")
	expectFail(t, rep, "EXT-01", "adminpack")
	expectFail(t, rep, "EXT-11", "loop", "password_required=false")
	expectFail(t, rep, "EXT-08", "lo_compat_privileges")
	expectFail(t, rep, "LOG-33", "log_min_duration_statement")
	expectFail(t, rep, "INST-04", "data_checksums")
	if _, err := os.Stat("/usr/share/postgresql/15/extension/plperlu.control"); err == nil {
		expectFail(t, rep, "EXT-02", "plperlu", "marked trusted")
	}
	// The server was started with listen_addresses=127.0.0.1 on the command
	// line (tests stay on loopback), so the live value passes; the file
	// audit below sees the '*' in postgresql.conf.
	for _, f := range rep.Findings {
		if f.Status == rules.Fail && (f.Evidence == "" || f.Object == "") {
			t.Errorf("failing finding without object or evidence: %+v", f)
		}
	}
	if strings.Contains(mustJSON(t, rep), srv.Password) {
		t.Error("the report contains the admin password")
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

func TestWeakServerFilesOnly(t *testing.T) {
	srv := startWeak(t)
	rep, code, _ := auditJSON(t, "--pgdata", srv.DataDir)
	if code != ExitFindings {
		t.Errorf("exit %d, want 1", code)
	}
	conf := filepath.Join(srv.DataDir, "postgresql.conf")
	expectFail(t, rep, "NET-01", conf+":") // file:line of listen_addresses = '*'
	expectFail(t, rep, "AUTH-01", filepath.Join(srv.DataDir, "pg_hba.conf")+":2")
	expectFail(t, rep, "AUTH-11", conf+":")
	expectFail(t, rep, "TLS-01", "built-in default")
	expectFail(t, rep, "FS-05", "0750")
	// Server-only knowledge is not guessed.
	for _, rule := range []string{"AUTH-11.verifiers", "PRIV-02", "PRIV-09"} {
		for _, st := range status(rep, rule) {
			if st != rules.NotChecked {
				t.Errorf("%s: %s in a files-only audit, want not_checked", rule, st)
			}
		}
	}
	// The NET-01 finding names the exact line.
	data, _ := os.ReadFile(conf)
	lines := strings.Split(string(data), "\n")
	for _, f := range rep.Findings {
		if f.Rule == "NET-01" && f.Status == rules.Fail {
			var n int
			fmt.Sscanf(f.Location[len(conf)+1:], "%d", &n)
			if n < 1 || n > len(lines) || !strings.Contains(lines[n-1], "listen_addresses = '*'") {
				t.Errorf("NET-01 points at line %d: %q", n, lines[max(0, n-1)])
			}
		}
	}
}

const hardenedHBA = `local all all scram-sha-256
hostssl all all 127.0.0.1/32 scram-sha-256
host all all 0.0.0.0/0 reject
host all all ::/0 reject
`

func TestHardenedServerHasNoHighFindings(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{
		Conf: []string{"ssl = on", "ssl_min_protocol_version = 'TLSv1.2'", "ssl_ciphers = 'HIGH:!aNULL:!MD5:!3DES'",
			"password_encryption = 'scram-sha-256'", "log_connections = on", "log_disconnections = on",
			"log_statement = 'ddl'", "log_line_prefix = '%m [%p] %q%u@%d %r %a '", "logging_collector = on",
			"shared_preload_libraries = 'pgaudit'", "pgaudit.log = 'ddl,role,write'", "unix_socket_permissions = 0770"},
		HBA:  hardenedHBA,
		Init: pgtest.SelfSignedTLS,
	})
	must(t, srv.Exec(pgtest.Ctx(t), `CREATE ROLE app LOGIN PASSWORD 'app-secret'`))
	rep, code, errs := auditJSON(t, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	machine := 0
	for _, f := range rep.Findings {
		// INST-05 is about the test machine's packages (apt may offer a
		// newer minor than the one installed): not the cluster's config.
		if f.Status == rules.Fail && f.Severity >= rules.High {
			if f.Rule == "INST-05" {
				machine++
				continue
			}
			t.Errorf("hardened server: %s %s %s: %s", f.Severity, f.Rule, f.Object, f.Evidence)
		}
	}
	for _, f := range rep.Findings {
		if f.Status == rules.Fail && f.Severity < rules.High {
			t.Logf("hardened server, %s: %s %s: %s", f.Severity, f.Rule, f.Object, f.Evidence)
		}
	}
	if code != ExitOK && machine == 0 {
		t.Errorf("exit %d, want 0; stderr: %s", code, errs)
	}
	for _, rule := range []string{"TLS-01", "TLS-04", "LOG-26", "AUTH-08", "FS-05", "AUTH-07.final-reject"} {
		st := status(rep, rule)
		if len(st) == 0 || st[0] != rules.Pass {
			t.Errorf("%s: %v, want pass", rule, st)
		}
	}
	// On a hardened server the plan has nothing to do for critical/high.
	code, out, errs := runCLI(t, append([]string{"fix", "--format", "json", "--min-severity", "high"}, connArgs(t, srv, srv.AdminUser, srv.Password)...)...)
	var p plan.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("fix on the hardened server: exit %d %v\n%s", code, err, errs)
	}
	for _, s := range p.Steps {
		t.Errorf("hardened server: plan step %s %s closes %v", s.ID, s.Summary, s.Closes)
	}
	if code != ExitOK {
		t.Errorf("fix on the hardened server: exit %d, want 0 (nothing to do); stderr: %s", code, errs)
	}
}

func TestHostileNamesDoNotChangeWhereWeConnect(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	hostile := []string{"x host=evil.example port=1", "db'; DROP TABLE t; --", "new\nline", `ünï "quoted"`, "dbname=template1", "sslmode=disable password=x"}
	for _, name := range hostile {
		q := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		must(t, srv.Exec(ctx, "CREATE DATABASE "+q))
		must(t, srv.ExecIn(ctx, name, "GRANT CREATE ON SCHEMA public TO PUBLIC", "CREATE ROLE "+q+" LOGIN", "CREATE TABLE "+q+" (id int)"))
	}
	count := func() int {
		c, err := srv.Connect(ctx, "postgres")
		must(t, err)
		defer c.Close(ctx)
		var n int
		must(t, c.QueryRow(ctx, "SELECT count(*) FROM pg_class").Scan(&n))
		return n
	}
	before := count()
	rep, _, _ := auditJSON(t, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	for _, name := range hostile {
		expectFail(t, rep, "PRIV-09", "schema "+name+".public")
	}
	for _, f := range rep.Findings {
		if f.Status == rules.NotChecked && strings.HasPrefix(f.Object, "database ") {
			t.Errorf("database not collected: %s: %s", f.Object, f.Reason)
		}
	}
	if after := count(); after != before {
		t.Errorf("the audit changed the server: %d relations before, %d after", before, after)
	}
}

func TestMonitorRoleDegradesToNotChecked(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	must(t, srv.Exec(pgtest.Ctx(t), `CREATE ROLE auditor LOGIN PASSWORD 'monitor-secret' IN ROLE pg_monitor`, `CREATE ROLE nobody_special LOGIN PASSWORD 'plain-secret'`))
	for _, who := range []string{"auditor", "nobody_special"} {
		t.Run(who, func(t *testing.T) {
			pw := map[string]string{"auditor": "monitor-secret", "nobody_special": "plain-secret"}[who]
			rep, _, errs := auditJSON(t, append(connArgs(t, srv, who, pw), "--no-files")...)
			for _, rule := range []string{"AUTH-01", "AUTH-11.verifiers", "AUTH-18"} {
				st := status(rep, rule)
				if len(st) == 0 {
					t.Errorf("%s: no finding", rule)
				}
				for _, s := range st {
					if s != rules.NotChecked {
						t.Errorf("%s as %s: %s, want not_checked (the role cannot see it)", rule, who, s)
					}
				}
			}
			for _, f := range rep.Findings {
				if f.Status == rules.NotChecked && f.Reason == "" {
					t.Errorf("%s not checked without a reason", f.Rule)
				}
			}
			if strings.Contains(errs, pw) {
				t.Error("stderr contains the password")
			}
		})
	}
}

func TestUnresponsiveServerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept, never answer
		}
	}()
	t.Setenv("PGPASSWORD", "never-print-me")
	port := l.Addr().(*net.TCPAddr).Port
	start := time.Now()
	code, _, errs := runCLI(t, "audit", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "x", "--connect-timeout", "2s")
	took := time.Since(start)
	if code != ExitError {
		t.Errorf("exit %d, want 2", code)
	}
	if took > 15*time.Second {
		t.Errorf("took %s to give up", took)
	}
	if strings.Contains(errs, "never-print-me") {
		t.Errorf("error output contains the password: %s", errs)
	}
	t.Logf("gave up after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(errs))
}

func TestWrongPasswordErrorHasNoSecret(t *testing.T) {
	srv := pgtest.Shared(t)
	secret := "Sup3r-Secret-Value"
	code, _, errs := runCLI(t, "audit", "-d", fmt.Sprintf("postgresql://%s:%s@127.0.0.1:%d/postgres", srv.AdminUser, secret, srv.Port))
	if code != ExitError {
		t.Errorf("exit %d, want 2", code)
	}
	if strings.Contains(errs, secret) {
		t.Errorf("error output contains the password: %s", errs)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	srv := startWeak(t)
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	snap := filepath.Join(t.TempDir(), "snap.json")
	if code, _, errs := runCLI(t, append([]string{"collect", "-o", snap}, args...)...); code != 0 {
		t.Fatalf("collect: %d %s", code, errs)
	}
	data, err := os.ReadFile(snap)
	must(t, err)
	if strings.Contains(string(data), srv.Password) {
		t.Error("snapshot contains the password")
	}
	direct, _, _ := auditJSON(t, args...)
	fromSnap, _, _ := auditJSON(t, "--snapshot", snap)
	strip := func(r *report.Report) string {
		var b strings.Builder
		for _, f := range r.Findings {
			// Volatile rules (servers and processes running on the host)
			// may change between the collect and the live audit.
			if rules.IsVolatile(f.Rule) {
				continue
			}
			fmt.Fprintf(&b, "%s|%s|%s|%s|%s\n", f.Rule, f.Status, f.Object, f.Location, f.Evidence)
		}
		return b.String()
	}
	if strip(direct) != strip(fromSnap) {
		t.Errorf("audit of the snapshot differs from the live audit:\nlive:\n%s\nsnapshot:\n%s", strip(direct), strip(fromSnap))
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"audit", "--format", "xml"},
		{"audit", "--fail-on", "severe"},
		{"audit", "--snapshot", "x.json", "--pgdata", "/tmp"},
		{"nonsense"},
		{"audit", "extra-arg"},
	} {
		code, _, errs := runCLI(t, args...)
		if code != ExitError || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	code, _, errs := runCLI(t, "audit", "--snapshot", filepath.Join(t.TempDir(), "missing.json"))
	if code != ExitError || !strings.Contains(errs, "missing.json") {
		t.Errorf("missing snapshot: exit %d, %q", code, errs)
	}
}

func TestWaiversBaselineProfilesAndFormats(t *testing.T) {
	srv := startWeak(t)
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	dir := t.TempDir()

	// Baseline: a second run against an unchanged server reports nothing new.
	first := filepath.Join(dir, "first.json")
	if code, _, errs := runCLI(t, append([]string{"audit", "--format", "json", "-o", first}, args...)...); code != ExitFindings {
		t.Fatalf("first audit: %d %s", code, errs)
	}
	rep, code, _ := auditJSON(t, append([]string{"--baseline", first}, args...)...)
	if code != ExitOK || rep.Baseline == nil || rep.Baseline.New != 0 || len(rep.Findings) != 0 {
		t.Errorf("unchanged server against its baseline: exit %d, %+v", code, rep.Baseline)
	}
	// A new weakness shows up as new; a repaired one as fixed.
	must(t, srv.Exec(pgtest.Ctx(t), `CREATE ROLE second_su SUPERUSER`, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`))
	rep, code, _ = auditJSON(t, append([]string{"--baseline", first}, args...)...)
	if code != ExitFindings || rep.Baseline.New != 1 || len(rep.Findings) != 1 || rep.Findings[0].Object != "role second_su" {
		t.Errorf("new superuser: exit %d, %+v, %+v", code, rep.Baseline, rep.Findings)
	}
	fixed := false
	for _, f := range rep.Baseline.Fixed {
		fixed = fixed || f.Rule == "PRIV-09"
	}
	if !fixed {
		t.Error("PRIV-09 should be listed as fixed")
	}

	// Waivers: accept everything high or worse and the exit code follows.
	var w strings.Builder
	w.WriteString("waivers:\n")
	full, _, _ := auditJSON(t, args...)
	for _, f := range full.Findings {
		if f.Status == rules.Fail && f.Severity >= rules.High {
			fmt.Fprintf(&w, "  - rule: %q\n    object: %q\n    reason: accepted for the test\n    expires: 2999-01-01\n", f.Rule, strings.ReplaceAll(strings.ReplaceAll(f.Object, "[", "[[]"), "*", "[*]"))
		}
	}
	wf := filepath.Join(dir, "waivers.yaml")
	must(t, os.WriteFile(wf, []byte(w.String()), 0o600))
	rep, code, errs := auditJSON(t, append([]string{"--waivers", wf}, args...)...)
	if code != ExitOK || rep.Summary.Waived == 0 {
		t.Errorf("all high findings waived: exit %d, waived %d, %s", code, rep.Summary.Waived, errs)
	}

	// Profiles select rules by benchmark.
	cis, _, _ := auditJSON(t, append([]string{"--profile", "cis-17"}, args...)...)
	for _, f := range cis.Findings {
		if f.Rule == "AUTH-08" {
			t.Error("AUTH-08 is not a CIS rule")
		}
	}
	if cis.Summary.Rules >= full.Summary.Rules {
		t.Errorf("cis-17 profile ran %d rules, all ran %d", cis.Summary.Rules, full.Summary.Rules)
	}

	// Every format renders from a live audit.
	for _, format := range []string{"text", "sarif", "html", "markdown", "junit"} {
		code, out, errs := runCLI(t, append([]string{"audit", "--format", format}, args...)...)
		if code == ExitError || len(out) < 200 || strings.Contains(out, srv.Password) {
			t.Errorf("%s: exit %d, %d bytes, %s", format, code, len(out), errs)
		}
	}
}
