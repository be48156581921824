package backup

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgarchive"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/sealedfile"
)

const proveBin = "/usr/lib/postgresql/15/bin"

// proveDump is pg_dump -Fc -Z0 of db from srv, the password in a pgpass
// file (never argv or environment values other than its path).
func proveDump(t *testing.T, srv *localpg.Server, db string) []byte {
	t.Helper()
	pass := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pass, []byte(fmt.Sprintf("127.0.0.1:%d:*:%s:%s\n", srv.Port, srv.AdminUser, srv.Password)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(proveBin, "pg_dump"), "-Fc", "-Z0", "-h", "127.0.0.1", "-p", fmt.Sprint(srv.Port), "-U", srv.AdminUser, "-d", db)
	cmd.Env = append(os.Environ(), "PGPASSFILE="+pass)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg_dump: %v: %s", err, stderr.String())
	}
	return out
}

// proveSeal writes plain as a sealed file in dir and returns its manifest entry.
func proveSeal(t *testing.T, dir, name string, plain []byte, rcpt age.Recipient, key [32]byte) backupset.File {
	t.Helper()
	w, err := sealedfile.Create(filepath.Join(dir, name), sealedfile.Options{Recipients: []age.Recipient{rcpt}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	st, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return backupset.File{Name: name, PlainBytes: st.PlainBytes, CompressedBytes: st.CompressedBytes, CipherBytes: st.CipherBytes, SHA256: st.SHA256}
}

// TestProofContent checks the content pass on a real pg_dump archive and
// real pg_dumpall-shaped globals, sealed with sealedfile: the intact set
// passes, and each kind of damage is a problem naming the file.
func TestProofContent(t *testing.T) {
	if _, err := os.Stat(filepath.Join(proveBin, "pg_dump")); err != nil {
		t.Skipf("no PostgreSQL 15 client programs: %v", err)
	}
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, "create database app"); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "app", "create table t (id int primary key, v text)", "insert into t select g, 'x' || g from generate_series(1, 5000) g", "create table u (n int)", "insert into u values (1), (2)"); err != nil {
		t.Fatal(err)
	}
	archive := proveDump(t, srv, "app")
	// ORACLE: the counts expected come from the server, not from pgarchive.
	sum, err := pgarchive.Read(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	rand.Read(key[:])
	globals := []byte("--\n-- roles\n--\nCREATE ROLE x;\n" + dumpallEnd)

	build := func(t *testing.T, damage func(dir string, m *backupset.Manifest)) []string {
		dir := t.TempDir()
		g := proveSeal(t, dir, backupset.GlobalsName, globals, id.Recipient(), key)
		f := proveSeal(t, dir, "app.dump.zst.age", archive, id.Recipient(), key)
		d := backupset.Database{Name: "app", Files: []backupset.File{f}, TOCEntries: len(sum.Entries)}
		for _, tb := range sum.Tables {
			d.Tables = append(d.Tables, backupset.Table{Schema: tb.Namespace, Name: tb.Name, Rows: tb.Rows})
		}
		m := &backupset.Manifest{Globals: &g, Databases: []backupset.Database{d}}
		if damage != nil {
			damage(dir, m)
		}
		p := &proof{dir: dir, m: m, ids: []age.Identity{id}, key: key, keyOK: true, sums: map[string]string{}}
		p.content(m.Databases, true)
		return p.problems
	}
	rows := map[string]int64{}
	for _, tb := range sum.Tables {
		rows[tb.Name] = tb.Rows
	}
	if rows["t"] != 5000 || rows["u"] != 2 {
		t.Fatalf("rows counted %v, the server has t=5000 u=2", rows)
	}
	flip := func(name string) func(string, *backupset.Manifest) {
		return func(dir string, m *backupset.Manifest) {
			p := filepath.Join(dir, name)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o600)
		}
	}
	cases := []struct {
		name   string
		damage func(string, *backupset.Manifest)
		want   string // "" = no problem
	}{
		{"intact", nil, ""},
		{"flipped byte", flip("app.dump.zst.age"), "app.dump.zst.age"},
		{"truncated", func(dir string, m *backupset.Manifest) {
			p := filepath.Join(dir, "app.dump.zst.age")
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-100)
		}, "app.dump.zst.age"},
		{"row count edited", func(dir string, m *backupset.Manifest) { m.Databases[0].Tables[0].Rows++ }, "rows, the manifest says"},
		{"sha edited", func(dir string, m *backupset.Manifest) { m.Databases[0].Files[0].SHA256 = strings.Repeat("0", 64) }, "sha256"},
		{"globals cut short", func(dir string, m *backupset.Manifest) {
			os.Remove(filepath.Join(dir, backupset.GlobalsName))
			g := proveSeal(t, dir, backupset.GlobalsName, globals[:len(globals)-10], id.Recipient(), key)
			m.Globals = &g
		}, "completion comment"},
		{"another key", func(dir string, m *backupset.Manifest) {
			var other [32]byte
			rand.Read(other[:])
			os.Remove(filepath.Join(dir, "app.dump.zst.age"))
			m.Databases[0].Files[0] = proveSeal(t, dir, "app.dump.zst.age", archive, id.Recipient(), other)
		}, "another backup's key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := build(t, c.damage)
			if c.want == "" {
				if len(probs) != 0 {
					t.Fatalf("problems on an intact set: %q", probs)
				}
				return
			}
			if len(probs) == 0 || !strings.Contains(strings.Join(probs, "\n"), c.want) {
				t.Fatalf("problems %q, want one containing %q", probs, c.want)
			}
		})
	}
}

func TestTailKeep(t *testing.T) {
	k := &tailKeep{n: 4}
	for _, s := range []string{"ab", "cdef", "g", ""} {
		k.Write([]byte(s))
	}
	if string(k.buf) != "defg" {
		t.Fatalf("tail %q", k.buf)
	}
}

// TestProofUnlock: a missing file, a resized one and a file no identity
// opens are named before anything is decrypted.
func TestProofUnlock(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	var key [32]byte
	rand.Read(key[:])
	dir := t.TempDir()
	a := proveSeal(t, dir, "a.dump.zst.age", []byte("a"), id.Recipient(), key)
	b := proveSeal(t, dir, "b.dump.zst.age", []byte("b"), other.Recipient(), key)
	c := proveSeal(t, dir, "c.dump.zst.age", []byte("c"), id.Recipient(), key)
	c.CipherBytes++
	gone := backupset.File{Name: "gone.dump.zst.age"}
	unsafe := backupset.File{Name: "../x"}
	p := &proof{dir: dir, m: &backupset.Manifest{}, ids: []age.Identity{id}, sums: map[string]string{}}
	p.unlock([]backupset.File{a, b, c, gone, unsafe})
	got := strings.Join(p.problems, "\n")
	for _, want := range []string{"none of the given identities opens b.dump.zst.age", "c.dump.zst.age is", "gone.dump.zst.age is missing", `unsafe or repeated file "../x"`} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q lack %q", p.problems, want)
		}
	}
	if !p.anyKey || p.key != key {
		t.Errorf("the key of the files that open was not found")
	}
}
