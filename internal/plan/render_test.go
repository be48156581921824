package plan

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

const hostileRole = `a"; DROP TABLE x; --`

// basicPlan has one step of every kind.
func basicPlan(dir string) *Plan {
	hba := filepath.Join(dir, "pg_hba.conf")
	return &Plan{
		FormatVersion: FormatVersion, ID: "20261201-120000-abcd",
		Created: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Target: "PostgreSQL 15.8 at 127.0.0.1:5432",
		Steps: []Step{
			{ID: "1", Kind: KindCommand, Summary: "issue a server certificate",
				Closes:  []FindingRef{{Rule: "TLS-01", Object: "ssl", Severity: "high"}},
				Command: []string{"pgaegis", "tls", "issue", "server", "--out", filepath.Join(dir, "certs")}},
			{ID: "2", Kind: KindFileMode, Summary: "restrict the data directory", Apply: ApplyNow,
				Closes: []FindingRef{{Rule: "FILE-01", Object: dir, Severity: "high"}},
				Modes:  []ModeChange{{Path: dir, From: 0o755, To: 0o700}}},
			{ID: "3", Kind: KindSQL, Summary: "revoke PUBLIC's privileges on public.t", Database: "shop",
				Closes: []FindingRef{{Rule: "PRIV-08", Object: "table public.t", Severity: "medium"}},
				SQL:    []string{"REVOKE INSERT ON TABLE public.t FROM PUBLIC;", "REVOKE SELECT ON TABLE public.t FROM PUBLIC"},
				Undo:   []string{"GRANT SELECT, INSERT ON TABLE public.t TO PUBLIC"}},
			{ID: "4", Kind: KindSettings, Summary: "turn ssl on", Apply: ApplyReload, After: []string{"1"},
				Closes:   []FindingRef{{Rule: "TLS-01", Object: "ssl", Severity: "high"}},
				Settings: []SettingChange{{Name: "ssl", From: "off", To: "on", Rules: []string{"TLS-01"}}}},
			{ID: "5", Kind: KindHBA, Summary: "rewrite pg_hba.conf", Apply: ApplyReload, After: []string{"4"},
				Breaks: []string{"clients still using md5 passwords will fail: roles app, etl have md5 verifiers"},
				Closes: []FindingRef{{Rule: "AUTH-01", Object: "hba rule: host all all 0.0.0.0/0 trust", Severity: "critical"},
					{Rule: "AUTH-05", Object: "hba rule: host all all 0.0.0.0/0 trust", Severity: "high"}},
				HBA: &HBARewrite{Path: hba, Lines: []LineChange{
					{Line: 2, Old: "host all all 0.0.0.0/0 trust", New: "hostssl all all 0.0.0.0/0 scram-sha-256", Rules: []string{"AUTH-01", "AUTH-05"}},
					{Line: 3, Old: "host all all ::/0 password", Rules: []string{"AUTH-05"}},
					{New: "host all all 0.0.0.0/0 reject", Rules: []string{"NET-03"}},
				}, Content: "local all all peer\nhostssl all all 0.0.0.0/0 scram-sha-256\nhost all all 0.0.0.0/0 reject\n"}},
			{ID: "6", Kind: KindSettings, Summary: "load pgaudit and auth_delay", Apply: ApplyRestart,
				Closes: []FindingRef{{Rule: "AUTH-14", Object: "auth_delay", Severity: "medium"}, {Rule: "LOG-26", Object: "pgaudit", Severity: "medium"}},
				Settings: []SettingChange{
					{Name: "shared_preload_libraries", From: "", To: "pgaudit,auth_delay", Restart: true, Rules: []string{"AUTH-14", "LOG-26"}},
					{Name: "auth_delay.milliseconds", From: "0", To: "500", Rules: []string{"AUTH-14"}},
				}},
		},
		Manual: []Manual{{FindingRef: FindingRef{Rule: "BKP-02", Object: "archive_mode", Severity: "medium"}, What: "set up WAL archiving (an archive command that works), then archive_mode = on"}},
		Held:   []Held{{FindingRef: FindingRef{Rule: "NET-01", Object: "listen_addresses", Severity: "medium"}, Why: "excluded by --exclude"}},
	}
}

// hostilePlan has names that are code in every target language: a role
// that ends a statement, a path with a blank and a quote, a database name
// with a newline.
func hostilePlan(dir string) *Plan {
	sub := filepath.Join(dir, "my dir", "o'brien")
	hba := filepath.Join(sub, "pg_hba $(touch pwned).conf")
	role := quote.Ident(hostileRole)
	return &Plan{
		FormatVersion: FormatVersion, ID: "20261201-120000-beef",
		Created: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Target: "evil\n; rm -rf / #",
		Steps: []Step{
			{ID: "1", Kind: KindCommand, Summary: "a command with hostile arguments",
				Closes:  []FindingRef{{Rule: "TLS-01", Object: "ssl", Severity: "high"}},
				Command: []string{"pgaegis", "tls", "issue", "server", "--out", sub, "--host", "a\nb; touch pwned"}},
			{ID: "2", Kind: KindFileMode, Summary: "restrict " + sub,
				Closes: []FindingRef{{Rule: "FILE-02", Object: "file " + sub + "\n-- DROP", Severity: "high"}},
				Modes:  []ModeChange{{Path: sub, From: 0o755, To: 0o700}}},
			{ID: "3", Kind: KindSQL, Summary: "drop the role's login", Database: "shop\nx' host=evil \\",
				Closes: []FindingRef{{Rule: "ROLE-01", Object: "role " + hostileRole, Severity: "high"}},
				SQL:    []string{"ALTER ROLE " + role + " NOLOGIN", "COMMENT ON ROLE " + role + " IS " + quote.Literal("x'\n\\; --")}},
			{ID: "4", Kind: KindSQL, Summary: "cluster-wide, back in the first database",
				Closes: []FindingRef{{Rule: "ROLE-02", Object: "role " + hostileRole, Severity: "high"}},
				SQL:    []string{"ALTER ROLE " + role + " CONNECTION LIMIT 1"}},
			{ID: "5", Kind: KindSettings, Summary: "search_path and libraries with hostile elements", Apply: ApplyReload,
				Closes: []FindingRef{{Rule: "SET-01", Object: "search_path", Severity: "medium"}},
				Settings: []SettingChange{
					{Name: "search_path", To: `"$user", public, "a""b, c"`, Rules: []string{"SET-01"}},
					{Name: "log_line_prefix", To: "%m [%p] ' \\n", Rules: []string{"LOG-01"}},
				}},
			{ID: "6", Kind: KindHBA, Summary: "rewrite " + hba, Apply: ApplyReload,
				Closes: []FindingRef{{Rule: "AUTH-01", Object: "hba rule: local all all trust", Severity: "critical"}},
				HBA: &HBARewrite{Path: hba, Lines: []LineChange{
					{Line: 1, Old: "local all all trust", New: `local all "` + strings.ReplaceAll(hostileRole, `"`, `""`) + `" reject`, Rules: []string{"AUTH-01"}},
				}, Content: "PGAEGIS_HBA\nlocal all \"" + strings.ReplaceAll(hostileRole, `"`, `""`) + "\" reject\n'$(touch pwned)'\n"}},
		},
	}
}

var writers = []struct {
	ext   string
	write func(*bytes.Buffer, *Plan) error
}{
	{"txt", func(b *bytes.Buffer, p *Plan) error { return WriteText(b, p) }},
	{"json", func(b *bytes.Buffer, p *Plan) error { return WriteJSON(b, p) }},
	{"sql", func(b *bytes.Buffer, p *Plan) error { return WriteSQL(b, p) }},
	{"sh", func(b *bytes.Buffer, p *Plan) error { return WriteShell(b, p) }},
}

func TestWritersGolden(t *testing.T) {
	empty := &Plan{FormatVersion: FormatVersion, ID: "20261201-120000-0000", Target: "files in /srv/pg",
		Created: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	plans := []struct {
		name string
		p    *Plan
	}{
		{"basic", basicPlan("/srv/pg data")},
		{"hostile", hostilePlan("/srv/pg")},
		{"empty", empty},
	}
	for _, tc := range plans {
		for _, w := range writers {
			t.Run(tc.name+"."+w.ext, func(t *testing.T) {
				var b bytes.Buffer
				if err := w.write(&b, tc.p); err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", tc.name+"."+w.ext)
				if *update {
					if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if b.String() != string(want) {
					t.Errorf("%s differs from the golden file (run with -update and check the diff):\n%s", golden, b.String())
				}
			})
		}
	}
}

// The JSON form reads back into the same plan.
func TestWriteJSONRoundTrip(t *testing.T) {
	for _, p := range []*Plan{basicPlan("/srv"), hostilePlan("/srv")} {
		var b bytes.Buffer
		if err := WriteJSON(&b, p); err != nil {
			t.Fatal(err)
		}
		var back Plan
		if err := json.Unmarshal(b.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&back, p) {
			t.Errorf("round trip changed the plan:\n%+v\n%+v", back, *p)
		}
	}
}

// No text a plan is made of may break out of a comment or a terminal line
// in the reviewable forms.
func TestTextIsTerminalSafe(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, hostilePlan("/srv")); err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, "rm -rf") && !strings.Contains(l, `\n`) {
			t.Errorf("line %d: the target's newline reached the output raw: %q", i+1, l)
		}
	}
	for _, w := range writers[2:] {
		var b bytes.Buffer
		w.write(&b, hostilePlan("/srv"))
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, "; rm -rf") {
				t.Errorf("%s: the target's newline ended a comment: %q", w.ext, l)
			}
		}
	}
}

func TestSplitList(t *testing.T) {
	cases := []struct {
		name, value string
		want        []string
	}{
		{"shared_preload_libraries", "pgaudit,auth_delay", []string{"pgaudit", "auth_delay"}},
		{"shared_preload_libraries", " pgaudit , auth_delay ", []string{"pgaudit", "auth_delay"}},
		{"shared_preload_libraries", `"a,b", $libdir/x y`, []string{"a,b", "$libdir/x y"}},
		{"shared_preload_libraries", "", nil},
		{"search_path", `"$user", Public`, []string{"$user", "public"}},
		{"search_path", `"a""b"`, []string{`a"b`}},
		{"log_destination", "stderr,csvlog", []string{"stderr,csvlog"}},
		{"ssl", "on", []string{"on"}},
	}
	for _, c := range cases {
		if got := SplitList(c.name, c.value); !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitList(%s, %q) = %q, want %q", c.name, c.value, got, c.want)
		}
	}
}

// AUTH-14's defect: one quoted string is one library name, and the next
// start fails. Each library must be its own literal.
func TestAlterSystemList(t *testing.T) {
	cases := []struct {
		c    SettingChange
		want string
	}{
		{SettingChange{Name: "shared_preload_libraries", To: "pgaudit,auth_delay"}, "ALTER SYSTEM SET shared_preload_libraries = 'pgaudit', 'auth_delay';"},
		{SettingChange{Name: "auth_delay.milliseconds", To: "500"}, "ALTER SYSTEM SET auth_delay.milliseconds = '500';"},
		{SettingChange{Name: "log_destination", To: "stderr,csvlog"}, "ALTER SYSTEM SET log_destination = 'stderr,csvlog';"},
		{SettingChange{Name: "ssl", To: "on"}, "ALTER SYSTEM SET ssl = 'on';"},
		{SettingChange{Name: "session_preload_libraries", To: ""}, "ALTER SYSTEM RESET session_preload_libraries;"},
		{SettingChange{Name: "log_line_prefix", To: `it's \`}, `ALTER SYSTEM SET log_line_prefix = E'it''s \\';`},
	}
	for _, c := range cases {
		if got := AlterSystem(c.c); got != c.want {
			t.Errorf("AlterSystem(%+v) = %s, want %s", c.c, got, c.want)
		}
	}
}

// TestListSettingsMatchServer asks a real server which settings ALTER
// SYSTEM quotes element by element (GUC_LIST_QUOTE), and checks that what
// AlterSystem writes reads back as the same elements.
func TestListSettingsMatchServer(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT name FROM pg_settings WHERE vartype = 'string' AND context NOT IN ('internal') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	fileValue := func(name string) (string, bool) {
		var v string
		err := c.QueryRow(ctx, `SELECT setting FROM pg_file_settings WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1`, name).Scan(&v)
		return v, err == nil
	}
	quoted := map[string]bool{}
	for _, n := range names {
		// Two elements, one needing quotes as an identifier: a quoting list
		// stores it in double quotes, any other list stores it as it is.
		if _, err := c.Exec(ctx, "ALTER SYSTEM SET "+quote.Ident(n)+" = 'A B', 'c'"); err != nil {
			continue // not a list, or a value its check refuses
		}
		v, ok := fileValue(n)
		if !ok {
			t.Fatalf("%s: not in pg_file_settings after ALTER SYSTEM", n)
		}
		quoted[n] = strings.HasPrefix(v, `"A B"`)
		if _, err := c.Exec(ctx, "ALTER SYSTEM RESET "+quote.Ident(n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		if quoted[n] != ListSetting(n) {
			t.Errorf("%s: server quotes list elements: %v; ListSetting: %v", n, quoted[n], ListSetting(n))
		}
	}
	// What AlterSystem writes, the server reads back element by element.
	for _, sc := range []SettingChange{
		{Name: "shared_preload_libraries", To: "pgaudit,auth_delay"},
		{Name: "shared_preload_libraries", To: `pgaudit, "a""b, c", $libdir/x y`},
		{Name: "search_path", To: `"$user", public, "A B"`},
		{Name: "session_preload_libraries", To: ""},
	} {
		if _, err := c.Exec(ctx, AlterSystem(sc)); err != nil {
			t.Fatalf("%s: %v", AlterSystem(sc), err)
		}
		v, ok := fileValue(sc.Name)
		if sc.To == "" {
			if ok {
				t.Errorf("%s: an empty list should be reset, auto.conf has %q", sc.Name, v)
			}
			continue
		}
		if !ok {
			t.Fatalf("%s: not in auto.conf", sc.Name)
		}
		if got, want := SplitList(sc.Name, v), SplitList(sc.Name, sc.To); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the server stored %q (elements %q), want elements %q", AlterSystem(sc), v, got, want)
		}
		c.Exec(ctx, "ALTER SYSTEM RESET "+sc.Name)
	}
}

// The shell script parses, and run against a real server it changes only
// what the plan names: each hostile path stays one argument.
func TestShellScriptRuns(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	db := "shop\nx' host=evil \\"
	if err := srv.Exec(ctx, "CREATE DATABASE "+quote.Ident(db), "CREATE ROLE "+quote.Ident(hostileRole)+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := hostilePlan(dir)
	sub := p.Steps[1].Modes[0].Path
	hba := p.Steps[5].HBA.Path
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, []byte("local all all trust\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	// argv of the pgaegis command, as the script passes it.
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	argvFile := filepath.Join(dir, "argv")
	os.WriteFile(filepath.Join(bin, "pgaegis"), []byte("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > "+quote.Shell(argvFile)+"\n"), 0o755)

	var script bytes.Buffer
	if err := WriteShell(&script, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plan.sh")
	os.WriteFile(path, script.Bytes(), 0o700)
	if out, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
	psqlDir := srv.BinDir
	cmd := exec.Command("sh", path)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+psqlDir+":"+os.Getenv("PATH"), "PGHOST=127.0.0.1",
		"PGPORT="+strconv.Itoa(srv.Port), "PGUSER=postgres", "PGPASSWORD="+srv.Password, "PGDATABASE=postgres")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("running the script: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("a name in the plan ran as a command")
	}
	argv, _ := os.ReadFile(argvFile)
	if got := strings.Split(strings.TrimSuffix(string(argv), "\x00"), "\x00"); !reflect.DeepEqual(got, p.Steps[0].Command[1:]) {
		t.Errorf("command argv = %q, want %q", got, p.Steps[0].Command[1:])
	}
	if st, err := os.Stat(sub); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("chmod: %v %v", st.Mode(), err)
	}
	got, _ := os.ReadFile(hba)
	if string(got) != p.Steps[5].HBA.Content {
		t.Errorf("pg_hba.conf = %q, want %q", got, p.Steps[5].HBA.Content)
	}
	if st, _ := os.Stat(hba); st.Mode().Perm() != 0o640 {
		t.Errorf("pg_hba.conf mode %v, want it kept (0640)", st.Mode().Perm())
	}
	if bak, _ := os.ReadFile(hba + ".pgaegis-" + p.ID + ".bak"); string(bak) != "local all all trust\n" {
		t.Errorf("backup = %q", bak)
	}
	checkApplied(t, srv, db)
}

// checkApplied checks what the hostile plan's SQL and settings steps did.
func checkApplied(t *testing.T, srv *localpg.Server, db string) {
	t.Helper()
	ctx := pgtest.Ctx(t)
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var login bool
	var limit int
	var comment *string
	if err := c.QueryRow(ctx, `SELECT rolcanlogin, rolconnlimit, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1`, hostileRole).Scan(&login, &limit, &comment); err != nil {
		t.Fatal(err)
	}
	if login || limit != 1 || comment == nil || *comment != "x'\n\\; --" {
		t.Errorf("role after the plan: login %v, limit %d, comment %v", login, limit, comment)
	}
	var n int
	c.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname IN ('x', 'evil')`).Scan(&n)
	var sp, llp string
	c.QueryRow(ctx, `SELECT setting FROM pg_file_settings WHERE name = 'search_path' ORDER BY seqno DESC LIMIT 1`).Scan(&sp)
	c.QueryRow(ctx, `SELECT setting FROM pg_file_settings WHERE name = 'log_line_prefix' ORDER BY seqno DESC LIMIT 1`).Scan(&llp)
	if want := `"$user", public, "a""b, c"`; sp != want {
		t.Errorf("search_path in auto.conf = %q, want %q", sp, want)
	}
	if want := "%m [%p] ' \\n"; llp != want {
		t.Errorf("log_line_prefix in auto.conf = %q, want %q", llp, want)
	}
	_ = db
}

// The SQL script runs through psql against a real server: \connect
// reaches the database with the hostile name, each statement runs once.
func TestSQLScriptRuns(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	db := "shop\nx' host=evil \\"
	if err := srv.Exec(ctx, "CREATE DATABASE "+quote.Ident(db), "CREATE ROLE "+quote.Ident(hostileRole)+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	// A table only in the hostile database proves which database step 3 ran in.
	p := hostilePlan(t.TempDir())
	p.Steps[2].SQL = append(p.Steps[2].SQL, "CREATE TABLE ran_here (x int)")
	// Step 4 runs back in the first database.
	p.Steps[3].SQL = append(p.Steps[3].SQL, "CREATE TABLE home_again (x int)")
	var script bytes.Buffer
	if err := WriteSQL(&script, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan.sql")
	os.WriteFile(path, script.Bytes(), 0o600)
	cmd := exec.Command(filepath.Join(srv.BinDir, "psql"), "-X", "-q", "-f", path)
	cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(srv.Port), "PGUSER=postgres",
		"PGPASSWORD="+srv.Password, "PGDATABASE=postgres")
	if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), "ERROR") {
		t.Fatalf("psql -f: %v\n%s\n%s", err, out, script.String())
	}
	checkApplied(t, srv, db)
	for _, c := range []struct{ db, table string }{{db, "ran_here"}, {"postgres", "home_again"}} {
		conn, err := srv.Connect(ctx, c.db)
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, "public."+c.table).Scan(&ok)
		conn.Close(ctx)
		if !ok {
			t.Errorf("table %s not in database %q", c.table, c.db)
		}
	}
}

// pg_hba.conf may hold LDAP/RADIUS credentials: no output carries them.
func TestWritersMaskHBACredentials(t *testing.T) {
	const secret = "s3cr3t-bind-pw"
	p := &Plan{ID: "20261202-000000-0001", Steps: []Step{{ID: "1", Kind: KindHBA, Apply: ApplyReload, Summary: "rewrite pg_hba.conf",
		HBA: &HBARewrite{Path: "/data/pg_hba.conf", Content: "hostssl all all 10.0.0.0/8 ldap ldapserver=ldap.example ldapbinddn=\"cn=x\" ldapbindpasswd=" + secret + " ldapsearchattribute=uid\nhostssl all all ::/0 reject\n",
			Lines: []LineChange{{Line: 2, New: "hostssl all all ::/0 reject", Rules: []string{"AUTH-07.final-reject"}}}}}}}
	for name, w := range map[string]func(io.Writer, *Plan) error{"text": WriteText, "json": WriteJSON, "sql": WriteSQL, "sh": WriteShell} {
		var b strings.Builder
		if err := w(&b, p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(b.String(), secret) {
			t.Errorf("%s output carries the LDAP bind password:\n%s", name, b.String())
		}
	}
}

// A library's own parameters are refused until a restart loads it: the
// scripts stop before those steps and finish after the restart.
func TestScriptsSplitAtTheRestart(t *testing.T) {
	p := &Plan{ID: "20261202-000000-0002", Steps: []Step{
		{ID: "1", Kind: KindSettings, Apply: ApplyRestart, Settings: []SettingChange{{Name: "shared_preload_libraries", To: "pgaudit", Restart: true}}},
		{ID: "2", Kind: KindSettings, Apply: ApplyReload, After: []string{"1"}, Settings: []SettingChange{{Name: "pgaudit.log", To: "ddl,role"}}},
	}}
	var sh, sql strings.Builder
	if err := WriteShell(&sh, p); err != nil {
		t.Fatal(err)
	}
	if err := WriteSQL(&sql, p); err != nil {
		t.Fatal(err)
	}
	restart, later := strings.Index(sh.String(), "RESTART NEEDED"), strings.Index(sh.String(), "pgaudit.log")
	if restart < 0 || later < restart || !strings.Contains(sh.String(), "PGAEGIS_AFTER_RESTART") {
		t.Errorf("sh script does not restart before step 2:\n%s", sh.String())
	}
	cmd := exec.Command("sh", "-n")
	cmd.Stdin = strings.NewReader(sh.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v %s", err, out)
	}
	q := sql.String()
	if i, j := strings.Index(q, `\quit`), strings.Index(q, "pgaudit.log"); !strings.Contains(q, `\if :{?after_restart}`) || i < 0 || j < i {
		t.Errorf("sql script does not stop before step 2:\n%s", q)
	}
}
