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

// Any text: the checks never panic.
func FuzzCheckExpr(f *testing.F) {
	for _, s := range []string{"current_setting('a')", "((", "$$;$$", "/* /* */", "'a''", `"x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = checkExpr(s)
		_ = LintExpr(s)
	})
}
