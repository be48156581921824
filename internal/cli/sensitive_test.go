package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// Planted credential and personal-data columns: who may read them, what
// their values are (with --sample-data), and that no sampled value leaves
// memory. The server is the oracle for the access lists (has_column_privilege)
// and for the fixes (applied, then audited again).
// dataWant is one expected DATA finding: rule, a fragment of its object,
// status and severity ("" for any).
type dataWant struct {
	rule, table string
	st          rules.Status
	sev         string
}

func TestSensitiveData(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	dataFails := func(rep *report.Report) []rules.Finding {
		var out []rules.Finding
		for _, f := range rep.Findings {
			if strings.HasPrefix(f.Rule, "DATA-") && f.Status == rules.Fail {
				out = append(out, f)
			}
		}
		return out
	}
	// A clean server: no such column, no finding.
	rep, _, _ := auditJSON(t, append([]string{"--no-probe", "--sample-data"}, args...)...)
	if fs := dataFails(rep); len(fs) > 0 {
		t.Fatalf("clean server: %+v", fs)
	}

	// Values that must never be printed or stored.
	const plainSecret, plainPass, encSecret, email = "plain-api-key-7Yq3Zp", "Hunter2-plain-pw", "pgp-inner-secret-Kq9", "alice.sensitive@example.com"
	admin := pgtest.Conn(t, srv, "postgres")
	for _, q := range []string{
		`CREATE EXTENSION pgcrypto`,
		`CREATE ROLE app LOGIN`, `CREATE ROLE app2 LOGIN`, `CREATE ROLE verifier LOGIN`,
		`CREATE TABLE users_bcrypt (id int, password text)`,
		`INSERT INTO users_bcrypt SELECT g, crypt('pw' || g, gen_salt('bf', 4)) FROM generate_series(1, 5) g`,
		`GRANT SELECT ON users_bcrypt TO PUBLIC`,
		`CREATE TABLE scram_creds (login text, pass_hash text)`,
		`INSERT INTO scram_creds VALUES ('a', 'SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVka2V5c3RvcmVk:c2VydmVya2V5')`,
		`GRANT SELECT ON scram_creds TO verifier`,
		`CREATE TABLE plain_creds (id int, api_key text)`,
		fmt.Sprintf(`INSERT INTO plain_creds VALUES (1, '%s')`, plainSecret),
		`CREATE TABLE enc_secrets (id int, client_secret bytea, token_armored text)`,
		fmt.Sprintf(`INSERT INTO enc_secrets VALUES (1, pgp_sym_encrypt('%s', 'key-kept-elsewhere'), armor(pgp_sym_encrypt('%[1]s', 'k')))`, encSecret),
		`CREATE TABLE rls_tokens (id int, owner_name text, token text)`,
		`INSERT INTO rls_tokens VALUES (1, 'app', 'tok-plain-1')`,
		`ALTER TABLE rls_tokens ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY own ON rls_tokens USING (owner_name = current_user)`,
		`GRANT SELECT ON rls_tokens TO PUBLIC`,
		`CREATE TABLE colgrant (id int, pwd text, note text)`,
		`GRANT SELECT (pwd, note) ON colgrant TO PUBLIC`,
		`CREATE TABLE customers (id int, email text, compass text, bypass text)`,
		fmt.Sprintf(`INSERT INTO customers VALUES (1, '%s', 'n', 'x')`, email),
		`GRANT SELECT ON customers TO PUBLIC`,
		`CREATE ROLE staff NOLOGIN`, `GRANT staff TO app, app2, verifier`,
		`CREATE TABLE staff_keys (id int, private_key text)`, `GRANT SELECT ON staff_keys TO staff`,
		`CREATE DATABASE shop`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	shop := pgtest.Conn(t, srv, "shop")
	for _, q := range []string{
		`CREATE TABLE accounts (id int, passwort text)`,
		fmt.Sprintf(`INSERT INTO accounts VALUES (1, '%s')`, plainPass),
	} {
		if _, err := shop.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// What pgp_sym_encrypt really writes: a symmetric-key session packet
	// (new format, tag 3).
	var head []byte
	if err := admin.QueryRow(ctx, `SELECT substring(client_secret from 1 for 3) FROM enc_secrets`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	if head[0] != 0xc3 || head[2] != 4 {
		t.Errorf("pgp_sym_encrypt starts with % x", head)
	}

	find := func(rep *report.Report, rule, frag string) (rules.Finding, bool) {
		for _, f := range rep.Findings {
			if f.Rule == rule && strings.Contains(f.Object, frag) {
				return f, true
			}
		}
		return rules.Finding{}, false
	}
	want := func(rep *report.Report, rule, frag string, st rules.Status, sev string) {
		t.Helper()
		f, ok := find(rep, rule, frag)
		if !ok {
			t.Errorf("%s: no finding on %s", rule, frag)
			return
		}
		if f.Status != st || (sev != "" && f.Severity.String() != sev) {
			t.Errorf("%s %s: %s %s (%s%s), want %s %s", rule, frag, f.Status, f.Severity, f.Evidence, f.Reason, st, sev)
		}
	}
	noFinding := func(rep *report.Report, frag string) {
		t.Helper()
		for _, f := range rep.Findings {
			if strings.HasPrefix(f.Rule, "DATA-") && strings.Contains(f.Object, frag) {
				t.Errorf("%s on %s: not sensitive", f.Rule, f.Object)
			}
		}
	}

	// Without sampling: access only, values not checked.
	rep, _, _ = auditJSON(t, append([]string{"--no-probe"}, args...)...)
	for _, w := range []dataWant{
		{"DATA-01", "users_bcrypt", rules.Fail, "high"},
		{"DATA-01", "scram_creds", rules.Pass, ""},
		{"DATA-01", "rls_tokens", rules.Fail, "medium"},
		{"DATA-01", "colgrant", rules.Fail, "high"},
		{"DATA-03", "customers", rules.Fail, "medium"},
		{"DATA-04", "accounts", rules.Fail, "low"},
		{"DATA-04", "users_bcrypt", rules.Pass, ""}, // pgcrypto is installed
		{"DATA-01", "staff_keys", rules.Fail, "high"},
	} {
		want(rep, w.rule, w.table, w.st, w.sev)
	}
	if f, _ := find(rep, "DATA-01", "staff_keys"); !strings.Contains(f.Evidence, "every login role") || f.FixKind == "sql" {
		t.Errorf("staff_keys: %s (%s)", f.Evidence, f.FixKind)
	}
	noFinding(rep, "compass")
	noFinding(rep, "bypass")
	if st := status(rep, "DATA-02"); len(st) != 1 || st[0] != rules.NotChecked {
		t.Errorf("DATA-02 without --sample-data: %v", st)
	}
	if f, _ := find(rep, "DATA-02", ""); !strings.Contains(f.Reason, "value sampling is off") {
		t.Errorf("DATA-02 reason: %q", f.Reason)
	}
	if f, _ := find(rep, "DATA-01", "rls_tokens"); !strings.Contains(f.Evidence, "row-level security is enabled with 1 policy") {
		t.Errorf("RLS not said: %s", f.Evidence)
	}
	// The access lists agree with the server.
	if f, _ := find(rep, "DATA-01", "scram_creds"); !strings.Contains(f.Evidence, "readable by verifier;") {
		t.Errorf("scram_creds readers: %s", f.Evidence)
	}
	for _, c := range []struct{ role, table, col string }{{"verifier", "scram_creds", "pass_hash"}, {"app", "scram_creds", "pass_hash"}, {"app", "colgrant", "pwd"}, {"app2", "users_bcrypt", "password"}, {"app", "staff_keys", "private_key"}, {"staff", "staff_keys", "private_key"}} {
		var can bool
		must(t, admin.QueryRow(ctx, `SELECT has_column_privilege($1, $2, $3, 'SELECT')`, c.role, c.table, c.col).Scan(&can))
		f, _ := find(rep, "DATA-01", c.table)
		readers, _, _ := strings.Cut(strings.SplitN(f.Evidence, "readable by ", 2)[1], ";")
		listed := false
		for _, r := range strings.Split(readers, ", ") {
			listed = listed || r == c.role
		}
		if listed != can {
			t.Errorf("%s on %s.%s: listed %v, server says %v (%s)", c.role, c.table, c.col, listed, can, readers)
		}
	}

	// With sampling: the verdicts.
	rep, _, _ = auditJSON(t, append([]string{"--no-probe", "--sample-data"}, args...)...)
	for _, w := range []dataWant{
		{"DATA-02", "users_bcrypt", rules.Pass, ""},
		{"DATA-02", "scram_creds", rules.Pass, ""},
		{"DATA-02", "client_secret", rules.Pass, ""},
		{"DATA-02", "token_armored", rules.Pass, ""},
		{"DATA-02", "plain_creds", rules.Fail, "critical"},
		{"DATA-02", "accounts", rules.Fail, "critical"},
		{"DATA-02", "rls_tokens", rules.Fail, "critical"},
		{"DATA-04", "plain_creds", rules.Fail, "low"}, // pgcrypto installed, not used
		{"DATA-04", "enc_secrets", rules.Pass, ""},
	} {
		want(rep, w.rule, w.table, w.st, w.sev)
	}
	if f, _ := find(rep, "DATA-02", "users_bcrypt"); !strings.Contains(f.Evidence, "bcrypt 5") {
		t.Errorf("bcrypt verdict: %s", f.Evidence)
	}
	if f, _ := find(rep, "DATA-02", "client_secret"); !strings.Contains(f.Evidence, "pgp-symmetric 1") {
		t.Errorf("pgcrypto verdict: %s", f.Evidence)
	}

	// No sampled value in the JSON report, the text report or a snapshot.
	_, text, _ := runCLI(t, append([]string{"audit", "--no-probe", "--sample-data", "-v", "--color", "never"}, args...)...)
	jsonOut, err := json.Marshal(rep)
	must(t, err)
	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true, NoProbe: true, SampleData: true})
	must(t, err)
	snapJSON, err := json.Marshal(snap)
	must(t, err)
	if !strings.Contains(string(snapJSON), `"hashed":5`) {
		t.Errorf("snapshot lacks the sample counts")
	}
	for what, out := range map[string]string{"JSON report": string(jsonOut), "text report": text, "snapshot": string(snapJSON)} {
		for _, v := range []string{plainSecret, plainPass, encSecret, email, "tok-plain-1", "$2a$04$", "SCRAM-SHA-256$4096:c2Fsd", `\xc30d`} {
			if strings.Contains(out, v) {
				t.Errorf("%s contains a sampled value %q", what, v)
			}
		}
	}

	if testing.Verbose() {
		for _, f := range rep.Findings {
			if strings.HasPrefix(f.Rule, "DATA-") {
				t.Logf("%s %s %s %s: %s%s | %s", f.Rule, f.Status, f.Severity, f.Object, f.Evidence, f.Reason, f.Fix)
			}
		}
	}
	// The printed fixes, run on the server, clear the findings.
	var fixed int
	for _, f := range dataFails(rep) {
		if f.Rule != "DATA-01" && f.Rule != "DATA-03" || f.FixKind != "sql" {
			continue
		}
		conn := admin
		if f.Database == "shop" {
			conn = shop
		}
		if _, err := conn.Exec(ctx, f.Fix); err != nil {
			t.Fatalf("fix %q: %v", f.Fix, err)
		}
		fixed++
	}
	// The manual one (membership): what its text says, by hand.
	if _, err := admin.Exec(ctx, `REVOKE SELECT ON staff_keys FROM staff`); err != nil {
		t.Fatal(err)
	}
	if fixed < 4 {
		t.Errorf("only %d fixes run", fixed)
	}
	rep, _, _ = auditJSON(t, append([]string{"--no-probe"}, args...)...)
	for _, f := range dataFails(rep) {
		if f.Rule == "DATA-01" || f.Rule == "DATA-03" {
			t.Errorf("after the fixes: %s %s: %s", f.Rule, f.Object, f.Evidence)
		}
	}
	var can bool
	must(t, admin.QueryRow(ctx, `SELECT has_column_privilege('app', 'colgrant', 'note', 'SELECT')`).Scan(&can))
	if !can {
		t.Error("the column fix took more than the credential column")
	}
}
