package conninfo

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestConfigFollowsLibpq(t *testing.T) {
	dir := t.TempDir()
	pgpass := filepath.Join(dir, "pgpass")
	os.WriteFile(pgpass, []byte("db.example.com:5433:*:alice:from-pgpass\n"), 0o600)
	service := filepath.Join(dir, "services")
	os.WriteFile(service, []byte("[prod]\nhost=svc.example.com\nport=6543\nuser=svcuser\ndbname=svcdb\n"), 0o600)
	for _, k := range []string{"PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE"} {
		t.Setenv(k, "")
	}
	t.Setenv("PGPASSFILE", pgpass)
	t.Setenv("PGSERVICEFILE", service)
	cases := []struct {
		name                 string
		f                    Flags
		env                  map[string]string
		host, user, db, pass string
		port                 uint16
	}{
		{name: "flags", f: Flags{Host: "db.example.com", Port: "5433", User: "alice", DSN: "app"},
			host: "db.example.com", port: 5433, user: "alice", db: "app", pass: "from-pgpass"},
		{name: "uri wins over flags", f: Flags{DSN: "postgresql://bob@h1:5000/d1", Host: "h2", User: "carol"},
			host: "h1", port: 5000, user: "bob", db: "d1"},
		{name: "flags fill what the uri lacks", f: Flags{DSN: "postgresql:///d1", Host: "db.example.com", Port: "5433", User: "alice"},
			host: "db.example.com", port: 5433, user: "alice", db: "d1", pass: "from-pgpass"},
		{name: "key=value wins over flags", f: Flags{DSN: `host=h1 user='o\'neil' dbname='my db'`, Host: "h2"},
			host: "h1", port: 5432, user: "o'neil", db: "my db"},
		{name: "environment", env: map[string]string{"PGHOST": "envhost", "PGUSER": "envuser", "PGDATABASE": "envdb", "PGPASSWORD": "envpw"},
			host: "envhost", port: 5432, user: "envuser", db: "envdb", pass: "envpw"},
		{name: "service file", f: Flags{DSN: "service=prod"}, host: "svc.example.com", port: 6543, user: "svcuser", db: "svcdb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := Config(c.f)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != c.host || cfg.Port != c.port || (c.user != "" && cfg.User != c.user) || (c.db != "" && cfg.Database != c.db) || (c.pass != "" && cfg.Password != c.pass) {
				t.Errorf("got host=%s port=%d user=%s db=%s pass=%q", cfg.Host, cfg.Port, cfg.User, cfg.Database, cfg.Password)
			}
			if cfg.ConnectTimeout == 0 {
				t.Error("no connect timeout")
			}
			if strings.Contains(Describe(cfg), cfg.Password) && cfg.Password != "" {
				t.Error("Describe shows the password")
			}
		})
	}
}

func TestDSNWithEqualsIsAConnectionString(t *testing.T) {
	// As in libpq, a -d value with "=" is a connection string: a malformed
	// one is an error, never silently a database name.
	if _, err := Config(Flags{DSN: "x host=evil port=1", Host: "good"}); err == nil {
		t.Error("expected a parse error")
	}
}

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgresql://bob:s3cret@h/db", "postgresql://bob:xxxxx@h/db"},
		{"postgres://bob:s3cret@h:5432/db?x=1", "postgres://bob:xxxxx@h:5432/db?x=1"},
		{"host=h password=s3cret user=u", "host=h password=xxxxx user=u"},
		{"host=h password = 'se cret' user=u", "host=h password = xxxxx user=u"},
		{"postgresql://h/db?password=s3cret&a=b", "postgresql://h/db?password=xxxxx&a=b"},
		{"nothing secret here", "nothing secret here"},
		// Issue #10 defect 13: libpq reads these values whole.
		{`host=h password=Part1\ Part2 user=u`, "host=h password=xxxxx user=u"},
		{`password='it\'s a b' host=h`, "password=xxxxx host=h"},
		{"postgresql://u:Le@kB6@host/db", "postgresql://u:xxxxx@host/db"},
		{"postgresql://u:p%40ss%20w@h1:5432,h2:5433/db", "postgresql://u:xxxxx@h1:5432,h2:5433/db"},
		{"postgresql://u:a b@h/db", "postgresql://u:xxxxx@h/db"},
		{"sslpassword=k3y host=h", "sslpassword=xxxxx host=h"},
		{"password_encryption=scram-sha-256", "password_encryption=scram-sha-256"},
		{"cut here: password='unterminated and more", "cut here: password=xxxxx"},
		{"PASSWORD=Upper host=h", "PASSWORD=xxxxx host=h"},
	}
	for _, c := range cases {
		if got := RedactDSN(c.in); got != c.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := Redact("failed: pw hunter2 rejected", "hunter2"); strings.Contains(got, "hunter2") {
		t.Errorf("Redact left the secret: %q", got)
	}
}

// TestPasswordOfFollowsLibpq: the password a -d value carries is read the
// way libpq (and pgx, the oracle here) reads it; a database name has none.
func TestPasswordOfFollowsLibpq(t *testing.T) {
	for _, dsn := range []string{
		`host=h password=Part1\ Part2`, `host=h password='a b\'c'`, "postgresql://u:Le%40kB6@h/db",
		"postgresql://h/db?password=x%26y", "host=h user=u",
	} {
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("%q: %v", dsn, err)
		}
		if got := PasswordOf(dsn); got != cfg.Password {
			t.Errorf("PasswordOf(%q) = %q, libpq reads %q", dsn, got, cfg.Password)
		}
	}
	for _, name := range []string{"e", "shop", "my db"} {
		if got := PasswordOf(name); got != "" {
			t.Errorf("PasswordOf(%q) = %q: a database name is not a secret", name, got)
		}
	}
}

// TestRedactWholeValues (issue #10 defect 16a): a short password is masked
// only where it stands alone, never inside ordinary words.
func TestRedactWholeValues(t *testing.T) {
	cases := []struct{ msg, pw, want string }{
		{"connecting to host=h: refused", "e", "connecting to host=h: refused"},
		{`password "e" was refused`, "e", `password "xxxxx" was refused`},
		{"the secret is ab12, and ab123 is not", "ab12", "the secret is xxxxx, and ab123 is not"},
		{"long one: xhunter2passwordx", "hunter2password", "long one: xxxxxxx"},
		{"-!- and -!-x", "-!-", "xxxxx and xxxxxx"},
	}
	for _, c := range cases {
		if got := Redact(c.msg, c.pw); got != c.want {
			t.Errorf("Redact(%q, %q) = %q, want %q", c.msg, c.pw, got, c.want)
		}
	}
}

func TestBadURIErrorHasNoPassword(t *testing.T) {
	_, err := Config(Flags{DSN: "postgresql://bob:s3cret@h:notaport/db"})
	if err == nil {
		t.Fatal("expected an error")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
}

// FuzzRedact: a password in a URI or key=value string never survives, in
// any of the ways libpq lets it be written (quoted, backslash-escaped,
// percent-encoded, raw in a URI's userinfo), whatever bytes it holds.
func FuzzRedact(f *testing.F) {
	f.Add("s3cret", "host")
	f.Add("p@ss:w/rd", "db.example.com")
	f.Add(`Part1\ Part2`, "h")
	f.Add("Le@kB6", "h")
	f.Add("a b'c\"d", "h")
	f.Fuzz(func(t *testing.T, pw, host string) {
		RedactDSN(pw + " password=" + host) // any bytes: no panic
		if len(pw) < 4 || !utf8.ValidString(pw) || strings.ContainsRune(pw, 0) {
			return
		}
		for _, c := range host {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
				return
			}
		}
		if host == "" {
			return
		}
		quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "'"
		var esc strings.Builder // unquoted: every special byte escaped
		for i := 0; i < len(pw); i++ {
			if c := pw[i]; c == '\\' || c == '\'' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' {
				esc.WriteByte('\\')
			}
			esc.WriteByte(pw[i])
		}
		pct := pctEncode(pw)
		cases := map[string]string{
			"postgresql://u:" + pct + "@" + host + "/db":                        "postgresql://u:xxxxx@" + host + "/db",
			"postgresql://" + host + "/db?password=" + pct + "&sslmode=require": "postgresql://" + host + "/db?password=xxxxx&sslmode=require",
			"host=" + host + " password=" + quoted:                              "host=" + host + " password=xxxxx",
			"password=" + quoted + " host=" + host:                              "password=xxxxx host=" + host,
			"user=rep password=" + esc.String() + " host=" + host:               "user=rep password=xxxxx host=" + host,
		}
		if !strings.ContainsAny(pw, "/?#") {
			cases["postgresql://u:"+pw+"@"+host+"/db"] = "postgresql://u:xxxxx@" + host + "/db"
		}
		for in, want := range cases {
			got := RedactDSN(in)
			if got != want {
				t.Fatalf("RedactDSN(%q) = %q, want %q", in, got, want)
			}
			dec, err := url.PathUnescape(got)
			wantDec, _ := url.PathUnescape(want)
			if (strings.Contains(got, pw) && !strings.Contains(want, pw)) || (err == nil && strings.Contains(dec, pw) && !strings.Contains(wantDec, pw)) {
				t.Fatalf("RedactDSN(%q) = %q keeps the password", in, got)
			}
			msg := "could not connect with " + in + ": refused"
			if got := Redact(msg, pw); strings.Contains(got, pw) && !strings.Contains("could not connect with "+want+": refused", pw) {
				t.Fatalf("Redact(%q) = %q keeps the password", msg, got)
			}
		}
		if got := PasswordOf("host=" + host + " password=" + quoted); got != pw {
			t.Fatalf("PasswordOf(quoted) = %q, want %q", got, pw)
		}
		if got := PasswordOf("host=" + host + " password=" + esc.String()); got != pw {
			t.Fatalf("PasswordOf(escaped) = %q, want %q", got, pw)
		}
	})
}

// pctEncode percent-encodes every byte but the RFC 3986 unreserved ones.
func pctEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// TestParseErrorHasNoPartOfPassword: a -d value that does not parse is
// echoed with its password gone whole (pgx's own masking left Part2 of
// password=Part1\ Part2).
func TestParseErrorHasNoPartOfPassword(t *testing.T) {
	for _, c := range []struct{ dsn, part string }{
		{`host=h password=Part1\ Part2 port=notanumber`, "Part"},
		{`host=h password='Pa rt2' port=x`, "rt2"},
		{"postgresql://u:Le@kB6@h:notaport/db", "kB6"},
		{"postgresql://u:p%41ss@h/db?port=x", "41ss"},
		{`host=h password=abc\'d sslmode=bogus`, "abc"},
	} {
		_, err := Config(Flags{DSN: c.dsn})
		if err == nil {
			t.Errorf("%s: expected an error", c.part)
			continue
		}
		if strings.Contains(err.Error(), c.part) {
			t.Errorf("the error keeps part of the password (%s)", c.part)
		}
	}
}

// TestRedactInvalidUTF8: offsets survive bytes that are not UTF-8 (a
// fuzzed log line made strings.ToLower change the length).
func TestRedactInvalidUTF8(t *testing.T) {
	in := "\xe7\xbb0\xba\xe6\x93PASSWORD=\xffsecret host=h"
	if got := RedactDSN(in); got != "\xe7\xbb0\xba\xe6\x93PASSWORD=xxxxx host=h" {
		t.Errorf("RedactDSN = %q", got)
	}
}

func TestChildEnvDropsLibpqVariables(t *testing.T) {
	t.Setenv("PGPASSWORD", "not-for-children")
	t.Setenv("PGHOST", "db")
	env := strings.Join(ChildEnv("LC_ALL=C"), "\n")
	if strings.Contains(env, "not-for-children") || strings.Contains(env, "PGHOST=") {
		t.Errorf("child environment keeps libpq variables")
	}
	if !strings.Contains(env, "LC_ALL=C") {
		t.Errorf("extra variables not appended")
	}
}

// sslnegotiation as libpq 17+ takes it (pgx alone accepts any value and
// direct with a plaintext fallback).
func TestSSLNegotiationAsLibpq(t *testing.T) {
	for _, tc := range []struct {
		dsn string
		ok  bool
	}{
		{"host=127.0.0.1 sslnegotiation=postgres", true},
		{"host=127.0.0.1 sslmode=require sslnegotiation=direct", true},
		{"host=127.0.0.1 sslmode=verify-full sslnegotiation=direct", true},
		{"host=127.0.0.1 sslnegotiation=bogus", false},
		{"host=127.0.0.1 sslmode=disable sslnegotiation=direct", false},
		{"host=127.0.0.1 sslmode=allow sslnegotiation=direct", false},
	} {
		_, err := Config(Flags{DSN: tc.dsn})
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.dsn, err, tc.ok)
		}
	}
}
