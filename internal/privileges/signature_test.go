package privileges

import "testing"

func TestSameSignature(t *testing.T) {
	for _, c := range []struct {
		have, given string
		want        bool
	}{
		{"public.run_sql(q text)", "public.run_sql(text)", true},
		{"public.run_sql(q text)", "public.run_sql( text )", true},
		{"public.digest(text, text)", "public.digest(text,text)", true},
		{"public.f(n integer, VARIADIC xs integer[])", "public.f(int4, int[])", true},
		{"public.f(ts timestamp with time zone)", "public.f(timestamptz)", true},
		{"public.f(x character varying)", "public.f(pg_catalog.varchar)", true},
		{"public.f(x double precision)", "public.f(float8)", true},
		{"public.f(x text)", "public.f(integer)", false},
		{"public.f(x text)", "public.f(text, text)", false},
		{"public.f()", "public.f()", true},
		{"public.f(x text)", "public.g(text)", false},
		{"public.f(x text)", "public.f", false},
	} {
		if got := sameSignature(c.have, c.given); got != c.want {
			t.Errorf("sameSignature(%q, %q) = %v, want %v", c.have, c.given, got, c.want)
		}
	}
}
