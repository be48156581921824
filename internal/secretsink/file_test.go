package secretsink

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tricky is a password with everything that breaks naive quoting.
var tricky = []byte(`it's a $HOME "pass" \ word: #1 ` + "`x`" + ` ünï`)

func secret(pw []byte) Secret {
	vu := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	return Secret{Role: "app", User: "app_b", Password: pw, Host: "db.example.com", Port: "5432", Database: "appdb", ValidUntil: &vu}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestFileFormats(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, c := range []struct {
		format string
		check  func(t *testing.T, path string, got []byte)
	}{
		{FormatPassword, func(t *testing.T, _ string, got []byte) {
			if want := string(tricky) + "\n"; string(got) != want {
				t.Errorf("got %q, want %q", got, want)
			}
		}},
		{FormatJSON, func(t *testing.T, _ string, got []byte) {
			var v struct {
				User, Password string
				ValidUntil     time.Time `json:"valid_until"`
			}
			if err := json.Unmarshal(got, &v); err != nil || v.User != "app_b" || v.Password != string(tricky) || !v.ValidUntil.Equal(*secret(nil).ValidUntil) {
				t.Errorf("got %q (%v)", got, err)
			}
			if bytes.Count(got, []byte("\n")) != 1 {
				t.Errorf("not one line: %q", got)
			}
		}},
		{FormatEnv, func(t *testing.T, path string, _ []byte) {
			// ORACLE: sh itself reads the file back.
			out, err := exec.Command("/bin/sh", "-c", `. "$1" && printf '%s\n%s' "$PGUSER" "$PGPASSWORD"`, "sh", path).Output()
			if want := "app_b\n" + string(tricky); err != nil || string(out) != want {
				t.Errorf("sourced: %q (%v), want %q", out, err, want)
			}
		}},
	} {
		t.Run(c.format, func(t *testing.T) {
			path := filepath.Join(dir, "secret."+c.format)
			sink, err := NewFile(path, c.format)
			if err != nil {
				t.Fatal(err)
			}
			d, err := sink.Deliver(ctx, secret(tricky))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if m := mode(t, path); m != 0o600 {
				t.Errorf("mode %04o", m)
			}
			if d.Existed || d.Path != path || d.Written != sum(got) || d.Undo == nil {
				t.Errorf("delivery %+v", d)
			}
			c.check(t, path, got)
			if err := d.Undo(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("undo of a new file left it: %v", err)
			}
		})
	}
}

func TestFileUndoRestoresBytesAndMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db.pw")
	old := []byte("old-secret\r\nno final newline")
	os.WriteFile(path, old, 0o640)
	os.Chmod(path, 0o640)
	sink, _ := NewFile(path, FormatPassword)
	d, err := sink.Deliver(context.Background(), secret([]byte("new")))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Existed || !bytes.Equal(d.Previous, old) || d.PreviousMode != 0o640 {
		t.Errorf("delivery %+v", d)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %04o after delivery", m)
	}
	if err := d.Undo(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Errorf("undo: %q", got)
	}
	if m := mode(t, path); m != 0o640 {
		t.Errorf("mode %04o after undo", m)
	}
	// A file changed since is not clobbered by an undo.
	d, _ = sink.Deliver(context.Background(), secret([]byte("newer")))
	os.WriteFile(path, []byte("someone else's"), 0o600)
	if err := d.Undo(); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Errorf("undo over a changed file: %v", err)
	}
}

func TestFileRefusals(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("x"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	sticky := filepath.Join(dir, "sticky")
	os.Mkdir(sticky, 0o777)
	os.Chmod(sticky, 0o777|os.ModeSticky)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o700)
	pw := []byte("s3cret-Pa55")
	for _, c := range []struct {
		path, want string
	}{
		{link, "symbolic link"},
		{filepath.Join(open, "f"), "no sticky bit"},
		{sub, "directory"},
		{filepath.Join(dir, "missing", "f"), "no such file"},
	} {
		sink, err := NewFile(c.path, FormatPassword)
		if err == nil {
			_, err = sink.Deliver(context.Background(), secret(pw))
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: %v, want an error naming the path and %q", c.path, err, c.want)
		} else if strings.Contains(err.Error(), string(pw)) {
			t.Errorf("error holds the password: %v", err)
		}
	}
	if got, _ := os.ReadFile(target); string(got) != "x" {
		t.Errorf("the link's target was written: %q", got)
	}
	sink, _ := NewFile(filepath.Join(sticky, "f"), FormatPassword)
	if _, err := sink.Deliver(context.Background(), secret(pw)); err != nil {
		t.Errorf("a sticky world-writable directory: %v", err)
	}
	if _, err := NewFile(target, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
	for _, bad := range [][]byte{nil, []byte("a\x00b"), []byte("two\nlines")} {
		sink, _ := NewFile(filepath.Join(dir, "bad"), FormatPassword)
		if _, err := sink.Deliver(context.Background(), secret(bad)); err == nil || (len(bad) > 0 && strings.Contains(err.Error(), string(bad))) {
			t.Errorf("password %q: %v", bad, err)
		}
	}
	sink, _ = NewFile(filepath.Join(dir, "latin1"), FormatJSON)
	if _, err := sink.Deliver(context.Background(), secret([]byte("caf\xe9"))); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8 into JSON: %v", err)
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	d, err := NewJSON(&b).Deliver(context.Background(), secret(tricky))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"role": "app", "user": "app_b", "password": string(tricky), "valid_until": "2027-03-01T12:00:00Z", "host": "db.example.com", "port": "5432", "dbname": "appdb"}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %v, want %v", k, v[k], w)
		}
	}
	if len(v) != len(want) || !bytes.HasSuffix(b.Bytes(), []byte("}\n")) || bytes.Count(b.Bytes(), []byte("\n")) != 1 {
		t.Errorf("got %s", b.Bytes())
	}
	if d.Undo != nil || d.Path != "" {
		t.Errorf("delivery %+v", d)
	}
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "got")
	t.Setenv("PGPASSWORD", "admin-secret-must-not-pass")
	t.Setenv("KEEP_ME", "kept")
	ctx := context.Background()

	cmd := `umask 077; cat > "$OUT.json"; env > "$OUT.env"; printf '%s' "$*" > "$OUT.argv"`
	t.Setenv("OUT", out)
	d, err := NewExec(cmd, 0).Deliver(ctx, secret(tricky))
	if err != nil {
		t.Fatal(err)
	}
	if d.Undo != nil {
		t.Error("a command has an undo")
	}
	var v map[string]any
	got, _ := os.ReadFile(out + ".json")
	if err := json.Unmarshal(got, &v); err != nil || v["password"] != string(tricky) || v["user"] != "app_b" || v["role"] != "app" {
		t.Errorf("stdin: %q (%v)", got, err)
	}
	env, _ := os.ReadFile(out + ".env")
	for _, want := range []string{"PGAEGIS_ROLE=app\n", "PGAEGIS_USER=app_b\n", "KEEP_ME=kept\n"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("environment lacks %q", want)
		}
	}
	if strings.Contains(string(env), "PGPASSWORD") || strings.Contains(string(env), string(tricky)) {
		t.Errorf("environment holds a password:\n%s", env)
	}

	for _, c := range []struct {
		name, cmd string
		timeout   time.Duration
		want      []string
	}{
		{"exit", `cat >/dev/null; echo "rejected: $(cat /dev/null)"; echo "the secret was" 1>&2; printf 'it is %s!\n' "$SECRET" 1>&2; exit 3`, 0, []string{"exit status 3", "the secret was", "it is [REDACTED]!"}},
		{"echoes JSON", `cat 1>&2; exit 1`, 0, []string{"exit status 1", `"password":"[REDACTED]"`}},
		{"timeout", `sleep 30 & sleep 30`, 200 * time.Millisecond, []string{"timed out after 200ms"}},
		{"no shell", ``, 0, []string{"empty command"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SECRET", string(tricky))
			start := time.Now()
			_, err := NewExec(c.cmd, c.timeout).Deliver(ctx, secret(tricky))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), string(tricky)) {
				t.Errorf("error holds the password: %v", err)
			}
			// Not a timing assertion on speed: only that the kill did not
			// wait for the 30 s sleeps.
			if time.Since(start) > 25*time.Second {
				t.Errorf("took %s: the process group was not killed", time.Since(start))
			}
		})
	}
}
