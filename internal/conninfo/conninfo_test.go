package conninfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	cases := map[string]string{
		"postgresql://bob:s3cret@h/db":          "postgresql://bob:xxxxx@h/db",
		"postgres://bob:s3cret@h:5432/db?x=1":   "postgres://bob:xxxxx@h:5432/db?x=1",
		"host=h password=s3cret user=u":         "host=h password=xxxxx user=u",
		"host=h password = 'se cret' user=u":    "host=h password = xxxxx user=u",
		"postgresql://h/db?password=s3cret&a=b": "postgresql://h/db?password=xxxxx&a=b",
		"nothing secret here":                   "nothing secret here",
	}
	for in, want := range cases {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Redact("failed: pw hunter2 rejected", "hunter2"); strings.Contains(got, "hunter2") {
		t.Errorf("Redact left the secret: %q", got)
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

// FuzzRedact: a password in a URI or key=value string never survives.
func FuzzRedact(f *testing.F) {
	f.Add("s3cret", "host")
	f.Add("p@ss:w/rd", "db.example.com")
	f.Fuzz(func(t *testing.T, pw, host string) {
		if len(pw) < 4 || strings.ContainsAny(pw, " '\\\"@/?#&\n\t\r\f\v") || strings.ContainsAny(host, " @/?#&'\n\t:") {
			return
		}
		cases := map[string]string{
			"postgresql://u:" + pw + "@" + host + "/db": "postgresql://u:xxxxx@" + host + "/db",
			"host=" + host + " password=" + pw:          "host=" + host + " password=xxxxx",
			"password='" + pw + "' host=" + host:        "password=xxxxx host=" + host,
		}
		for in, want := range cases {
			if got := RedactDSN(in); got != want {
				t.Fatalf("RedactDSN(%q) = %q, want %q", in, got, want)
			}
		}
	})
}
