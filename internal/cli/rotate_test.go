package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/scram"
)

// TestRotateUsage: mistakes are exit 2 with a clear message, before any
// connection (the host named does not exist: a connection attempt would
// fail with another message), and a password given in --verify never
// shows.
func TestRotateUsage(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	noServer := []string{"-h", filepath.Join(dir, "no-socket-here"), "-p", "1", "-U", "postgres"}
	const secret = "hunter2hunter2secret"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no role", []string{"rotate"}, "give one role"},
		{"no destination", []string{"rotate", "app"}, "the new password would be known nowhere"},
		{"valid-until in the past", []string{"rotate", "app", "--to-file", file, "--valid-until", "2001-01-01"}, "is not in the future"},
		{"valid-until not a time", []string{"rotate", "app", "--to-file", file, "--valid-until", "soon"}, "not a duration"},
		{"negative duration", []string{"rotate", "app", "--to-file", file, "--valid-until", "-3h"}, "a duration must be positive"},
		{"bad alphabet", []string{"rotate", "app", "--to-file", file, "--alphabet", "emoji"}, `unknown --alphabet "emoji" (alnum, ascii, hex, unicode)`},
		{"short length", []string{"rotate", "app", "--to-file", file, "--length", "8"}, "--length 8: a password of 16 to 1024 characters"},
		{"few iterations", []string{"rotate", "app", "--to-file", file, "--iterations", "100"}, "at least 4096"},
		{"password in verify", []string{"rotate", "app", "--to-file", file, "--verify", "host=db password=" + secret}, "--verify host=db password=xxxxx holds a password"},
		{"password in verify URI", []string{"rotate", "app", "--to-file", file, "--verify", "postgresql://app:" + secret + "@db/shop"}, "holds a password"},
		{"json result and json secret", []string{"rotate", "app", "--output", "json", "--format", "json"}, "cannot go there too"},
		{"bad output", []string{"rotate", "app", "--output", "yaml"}, `unknown --output "yaml"`},
		{"bad file format", []string{"rotate", "app", "--to-file", file, "--file-format", "yaml"}, `unknown --file-format "yaml"`},
		{"service file alone", []string{"rotate", "app", "--service-file", file}, "give --to-service too"},
		{"login roles for single", []string{"rotate", "app", "--to-file", file, "--login-roles", "a,b"}, "--login-roles is for --strategy alternate"},
		{"one login role", []string{"rotate", "app", "--to-file", file, "--strategy", "alternate", "--login-roles", "a"}, "two roles"},
		{"same login roles", []string{"rotate", "app", "--to-file", file, "--strategy", "alternate", "--login-roles", "a,a"}, "different from each other"},
		{"bad strategy", []string{"rotate", "app", "--to-file", file, "--strategy", "round-robin"}, `unknown --strategy "round-robin"`},
		{"bad format", []string{"rotate", "app", "--to-file", file, "--format", "yaml"}, `unknown --format "yaml"`},
		{"role in path is not a path", []string{"rotate", "../etc", "--to-file", filepath.Join(dir, "{role}.pw")}, "cannot be part of a path"},
		{"rollback bad id", []string{"rotate", "rollback", "../x"}, "is not a rotation id"},
		{"rollback no id", []string{"rotate", "rollback"}, "needs one rotation id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, append(tc.args, noServer...)...)
			if code != ExitError || out != "" || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "--help") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errs, tc.want)
			}
			if strings.Contains(errs, secret) || strings.Contains(errs, "no-socket-here") {
				t.Fatalf("the secret, or a connection attempt, in %q", errs)
			}
		})
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a usage error wrote %s", file)
	}
}

func TestParseValidUntil(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in    string
		want  time.Time
		never bool
		err   string
	}{
		{in: "90d", want: now.Add(90 * 24 * time.Hour)},
		{in: "12h", want: now.Add(12 * time.Hour)},
		{in: "1d12h", want: now.Add(36 * time.Hour)},
		{in: "2027-03-01", want: time.Date(2027, 3, 1, 0, 0, 0, 0, time.Local)},
		{in: "2027-03-01T12:00:00Z", want: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)},
		{in: "2027-03-01T12:00:00+02:00", want: time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)},
		{in: "infinity", never: true},
		{in: "Infinity", never: true},
		{in: "0d", err: "positive"},
		{in: "-1h", err: "positive"},
		{in: "2026-12-01", err: "not in the future"},
		{in: "d", err: "not a duration"},
		{in: "90 days", err: "not a duration"},
	} {
		got, never, err := parseValidUntil(tc.in, now)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case never != tc.never || (got == nil) != tc.never || got != nil && !got.Equal(tc.want):
			t.Errorf("%q: %v %v, want %v %v", tc.in, got, never, tc.want, tc.never)
		}
	}
}

func TestExpandPath(t *testing.T) {
	for _, tc := range []struct{ tmpl, role, user, want, err string }{
		{"/etc/app/{role}.pw", "app", "app", "/etc/app/app.pw", ""},
		{"/etc/{role}/{user}.env", "owner", "owner_b", "/etc/owner/owner_b.env", ""},
		{"/etc/app/db.pw", "../x", "", "/etc/app/db.pw", ""},
		{"/etc/app/{role}.pw", "a/b", "a/b", "", "cannot be part of a path"},
		{"/etc/app/{user}", "app", "..", "", "cannot be part of a path"},
	} {
		got, err := expandPath(tc.tmpl, tc.role, tc.user)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q %q %q: %q %v", tc.tmpl, tc.role, tc.user, got, err)
		}
	}
}

// rotateServer is one server for every end-to-end rotation case: statements
// logged (log_statement = all, pgaudit when installed) and
// pg_stat_statements tracking utility statements, so every place a
// password could land is live.
func rotateServer(t *testing.T) *localpg.Server {
	bin, err := localpg.FindBinDir(pgtest.Version)
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	preload := "pg_stat_statements"
	conf := []string{"log_statement = 'all'", "log_min_duration_statement = 0", "pg_stat_statements.track_utility = on"}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "lib", "pgaudit.so")); err == nil {
		preload = "pgaudit," + preload
		conf = append(conf, "pgaudit.log = 'all'", "pgaudit.log_parameter = on")
	}
	srv := pgtest.Start(t, localpg.Options{Conf: append(conf, "shared_preload_libraries = '"+preload+"'")})
	if err := srv.Exec(pgtest.Ctx(t), "CREATE EXTENSION pg_stat_statements"); err != nil {
		t.Fatal(err)
	}
	return srv
}

// loginAs is the ORACLE: psql (libpq) logs in as user over the server's
// unix socket with the given environment (PGPASSWORD or PGPASSFILE) and
// nothing of the test process's libpq variables.
func loginAs(srv *localpg.Server, user string, env ...string) error {
	cmd := exec.Command(filepath.Join(srv.BinDir, "psql"), "-X", "-At", "-w", "-h", srv.SocketDir, "-p", strconv.Itoa(srv.Port),
		"-U", user, "-d", "postgres", "-c", "SELECT current_user")
	cmd.Env = conninfo.ChildEnv(env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	if got := strings.TrimSpace(string(out)); got != user {
		return fmt.Errorf("logged in as %q", got)
	}
	return nil
}

func loginWith(srv *localpg.Server, user, pw string) error {
	return loginAs(srv, user, "PGPASSWORD="+pw)
}

// TestRotateEndToEnd rotates a role again and again on one server over a
// unix socket as the superuser, through each destination, rolls one back,
// fails one, and then checks that nothing pgaegis printed, nor the server
// log, nor pg_stat_statements holds any password or verifier it made.
func TestRotateEndToEnd(t *testing.T) {
	srv := rotateServer(t)
	ctx := pgtest.Ctx(t)
	// The starting password is set as a verifier, as a careful admin would:
	// its clear text is in no log either.
	old := "old-password-0123456789"
	v, err := scram.Verifier([]byte(old), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Exec(ctx, "CREATE ROLE app LOGIN PASSWORD '"+v+"'"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	journal := filepath.Join(dir, "journal")
	verify := fmt.Sprintf("host=%s port=%d dbname=postgres", srv.SocketDir, srv.Port)
	t.Setenv("PGPASSWORD", srv.Password)
	admin := []string{"-h", srv.SocketDir, "-p", strconv.Itoa(srv.Port), "-U", srv.AdminUser, "-d", "postgres", "--journal-dir", journal}

	var outputs []string           // everything pgaegis printed but the deliberate secret
	var passwords []string         // every password made, newest last
	verifiers := map[string]bool{} // every verifier a rotation set
	run := func(args ...string) (int, string, string) {
		t.Helper()
		code, out, errs := runCLI(t, append(append([]string{"rotate"}, args...), admin...)...)
		outputs = append(outputs, errs)
		return code, out, errs
	}
	recordVerifier := func() {
		t.Helper()
		var v string
		if err := pgtest.Conn(t, srv, "postgres").QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'").Scan(&v); err != nil {
			t.Fatal(err)
		}
		verifiers[v] = true
	}
	readPW := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(path)
		if st.Mode().Perm() != 0o600 || !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
			t.Fatalf("%s: mode %v, %d bytes", path, st.Mode().Perm(), len(b))
		}
		return strings.TrimSuffix(string(b), "\n")
	}

	t.Run("file", func(t *testing.T) {
		file := filepath.Join(dir, "{role}.pw")
		code, out, errs := run("app", "--to-file", file, "--verify", verify, "--valid-until", "90d")
		outputs = append(outputs, out)
		if code != ExitOK {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
		pw := readPW(filepath.Join(dir, "app.pw"))
		passwords = append(passwords, pw)
		recordVerifier()
		for _, want := range []string{"rotated app", "verified:", "delivered to:", "app.pw", "valid until: 20", "leak scan:", "took ", "undo: pgaegis rotate rollback "} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in the summary:\n%s", want, out)
			}
		}
		// ORACLE: psql logs in with the new password, not with the old one.
		if err := loginWith(srv, "app", pw); err != nil {
			t.Fatalf("the new password does not log in: %v", err)
		}
		if err := loginWith(srv, "app", old); err == nil {
			t.Fatal("the old password still logs in")
		}
		var until time.Time
		if err := pgtest.Conn(t, srv, "postgres").QueryRow(ctx, "SELECT rolvaliduntil FROM pg_authid WHERE rolname = 'app'").Scan(&until); err != nil {
			t.Fatal(err)
		}
		if d := time.Until(until); d < 89*24*time.Hour || d > 91*24*time.Hour {
			t.Errorf("VALID UNTIL %v, want 90 days from now", until)
		}
	})

	t.Run("output json", func(t *testing.T) {
		code, out, errs := run("app", "--output", "json", "--valid-until", "infinity")
		if code != ExitOK {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
		// Exactly one JSON object, one line, and nothing else on stdout.
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "}\n") {
			t.Fatalf("stdout is not one line of JSON: %q", out)
		}
		var s struct {
			Role, User, Password string
		}
		dec := json.NewDecoder(strings.NewReader(out))
		if err := dec.Decode(&s); err != nil || dec.More() || s.User != "app" || len(s.Password) != 32 {
			t.Fatalf("stdout %q: %v", out, err)
		}
		if !strings.Contains(errs, "rotated app") {
			t.Errorf("the summary is not on stderr: %q", errs)
		}
		passwords = append(passwords, s.Password)
		recordVerifier()
		// ORACLE: psql.
		if err := loginWith(srv, "app", s.Password); err != nil {
			t.Fatalf("the password printed does not log in: %v", err)
		}
	})

	t.Run("pgpass", func(t *testing.T) {
		pgpass := filepath.Join(dir, "pgpass")
		keep := "otherhost:5432:*:someone:keep\\:me\n"
		if err := os.WriteFile(pgpass, []byte(keep), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := run("app", "--to-pgpass="+pgpass, "--alphabet", "ascii", "--length", "40")
		outputs = append(outputs, out)
		if code != ExitOK {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
		recordVerifier()
		b, _ := os.ReadFile(pgpass)
		if !strings.HasPrefix(string(b), keep) || bytes.Count(b, []byte("\n")) != 2 {
			t.Fatalf("pgpass:\n%s", b)
		}
		// ORACLE: psql finds the line and logs in with it, no PGPASSWORD.
		if err := loginAs(srv, "app", "PGPASSFILE="+pgpass); err != nil {
			t.Fatalf("psql with the pgpass file: %v", err)
		}
		line := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")[1]
		pw := line[strings.LastIndex(line, ":app:")+len(":app:"):]
		passwords = append(passwords, strings.NewReplacer(`\:`, ":", `\\`, `\`).Replace(pw))
	})

	var id string
	t.Run("json result and rollback", func(t *testing.T) {
		file := filepath.Join(dir, "app.pw")
		before := readPW(file)
		code, out, errs := run("app", "--to-file", file, "--format", "json", "--verify", verify, "--log-file", srv.LogFile)
		outputs = append(outputs, out)
		if code != ExitOK {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
		var res map[string]any
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		for _, k := range []string{"plan_id", "role", "user", "verified", "delivered", "valid_until", "warnings", "leak_scan", "stages_ms", "duration_ms"} {
			if _, ok := res[k]; !ok {
				t.Errorf("no %q in %s", k, out)
			}
		}
		// --log-file: the server's stderr log, which it cannot read back
		// itself, was searched (and the secret is not in it).
		if ls, _ := res["leak_scan"].(map[string]any); ls["log_checked"] != true || ls["log_bytes"] == float64(0) || len(ls["hits"].([]any)) != 0 {
			t.Errorf("--log-file %s was not searched, or found something: %v", srv.LogFile, res["leak_scan"])
		}
		id, _ = res["plan_id"].(string)
		previous := passwords[len(passwords)-1] // the role's password before this rotation
		pw := readPW(file)
		passwords = append(passwords, pw)
		recordVerifier()
		code, out, errs = runCLI(t, append([]string{"rotate", "rollback", id}, admin...)...)
		outputs = append(outputs, out, errs)
		if code != ExitOK || !strings.Contains(out, "rolled back") {
			t.Fatalf("rollback: exit %d: %s%s", code, out, errs)
		}
		// ORACLE: psql: the role's password before is back, and the file
		// holds what it held before.
		if err := loginWith(srv, "app", previous); err != nil {
			t.Fatalf("after the rollback the previous password does not log in: %v", err)
		}
		if got := readPW(file); got != before {
			t.Fatalf("after the rollback the file holds another password than before")
		}
		passwords = append(passwords, previous) // current again
		if err := loginWith(srv, "app", pw); err == nil {
			t.Fatal("the rolled-back password still logs in")
		}
		code, out, _ = runCLI(t, "rotate", "history", "--journal-dir", journal)
		if code != ExitOK || !strings.Contains(out, id) {
			t.Errorf("history: exit %d: %s", code, out)
		}
	})

	t.Run("plan", func(t *testing.T) {
		code, out, errs := run("app", "--plan", "--to-file", filepath.Join(dir, "plan.pw"))
		outputs = append(outputs, out)
		if code != ExitOK || !strings.Contains(out, "app") {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
		code, out, errs = run("app", "--plan", "--format", "json")
		outputs = append(outputs, out)
		if code != ExitOK || !json.Valid([]byte(out)) {
			t.Fatalf("--plan --format json: exit %d: %s%s", code, out, errs)
		}
		if _, err := os.Stat(filepath.Join(dir, "plan.pw")); !os.IsNotExist(err) {
			t.Fatal("--plan wrote the destination")
		}
	})

	t.Run("failed verification restores", func(t *testing.T) {
		current := passwords[len(passwords)-1]
		code, out, errs := run("app", "--to-file", filepath.Join(dir, "failed.pw"), "--verify", verify+" dbname=no_such_database")
		outputs = append(outputs, out)
		if code != ExitError || !strings.Contains(errs, "put back") {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
		// ORACLE: psql: the password before still logs in.
		if err := loginWith(srv, "app", current); err != nil {
			t.Fatalf("the previous password no longer logs in: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "failed.pw")); !os.IsNotExist(err) {
			t.Fatal("a failed rotation delivered")
		}
	})

	// THE OUTPUT LEAK TEST. ORACLE: the server's own log and
	// pg_stat_statements, read back here.
	t.Run("no secret anywhere", func(t *testing.T) {
		if len(passwords) < 4 {
			t.Fatalf("only %d rotations ran", len(passwords))
		}
		logText, err := os.ReadFile(srv.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		var stmts strings.Builder
		rows, err := pgtest.Conn(t, srv, "postgres").Query(ctx, "SELECT query FROM pg_stat_statements")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var q string
			rows.Scan(&q)
			stmts.WriteString(q + "\n")
		}
		rows.Close()
		// The control: statements are logged, verifiers in them included
		// (the setup's CREATE ROLE), so a miss below means something.
		if !strings.Contains(string(logText), v) {
			t.Fatal("the server log does not hold the setup's verifier: statements are not being logged")
		}
		places := map[string]string{"server log": string(logText), "pg_stat_statements": stmts.String(), "pgaegis output": strings.Join(outputs, "\n")}
		needles := map[string]string{"the old password": old}
		for i, p := range passwords {
			needles[fmt.Sprintf("password %d", i+1)] = p
		}
		n := 0
		for v := range verifiers {
			n++
			needles[fmt.Sprintf("verifier %d", n)] = v
			// Its keys alone would do for a replay of the server side.
			needles[fmt.Sprintf("verifier %d's keys", n)] = v[strings.IndexByte(v, '$')+1:]
		}
		for place, text := range places {
			for what, s := range needles {
				if strings.Contains(text, s) {
					sc := bufio.NewScanner(strings.NewReader(text))
					for sc.Scan() {
						if strings.Contains(sc.Text(), s) {
							t.Errorf("%s in the %s: %s", what, place, strings.ReplaceAll(sc.Text(), s, "<"+what+">"))
							break
						}
					}
				}
			}
		}
	})
}
