package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/rules"
)

func TestLessPlaceNaturalOrder(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"/x/pg_hba.conf:9", "/x/pg_hba.conf:10"},
		{"/x/pg_hba.conf", "/x/pg_hba.conf:1"},
		{"/a/pg_hba.conf:99", "/b/pg_hba.conf:1"},
	} {
		fa, fb := rules.Finding{Location: c.a}, rules.Finding{Location: c.b}
		if !lessPlace(fa, fb) || lessPlace(fb, fa) {
			t.Errorf("%s should sort before %s", c.a, c.b)
		}
	}
	for _, c := range []struct{ a, b string }{{"table t9", "table t10"}, {"t2x", "t10"}, {"a", "ab"}, {"t007", "t8"}} {
		if !naturalLess(c.a, c.b) || naturalLess(c.b, c.a) {
			t.Errorf("%q should sort before %q", c.a, c.b)
		}
	}
}

// manyTables is a report like the audit of a catalog of 14,000 tables:
// thousands of failures of one rule, all with the same fix.
func manyTables(n int) *Report {
	r := build(&testing.T{})
	for i := n; i > 0; i-- {
		r.Findings = append(r.Findings, rules.Finding{Rule: "PRIV-08", Status: rules.Fail, Severity: rules.Medium, Area: rules.AreaRoles,
			Title: "Nothing in user schemas is granted to PUBLIC", Object: fmt.Sprintf("table app.public.t%d", i),
			Evidence: fmt.Sprintf("PUBLIC has SELECT on public.t%d", i), Expected: "grants to named roles only",
			Fix: "REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM PUBLIC;", FixKind: rules.FixSQL})
	}
	SortFindings(r.Findings)
	r.Summary.Fail += n
	return r
}

func TestTextGroupsManyObjects(t *testing.T) {
	for _, c := range []struct {
		name      string
		opts      TextOptions
		wantLines func(n int) bool
		wantMore  bool
	}{
		{"default shows the first five", TextOptions{}, func(n int) bool { return n < 400 }, true},
		{"--all lists every one", TextOptions{All: true}, func(n int) bool { return n > 5361 }, false},
		{"-v lists every one", TextOptions{Verbose: true}, func(n int) bool { return n > 5361 }, false},
		{"a smaller limit", TextOptions{PerRule: 2}, func(n int) bool { return n < 400 }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteText(&b, manyTables(5361), c.opts); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if n := strings.Count(out, "\n"); !c.wantLines(n) {
				t.Errorf("%d lines", n)
			}
			if got := strings.Contains(out, "… and 5356 more") || strings.Contains(out, "… and 5359 more"); got != c.wantMore {
				t.Errorf("count of the hidden objects shown: %v, want %v", got, c.wantMore)
			}
			// The shared fix once for the rule, not once per table.
			if n := strings.Count(out, "REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM PUBLIC;"); n > 2 {
				t.Errorf("the shared fix is printed %d times", n)
			}
			// Objects in natural order: t1, t2, ... not t1, t10, t100.
			i1, i2, i10 := strings.Index(out, "table app.public.t1\n"), strings.Index(out, "table app.public.t2\n"), strings.Index(out, "table app.public.t10\n")
			if i1 < 0 || i2 < 0 || i2 < i1 || (i10 >= 0 && i10 < i2) {
				t.Errorf("objects not in natural order (t1 at %d, t2 at %d, t10 at %d)", i1, i2, i10)
			}
		})
	}
}

func TestActionsGroupByChange(t *testing.T) {
	hba := "/etc/pg/pg_hba.conf"
	f := func(rule string, sev rules.Severity, obj, loc, fix, kind string) rules.Finding {
		return rules.Finding{Rule: rule, Status: rules.Fail, Severity: sev, Object: obj, Location: loc, Fix: fix, FixKind: kind}
	}
	fs := []rules.Finding{
		f("AUTH-01", rules.Critical, "hba rule: host all all 0.0.0.0/0 trust", hba+":2", "hostssl all all 0.0.0.0/0 scram-sha-256    # replaces "+hba+":2, then reload", rules.FixConfig),
		f("AUTH-05", rules.High, "hba rule: host all all 0.0.0.0/0 trust", hba+":2", "hostssl all all 0.0.0.0/0 trust    # replaces "+hba+":2, then reload", rules.FixConfig),
		f("AUTH-06", rules.High, "hba rule: host all all 0.0.0.0/0 trust", hba+":2", "narrow the address of "+hba+":2, then reload", rules.FixConfig),
		f("AUTH-07.final-reject", rules.Medium, "pg_hba.conf", hba, "host all all 0.0.0.0/0 reject\nhost all all ::/0 reject    # append to "+hba+", then reload", rules.FixConfig),
		f("TLS-01", rules.High, "setting ssl", "", "ALTER SYSTEM SET ssl = 'on'; SELECT pg_reload_conf();", rules.FixSQL),
		f("LOG-19", rules.Medium, "setting log_connections", "", "ALTER SYSTEM SET log_connections = 'on'; SELECT pg_reload_conf();", rules.FixSQL),
		// The TLS probe of a port is fixed by the same settings.
		f("TLS-08", rules.High, "port 127.0.0.1:5432", "", "ssl = on, ssl_min_protocol_version = 'TLSv1.2', and only hostssl rules; then reload", rules.FixConfig),
		f("PRIV-02.chains", rules.Critical, "role a via function db.public.f()", "", "REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC, a;", rules.FixSQL),
		f("PRIV-02.chains", rules.Critical, "role b via function db.public.f()", "", "REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC, b;", rules.FixSQL),
		f("PRIV-06", rules.Critical, "function db.public.f()", "", "REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC;", rules.FixSQL),
		f("PRIV-02", rules.Critical, "role app", "", "REVOKE admins FROM app;", rules.FixSQL),
		f("LOG-26.overrides", rules.High, `role "app"`, "", "ALTER ROLE app RESET log_statement;", rules.FixSQL),
		f("NET-05", rules.Low, "role x", "", "ALTER ROLE x CONNECTION LIMIT 50;", rules.FixSQL),
		f("EXT-01", rules.Medium, "extension db.a", "", "DROP EXTENSION a;", rules.FixSQL),
		f("EXT-01", rules.Medium, "extension db2.a", "", "DROP EXTENSION a;", rules.FixSQL),
	}
	acts := Actions(fs)
	got := map[string]int{}
	for _, a := range acts {
		got[a.Kind+" "+a.Target] = len(a.Findings)
	}
	want := map[string]int{"hba " + hba: 4, "settings postgresql.conf": 3, "object function db.public.f()": 3, "object role app": 2, "object role x": 1, "object extension db.a": 2}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("action %q closes %d findings, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("actions %v, want %v", got, want)
	}
	// 3 critical (48) outweigh 1 critical, 2 high and 1 medium (30).
	if acts[0].Target != "function db.public.f()" || acts[1].Kind != "hba" || acts[len(acts)-1].Target != "role x" {
		t.Errorf("not ranked by severity-weighted count: first %q, last %q", acts[0].Target, acts[len(acts)-1].Target)
	}
	for _, a := range acts {
		switch a.Target {
		case hba:
			// The worst finding's replacement for line 2, then the appended lines; advice in words is left to the rule.
			w := []string{"line 2: hostssl all all 0.0.0.0/0 scram-sha-256", "host all all 0.0.0.0/0 reject", "host all all ::/0 reject    # append at the end"}
			if strings.Join(a.Change, "|") != strings.Join(w, "|") {
				t.Errorf("hba edit:\n%s\nwant:\n%s", strings.Join(a.Change, "\n"), strings.Join(w, "\n"))
			}
		case "function db.public.f()":
			if a.Change[0] != "REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC;" {
				t.Errorf("the function's own fix should come first: %q", a.Change)
			}
		}
	}
}

func TestMarkdownGroupsManyObjects(t *testing.T) {
	for _, c := range []struct {
		name string
		opts MarkdownOptions
		more bool
	}{{"first ten", MarkdownOptions{}, true}, {"all", MarkdownOptions{All: true}, false}} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteMarkdownWith(&b, manyTables(300), c.opts); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if n := strings.Count(out, "`PRIV-08` Nothing in user schemas"); n != 1 {
				t.Errorf("%d headings for PRIV-08, want one for the rule", n)
			}
			if got := strings.Contains(out, "- … and 290 more"); got != c.more {
				t.Errorf("hidden count shown: %v, want %v", got, c.more)
			}
			if !strings.Contains(out, "### Fix these first") {
				t.Error("no fix-first section")
			}
		})
	}
}

func TestHTMLGroupsAndPrint(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  HTMLOptions
		check func(t *testing.T, out string)
	}{
		{"screen", HTMLOptions{}, func(t *testing.T, out string) {
			if n := strings.Count(out, `<span class="status">fail</span><span class="rule">PRIV-08</span>`); n != 1 {
				t.Errorf("%d cards for PRIV-08, want one per rule", n)
			}
			if !strings.Contains(out, "show all 300 objects (280 more)") {
				t.Error("no 'show all' for a rule with many objects")
			}
			if !strings.Contains(out, `data-status="pass"`) || strings.Contains(out, `class="finding" data-status="fail" data-area="authorization" data-sev="medium" style="--sev:#f57c00" open`) {
				t.Error("screen layout: passing cards missing or cards open")
			}
		}},
		{"print", HTMLOptions{Print: true}, func(t *testing.T, out string) {
			if strings.Contains(out, `data-status="pass"`) || !strings.Contains(out, "passing checks are not listed here") {
				t.Error("print layout lists passing checks")
			}
			if strings.Contains(out, "show all 300") {
				t.Error("print layout hides objects behind a click")
			}
			if strings.Count(out, "<details class=\"finding\"") != strings.Count(out, "\" open>\n<summary>") {
				t.Error("print layout has closed cards")
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteHTMLWith(&b, manyTables(300), c.opts); err != nil {
				t.Fatal(err)
			}
			c.check(t, b.String())
		})
	}
}

func TestSQLStatements(t *testing.T) {
	for _, c := range []struct {
		fix  string
		want []string
	}{
		{"REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC, app;  ALTER FUNCTION f() SET search_path = pg_catalog;  -- in database d; and rewrite it",
			[]string{"REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC, app;", "ALTER FUNCTION f() SET search_path = pg_catalog;  -- in database d; and rewrite it"}},
		{"ALTER ROLE x SET a = 'b;  c';  SELECT 1;", []string{"ALTER ROLE x SET a = 'b;  c';", "SELECT 1;"}},
		{"SELECT $q$;$q$;\nSELECT 2; -- two", []string{"SELECT $q$;$q$;", "SELECT 2; -- two"}},
		{"-- rewrite it by hand", []string{"-- rewrite it by hand"}},
	} {
		got := sqlStatements(c.fix)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%q:\ngot  %q\nwant %q", c.fix, got, c.want)
		}
	}
}

// PRIV-02.chains: the statement every role's fix shares is printed once
// for the rule, each role keeps its own REVOKE.
func TestTextSharedStatementsOnce(t *testing.T) {
	r := build(&testing.T{})
	for _, role := range []string{"a", "b", "c"} {
		r.Findings = append(r.Findings, rules.Finding{Rule: "PRIV-02.chains", Status: rules.Fail, Severity: rules.Critical, Area: rules.AreaRoles,
			Title: "chains", Object: "role " + role + " via function d.public.f()", Evidence: "role " + role + " can gain superuser", FixKind: rules.FixSQL,
			Fix: "REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC, " + role + ";  ALTER FUNCTION public.f() SET search_path = pg_catalog, pg_temp;  -- in database d"})
	}
	SortFindings(r.Findings)
	var b bytes.Buffer
	if err := WriteText(&b, r, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "ALTER FUNCTION public.f() SET search_path"); n != 2 { // once in "fix these first", once for the rule
		t.Errorf("the shared statement is printed %d times, want 2:\n%s", n, out)
	}
	for _, role := range []string{"a", "b", "c"} {
		if !strings.Contains(out, "fix:      REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC, "+role+";\n") {
			t.Errorf("role %s lost its own statement:\n%s", role, out)
		}
	}
}

func TestHTMLSharedStatementsOnce(t *testing.T) {
	r := build(&testing.T{})
	for i := 0; i < 25; i++ {
		role := fmt.Sprintf("r%d", i)
		r.Findings = append(r.Findings, rules.Finding{Rule: "PRIV-02.chains", Status: rules.Fail, Severity: rules.Critical, Area: rules.AreaRoles,
			Title: "chains", Object: "role " + role + " via function d.public.f()", Evidence: "e", FixKind: rules.FixSQL,
			Fix: "REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC, " + role + ";  ALTER FUNCTION public.f() SET search_path = pg_catalog;"})
	}
	SortFindings(r.Findings)
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "ALTER FUNCTION public.f() SET search_path"); n > 2 { // top risks, and once for the rule
		t.Errorf("the shared statement is printed %d times", n)
	}
	// Rows after the first twenty (behind "show all") keep their own statement.
	for _, role := range []string{"r0", "r19", "r24"} {
		if !strings.Contains(out, "<pre>REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC, "+role+";</pre>") {
			t.Errorf("role %s lost its own statement", role)
		}
	}
}
