package backup

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// guard runs in through a roleGuard for role, chunk bytes per Write.
func guard(t testing.TB, in, role string, chunk int) (string, *roleGuard, error) {
	var out bytes.Buffer
	g := newRoleGuard(&out, role)
	b := []byte(in)
	for len(b) > 0 {
		n := min(chunk, len(b))
		if _, err := g.Write(b[:n]); err != nil {
			return out.String(), g, err
		}
		b = b[n:]
	}
	err := g.Flush()
	return out.String(), g, err
}

func TestRoleGuard(t *testing.T) {
	const verifier = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"
	for _, tc := range []struct {
		name, role, in, want string
		password             bool
	}{
		{"bare name", "postgres",
			"CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD '" + verifier + "';\nCREATE ROLE app;\n",
			"CREATE ROLE postgres;\nALTER ROLE postgres WITH INHERIT CREATEROLE CREATEDB REPLICATION BYPASSRLS;\nCREATE ROLE app;\n", true},
		{"quoted name with a quote and a space", `Ad"min x`,
			"ALTER ROLE \"Ad\"\"min x\" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 3 PASSWORD 'md5abc' VALID UNTIL '2030-01-01 00:00:00+00';\n",
			"ALTER ROLE \"Ad\"\"min x\" WITH INHERIT NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS;\n", true},
		{"quoted form of a bare name", "postgres",
			"ALTER ROLE \"postgres\" WITH SUPERUSER PASSWORD 'x''y';\n", "", true},
		{"another role keeps its password", "postgres",
			"ALTER ROLE postgres2 WITH LOGIN PASSWORD 'p';\nALTER ROLE \"Postgres\" WITH LOGIN PASSWORD 'q';\n",
			"ALTER ROLE postgres2 WITH LOGIN PASSWORD 'p';\nALTER ROLE \"Postgres\" WITH LOGIN PASSWORD 'q';\n", false},
		{"role settings pass", "postgres",
			"ALTER ROLE postgres SET search_path TO 'a';\n", "ALTER ROLE postgres SET search_path TO 'a';\n", false},
		{"no password", "postgres",
			"ALTER ROLE postgres WITH SUPERUSER INHERIT LOGIN;\n", "ALTER ROLE postgres WITH INHERIT;\n", false},
		{"E string", "postgres",
			"ALTER ROLE postgres WITH LOGIN PASSWORD E'a\\'; b' CREATEDB;\nSELECT 1;\n", "ALTER ROLE postgres WITH CREATEDB;\nSELECT 1;\n", true},
		{"not at a line start", "postgres",
			"-- ALTER ROLE postgres WITH PASSWORD 'x';\n", "-- ALTER ROLE postgres WITH PASSWORD 'x';\n", false},
		{"a name spanning lines", "a\nb",
			"ALTER ROLE \"a\nb\" WITH LOGIN PASSWORD 'x';\nALTER ROLE \"c\nALTER ROLE a\" WITH LOGIN;\n", "ALTER ROLE \"c\nALTER ROLE a\" WITH LOGIN;\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, 1 << 20} {
				got, g, err := guard(t, tc.in, tc.role, chunk)
				if err != nil || got != tc.want || g.password != tc.password {
					t.Fatalf("chunk %d: %q, password %v, %v; want %q", chunk, got, g.password, err, tc.want)
				}
			}
		})
	}
	// An ALTER ROLE of the guarded role cut short is refused, not passed.
	if _, _, err := guard(t, "ALTER ROLE postgres WITH LOGIN PASSWORD 'abc", "postgres", 7); err == nil {
		t.Fatal("a cut-short ALTER ROLE of the guarded role passed")
	}
	_, g, _ := guard(t, "ALTER ROLE postgres WITH LOGIN PASSWORD '"+verifier+"';\n", "postgres", 5)
	if k := g.kept(); strings.Contains(k, verifier) || !strings.Contains(k, `"postgres"`) || !strings.Contains(k, "password") {
		t.Fatalf("kept: %q", k)
	}
}

// FuzzRoleGuard: never a panic, the result does not depend on how the
// input is cut, and a script without ALTER ROLE passes byte for byte.
func FuzzRoleGuard(f *testing.F) {
	f.Add("ALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD 'x';\n", "postgres", 3)
	f.Add("ALTER ROLE \"a\"\"b\" WITH LOGIN VALID UNTIL 'infinity';\nSELECT 1;", `a"b`, 1)
	f.Add("ALTER ROLE x SET a TO 'b';\nALTER ROLE", "x", 2)
	f.Fuzz(func(t *testing.T, in, role string, chunk int) {
		if chunk <= 0 || chunk > len(in)+1 {
			chunk = len(in) + 1
		}
		whole, _, werr := guard(t, in, role, len(in)+1)
		cut, _, cerr := guard(t, in, role, chunk)
		if (werr == nil) != (cerr == nil) || werr == nil && whole != cut {
			t.Fatalf("whole %q (%v), in pieces of %d %q (%v)", whole, werr, chunk, cut, cerr)
		}
		if !strings.Contains(in, alterRole) && (werr != nil || whole != in) {
			t.Fatalf("%q became %q (%v)", in, whole, werr)
		}
	})
}

// TestRoleGuardRealDumpall runs the guard over pg_dumpall -g
// --with-passwords output of servers 13, 14 and 15 (pg_dumpall 15 reads
// them all; it refuses newer servers, whose dumpRoles writes the same
// ALTER ROLE line).
// ORACLE: the real pg_dumpall writes the script; the only line that
// changes is the connecting role's ALTER ROLE, which loses exactly its
// PASSWORD, LOGIN and SUPERUSER clauses.
func TestRoleGuardRealDumpall(t *testing.T) {
	dumpall := filepath.Join(pg15bin, "pg_dumpall")
	if _, err := exec.LookPath(dumpall); err != nil {
		t.Skipf("no pg_dumpall 15: %v", err)
	}
	const admin = "Ad min-X" // quoted by fmtId (initdb cannot take a " in it)
	for _, major := range []int{13, 14, 15} {
		t.Run(strconv.Itoa(major), func(t *testing.T) {
			srv := pgtest.StartMajor(t, major, localpg.Options{AdminUser: admin})
			ctx := pgtest.Ctx(t)
			if err := srv.Exec(ctx, "create role other login password 'other-pw'", `create role "user" login password 'kw-pw' valid until '2100-01-01'`,
				"create role postgres login superuser password 'pg-pw' connection limit 5"); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(dumpall, "--globals-only", "-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port), "-U", admin)
			cmd.Env = append(cmd.Environ(), "PGPASSWORD="+srv.Password)
			script, err := cmd.Output()
			if err != nil {
				t.Fatalf("pg_dumpall: %v", err)
			}
			for _, role := range []string{admin, "postgres"} {
				got, g, err := guard(t, string(script), role, 4096)
				if err != nil || !g.rewrote || !g.password {
					t.Fatalf("%s: %v rewrote %v password %v", role, err, g.rewrote, g.password)
				}
				in, out := strings.Split(string(script), "\n"), strings.Split(got, "\n")
				if len(in) != len(out) {
					t.Fatalf("%s: %d lines became %d", role, len(in), len(out))
				}
				changed := 0
				for i := range in {
					if in[i] == out[i] {
						continue
					}
					changed++
					if !strings.HasPrefix(in[i], "ALTER ROLE ") || strings.Contains(out[i], "PASSWORD") || strings.Contains(out[i], " LOGIN") ||
						strings.Contains(out[i], "SUPERUSER") || strings.Contains(out[i], "CONNECTION") || !strings.HasSuffix(out[i], " NOREPLICATION NOBYPASSRLS;") && !strings.HasSuffix(out[i], " REPLICATION BYPASSRLS;") {
						t.Errorf("%s: line %d %q became %q", role, i+1, in[i], out[i])
					}
				}
				if changed != 1 {
					t.Errorf("%s: %d lines changed, want 1", role, changed)
				}
				for _, pw := range []string{`ALTER ROLE other WITH`, `ALTER ROLE "user" WITH`} {
					if !strings.Contains(got, pw) || strings.Count(got, " PASSWORD '") != 3 {
						t.Errorf("%s: the other roles' verifiers are gone (%s)", role, pw)
					}
				}
			}
		})
	}
}
