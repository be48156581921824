package tlsca

import (
	"errors"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheckPair(t *testing.T) {
	dir := t.TempDir()
	ca, err := InitCA(filepath.Join(dir, "ca"), "test CA", ECDSA, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := InitCA(filepath.Join(dir, "other"), "other CA", ECDSA, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, r Request) *Issued {
		t.Helper()
		if r.CommonName == "" {
			r.CommonName = "db.test"
		}
		is, err := ca.Issue(r, filepath.Join(dir, name), "server")
		if err != nil {
			t.Fatal(err)
		}
		return is
	}
	good := issue("good", Request{DNSNames: []string{"db.test", "localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	short := issue("short", Request{DNSNames: []string{"db.test"}, Validity: 10 * 24 * time.Hour})
	client := issue("client", Request{DNSNames: []string{"db.test"}, Client: true})
	mixed := issue("mixed", Request{DNSNames: []string{"db.test"}})
	// The key of another pair: a certificate with the wrong key.
	other2 := issue("other2", Request{DNSNames: []string{"db.test"}})
	k, _ := os.ReadFile(other2.KeyFile)
	if err := os.WriteFile(mixed.KeyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
	month := 30 * 24 * time.Hour
	cases := []struct {
		name      string
		cert, key string
		want      Want
		err       string // "" = usable
	}{
		{"usable", good.CertFile, good.KeyFile, Want{DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, MinLeft: month}, ""},
		{"missing name", good.CertFile, good.KeyFile, Want{DNSNames: []string{"db2.test"}}, "does not cover the name db2.test"},
		{"missing address", good.CertFile, good.KeyFile, Want{IPs: []net.IP{net.ParseIP("::1")}}, "does not cover the address ::1"},
		{"expiring soon", short.CertFile, short.KeyFile, Want{MinLeft: month}, "within 30 days"},
		{"a client certificate", client.CertFile, client.KeyFile, Want{}, "not a server certificate"},
		{"another key", mixed.CertFile, mixed.KeyFile, Want{}, "is not the key of"},
		{"no key", good.CertFile, filepath.Join(dir, "none.key"), Want{}, "none.key"},
		{"nothing", filepath.Join(dir, "none.crt"), filepath.Join(dir, "none.key"), Want{}, ErrNoPair.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckPair(c.cert, c.key, c.want)
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("CheckPair: %v, want %q", err, c.err)
			}
		})
	}
	cert, _ := ReadCert(good.CertFile)
	if !ca.Signed(cert) || other.Signed(cert) {
		t.Error("Signed does not tell the CAs apart")
	}
}

func TestParseOwner(t *testing.T) {
	cases := []struct {
		in       string
		uid, gid int
		err      bool
	}{
		{"root", 0, 0, false},
		{"0", 0, 0, false},
		{"0:0", 0, 0, false},
		{"root:12345", 0, 12345, false},
		{"4242:4343", 4242, 4343, false},
		{"", 0, 0, true},
		{":root", 0, 0, true},
		{"no-such-user-pgaegis", 0, 0, true},
		{"root:no-such-group-pgaegis", 0, 0, true},
	}
	for _, c := range cases {
		o, err := ParseOwner(c.in)
		if (err != nil) != c.err || err == nil && (o.UID != c.uid || o.GID != c.gid) {
			t.Errorf("ParseOwner(%q) = %+v, %v", c.in, o, err)
		}
	}
}

// writeOwned and FixOwnership never act through a link planted where the
// file goes: the directory may belong to the user the file is for.
func TestOwnedWritesRefuseLinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "server.key")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	me := Owner{UID: os.Geteuid(), GID: os.Getegid()}
	if err := writeOwned(link, []byte("key"), 0o600, &me); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("writeOwned through a link: %v", err)
	}
	if _, err := FixOwnership(link, 0o600, me); err == nil {
		t.Error("FixOwnership followed a link")
	}
	if st, _ := os.Stat(victim); st.Mode().Perm() != 0o644 {
		t.Errorf("the link's target changed mode: %v", st.Mode())
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the link's target was written: %q", b)
	}
}

// As root, files are given to the owner before they appear, with the mode
// asked for; an existing file's owner and mode are corrected.
func TestOwnedWritesAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files away needs root")
	}
	dir := t.TempDir()
	o := Owner{UID: 4242, GID: 4343}
	p := filepath.Join(dir, "server.key")
	if err := writeOwned(p, []byte("key"), 0o600, &o); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Uid != 4242 || sys.Gid != 4343 || st.Mode().Perm() != 0o600 {
			t.Errorf("%d:%d %v", sys.Uid, sys.Gid, st.Mode())
		}
	}
	check()
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	if changed, err := FixOwnership(p, 0o600, o); err != nil || !changed {
		t.Fatalf("FixOwnership: %v %v", changed, err)
	}
	check()
	if changed, err := FixOwnership(p, 0o600, o); err != nil || changed {
		t.Errorf("second FixOwnership: %v %v", changed, err)
	}
}

func TestLoadOrInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, created, err := LoadOrInit(dir, "x")
	if err != nil || !created {
		t.Fatal(created, err)
	}
	again, created, err := LoadOrInit(dir, "x")
	if err != nil || created || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("second LoadOrInit: %v %v", created, err)
	}
	// Half a CA is an error, never replaced.
	if err := os.Remove(filepath.Join(dir, CAKey)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrInit(dir, "x"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("half a CA: %v", err)
	}
}

// A certificate that cannot be written leaves the old key in place: never
// a new key beside the old certificate (a pair the server refuses at its
// next start). Before, the key was renamed into place first.
func TestIssueKeepsPairWhole(t *testing.T) {
	dir := t.TempDir()
	ca, err := InitCA(filepath.Join(dir, "ca"), "ca", ECDSA, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(out, "server.crt"), 0o700); err != nil { // not replaceable
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "server.key"), []byte("old key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(Request{CommonName: "db.test", DNSNames: []string{"db.test"}}, out, "server"); err == nil {
		t.Fatal("Issue replaced a directory")
	}
	if b, _ := os.ReadFile(filepath.Join(out, "server.key")); string(b) != "old key\n" {
		t.Errorf("the key was replaced without its certificate: %q", b)
	}
	if m, _ := filepath.Glob(filepath.Join(out, ".pgaegis-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// A CA directory or file another user could have planted (the trial: an
// unprivileged user's init-ca in /tmp/pgaegis-ca, then root's issue
// server --pgdata /tmp/trialpg signed with the planted key) is refused,
// naming the path and its owner; the data directory's owner may be trusted.
func TestCATrust(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres OS user")
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	pgTrust := Trust{Owner: Owner{UID: uid, GID: gid, Name: "postgres"}, Role: "the data directory's owner"}
	root := t.TempDir()
	n := 0
	fresh := func() string {
		n++
		dir := filepath.Join(root, "ca"+strconv.Itoa(n))
		if _, err := InitCA(dir, "ca", ECDSA, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		setup   func(dir string) string // returns the path given to LoadCA
		trusted []Trust
		err     string // "" = loads
	}{
		{"ours", func(d string) string { return d }, nil, ""},
		{"directory of another user", func(d string) string { must(os.Chown(d, uid, gid)); return d }, nil, "is owned by postgres (uid " + pg.Uid + "): expected this user"},
		{"directory of the trusted data directory owner", func(d string) string {
			for _, f := range []string{"", CACert, CAKey} {
				must(os.Chown(filepath.Join(d, f), uid, gid))
			}
			return d
		}, []Trust{pgTrust}, ""},
		{"key of another user", func(d string) string { must(os.Chown(filepath.Join(d, CAKey), uid, gid)); return d }, nil, CAKey + " is owned by postgres"},
		{"certificate of another user", func(d string) string { must(os.Chown(filepath.Join(d, CACert), uid, gid)); return d }, nil, CACert + " is owned by postgres"},
		{"key readable by the group", func(d string) string { must(os.Chmod(filepath.Join(d, CAKey), 0o640)); return d }, nil, "has mode 0640: others may read it"},
		{"directory writable by all", func(d string) string { must(os.Chmod(d, 0o777)); return d }, nil, "has mode 0777: others may write to it"},
		{"link planted by another user", func(d string) string {
			l := d + ".link"
			must(os.Symlink(d, l))
			must(os.Lchown(l, uid, gid))
			return l
		}, nil, "(a symbolic link) " + root},
		{"our link", func(d string) string { l := d + ".ours"; must(os.Symlink(d, l)); return l }, nil, ""},
		{"key linked by another user", func(d string) string {
			k := filepath.Join(d, CAKey)
			must(os.Rename(k, k+".real"))
			must(os.Symlink(k+".real", k))
			must(os.Lchown(k, uid, gid))
			return d
		}, nil, "CA file (a symbolic link) " + filepath.Join(root, "")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.setup(fresh())
			_, err := LoadCA(dir, c.trusted...)
			switch {
			case c.err == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), root)):
				t.Errorf("error %v, want one naming the path and %q", err, c.err)
			}
		})
	}
	// An empty directory planted by another user: no CA is created in it.
	planted := filepath.Join(root, "planted")
	must(os.Mkdir(planted, 0o700))
	must(os.Chown(planted, uid, gid))
	if _, _, err := LoadOrInit(planted, "x"); err == nil || !strings.Contains(err.Error(), "owned by postgres") {
		t.Errorf("LoadOrInit in a planted directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(planted, CAKey)); err == nil {
		t.Error("a CA key was written into the planted directory")
	}
}
