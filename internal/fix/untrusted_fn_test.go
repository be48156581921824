package fix_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/fixtest"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/privileges"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Functions in untrusted languages (C, plpython3u, plperlu) that PUBLIC
// or a group may execute are escalation chains, a widely callable
// superuser SECURITY DEFINER function is a medium review; pgcrypto's C
// functions are not flagged; the planned REVOKEs, applied on the server,
// close every such finding and leave a second plan empty.
func TestUntrustedFunctionChainsOnServer(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{AdminUser: sqlRunner})
	ctx := context.Background()
	if err := srv.Exec(ctx,
		"CREATE ROLE ufa LOGIN", "CREATE ROLE ufb LOGIN", "CREATE ROLE ufsolo LOGIN",
		"CREATE ROLE ufgrp NOLOGIN", "GRANT ufgrp TO ufa",
		"CREATE DATABASE ufdb", "CREATE DATABASE ufclean",
	); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "ufclean", "CREATE EXTENSION pgcrypto", "CREATE EXTENSION plpython3u"); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "ufdb",
		"CREATE EXTENSION pgcrypto", "CREATE EXTENSION plpython3u", "CREATE EXTENSION plperlu",
		// PUBLIC (the default ACL), in each untrusted language.
		"CREATE FUNCTION public.py_pub() RETURNS int LANGUAGE plpython3u AS 'return 1'",
		"CREATE FUNCTION public.pl_pub() RETURNS int LANGUAGE plperlu AS 'return 1;'",
		// A C function declared on a pgcrypto symbol, outside the extension.
		"CREATE FUNCTION public.c_pub(bytea, text) RETURNS bytea LANGUAGE c STRICT AS '$libdir/pgcrypto', 'pg_digest'",
		// Through a group role a login role inherits.
		"CREATE FUNCTION public.pl_grp() RETURNS int LANGUAGE plperlu AS 'return 2;'",
		"REVOKE EXECUTE ON FUNCTION public.pl_grp() FROM PUBLIC", "GRANT EXECUTE ON FUNCTION public.pl_grp() TO ufgrp",
		// PUBLIC and a group: both grants must go for the chain to end.
		`CREATE SCHEMA "u""f"`,
		`CREATE FUNCTION "u""f"."mi xed"(a text) RETURNS int LANGUAGE plpython3u AS 'return 3'`,
		`GRANT EXECUTE ON FUNCTION "u""f"."mi xed"(text) TO ufgrp`, `GRANT USAGE ON SCHEMA "u""f" TO PUBLIC`,
		// No finding: revoked from PUBLIC, or granted to one login role.
		"CREATE FUNCTION public.py_none() RETURNS int LANGUAGE plpython3u AS 'return 4'",
		"REVOKE EXECUTE ON FUNCTION public.py_none() FROM PUBLIC",
		"CREATE FUNCTION public.py_solo() RETURNS int LANGUAGE plpython3u AS 'return 5'",
		"REVOKE EXECUTE ON FUNCTION public.py_solo() FROM PUBLIC", "GRANT EXECUTE ON FUNCTION public.py_solo() TO ufsolo",
		// A pinned superuser SECURITY DEFINER function anyone may call.
		"CREATE FUNCTION public.sd_review() RETURNS int LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'BEGIN RETURN 6; END'",
	); err != nil {
		t.Fatal(err)
	}
	snap, findings := fixtest.Audit(t, srv)

	// The collection: planted functions marked untrusted, pgcrypto's C
	// functions (extension members, not SECURITY DEFINER) not collected.
	for _, d := range snap.Databases {
		for _, f := range d.Functions {
			if f.Extension == "pgcrypto" {
				t.Errorf("database %s: pgcrypto's %s collected", d.Name, f.Signature())
			}
			if d.Name == "ufdb" && strings.Contains(f.Name, "_") && f.Schema == "public" && !f.Untrusted && f.Name != "sd_review" {
				t.Errorf("%s (language %s) not marked untrusted", f.Signature(), f.Language)
			}
		}
	}

	// The chains pgaegis escalations prints.
	chains := map[string][]string{}
	for _, ch := range privileges.Build(snap).Escalations(snap) {
		if ch.Kind == "untrusted-function" || ch.Kind == "security-definer" {
			chains[ch.Kind+" "+ch.Object] = append(chains[ch.Kind+" "+ch.Object], ch.Role)
		}
	}
	for _, tc := range []struct {
		key   string
		roles string
	}{
		{"untrusted-function function ufdb.public.py_pub()", "ufa ufb ufsolo"},
		{"untrusted-function function ufdb.public.pl_pub()", "ufa ufb ufsolo"},
		{"untrusted-function function ufdb.public.c_pub(bytea, text)", "ufa ufb ufsolo"},
		{"untrusted-function function ufdb.public.pl_grp()", "ufa"},
		{`untrusted-function function ufdb.u"f.mi xed(a text)`, "ufa ufb ufsolo"},
		{"security-definer function ufdb.public.sd_review()", "ufa ufb ufsolo"},
	} {
		got := strings.Join(chains[tc.key], " ")
		delete(chains, tc.key)
		if !sameWords(got, tc.roles) {
			t.Errorf("%s: chains for %q, want %q", tc.key, got, tc.roles)
		}
	}
	for k, roles := range chains {
		t.Errorf("unexpected chain %s for %v", k, roles)
	}
	untrustedOracle(t, srv, snap)

	// The findings, their severity and printed fix.
	want := map[string]rules.Severity{
		"every login role via function ufdb.public.py_pub()":           rules.Critical,
		"every login role via function ufdb.public.pl_pub()":           rules.Critical,
		"every login role via function ufdb.public.c_pub(bytea, text)": rules.Critical,
		"role ufa via function ufdb.public.pl_grp()":                   rules.Critical,
		`every login role via function ufdb.u"f.mi xed(a text)`:        rules.Critical,
		"every login role via function ufdb.public.sd_review()":        rules.Medium,
	}
	got := map[string]rules.Finding{}
	for _, f := range findings {
		if f.Rule == "PRIV-02.chains" && f.Status == rules.Fail {
			got[f.Object] = f
		}
	}
	for obj, sev := range want {
		f, ok := got[obj]
		if !ok {
			t.Errorf("no PRIV-02.chains finding %q (have %v)", obj, keysOf(got))
			continue
		}
		if f.Severity != sev {
			t.Errorf("%s: severity %v, want %v", obj, f.Severity, sev)
		}
		delete(got, obj)
	}
	for obj, f := range got {
		t.Errorf("unexpected PRIV-02.chains finding %s: %s", obj, f.Evidence)
	}
	res := fix.Build(snap, findings, fix.Options{Only: []string{"PRIV-02.chains"}})
	var all []string
	for _, s := range sqlSteps(res.Plan) {
		all = append(all, s.SQL...)
	}
	sql := strings.Join(all, "\n")
	for _, w := range []string{
		"REVOKE EXECUTE ON FUNCTION public.py_pub() FROM PUBLIC",
		"REVOKE EXECUTE ON FUNCTION public.c_pub(bytea, text) FROM PUBLIC",
		"REVOKE EXECUTE ON FUNCTION public.pl_grp() FROM ufgrp",
		`REVOKE EXECUTE ON FUNCTION "u""f"."mi xed"(a text) FROM PUBLIC`,
		`REVOKE EXECUTE ON FUNCTION "u""f"."mi xed"(a text) FROM ufgrp`,
		"REVOKE EXECUTE ON FUNCTION public.sd_review() FROM PUBLIC",
	} {
		if !strings.Contains(sql, w) {
			t.Errorf("plan lacks %q:\n%s", w, sql)
		}
	}
	if strings.Contains(sql, "py_solo") || strings.Contains(sql, "py_none") {
		t.Errorf("plan touches a function no broad role may call:\n%s", sql)
	}
	if t.Failed() {
		return
	}

	// Applied on the server: the chains are gone, a second plan is empty,
	// and the server agrees nobody but the direct grantee may call them.
	fixtest.Verify(t, srv, findings, res.Plan, []string{"PRIV-02.chains"}, fixtest.Options{})
	c, err := srv.Connect(ctx, "ufdb")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, tc := range []struct {
		role, fn string
		want     bool
	}{
		{"ufb", "public.py_pub()", false}, {"ufb", "public.pl_pub()", false}, {"ufb", "public.c_pub(bytea, text)", false},
		{"ufa", "public.pl_grp()", false}, {"ufa", `"u""f"."mi xed"(text)`, false}, {"ufb", "public.sd_review()", false},
		{"ufsolo", "public.py_solo()", true},
	} {
		var ok bool
		if err := c.QueryRow(ctx, "SELECT has_function_privilege($1, $2, 'EXECUTE')", tc.role, tc.fn).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok != tc.want {
			t.Errorf("after the fix, %s may execute %s: %v, want %v", tc.role, tc.fn, ok, tc.want)
		}
	}
}

// untrustedOracle asks the server who may execute each untrusted user
// function once the grants to single login roles (and the owner's) are
// gone, in a transaction rolled back: exactly those roles must have an
// untrusted-function chain.
func untrustedOracle(t *testing.T, srv *localpg.Server, snap *snapshot.Snapshot) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	got := map[string]bool{}
	for _, ch := range privileges.Build(snap).Escalations(snap) {
		if ch.Kind == "untrusted-function" {
			got[ch.Database+"\x00"+ch.Role+"\x00"+ch.Schema+"\x00"+ch.Name+"("+ch.Args+")"] = true
		}
	}
	cases, bad := 0, 0
	for _, db := range []string{"ufdb", "ufclean"} {
		c, err := srv.Connect(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const fns = `FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang`
		const untrusted = ` NOT l.lanpltrusted AND l.lanname <> 'internal' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
			AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`
		if _, err := tx.Exec(ctx, `DO $$DECLARE r record; BEGIN
			FOR r IN SELECT p.oid::regprocedure AS fn, a.grantee::regrole AS who `+fns+`
				CROSS JOIN aclexplode(p.proacl) a JOIN pg_roles g ON g.oid = a.grantee
				WHERE g.rolcanlogin AND a.grantee <> p.proowner AND`+untrusted+` LOOP
				EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %s', r.fn, r.who);
			END LOOP; END$$`); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query(ctx, `SELECT r.rolname, n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
			has_function_privilege(r.oid, p.oid, 'EXECUTE') `+fns+`
			CROSS JOIN pg_roles r WHERE r.rolcanlogin AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\_%' AND`+untrusted)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var role, schema, fn string
			var may bool
			if err := rows.Scan(&role, &schema, &fn, &may); err != nil {
				t.Fatal(err)
			}
			cases++
			if k := db + "\x00" + role + "\x00" + schema + "\x00" + fn; got[k] != may {
				bad++
				t.Errorf("%s: %s may execute %s.%s through PUBLIC or a group: server %v, chain %v", db, role, schema, fn, may, got[k])
			}
		}
		rows.Close()
		tx.Rollback(ctx)
		c.Close(ctx)
	}
	t.Logf("ORACLE untrusted-function pg%d: cases=%d disagreements=%d seconds=%.1f", snap.MajorVersion(), cases, bad, time.Since(start).Seconds())
}

func sameWords(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	if len(x) != len(y) {
		return false
	}
	seen := map[string]int{}
	for _, w := range x {
		seen[w]++
	}
	for _, w := range y {
		seen[w]--
		if seen[w] < 0 {
			return false
		}
	}
	return true
}

func keysOf(m map[string]rules.Finding) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
