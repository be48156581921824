package secretsink

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/scram"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// psqlWith logs in with psql over loopback TCP using only env for the
// password (a pgpass or service file), never PGPASSWORD or argv.
func psqlWith(t *testing.T, srv *localpg.Server, env []string, args ...string) error {
	t.Helper()
	psql := filepath.Join(srv.BinDir, "psql")
	ctx, cancel := context.WithTimeout(pgtest.Ctx(t), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, append([]string{"-X", "-w", "-q", "-At", "-c", "SELECT current_user"}, args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "LC_ALL=C", "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=30"}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: []byte(strings.TrimSpace(string(out)))}
	}
	return nil
}

// ORACLE: libpq (psql) logs in reading only the pgpass file or the
// service file these sinks wrote, for passwords with the characters
// each format escapes or trims.
func TestLibpqReadsWhatWeWrite(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	admin := pgtest.Conn(t, srv, "postgres")
	const role = "sink_oracle"
	admin.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	port := strconv.Itoa(srv.Port)
	for _, pw := range []string{`plain32charsAAAAAAAAAAAAAAAAAAAA`, `co:lon\back\\slash`, `#hash at start`, `sp ace s  inside`, `ελληνικά密码Кириллица`, `quote'and"dq`} {
		t.Run(strconv.Quote(pw), func(t *testing.T) {
			v, err := scram.Verifier([]byte(pw), 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := admin.Exec(ctx, "ALTER ROLE "+role+" PASSWORD "+quote.Literal(v)); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			sec := Secret{Role: role, User: role, Password: []byte(pw), Host: "127.0.0.1", Port: port, Database: "postgres"}

			pgpass := filepath.Join(dir, "pgpass")
			// An unrelated line and a wildcard line that would match first.
			if err := os.WriteFile(pgpass, []byte("other:1:db:u:x\n127.0.0.1:*:*:*:wrong\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			// The control: the wildcard line alone does not log in.
			if err := psqlWith(t, srv, []string{"PGPASSFILE=" + pgpass}, "-h", "127.0.0.1", "-p", port, "-U", role, "-d", "postgres"); err == nil {
				t.Fatal("the wrong wildcard password logged in: the oracle proves nothing")
			}
			s, err := NewPgpass(pgpass)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Deliver(ctx, sec); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(pgpass); st.Mode().Perm() != 0o600 {
				t.Errorf("pgpass mode %04o", st.Mode().Perm())
			}
			if err := psqlWith(t, srv, []string{"PGPASSFILE=" + pgpass}, "-h", "127.0.0.1", "-p", port, "-U", role, "-d", "postgres"); err != nil {
				t.Errorf("psql with only the pgpass file written: %v", err)
			}

			svc := filepath.Join(dir, "pg_service.conf")
			if err := os.WriteFile(svc, []byte("# ours\n[other]\nhost=example.invalid\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = NewService(svc, "app")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Deliver(ctx, sec); err != nil {
				if strings.HasSuffix(pw, " ") {
					return // refused: libpq trims trailing whitespace
				}
				t.Fatal(err)
			}
			if err := psqlWith(t, srv, []string{"PGSERVICEFILE=" + svc, "PGPASSFILE=/dev/null"}, "service=app"); err != nil {
				t.Errorf("psql with only the service file written: %v", err)
			}
		})
	}
}

// ORACLE: libpq compares an unescaped ':' inside a field like any other
// byte until the connection's value is used up, so the role "sink:colon"
// logs in from a line that does not escape its colon. The fuzz test's
// reader (libpqPassword) follows this; here the real libpq confirms it.
func TestLibpqUnescapedColonInField(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	admin := pgtest.Conn(t, srv, "postgres")
	const role = "sink:colon"
	admin.Exec(ctx, "DROP ROLE IF EXISTS "+quote.Ident(role))
	v, err := scram.Verifier([]byte("colonpw"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE ROLE "+quote.Ident(role)+" LOGIN PASSWORD "+quote.Literal(v)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+quote.Ident(role)) })
	port := strconv.Itoa(srv.Port)
	line := "127.0.0.1:" + port + ":postgres:sink:colon:colonpw\n"
	if got, ok := libpqPassword([]byte(line), PgpassEntry{"127.0.0.1", port, "postgres", role}); !ok || got != "colonpw" {
		t.Fatalf("the fuzz oracle reads %q (%v)", got, ok)
	}
	pgpass := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pgpass, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := psqlWith(t, srv, []string{"PGPASSFILE=" + pgpass}, "-h", "127.0.0.1", "-p", port, "-U", role, "-d", "postgres"); err != nil {
		t.Errorf("libpq did not read the unescaped line: %v", err)
	}
}
