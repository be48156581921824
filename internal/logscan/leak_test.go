package logscan

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// leakSecret is the i-th secret of the leak test: distinctive, so any
// part of it found in an output is a leak.
func leakSecret(i int) string { return fmt.Sprintf("Lk%02dQz", i) }

// LeakForms are the ways of writing a password that issue #10 (defect 3)
// found leaking from logs scan, and those around them, as statements run
// on a real server. %s is the secret. Some are syntax errors on purpose:
// the server logs them as ERROR and STATEMENT.
var LeakForms = []string{
	`ALTER ROLE leak PASSWORD '%s'`,
	`ALTER ROLE leak ENCRYPTED PASSWORD '%s'`,
	`ALTER ROLE leak PASSWORD'%s'`,
	`ALTER ROLE leak PASSWORD $$%s$$`,
	`ALTER ROLE leak PASSWORD $tag$%s$tag$`,
	`ALTER ROLE leak PASSWORD E'x\'%s'`,
	`ALTER ROLE leak PASSWORD U&'\0041%s'`,
	`ALTER ROLE leak PASSWORD U&'!0041%s' UESCAPE '!'`,
	`ALTER ROLE leak PASSWORD /* c */ '%s'`,
	`ALTER ROLE leak PASSWORD /* a /* nested */ b */ '%s'`,
	"ALTER ROLE leak PASSWORD -- c\n '%s'",
	"ALTER ROLE leak PASSWORD 'ab'\n  '%s'",
	`DO $$ BEGIN EXECUTE 'ALTER ROLE leak PASSWORD ''%s'''; END $$`,
	`CREATE OR REPLACE FUNCTION leakf() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ALTER ROLE leak PASSWORD '%s'; END $f$`,
	`ALTER SYSTEM SET primary_conninfo = 'host=p user=r password=''a b %s'''`,
	`ALTER SYSTEM SET primary_conninfo = 'host=p user=r password=Part1\ %s'`,
	`ALTER SYSTEM SET primary_conninfo = 'postgresql://r:%s@p/db'`,
	`ALTER SYSTEM SET primary_conninfo = 'postgresql://r:Le@%s@p/db'`,
	`CREATE USER MAPPING FOR leak SERVER leaksrv OPTIONS (user 'leak', password '%s')`,
	`ALTER USER MAPPING FOR leak SERVER leaksrv OPTIONS (SET password '%s')`,
	`CREATE SERVER leaksrv2 FOREIGN DATA WRAPPER leakw OPTIONS (host 'h', password '%s', sslpassword 'S%s')`,
	`SELECT dblink_connect('host=h dbname=d password=%s')`,
	`SELECT dblink_connect(E'host=h password=\'x %s\'')`,
	`ALTER USER leak PASSWORD 'SCRAM-SHA-256$4096:%s'`,
	`ALTER ROLE leak PASSWORD "%s"`,
	`ALTER ROLE leak PASSWORD 12%s`,
	`ALTER ROLE leak PASSWORD$$%s$$`,
	`SET leakapp.password = '%s'`,
	`ALTER ROLE leak SET leakapp.password TO '%s'`,
}

var (
	leakOnce sync.Once
	leakDir  string
	leakErr  error
	leakKeep string // removed by TestMain
)

// LeakLogs runs LeakForms on a real server that writes stderr, csvlog and
// jsonlog side by side with pgaudit (parameters logged too), and returns
// the log directory. It runs once per test binary.
func LeakLogs(t *testing.T) string {
	t.Helper()
	leakOnce.Do(func() { leakDir, leakErr = leakLogs(t) })
	if leakErr != nil {
		t.Fatal(leakErr)
	}
	return leakDir
}

func leakLogs(t *testing.T) (string, error) {
	conf := []string{"logging_collector = on", "log_destination = 'stderr,csvlog,jsonlog'", "log_directory = 'log'",
		"log_filename = 'pg.log'", "log_line_prefix = '%m [%p] %q%u@%d %r '", "log_statement = 'all'"}
	if _, err := os.Stat("/usr/lib/postgresql/15/lib/pgaudit.so"); err == nil {
		conf = append(conf, "shared_preload_libraries = 'pgaudit'", "pgaudit.log = 'all'", "pgaudit.log_parameter = on")
	}
	srv := pgtest.Start(t, localpg.Options{Conf: conf})
	ctx := pgtest.Ctx(t)
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	for _, q := range []string{`CREATE ROLE leak LOGIN`, `CREATE FOREIGN DATA WRAPPER leakw`, `CREATE SERVER leaksrv FOREIGN DATA WRAPPER leakw`} {
		if _, err := c.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %v", q, err)
		}
	}
	for i, f := range LeakForms {
		c.Exec(ctx, strings.ReplaceAll(f, "%s", leakSecret(i))) // errors are logged too: that is the point
	}
	// A password as a bound parameter: pgaudit logs the parameter list.
	c.Exec(ctx, `SELECT set_config('leakapp.password', $1, false)`, leakSecret(len(LeakForms)))
	c.Exec(ctx, `ALTER SYSTEM RESET primary_conninfo`)
	c.Exec(ctx, `SELECT 'leak-test-end'`)
	// The collector writes asynchronously: wait for the marker in each file.
	dir := filepath.Join(srv.DataDir, "log")
	deadline := time.Now().Add(2 * time.Minute)
	for _, name := range []string{"pg.log", "pg.csv", "pg.json"} {
		for {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			if bytes.Contains(b, []byte("leak-test-end")) {
				break
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("%s: the server did not write the end marker", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Keep copies for the other tests: the server (and its directory)
	// stops with this one. TestMain removes them.
	keep, err := os.MkdirTemp("", "pgaegis-leak-")
	if err != nil {
		return "", err
	}
	leakKeep = keep
	for _, name := range []string{"pg.log", "pg.csv", "pg.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(keep, name), b, 0o600); err != nil {
			return "", err
		}
	}
	return keep, nil
}

// LeakedSecrets lists the test secrets found in text.
func LeakedSecrets(text string) []int {
	var out []int
	for i := 0; i <= len(LeakForms); i++ {
		if strings.Contains(text, leakSecret(i)) {
			out = append(out, i)
		}
	}
	return out
}

// TestNoPasswordInAnySignal (issue #10 defect 3): every statement the scan
// keeps from a real server's logs, in all three formats, is redacted: no
// part of any secret survives, and the shape (PASSWORD '*****') does.
func TestNoPasswordInAnySignal(t *testing.T) {
	dir := LeakLogs(t)
	p, _ := CompilePrefix("%m [%p] %q%u@%d %r ")
	for _, f := range []struct {
		name   string
		format Format
	}{{"pg.log", Stderr}, {"pg.csv", CSV}, {"pg.json", JSON}} {
		t.Run(string(f.format), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, f.name))
			if err != nil {
				t.Fatal(err)
			}
			if len(LeakedSecrets(string(data))) < len(LeakForms) {
				t.Fatalf("the log itself lacks some secrets (%d of %d): the test did not run them", len(LeakedSecrets(string(data))), len(LeakForms))
			}
			secrets, shaped := 0, 0
			for _, s := range parseChunk(data, f.format, p) {
				if l := LeakedSecrets(s.text); len(l) > 0 {
					// Name the forms, never the text: it holds a secret.
					for _, i := range l {
						if i < len(LeakForms) {
							t.Errorf("form %d (%s) leaks through a %s signal", i, strings.SplitN(LeakForms[i], "%s", 2)[0], f.format)
						} else {
							t.Errorf("the bound parameter leaks through a %s signal", f.format)
						}
					}
				}
				if s.secret {
					secrets++
				}
				if strings.Contains(s.text, "PASSWORD '*****'") {
					shaped++
				}
			}
			if secrets < len(LeakForms) || shaped == 0 {
				t.Errorf("%d statements reported as carrying a secret (want at least %d), %d with PASSWORD '*****'", secrets, len(LeakForms), shaped)
			}
			an, _, err := Scan([]string{filepath.Join(dir, f.name)}, Options{Prefix: p})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range an.Events() {
				if len(LeakedSecrets(fmt.Sprintf("%+v", e))) > 0 {
					t.Errorf("a %s event leaks a secret", e.Kind)
				}
			}
		})
	}
}
