package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

const policyHBA = `local all all scram-sha-256
hostssl all +admins 127.0.0.0/8 scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all 0.0.0.0/0 md5
hostssl app app 127.0.0.5/32 md5
`

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	must(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestHBACommands(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{HBA: policyHBA})
	must(t, srv.Exec(pgtest.Ctx(t), `CREATE ROLE admins NOLOGIN`, `CREATE ROLE alice LOGIN PASSWORD 'alice-pw-1' IN ROLE admins`, `CREATE ROLE app LOGIN PASSWORD 'app-pw-1'`))
	args := connArgs(t, srv, srv.AdminUser, srv.Password)

	t.Run("explain live", func(t *testing.T) {
		code, out, errs := runCLI(t, append([]string{"hba", "explain", "--user", "alice", "--database", "postgres", "--address", "127.0.0.9", "--ssl", "--format", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var e struct {
			Matched bool              `json:"matched"`
			File    string            `json:"file"`
			Line    int               `json:"line"`
			Method  string            `json:"method"`
			Options map[string]string `json:"options"`
		}
		must(t, json.Unmarshal([]byte(out), &e))
		if !e.Matched || e.Line != 2 || e.Method != "scram-sha-256" || !strings.HasSuffix(e.File, "pg_hba.conf") || e.Options == nil {
			t.Errorf("alice over TLS from 127.0.0.9: %+v", e)
		}
		// This server has ssl off: without --ssl, explain asks about the
		// plaintext connection it would really take (line 4, not 2).
		code, out, errs = runCLI(t, append([]string{"hba", "explain", "--user", "alice", "--database", "postgres", "--address", "127.0.0.9", "--format", "json"}, args...)...)
		must(t, json.Unmarshal([]byte(out), &e))
		if !e.Matched || e.Line != 4 || !strings.Contains(errs, "ssl = off") {
			t.Errorf("alice from 127.0.0.9 on a server without TLS: %+v (stderr %q)", e, errs)
		}
		code, out, _ = runCLI(t, append([]string{"hba", "explain", "--user", "app", "--database", "postgres", "--address", "127.0.0.9", "--no-ssl", "--format", "json"}, args...)...)
		must(t, json.Unmarshal([]byte(out), &e))
		if !e.Matched || e.Line != 4 || e.Method != "md5" {
			t.Errorf("app without TLS: %+v (exit %d)", e, code)
		}
	})

	t.Run("explain offline says what it depends on", func(t *testing.T) {
		f := writeFile(t, "pg_hba.conf", policyHBA)
		code, out, _ := runCLI(t, "hba", "explain", "--file", f, "--user", "alice", "--database", "postgres", "--address", "127.0.0.9", "--format", "json")
		if code != 0 || !strings.Contains(out, `"matched": false`) || !strings.Contains(out, "member of") {
			t.Errorf("exit %d: %s", code, out)
		}
	})

	t.Run("reach table", func(t *testing.T) {
		code, out, _ := runCLI(t, append([]string{"hba", "explain", "--user", "app", "--database", "app"}, args...)...)
		if code != 0 || !strings.Contains(out, "127.0.0.5/32") || !strings.Contains(out, "any other IPv6 address") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})

	t.Run("lint finds the shadowed line", func(t *testing.T) {
		f := writeFile(t, "pg_hba.conf", policyHBA)
		code, out, _ := runCLI(t, "hba", "lint", "--file", f, "--format", "json")
		if code != ExitFindings || !strings.Contains(out, "AUTH-18.shadowed") || !strings.Contains(out, f+":5") {
			t.Errorf("exit %d:\n%s", code, out[:min(len(out), 2000)])
		}
	})

	t.Run("lint names every line that together shadows one", func(t *testing.T) {
		f := writeFile(t, "union.conf", "host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\nhost app alice samenet trust\n")
		code, out, _ := runCLI(t, "hba", "lint", "--file", f)
		want := f + ":1 (host all all 0.0.0.0/0 scram-sha-256) and " + f + ":2 (host all all ::/0 scram-sha-256) take every connection it would"
		if code != ExitFindings || !strings.Contains(out, want) {
			t.Errorf("exit %d, want %q in:\n%s", code, want, out[:min(len(out), 3000)])
		}
	})

	t.Run("diff exit code follows widening", func(t *testing.T) {
		old := writeFile(t, "old.conf", "hostssl app app 10.1.0.0/16 scram-sha-256\nhost all all 0.0.0.0/0 reject\n")
		wide := writeFile(t, "new.conf", "hostssl app app 10.0.0.0/8 scram-sha-256\nhost all all 0.0.0.0/0 reject\n")
		if code, out, _ := runCLI(t, "hba", "diff", old, wide); code != ExitFindings || !strings.Contains(out, "10.0.0.0/8") {
			t.Errorf("widening: exit %d\n%s", code, out)
		}
		if code, _, _ := runCLI(t, "hba", "diff", old, wide, "--allow-widen"); code != 0 {
			t.Errorf("--allow-widen: exit %d", code)
		}
		if code, out, _ := runCLI(t, "hba", "diff", wide, old); code != 0 || !strings.Contains(out, "narrow") {
			t.Errorf("narrowing: exit %d\n%s", code, out)
		}
	})

	t.Run("matrix flags the superuser", func(t *testing.T) {
		code, out, errs := runCLI(t, append([]string{"hba", "matrix", "--format", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("exit %d %s", code, errs)
		}
		var cells []struct {
			Role, Database, Alarm string
		}
		must(t, json.Unmarshal([]byte(out), &cells))
		alarm := false
		for _, c := range cells {
			if c.Role == srv.AdminUser && strings.Contains(c.Alarm, "md5") {
				alarm = true
			}
		}
		if !alarm {
			t.Errorf("superuser reachable by md5 from anywhere should raise an alarm: %s", out)
		}
	})

	t.Run("guard", func(t *testing.T) {
		locked := writeFile(t, "locked.conf", "local all all peer\nhost all all 0.0.0.0/0 reject\n")
		code, out, _ := runCLI(t, append([]string{"hba", "guard", locked}, args...)...)
		if code != ExitFindings || !strings.Contains(out, "locked out") {
			t.Errorf("lockout file: exit %d: %s", code, out)
		}
		fine := writeFile(t, "fine.conf", "host all "+srv.AdminUser+" 127.0.0.1/32 scram-sha-256\nhost all all 0.0.0.0/0 reject\n")
		code, out, _ = runCLI(t, append([]string{"hba", "guard", fine}, args...)...)
		if code != 0 || !strings.Contains(out, "stays accepted") {
			t.Errorf("good file: exit %d: %s", code, out)
		}
	})
}
