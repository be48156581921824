package backupset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What retention must never delete: a set another process holds, one it
// could not read. And a verified set whose file changed at the same size
// is verified no more once Rehash has read it.
func TestInUseUnreadableRehash(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	makeSet(t, root, "old", t0, true)
	makeSet(t, root, "flipped", t0.Add(time.Hour), true)
	makeSet(t, root, "busy", t0.Add(2*time.Hour), false)
	os.Remove(filepath.Join(root, "busy", ManifestName)) // a backup still writing: no manifest yet
	makeSet(t, root, "noread", t0.Add(3*time.Hour), true)
	// A manifest that cannot be read (EISDIR stands in for EACCES, which
	// root would not see).
	os.Remove(filepath.Join(root, "noread", ManifestName))
	os.Mkdir(filepath.Join(root, "noread", ManifestName), 0o700)

	f := filepath.Join(root, "flipped", DumpFileName("app", 0))
	b, _ := os.ReadFile(f)
	b[0] ^= 1
	os.WriteFile(f, b, 0o600)

	lock, err := Lock(filepath.Join(root, "busy"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(filepath.Join(root, "busy")); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second Lock: %v, want in use", err)
	}

	sets, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]*Set{}
	for i := range sets {
		by[filepath.Base(sets[i].Dir)] = &sets[i]
	}
	if s := by["busy"]; s == nil || !s.InUse {
		t.Fatalf("busy: %+v, want in use", s)
	}
	if s := by["noread"]; s == nil || !s.Unreadable {
		t.Fatalf("noread: %+v, want unreadable", s)
	}
	if !by["flipped"].Verified() {
		t.Fatal("flipped counts as verified before Rehash (sizes match): the test sets nothing up")
	}
	Rehash(sets, 0)
	if by["flipped"].Verified() || !strings.Contains(by["flipped"].Problem, "changed since it was written") {
		t.Errorf("flipped after Rehash: verified %v, problem %q", by["flipped"].Verified(), by["flipped"].Problem)
	}
	if !by["old"].Verified() || !by["old"].Rehashed {
		t.Errorf("old after Rehash: verified %v, rehashed %v", by["old"].Verified(), by["old"].Rehashed)
	}

	// Without the re-read, "flipped" would be the newest verified set and
	// --keep-last 1 would delete "old", the only intact one.
	now := t0.Add(100 * 24 * time.Hour)
	for _, d := range Select(sets, Keep{Last: 1}, now) {
		name := filepath.Base(d.Set.Dir)
		want := map[string]string{"old": "newest verified", "flipped": "changed since its verification", "busy": "in use", "noread": "could not be read"}[name]
		if !d.Keep || !strings.Contains(d.Reason, want) {
			t.Errorf("%s: keep %v (%s), want kept: %s", name, d.Keep, d.Reason, want)
		}
	}
	lock.Close()
	sets, _ = List(root)
	for _, s := range sets {
		if filepath.Base(s.Dir) == "busy" && s.InUse {
			t.Error("busy is still in use after its lock was released")
		}
	}
}
