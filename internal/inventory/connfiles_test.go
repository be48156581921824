package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestConnSettings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
	}{
		{"host=db1 passfile=/etc/pg pass", map[string]string{"host": "db1", "passfile": "/etc/pg"}},
		{`passfile = '/a b/it\'s' sslkey=/k\ x`, map[string]string{"passfile": "/a b/it's", "sslkey": "/k x"}},
		{"sslkey=/a sslkey=/b", map[string]string{"sslkey": "/b"}}, // later wins, as in libpq
		{"host='unterminated", map[string]string{"host": "unterminated"}},
		{"postgresql://u@h/d?sslrootcert=%2Fca.pem&passfile=/p", map[string]string{"sslrootcert": "/ca.pem", "passfile": "/p"}},
	} {
		if got := connSettings(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

// The files a connection string names itself are held to the same rules
// as the inventory's own keys: a FIFO would hang pgx's parse, and a
// passfile open to others is refused.
func TestConnFilesInConninfo(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	open := filepath.Join(dir, "open.pgpass")
	os.WriteFile(open, []byte("*:*:*:*:x\n"), 0o644)
	os.Chmod(open, 0o644)
	fifo := filepath.Join(dir, "ca.fifo")
	fifoOK := mkfifo(fifo) == nil
	for _, tc := range []struct{ conn, want string }{
		{"host=db1 passfile=" + open, "has mode 0644"},
		{"postgresql://u@db1/app?passfile=" + open, "has mode 0644"},
		{"host=db1 sslmode=verify-full sslrootcert=" + filepath.Join(dir, "absent.pem"), "sslrootcert: " + dir + "/absent.pem: no such file"},
		{"host=db1 sslmode=verify-full sslrootcert=system", ""},
		{"host=db1 sslmode=verify-full sslrootcert=" + fifo, "not a regular file"},
	} {
		if strings.Contains(tc.conn, "fifo") && !fifoOK {
			continue
		}
		p := filepath.Join(dir, "inv.yaml")
		os.WriteFile(p, []byte("servers:\n  - name: db1\n    conninfo: \""+tc.conn+"\"\n"), 0o644)
		_, err := Load(p)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.conn, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "inv.yaml:3:15: conninfo: ")):
			t.Errorf("%s: %v, want %q", tc.conn, err, tc.want)
		}
	}
}

// TestInlinePasswordForms: every way libpq or pgx would take a password
// from the string is refused, and the value never shows.
func TestInlinePasswordForms(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	for _, conn := range []string{
		"host=db1 password=Sekr1tValue",
		"host=db1 password = 'Sekr1t Value'",
		"host=db1 PASSWORD=Sekr1tValue",
		"host=db1 sslpassword=Sekr1tValue",
		"postgresql://app:Sekr1tValue@db1/app",
		"postgres://app:@db1/app",
		"postgresql://app@db1/app?password=Sekr1tValue",
		"postgresql://app@db1/app?sslmode=require&sslpassword=Sekr1tValue",
		"postgresql://app@db1/app?pass%77ord=Sekr1tValue",
		"postgresql://app@db1/app?PassWord=Sekr1tValue",
	} {
		p := filepath.Join(dir, "inv.yaml")
		os.WriteFile(p, []byte("servers:\n  - name: db1\n    conninfo: \""+conn+"\"\n"), 0o644)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), "inv.yaml:3:15: inline password in conninfo refused") || strings.Contains(err.Error(), "Sekr1t") {
			t.Errorf("%q: %v", conn, err)
		}
	}
}
