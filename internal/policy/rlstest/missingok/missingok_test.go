package missingok

import "testing"

func TestCalls(t *testing.T) {
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
		{"tenant_id = current_setting('app.t', (true))::int", 0, ""},
		{"tenant_id = current_setting('app.t', ((false)))::int", 1, "tenant_id = nullif(current_setting('app.t', true), '')::int"},
		{"tenant_id = current_setting(('app.t'), )::int", 0, ""},
		{"body <> 'current_setting(''app.t'')'", 0, ""},
		{"body <> $$current_setting('x')$$ /* current_setting('y') */", 0, ""},
		{"-- current_setting('x')\ntrue", 0, ""},
		{"current_setting(concat('app.', 't')) = 'x'", 1, "nullif(current_setting(concat('app.', 't'), true), '') = 'x'"},
		{"current_setting('a') = current_setting('b', true)", 1, "nullif(current_setting('a', true), '') = current_setting('b', true)"},
		{"current_setting('unterminated'", 0, ""},
	} {
		u := Unsafe(c.in)
		if len(u) != c.unsafe {
			t.Errorf("%q: %d unsafe calls, want %d (%+v)", c.in, len(u), c.unsafe, Calls(c.in))
		}
		got, ok := Rewrite(c.in)
		if ok != (c.rewrite != "") || ok && got != c.rewrite {
			t.Errorf("%q: rewrite %q (%v), want %q", c.in, got, ok, c.rewrite)
		}
	}
}

// Any text: no panic, and a rewrite leaves no unsafe call (a call nested
// in another's argument aside).
func FuzzExpr(f *testing.F) {
	for _, s := range []string{"current_setting('a')", "current_setting(current_setting('a'))", "x = current_setting('a', false)::int",
		"pg_catalog.current_setting ( 'a' , 'off' )", "'current_setting('", "/* current_setting( */", "current_setting(", "((", "$$;$$",
		"current_setting('a' -- c\n)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, ok := Rewrite(s)
		calls := Unsafe(s)
		for i := 1; i < len(calls); i++ {
			if calls[i].Start < calls[i-1].End {
				return // nested
			}
		}
		if ok && len(Unsafe(out)) > 0 {
			t.Errorf("%q rewritten as %q still has unsafe calls", s, out)
		}
	})
}
