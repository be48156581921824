package pgclient

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

const debian15 = "/usr/lib/postgresql/15/bin"

func need15(t *testing.T) {
	if _, err := os.Stat(debian15 + "/psql"); err != nil {
		t.Skip("no PostgreSQL 15 client programs in " + debian15)
	}
}

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		in    string
		v     string
		major int
	}{
		{"pg_dump (PostgreSQL) 15.18\n", "15.18", 15},
		{"pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", "15.18", 15},
		{"psql (PostgreSQL) 17beta1", "17beta1", 17},
		{"pg_restore (PostgreSQL) 9.6.24", "9.6.24", 9},
	} {
		v, m, err := ParseVersion(c.in)
		if err != nil || v != c.v || m != c.major {
			t.Errorf("%q: %q %d %v", c.in, v, m, err)
		}
	}
	for _, bad := range []string{"", "hello", "pg_dump (PostgreSQL) x"} {
		if _, _, err := ParseVersion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// ORACLE: the real Debian 15 client programs answer --version.
func TestFind(t *testing.T) {
	need15(t)
	for _, major := range []int{13, 14, 15} {
		tool, err := Find("pg_dump", major)
		if err != nil || tool.Major != 15 {
			t.Errorf("Find(pg_dump, %d) = %+v, %v", major, tool, err)
		}
	}
	for _, major := range []int{16, 18} {
		_, err := Find("pg_dump", major)
		if err == nil || !strings.Contains(err.Error(), "postgresql-client-"+strconv.Itoa(major)) || !strings.Contains(err.Error(), "15.") {
			t.Errorf("Find(pg_dump, %d): %v", major, err)
		}
	}
	if _, err := Find("no-such-program", 15); err == nil || !strings.Contains(err.Error(), "found: none") {
		t.Errorf("missing program: %v", err)
	}
}

func TestConnString(t *testing.T) {
	for _, c := range []struct {
		f    conninfo.Flags
		db   string
		want string
	}{
		{conninfo.Flags{DSN: "postgresql://u:secret@h:5/d?sslmode=require&application_name=x"}, "other",
			"user='u' host='h' port='5' dbname='other' application_name='x' sslmode='require'"},
		{conninfo.Flags{DSN: "postgres://h1:1,h2:2/d%20b"}, "", "host='h1,h2' port='1,2' dbname='d b'"},
		{conninfo.Flags{DSN: `host=h password='se cr\'et' dbname=x service=s`, User: "u"}, "y",
			`user='u' host='h' dbname='y' service='s'`},
		{conninfo.Flags{DSN: "mydb", Host: "h", Port: "5", User: "u"}, "", "host='h' port='5' user='u' dbname='mydb'"},
		{conninfo.Flags{DSN: "host=a", Host: "b"}, "it's", `host='a' dbname='it\'s'`},
	} {
		got, err := Target{Flags: c.f}.ConnString(c.db)
		if err != nil || got != c.want {
			t.Errorf("%+v %q:\n got %s (%v)\nwant %s", c.f, c.db, got, err, c.want)
		}
		if strings.Contains(got, "secr") || strings.Contains(got, "password") {
			t.Errorf("password kept: %s", got)
		}
	}
	if _, err := (Target{Flags: conninfo.Flags{DSN: "host='open"}}).ConnString(""); err == nil {
		t.Error("unterminated quote accepted")
	}
}

// ORACLE: the real psql 15 logs in through the memfd pgpass line, and
// /proc shows the running child's argv and environment without the password.
func TestCommandPsql(t *testing.T) {
	need15(t)
	t.Setenv("PGAEGIS_PG_BIN", debian15)
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	password := `p:a\ss wörd ☃ '#*`
	if err := srv.Exec(ctx, "CREATE ROLE bob LOGIN PASSWORD '"+strings.ReplaceAll(password, "'", "''")+"'",
		`CREATE DATABASE "app db" OWNER bob`); err != nil {
		t.Fatal(err)
	}
	psql, err := Find("psql", 15)
	if err != nil {
		t.Fatal(err)
	}
	// The user's PGPASSWORD must not reach the child; PGSSLMODE must.
	t.Setenv("PGPASSWORD", password)
	t.Setenv("PGSSLMODE", "disable")
	port := strconv.Itoa(srv.Port)
	cfg := srv.ConnConfig("postgres")
	cfg.User, cfg.Password = "bob", password
	targets := map[string]conninfo.Flags{
		"uri":      {DSN: "postgresql://bob:ignored@127.0.0.1:" + port + "/postgres?application_name=t"},
		"keyvalue": {DSN: "host=127.0.0.1 port=" + port + " user=bob password=ignored dbname=postgres"},
		"flags":    {Host: "127.0.0.1", Port: port, User: "bob"},
		"flags+db": {DSN: "postgres", Host: "127.0.0.1", Port: port, User: "bob"},
	}
	for name, f := range targets {
		t.Run(name, func(t *testing.T) {
			tg := Target{Flags: f, Config: cfg}
			cmd, done, err := tg.Command(ctx, psql, "app db", "-XAtc", "select current_user, current_database(), current_setting('ssl', true)")
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.CombinedOutput()
			done()
			if err != nil {
				t.Fatalf("psql: %v: %s", err, redact(out, password))
			}
			if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, "bob|app db") {
				t.Errorf("got %q", got)
			}
		})
	}

	t.Run("proc", func(t *testing.T) {
		tg := Target{Flags: targets["flags"], Config: cfg}
		cmd, done, err := tg.Command(ctx, psql, "app db", "-Xqc", "select pg_sleep(1)")
		if err != nil {
			t.Fatal(err)
		}
		defer done()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		argv, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		env, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		werr := cmd.Wait()
		if err1 != nil || err2 != nil {
			t.Fatalf("reading /proc: %v %v", err1, err2)
		}
		if werr != nil {
			t.Fatalf("psql: %v: %s", werr, redact(out.Bytes(), password))
		}
		for what, b := range map[string][]byte{"argv": argv, "environment": env} {
			if bytes.Contains(b, []byte(password)) || bytes.Contains(b, []byte("wörd")) {
				t.Errorf("password in the child's %s", what)
			}
		}
		if !bytes.Contains(env, []byte("PGPASSFILE=/proc/self/fd/3")) || !bytes.Contains(env, []byte("PGSSLMODE=disable")) || bytes.Contains(env, []byte("PGPASSWORD")) {
			t.Errorf("child environment: %q", redact(env, password))
		}
		if !bytes.Contains(argv, []byte("--dbname=host='127.0.0.1'")) {
			t.Errorf("argv %q", argv)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		bad := *cfg
		bad.Password = "wrong:one"
		tg := Target{Flags: targets["flags"], Config: &bad}
		cmd, done, err := tg.Command(ctx, psql, "app db", "-XAtc", "select 1")
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.CombinedOutput()
		done()
		if _, ok := err.(*exec.ExitError); !ok || !strings.Contains(string(out), "password authentication failed") {
			t.Errorf("want a clean authentication failure, got %v: %s", err, out)
		}
	})
}

func redact(b []byte, secret string) string {
	return strings.ReplaceAll(string(b), secret, "<password>")
}

func FuzzConnString(f *testing.F) {
	f.Add("postgresql://u:pw@h:5/d?sslmode=require", "x")
	f.Add(`host=h password='a\'b' dbname=x`, "")
	f.Add("plain", "d b")
	f.Add("postgres://h/?a%20b=1", "")
	f.Fuzz(func(t *testing.T, dsn, db string) {
		s, err := Target{Flags: conninfo.Flags{DSN: dsn}}.ConnString(db)
		if err != nil {
			return
		}
		p, err := parseKeywordValue(s)
		if err != nil {
			t.Fatalf("our own output %q does not parse: %v", s, err)
		}
		if p.has("password") {
			t.Fatalf("password kept in %q", s)
		}
		if db != "" && !p.has("dbname") {
			t.Fatalf("dbname lost in %q", s)
		}
	})
}

func TestConnStringErrorHidesPassword(t *testing.T) {
	_, err := Target{Flags: conninfo.Flags{DSN: "host=h password=abc topsecret"}}.ConnString("")
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error %v", err)
	}
}

func TestConnStringRefusesSSLPassword(t *testing.T) {
	_, err := Target{Flags: conninfo.Flags{DSN: "host=h sslpassword=hush"}}.ConnString("")
	if err == nil || strings.Contains(err.Error(), "hush") {
		t.Errorf("error %v", err)
	}
}
