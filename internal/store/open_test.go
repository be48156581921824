package store

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct{ in, kind, target string }{
		{"/var/lib/pgaegis/fleet.db", "sqlite", "/var/lib/pgaegis/fleet.db"},
		{"fleet.db", "sqlite", "fleet.db"},
		{"./a=b.db", "sqlite", "./a=b.db"},
		{"sqlite:///abs/fleet.db", "sqlite", "/abs/fleet.db"},
		{"sqlite://rel/fleet.db", "sqlite", "rel/fleet.db"},
		{"file:fleet.db", "sqlite", "fleet.db"},
		{"file:///abs/fleet.db", "sqlite", "/abs/fleet.db"},
		{"postgres://u@db/fleet", "postgres", "postgres://u@db/fleet"},
		{"postgresql://db/fleet?sslmode=verify-full", "postgres", "postgresql://db/fleet?sslmode=verify-full"},
		{"host=db dbname=fleet", "postgres", "host=db dbname=fleet"},
		{"service=fleet", "postgres", "service=fleet"},
		{"mysql://x", "", ""},
		{"", "", ""},
		{"sqlite://", "", ""},
		{"a?b.db", "", ""},
	} {
		kind, target, err := parseURL(c.in)
		if kind != c.kind || target != c.target || (err != nil) != (c.kind == "") {
			t.Errorf("parseURL(%q) = %q, %q, %v; want %q, %q", c.in, kind, target, err, c.kind, c.target)
		}
	}
}

// FuzzParseURL: any input gives a backend or an error, and a SQLite
// target never carries what the driver would read as its own options.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"fleet.db", "sqlite:///x", "file:x", "postgres://u:p@h/d", "host=h", "a=b", "=x", "x://y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kind, target, err := parseURL(s)
		switch {
		case err != nil:
			if kind != "" || target != "" {
				t.Fatalf("error with a result")
			}
		case kind == "sqlite":
			if target == "" || strings.ContainsAny(target, "?#") {
				t.Fatalf("sqlite target %q", target)
			}
		case kind == "postgres":
			if target == "" {
				t.Fatal("empty postgres target")
			}
		default:
			t.Fatalf("kind %q", kind)
		}
	})
}
