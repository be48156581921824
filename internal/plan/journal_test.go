package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJournalSaveAndRead(t *testing.T) {
	root := filepath.Join(t.TempDir(), "plans")
	p := &Plan{Target: "t", Steps: []Step{{ID: "1", Kind: KindSQL}}}
	j, err := CreateJournal(root, p)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == "" || !ValidID(p.ID) || j.ID != p.ID {
		t.Fatalf("id %q", p.ID)
	}
	if _, err := CreateJournal(root, p); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second journal for one plan: %v", err)
	}
	src := filepath.Join(t.TempDir(), "pg_hba.conf")
	content := "host all all 0.0.0.0/0 md5\r\n# no final newline"
	os.WriteFile(src, []byte(content), 0o640)
	m := &Manifest{}
	f, err := j.SaveFile(m, src)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Exists || f.Mode != 0o640 || f.UID != os.Getuid() {
		t.Errorf("saved %+v", f)
	}
	missing, err := j.SaveFile(m, filepath.Join(t.TempDir(), "nope"))
	if err != nil || missing.Exists {
		t.Errorf("missing file: %+v %v", missing, err)
	}
	if err := j.WriteManifest(m); err != nil {
		t.Fatal(err)
	}
	j2, err := OpenJournal(root, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := j2.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	b, err := j2.FileBytes(m2.File(src))
	if err != nil || string(b) != content {
		t.Errorf("bytes back %q %v", b, err)
	}
	// Every file 0600, every directory 0700, whatever the umask.
	filepath.Walk(j.Dir, func(path string, fi os.FileInfo, err error) error {
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: %v", path, fi.Mode().Perm())
		}
		return nil
	})
	// A tampered copy is caught.
	os.WriteFile(filepath.Join(j.Dir, "files", m2.File(src).Name), []byte("trust"), 0o600)
	if _, err := j2.FileBytes(m2.File(src)); err == nil {
		t.Errorf("tampered copy accepted")
	}
}

func TestJournalIDs(t *testing.T) {
	for _, id := range []string{"../x", "a/b", "", ".", "..", "x y"} {
		if ValidID(id) {
			t.Errorf("ValidID(%q)", id)
		}
		if _, err := OpenJournal(t.TempDir(), id); err == nil {
			t.Errorf("OpenJournal(%q) accepted", id)
		}
		if _, err := CreateJournal(t.TempDir(), &Plan{ID: id}); err == nil && id != "" {
			t.Errorf("CreateJournal(%q) accepted", id)
		}
	}
	if _, err := OpenJournal(t.TempDir(), "20260101-000000-abcd"); err == nil || !strings.Contains(err.Error(), "no journal") {
		t.Errorf("missing journal: %v", err)
	}
}

// A journal is what rollback writes back: a directory another user can
// write to, a symlink, or an entry that is not ours is refused.
func TestJournalMustBePrivate(t *testing.T) {
	p := &Plan{ID: "20261202-000000-0001"}
	open := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(open, 0o777))
	if _, err := CreateJournal(open, p); err == nil || !strings.Contains(err.Error(), "other users") {
		t.Errorf("world-writable journal root: %v", err)
	}
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	must(os.Symlink(real, link))
	if _, err := CreateJournal(link, p); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked journal root: %v", err)
	}
	root := t.TempDir()
	j, err := CreateJournal(root, p)
	must(err)
	if _, err := OpenJournal(root, p.ID); err != nil {
		t.Fatalf("own journal: %v", err)
	}
	must(os.Chmod(filepath.Join(j.Dir, journalState), 0o644))
	if jj, err := OpenJournal(root, p.ID); err == nil {
		if _, err := jj.State(); err == nil || !strings.Contains(err.Error(), "open to other users") {
			t.Errorf("state file readable by others: %v", err)
		}
	}
	must(os.Chmod(filepath.Join(j.Dir, journalState), 0o600))
	if os.Geteuid() == 0 {
		// Another user's swapped-in plan directory.
		must(os.Chown(j.Dir, 65534, 65534))
		if _, err := OpenJournal(root, p.ID); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("plan directory of another user: %v", err)
		}
	}
}
