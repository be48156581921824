package conninfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// require_auth reaches the guard from every place libpq reads it, with
// libpq's precedence (connection string over service file over the
// environment), and a value libpq rejects is rejected wherever it came
// from, naming the value.
func TestRequireAuthSources(t *testing.T) {
	dir := t.TempDir()
	services := filepath.Join(dir, "services")
	os.WriteFile(services, []byte("[strict]\nhost=h.example\nrequire_auth=scram-sha-256\n[spaced]\nhost=h.example\nrequire_auth=md5, scram-sha-256\n"), 0o600)
	for _, k := range []string{"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGSERVICE", "PGREQUIREAUTH"} {
		t.Setenv(k, "")
	}
	t.Setenv("PGSERVICEFILE", services)
	t.Setenv("PGPASSFILE", filepath.Join(dir, "none"))
	cases := []struct {
		name, dsn, env, want, err string
	}{
		{name: "key=value", dsn: "host=h require_auth=scram-sha-256", want: "scram-sha-256"},
		{name: "uri query", dsn: "postgresql://h/db?require_auth=%21password,%21md5", want: "!password,!md5"},
		{name: "service file", dsn: "service=strict", want: "scram-sha-256"},
		{name: "environment", dsn: "host=h", env: "md5,scram-sha-256", want: "md5,scram-sha-256"},
		{name: "string over environment", dsn: "host=h require_auth=none", env: "md5", want: "none"},
		{name: "service over environment", dsn: "service=strict", env: "md5", want: "scram-sha-256"},
		{name: "string over service", dsn: "service=strict require_auth=password", want: "password"},
		{name: "unset", dsn: "host=h", want: ""},
		{name: "spaces in the service file", dsn: "service=spaced", err: `invalid method " scram-sha-256"`},
		{name: "spaces in the environment", dsn: "host=h", env: "md5, password", err: `require_auth "md5, password"`},
		{name: "mixed", dsn: "host=h require_auth=password,!md5", err: "cannot be mixed"},
		{name: "twice", dsn: "host=h require_auth=!none,!none", err: "more than once"},
		{name: "unknown", dsn: "host=h require_auth=trust", err: "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PGREQUIREAUTH", c.env)
			cfg, err := Config(Flags{DSN: c.dsn})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RequireAuth != c.want {
				t.Errorf("require_auth %q, want %q", cfg.RequireAuth, c.want)
			}
			if cfg.AfterNetConnect == nil {
				t.Error("no guard installed")
			}
		})
	}
}

// The policy a value stands for, from libpq's rules: what the server may
// ask for, and whether it must ask at all.
func TestParseRequireAuth(t *testing.T) {
	all := []string{"password", "md5", "gss", "sspi", "scram-sha-256", "oauth"}
	cases := []struct {
		v        string
		allowed  []string
		required bool
	}{
		{"", all, false},
		{"password", []string{"password"}, true},
		{"scram-sha-256,md5", []string{"scram-sha-256", "md5"}, true},
		{"none", nil, false},
		{"scram-sha-256,none", []string{"scram-sha-256"}, false},
		{"!password", []string{"md5", "gss", "sspi", "scram-sha-256", "oauth"}, false},
		{"!password,!md5,!none", []string{"gss", "sspi", "scram-sha-256", "oauth"}, true},
		{"!none", all, true},
	}
	for _, c := range cases {
		p, err := ParseRequireAuth(c.v)
		if err != nil {
			t.Fatalf("%q: %v", c.v, err)
		}
		var got []string
		for _, m := range all {
			if p.Allows(m) {
				got = append(got, m)
			}
		}
		want := map[string]bool{}
		for _, m := range c.allowed {
			want[m] = true
		}
		for _, m := range all {
			if p.Allows(m) != want[m] {
				t.Errorf("%q: allows %v, want %v", c.v, got, c.allowed)
				break
			}
		}
		if p.Required != c.required {
			t.Errorf("%q: required=%v, want %v", c.v, p.Required, c.required)
		}
	}
}

// A bad PGREQUIREAUTH is named as such: the string in the error does not
// hold the value.
func TestBadPGREQUIREAUTHNamesTheVariable(t *testing.T) {
	t.Setenv("PGREQUIREAUTH", "MD5")
	_, err := Config(Flags{DSN: "host=127.0.0.1 port=1 user=x"})
	if err == nil || !strings.Contains(err.Error(), "PGREQUIREAUTH") {
		t.Errorf("error %v does not name PGREQUIREAUTH", err)
	}
	_, err = Config(Flags{DSN: "host=127.0.0.1 port=1 user=x require_auth=MD5"})
	if err == nil || strings.Contains(err.Error(), "PGREQUIREAUTH") {
		t.Errorf("error %v names PGREQUIREAUTH for a value given in the string", err)
	}
}
