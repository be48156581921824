package rlstest

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/policy"
)

func TestCheckExpr(t *testing.T) {
	for _, c := range []struct {
		in  string
		bad string // "" when accepted
	}{
		{"tenant_id = 42", ""},
		{"tenant_id IN (1, 2) AND body <> ';'", ""},
		{"body = $$a;b)$$", ""},
		{"tenant_id = 1 -- trailing comment", ""},
		{"/* a ) ; */ true", ""},
		{`"we;ird)" = 1`, ""},
		{"true; DROP TABLE t", "';'"},
		{"true) OR (true", "unbalanced"},
		{"(true", "unbalanced"},
		{"body = 'open", "unterminated"},
		{`"open = 1`, "unterminated"},
		{"body = $x$open", "unterminated"},
		{"true /* open", "unterminated /*"},
		{"true /* /* nested */ open", "unterminated /*"},
		{"  -- only a comment", "empty"},
		{"", "empty"},
	} {
		err := checkExpr(c.in)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%q refused: %v", c.in, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%q: got %v, want an error about %s", c.in, err, c.bad)
		}
	}
}

func TestSettingCalls(t *testing.T) {
	for _, c := range []struct {
		in      string
		unsafe  int
		rewrite string // "" when nothing to rewrite
	}{
		{"tenant_id = current_setting('app.tenant_id')::int", 1, "tenant_id = nullif(current_setting('app.tenant_id', true), '')::int"},
		{"tenant_id = current_setting('app.tenant_id', false)::int", 1, "tenant_id = nullif(current_setting('app.tenant_id', true), '')::int"},
		{"tenant_id = CURRENT_SETTING ( 'app.t' )::int", 1, "tenant_id = nullif(CURRENT_SETTING ( 'app.t' , true), '')::int"},
		{"tenant_id = pg_catalog.current_setting('app.t')::int", 1, "tenant_id = nullif(pg_catalog.current_setting('app.t', true), '')::int"},
		{`(tenant_id = (current_setting('app.tenant_id'::text, true))::integer)`, 0, ""},
		{"tenant_id = current_setting('app.t', 'on')::int", 0, ""},
		{"tenant_id = current_setting('app.t', 'off'::boolean)::int", 1, "tenant_id = nullif(current_setting('app.t', true), '')::int"},
		{"tenant_id = current_setting('app.t', flag)::int", 0, ""},
		{"body <> 'current_setting(''app.t'')'", 0, ""},
		{"body <> $$current_setting('x')$$ /* current_setting('y') */", 0, ""},
		{"-- current_setting('x')\ntrue", 0, ""},
		{"current_setting(concat('app.', 't')) = 'x'", 1, "nullif(current_setting(concat('app.', 't'), true), '') = 'x'"},
		{"current_setting('a') = current_setting('b', true)", 1, "nullif(current_setting('a', true), '') = current_setting('b', true)"},
		{"current_setting('unterminated'", 0, ""},
	} {
		u := Unsafe(c.in)
		if len(u) != c.unsafe {
			t.Errorf("%q: %d unsafe calls, want %d (%+v)", c.in, len(u), c.unsafe, SettingCalls(c.in))
		}
		got, ok := SafeRewrite(c.in)
		if ok != (c.rewrite != "") || ok && got != c.rewrite {
			t.Errorf("%q: rewrite %q (%v), want %q", c.in, got, ok, c.rewrite)
		}
	}
}

func TestLint(t *testing.T) {
	f := &policy.File{Databases: map[string]*policy.Database{"appdb": {Schemas: map[string]*policy.Schema{"public": {
		Tables: policy.Objects{"*": {Owner: "app_owner"}, "owned": {Owner: "app"}},
		RLS: map[string]*policy.RLS{
			"good": {Enabled: true, Policies: policy.RowPolicies{
				"tenant": {Using: "tenant_id = current_setting('app.tenant_id', true)::int", Check: "tenant_id = current_setting('app.tenant_id', true)::int"},
			}, Tests: []policy.RLSTest{{As: "app", Sees: "tenant_id = 1"}}},
			"bad": {Enabled: true, Policies: policy.RowPolicies{
				"tenant": {Using: "tenant_id = current_setting('app.tenant_id')::int", Check: "body <> 'current_setting(''x'')'"},
				"open":   {Using: "(true)", Roles: []string{"app"}},
			}},
			"owned": {Enabled: true, Policies: policy.RowPolicies{
				"tenant": {Using: "tenant_id = current_setting('app.tenant_id', true)::int"},
			}, Tests: []policy.RLSTest{{As: "app", Sees: "tenant_id = 1"}}},
			"forced": {Enabled: true, Force: true, Policies: policy.RowPolicies{
				"tenant": {Using: "tenant_id = current_setting('app.tenant_id', true)::int"},
			}, Tests: []policy.RLSTest{{As: "app_owner", Sees: "tenant_id = 1"}}},
		},
	}}}}}
	var got []string
	for _, n := range Lint(f) {
		got = append(got, n.Object+": "+n.Text)
	}
	want := []string{
		`table appdb.public.bad: policy "tenant" USING: current_setting('app.tenant_id') is called without missing_ok`,
		`table appdb.public.bad: policy "open" is USING (true) for app beside the narrower policy "tenant"`,
		`table appdb.public.owned: role "app" owns the table and RLS is not forced`,
	}
	if len(got) != len(want) {
		t.Fatalf("notes:\n%s", strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("note %d: %s\nwant prefix %s", i, got[i], w)
		}
	}
}
