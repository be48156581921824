package rules

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// collectLive audits srv as its admin, with its files.
func collectLive(t *testing.T, srv *localpg.Server) *snapshot.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), DataDir: srv.DataDir})
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	return s
}

const etPassword = "et-Secret-7" // test roles' password: loopback throwaway servers only

// connectAs opens a connection as role (password etPassword).
func connectAs(t *testing.T, srv *localpg.Server, role, db string) *pgx.Conn {
	t.Helper()
	cfg := srv.ConnConfig(db)
	cfg.User, cfg.Password = role, etPassword
	c, err := pgx.ConnectConfig(pgtest.Ctx(t), cfg)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	return c
}

// tryReplace asks the server whether role can replace fn's body (alter
// false) or alter it (alter true: ALTER FUNCTION ... SET, which needs only
// the owner's rights), owned by owner, by any route: directly (it has the owner's privileges), by SET
// ROLE to the owner, or by granting itself the owner first. Everything
// is rolled back.
func tryReplace(t *testing.T, srv *localpg.Server, role, owner, fn string, alter bool) bool {
	t.Helper()
	ctx := pgtest.Ctx(t)
	c := connectAs(t, srv, role, "postgres")
	defer c.Close(ctx)
	replace := "CREATE OR REPLACE FUNCTION " + fn + " RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN NULL; END$$"
	if alter {
		replace = "ALTER FUNCTION " + fn + " SET work_mem = '1MB'"
	}
	for _, route := range [][]string{
		{replace},
		{"SET ROLE " + quote.Ident(owner), replace},
		{"GRANT " + quote.Ident(owner) + " TO " + quote.Ident(role), "SET ROLE " + quote.Ident(owner), replace},
	} {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for _, q := range route {
			if _, err := tx.Exec(ctx, q); err != nil {
				ok = false
				break
			}
		}
		_ = tx.Rollback(ctx)
		if ok {
			return true
		}
	}
	return false
}

// TestEventTriggerReplacers compares the collector's "who can replace an
// event trigger's function" with the server's answer (real replacement
// attempts) on a role graph covering each major's rules: plain, inherited,
// NOINHERIT, 16's per-grant INHERIT/SET/ADMIN options, ADMIN-only,
// chains, CREATEROLE (which before 16 could grant itself any role that is
// not a superuser) and a superuser-owned function. Then it runs the
// escalation itself: the function's owner replaces the body, a superuser
// fires the trigger (logs in on 17+, runs DDL everywhere) and the owner
// becomes a superuser; the rule fails on that server and passes once the
// function belongs to a superuser.
func eventTriggerReplacers(t *testing.T, srv *localpg.Server, major int) {
	start := time.Now()
	ctx := pgtest.Ctx(t)
	pw := quote.Literal(etPassword)
	stmts := []string{
		"CREATE ROLE fnowner LOGIN PASSWORD " + pw,
		"CREATE ROLE m_plain LOGIN PASSWORD " + pw, "GRANT fnowner TO m_plain",
		"CREATE ROLE m_noinh NOINHERIT LOGIN PASSWORD " + pw, "GRANT fnowner TO m_noinh",
		"CREATE ROLE m_admin LOGIN PASSWORD " + pw,
		"CREATE ROLE m_chain LOGIN PASSWORD " + pw, "GRANT m_plain TO m_chain",
		"CREATE ROLE cr LOGIN CREATEROLE PASSWORD " + pw,
		"CREATE ROLE plain LOGIN PASSWORD " + pw,
		"CREATE ROLE suowner SUPERUSER LOGIN PASSWORD " + pw,
		"CREATE ROLE su_member LOGIN PASSWORD " + pw, "GRANT suowner TO su_member",
		"CREATE ROLE dba SUPERUSER LOGIN PASSWORD " + pw,
	}
	if major >= 16 {
		stmts = append(stmts,
			"GRANT fnowner TO m_admin WITH ADMIN TRUE, INHERIT FALSE, SET FALSE",
			"CREATE ROLE m_setonly LOGIN PASSWORD "+pw, "GRANT fnowner TO m_setonly WITH INHERIT FALSE, SET TRUE",
			"CREATE ROLE m_none LOGIN PASSWORD "+pw, "GRANT fnowner TO m_none WITH INHERIT FALSE, SET FALSE",
			"CREATE ROLE m_inhonly LOGIN PASSWORD "+pw, "GRANT fnowner TO m_inhonly WITH INHERIT TRUE, SET FALSE")
	} else {
		stmts = append(stmts, "GRANT fnowner TO m_admin WITH ADMIN OPTION")
	}
	event := "ddl_command_start"
	if major >= 17 {
		event = "login"
	}
	stmts = append(stmts,
		"CREATE FUNCTION public.et_fn() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN NULL; END$$",
		"ALTER FUNCTION public.et_fn() OWNER TO fnowner",
		// The owner needs CREATE on the schema to replace the body
		// (public has none for PUBLIC from 15); m_plain has its own.
		"GRANT CREATE ON SCHEMA public TO fnowner", "CREATE SCHEMA plainsch AUTHORIZATION plain",
		"CREATE EVENT TRIGGER et_weak ON "+event+" EXECUTE FUNCTION public.et_fn()",
		"CREATE FUNCTION public.et_su() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN NULL; END$$",
		"ALTER FUNCTION public.et_su() OWNER TO suowner",
		"CREATE EVENT TRIGGER et_su ON ddl_command_end EXECUTE FUNCTION public.et_su()",
		// dba owns its trigger and function, then is demoted.
		"SET ROLE dba",
		"CREATE FUNCTION public.et_dba() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN NULL; END$$",
		"CREATE EVENT TRIGGER et_dba ON sql_drop EXECUTE FUNCTION public.et_dba()",
		"RESET ROLE", "ALTER ROLE dba NOSUPERUSER")
	if err := srv.Exec(ctx, stmts...); err != nil {
		t.Fatal(err)
	}
	s := collectLive(t, srv)
	var pg *snapshot.Database
	for i := range s.Databases {
		if s.Databases[i].Name == "postgres" {
			pg = &s.Databases[i]
		}
	}
	if pg == nil || len(pg.EventTriggers) != 3 {
		t.Fatalf("want 3 event triggers in postgres, got %+v", pg)
	}
	// The oracle: every role that is not a superuser, against each
	// trigger's function.
	var roles []string
	for _, r := range s.Roles {
		if !r.Superuser && r.CanLogin && r.Name != "md5role" { // md5role: versionBranches', another password
			roles = append(roles, r.Name)
		}
	}
	cases, dis := 0, 0
	for _, et := range pg.EventTriggers {
		for _, r := range roles {
			for _, alter := range []bool{false, true} {
				cases++
				got := slices.Contains(et.Replacers, r)
				if alter {
					got = slices.Contains(et.OwnerActors, r)
				}
				want := tryReplace(t, srv, r, et.FunctionOwner, et.Function, alter)
				if got != want {
					dis++
					t.Errorf("pg%d %s: role %s can change %s (alter %v): server %v, collector %v", major, et.Name, r, et.Function, alter, want, got)
				}
			}
		}
	}
	t.Logf("ORACLE event-trigger-replacers pg%d: cases=%d disagreements=%d seconds=%.1f", major, cases, dis, time.Since(start).Seconds())
	// Version branches the oracle must have seen: CREATEROLE counts
	// before 16 only, 16's SET-less memberships do not count.
	weak := pg.EventTriggers[slices.IndexFunc(pg.EventTriggers, func(e snapshot.EventTrigger) bool { return e.Name == "et_weak" })]
	if got := slices.Contains(weak.OwnerActors, "cr"); got != (major < 16) {
		t.Errorf("pg%d: CREATEROLE role counted as replacer = %v", major, got)
	}

	fs := Run(s)
	byObj := map[string]Finding{}
	for _, f := range fs {
		if f.Rule == "PRIV-02.event-triggers" {
			byObj[f.Object] = f
		}
	}
	for obj, want := range map[string]Status{
		"event trigger postgres.et_weak": Fail, "event trigger postgres.et_su": Fail,
		"event trigger postgres.et_dba": Fail, "event trigger postgres.et_dba owner": Fail,
	} {
		if f, ok := byObj[obj]; !ok || f.Status != want {
			t.Errorf("pg%d %s: want %s, got %+v", major, obj, want, f)
		}
	}
	if f := byObj["event trigger postgres.et_weak"]; f.Severity != Critical || !strings.Contains(f.Evidence, event) {
		t.Errorf("pg%d et_weak: %s %s", major, f.Severity, f.Evidence)
	}

	// The escalation: fnowner replaces the body; a superuser fires it.
	c := connectAs(t, srv, "fnowner", "postgres")
	_, err := c.Exec(ctx, `CREATE OR REPLACE FUNCTION public.et_fn() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
			EXECUTE 'ALTER ROLE fnowner SUPERUSER'; END IF; END$$`)
	c.Close(ctx)
	if err != nil {
		t.Fatalf("pg%d: the owner could not replace the function: %v", major, err)
	}
	isSuper := func() bool {
		a, err := srv.Connect(ctx, "postgres") // on 17+ this login fires et_weak
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close(ctx)
		var b bool
		if err := a.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = 'fnowner'").Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if major >= 17 {
		if !isSuper() {
			t.Fatalf("pg%d: a superuser's login did not run the replaced login trigger", major)
		}
	} else {
		if isSuper() {
			t.Fatalf("pg%d: fnowner is a superuser before any DDL", major)
		}
		if err := srv.Exec(ctx, "CREATE TABLE et_bait()"); err != nil {
			t.Fatal(err)
		}
		if !isSuper() {
			t.Fatalf("pg%d: a superuser's DDL did not run the replaced ddl_command_start trigger", major)
		}
	}
	// The replaced login trigger fails in a read-only session (the
	// audit's own), and a failing login trigger refuses the login: drop it
	// before the next steps audit this server again.
	if err := srv.Exec(ctx, "DROP EVENT TRIGGER et_weak"); err != nil {
		t.Fatal(err)
	}
}

// TestEventTriggerClean: a trigger whose function and owner are
// superusers', with no one else acting as them, passes on every major.
func eventTriggerClean(t *testing.T, srv *localpg.Server, major int) {
	ctx := pgtest.Ctx(t)
	event := "ddl_command_start"
	if major >= 17 {
		event = "login"
	}
	if err := srv.Exec(ctx, "CREATE ROLE cleanrole LOGIN PASSWORD "+quote.Literal(etPassword),
		"CREATE FUNCTION public.et_fn() RETURNS event_trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$BEGIN NULL; END$$",
		"CREATE EVENT TRIGGER et_ok ON "+event+" EXECUTE FUNCTION public.et_fn()"); err != nil {
		t.Fatal(err)
	}
	s := collectLive(t, srv)
	n := 0
	for _, f := range Run(s) {
		if f.Rule != "PRIV-02.event-triggers" {
			continue
		}
		n++
		if f.Status != Pass || f.Object != "event trigger postgres.et_ok" {
			t.Errorf("pg%d: %s %s %s", major, f.Status, f.Object, f.Evidence)
		}
	}
	if n != 1 {
		t.Errorf("pg%d: %d findings, want the trigger's pass", major, n)
	}
	if tryReplace(t, srv, "cleanrole", srv.AdminUser, "public.et_fn()", false) || tryReplace(t, srv, "cleanrole", srv.AdminUser, "public.et_fn()", true) {
		t.Errorf("pg%d: a role that is not a superuser replaced a superuser's function", major)
	}
	if err := srv.Exec(ctx, "DROP EVENT TRIGGER et_ok", "DROP FUNCTION public.et_fn()", "DROP ROLE cleanrole"); err != nil {
		t.Fatal(err)
	}
}

// TestLogConnectionsOracle sets log_connections to generated values on a
// real server of each major and compares what LOG-19 reads from the value
// (logConnAspects) with what the server does: refuses it (ALTER SYSTEM),
// or logs which of "connection received/authenticated/authorized" for a
// new connection. 18 reads a list; older majors a boolean.
func logConnectionsOracle(t *testing.T, srv *localpg.Server, major int) {
	start := time.Now()
	ctx := pgtest.Ctx(t)
	values := []string{"on", "off", "true", "false", "yes", "no", "1", "0", "tr", "of", "y", "", "receipt", "Receipt,AUTHENTICATION",
		" receipt , authorization ", "all", "setup_durations", "receipt,authentication,authorization", "receipt,all", "bogus", "receipt,,authorization", "on,receipt", "ON", " True", "No"}
	rng := rand.New(rand.NewPCG(uint64(major), 14))
	words := []string{"receipt", "authentication", "authorization", "setup_durations", "all"}
	for len(values) < 40 {
		var parts []string
		for _, w := range words {
			if rng.IntN(2) == 0 {
				if rng.IntN(3) == 0 {
					w = strings.ToUpper(w[:1]) + w[1:]
				}
				parts = append(parts, w)
			}
		}
		rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		values = append(values, strings.Join(parts, ","))
	}
	aspects := map[string]string{"receipt": "connection received:", "authentication": "connection authenticated:", "authorization": "connection authorized:"}
	cases, dis := 0, 0
	for _, v := range values {
		got, valid := logConnAspects(major, v)
		err := srv.Exec(ctx, "ALTER SYSTEM SET log_connections = "+quote.Literal(v), "SELECT pg_reload_conf()")
		cases++
		if (err == nil) != valid {
			dis++
			t.Errorf("pg%d log_connections = %q: server accepts %v, LOG-19 reads valid %v (%v)", major, v, err == nil, valid, err)
			continue
		}
		if err != nil {
			continue
		}
		// The reload is asynchronous: wait until a new session sees it.
		want := "off"
		if major >= 18 {
			want = v
		} else if b, _ := guc.ParseBool(v); b {
			want = "on"
		}
		for i := 0; ; i++ {
			c, err := srv.Connect(ctx, "postgres")
			if err != nil {
				t.Fatal(err)
			}
			var shown string
			_ = c.QueryRow(ctx, "SHOW log_connections").Scan(&shown)
			c.Close(ctx)
			if shown == want || i > 100 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		before, _ := os.ReadFile(srv.LogFile)
		c, err := srv.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Exec(ctx, "SELECT 1")
		c.Close(ctx)
		after, _ := os.ReadFile(srv.LogFile)
		logged := string(after[len(before):])
		for a, line := range aspects {
			cases++
			if strings.Contains(logged, line) != got[a] {
				dis++
				t.Errorf("pg%d log_connections = %q: server logs %s %v, LOG-19 reads %v", major, v, a, strings.Contains(logged, line), got[a])
			}
		}
	}
	t.Logf("ORACLE log-connections pg%d: cases=%d disagreements=%d seconds=%.1f", major, cases, dis, time.Since(start).Seconds())
}

// TestVersionBranchesOnEveryMajor audits a real server of every major
// (collect, then Run) and checks that each rule that branches on the
// version says what that major does: end of life (13 ended 2025-11-13, 14
// 2026-11-12), 18's checksums default, allow_alter_system (17+),
// log_connections (a list from 18), md5's deprecation (18), CREATEROLE
// before and after 16 and createrole_self_grant (16+).
func versionBranches(t *testing.T, srv *localpg.Server, major int) {
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, "SET password_encryption = 'md5'", "CREATE ROLE md5role LOGIN PASSWORD 'not-this-one-9'",
		"RESET password_encryption", "CREATE ROLE crole CREATEROLE"); err != nil {
		t.Fatal(err)
	}
	fs := Run(collectLive(t, srv))
	find := func(rule, object string) Finding {
		for _, f := range fs {
			if f.Rule == rule && (object == "" || f.Object == object) {
				return f
			}
		}
		t.Fatalf("pg%d: no %s finding for %q", major, rule, object)
		return Finding{}
	}
	text := func(f Finding) string { return f.Evidence + " | " + f.Expected + " | " + f.Reason }
	type branch struct {
		rule, object string
		status       Status
		contains     string // in evidence, expected or reason ("" for none)
		absent       string // must not be there
	}
	bs := []branch{
		{"INST-06", fmt.Sprintf("PostgreSQL %d", major), map[bool]Status{true: Fail, false: Pass}[major <= 14],
			map[bool]string{true: "reached end of life", false: "supported until"}[major <= 14], ""},
		{"INST-04", "setting data_checksums", map[bool]Status{true: Pass, false: Fail}[major >= 18], "", "initdb enables checksums by default"},
		{"LOG-19", "setting log_connections", Fail, map[bool]string{true: "receipt, authentication and authorization", false: "log_connections = on"}[major >= 18], ""},
		{"AUTH-11.verifiers", "role md5role", Fail, map[bool]string{true: "deprecated in PostgreSQL 18", false: "md5 password verifier"}[major >= 18],
			map[bool]string{true: "", false: "deprecated"}[major >= 18]},
		{"AUTH-11", "setting password_encryption", Pass, map[bool]string{true: "md5_password_warnings = off", false: ""}[major >= 18],
			map[bool]string{true: "", false: "md5_password_warnings"}[major >= 18]},
		{"PRIV-01", "role crole", Fail, map[bool]string{true: "createrole_self_grant = \"set, inherit\"", false: "can grant itself any role"}[major >= 16], ""},
	}
	if major >= 17 {
		bs = append(bs, branch{"EXT-09", "setting allow_alter_system", Fail, "not against a superuser", ""})
	} else {
		bs = append(bs, branch{"EXT-09", "setting allow_alter_system", NotChecked, "has no allow_alter_system parameter", ""})
	}
	for _, b := range bs {
		f := find(b.rule, b.object)
		if f.Status != b.status || (b.contains != "" && !strings.Contains(text(f), b.contains)) || (b.absent != "" && strings.Contains(text(f), b.absent)) {
			t.Errorf("pg%d %s %s: %s: %s (want %s with %q, without %q)", major, b.rule, b.object, f.Status, text(f), b.status, b.contains, b.absent)
		}
	}
	// CREATEROLE is a superuser in waiting before 16 only.
	if f := find("PRIV-01", "role crole"); (f.Severity == High) != (major < 16) {
		t.Errorf("pg%d PRIV-01 CREATEROLE severity %s", major, f.Severity)
	}
}

// TestOAuthLines: what the rules say about pg_hba.conf's oauth method
// (PostgreSQL 18): a line that admits connections without TLS sends the
// bearer token in clear (critical; medium on loopback), hostssl is the
// only strong form; and what a real server of each major does with such
// a line: 13-17 do not know the method, 18 wants a validator, and both are
// load errors AUTH-18 reports.
func TestOAuthLines(t *testing.T) {
	lines := []struct {
		text string
		sev  Severity // AUTH-05's; Info for "passes"
	}{
		{"host all all 10.0.0.0/8 oauth issuer=https://issuer.example scope=openid", Critical},
		{"hostnossl all all 10.0.0.0/8 oauth issuer=https://issuer.example scope=openid", Critical},
		{"host all all 127.0.0.1/32 oauth issuer=https://issuer.example scope=openid", Medium},
		{"hostssl all all 10.0.0.0/8 oauth issuer=https://issuer.example scope=openid", Info},
	}
	for _, l := range lines {
		f := strings.Fields(l.text)
		r := hbaRuleForTest(t, l.text, f[0], f[3], f[4])
		s := &snapshot.Snapshot{Server: &snapshot.Server{VersionNum: 180004}, HBA: &snapshot.HBA{Source: "file", Rules: []hba.Rule{r}}}
		var got *Finding
		for _, x := range Run(s) {
			if x.Rule == "AUTH-05" && x.Status == Fail {
				got = &x
			}
		}
		switch {
		case l.sev == Info && got != nil:
			t.Errorf("%s: AUTH-05 fails: %s", l.text, got.Evidence)
		case l.sev != Info && (got == nil || got.Severity != l.sev || !strings.Contains(got.Evidence, "OAuth bearer token")):
			t.Errorf("%s: want AUTH-05 %s, got %+v", l.text, l.sev, got)
		}
	}
}

// oauthOnServer: a real server's answer to an oauth line (see TestOAuthLines).
func oauthOnServer(t *testing.T, srv *localpg.Server, major int) {
	line := "hostssl all all 10.0.0.0/8 oauth issuer=https://issuer.example scope=openid"
	// Appended after the start and not reloaded: pg_hba_file_rules
	// reads the file as it is on disk, the running rules stay.
	hbaPath := srv.DataDir + "/pg_hba.conf"
	old, err := os.ReadFile(hbaPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hbaPath, append(old, []byte("\n"+line+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, f := range Run(collectLive(t, srv)) {
		if f.Rule == "AUTH-18" && f.Status == Fail {
			errs = append(errs, f.Evidence)
		}
	}
	t.Logf("pg%d oauth line: AUTH-18 %q", major, errs)
	if len(errs) == 0 || !strings.Contains(strings.Join(errs, " "), "oauth") {
		t.Errorf("pg%d: an oauth line without a validator loaded without error: %q", major, errs)
	}
}

func hbaRuleForTest(t *testing.T, text, typ, cidr, method string) hba.Rule {
	t.Helper()
	p := netip.MustParsePrefix(cidr)
	return hba.Rule{File: "pg_hba.conf", Line: 1, Text: text, Type: typ, Databases: []hba.Token{{Value: "all"}}, Users: []hba.Token{{Value: "all"}},
		AddrKind: hba.AddrCIDR, Address: p.Addr().String(), Addr: p.Addr(), Bits: p.Bits(), Mask: maskOf(p), Method: method}
}

func maskOf(p netip.Prefix) netip.Addr {
	b := make([]byte, 4)
	for i := 0; i < p.Bits(); i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4([4]byte(b))
}

// TestMajors runs the version checks above on one server per major, one
// after another on it (a server per check made the package too slow for
// the shared machine): the version branches of the rules on a fresh
// cluster, then the event-trigger checks, the log_connections oracle, and
// last the oauth line (which leaves pg_hba.conf broken on disk).
func TestMajors(t *testing.T) {
	old := Now
	Now = func() time.Time { return time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { Now = old })
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		var conf []string
		if major >= 18 {
			conf = append(conf, "md5_password_warnings = off")
		}
		if major >= 16 {
			conf = append(conf, "createrole_self_grant = 'set, inherit'")
		}
		srv := pgtest.StartMajor(t, major, localpg.Options{Conf: conf})
		for _, step := range []struct {
			name string
			fn   func(*testing.T, *localpg.Server, int)
		}{
			{"version-branches", versionBranches}, {"event-trigger-clean", eventTriggerClean},
			{"event-trigger-replacers", eventTriggerReplacers}, {"log-connections", logConnectionsOracle}, {"oauth-line", oauthOnServer},
		} {
			if !t.Run(step.name, func(t *testing.T) { step.fn(t, srv, major) }) {
				return
			}
		}
	})
}
