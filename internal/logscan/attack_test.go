package logscan

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	if leakKeep != "" {
		os.RemoveAll(leakKeep)
	}
	os.Exit(code)
}

// TestScriptedAttack plays an attack against a real server that writes
// stderr, csvlog and jsonlog side by side (with pgaudit), then checks that
// each format yields the same events with the right source, role and count.
func TestScriptedAttack(t *testing.T) {
	conf := []string{"logging_collector = on", "log_destination = 'stderr,csvlog,jsonlog'", "log_directory = 'log'",
		"log_filename = 'pg.log'", "log_line_prefix = '%m [%p] %q%u@%d %r '", "log_connections = on", "log_statement = 'all'"}
	if _, err := os.Stat("/usr/lib/postgresql/15/lib/pgaudit.so"); err == nil {
		conf = append(conf, "shared_preload_libraries = 'pgaudit'", "pgaudit.log = 'ddl,role'")
	}
	srv := pgtest.Start(t, localpg.Options{Conf: conf, HBA: "local all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n"})
	ctx := pgtest.Ctx(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srv.Exec(ctx, `CREATE ROLE app LOGIN PASSWORD 'app-right-1'`))
	login := func(src, user, pw string) error { return loginFrom(ctx, srv, src, user, pw) }
	for i := 0; i < 12; i++ {
		login("127.0.0.2", "app", fmt.Sprintf("guess-%d", i)) // brute force
	}
	for _, u := range []string{"admin", "root", "oracle", "app", "backup", "test"} {
		login("127.0.0.3", u, "Summer2026!") // spraying
	}
	for i := 0; i < 3; i++ {
		login("127.0.0.4", "app", "wrong")
	}
	if err := login("127.0.0.4", "app", "app-right-1"); err != nil { // success after failures
		t.Fatal(err)
	}
	must(srv.Exec(ctx, `CREATE ROLE intruder SUPERUSER`, `ALTER ROLE app PASSWORD 'Secret123!'`, `COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'`))
	time.Sleep(1500 * time.Millisecond) // the collector writes asynchronously

	p, _ := CompilePrefix("%m [%p] %q%u@%d %r ")
	for _, f := range []struct {
		name   string
		format Format
	}{{"pg.log", Stderr}, {"pg.csv", CSV}, {"pg.json", JSON}} {
		t.Run(string(f.format), func(t *testing.T) {
			path := filepath.Join(srv.DataDir, "log", f.name)
			an, st, err := Scan([]string{path}, Options{Prefix: p})
			if err != nil {
				t.Fatal(err)
			}
			if st.Format != f.format {
				t.Errorf("detected %s, want %s", st.Format, f.format)
			}
			ev := map[string]Event{}
			for _, e := range an.Events() {
				ev[e.Kind+" "+e.Source] = e
				if strings.Contains(e.Sample, "Secret123!") {
					t.Errorf("a password is in the output: %+v", e)
				}
			}
			check := func(key string, minCount int, role string) {
				t.Helper()
				e, ok := ev[key]
				if !ok {
					var keys []string
					for k := range ev {
						keys = append(keys, k)
					}
					t.Errorf("no %q event; have %v", key, keys)
					return
				}
				if e.Count < minCount || (role != "" && e.Role != role) || len(e.Evidence) == 0 || !strings.HasPrefix(e.Evidence[0], path+":") {
					t.Errorf("%s: %+v", key, e)
				}
			}
			check("brute-force 127.0.0.2", 3, "") // counted from the 10th failure on
			check("password-spraying 127.0.0.3", 1, "")
			check("success-after-failures 127.0.0.4", 1, "app")
			check("superuser-granted 127.0.0.1", 1, "postgres")
			check("copy-program 127.0.0.1", 1, "postgres")
			check("secret-in-log 127.0.0.1", 1, "postgres")
			if a := an.Top(false, 3); len(a) == 0 || a[0].Key != "127.0.0.2" || a[0].N != 12 {
				t.Errorf("top source: %+v", a)
			}
			if len(st.Errors) > 0 {
				t.Errorf("unparsed lines: %v", st.Errors)
			}
		})
	}
}
