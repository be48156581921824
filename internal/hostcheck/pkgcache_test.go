package hostcheck

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCachedCandidate(t *testing.T) {
	root := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	status := filepath.Join(root, "var/lib/dpkg/status")
	lists := filepath.Join(root, "var/lib/apt/lists")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Dir(status), 0o755))
	must(os.MkdirAll(lists, 0o755))
	must(os.WriteFile(status, []byte("Package: postgresql-15\n"), 0o644))
	o := Options{Root: root}
	queries := 0
	answer := "15.20-0+deb12u1"
	query := func() string { queries++; return answer }

	steps := []struct {
		name    string
		change  func()
		want    string
		queries int
	}{
		{"first run asks apt", func() {}, "15.20-0+deb12u1", 1},
		{"unchanged state is answered from the cache", func() {}, "15.20-0+deb12u1", 1},
		{"new package lists ask again", func() {
			answer = "15.21-0+deb12u1"
			must(os.WriteFile(filepath.Join(lists, "deb.debian.org_Packages"), []byte("x"), 0o644))
		}, "15.21-0+deb12u1", 2},
		{"an upgrade (dpkg status) asks again", func() {
			answer = "15.22-0+deb12u1"
			must(os.Chtimes(status, time.Now().Add(time.Hour), time.Now().Add(time.Hour)))
		}, "15.22-0+deb12u1", 3},
		{"a cache file others may write is not trusted", func() {
			must(os.Chmod(pkgCachePath(), 0o666))
		}, "15.22-0+deb12u1", 4},
	}
	for _, s := range steps {
		s.change()
		if got := cachedCandidate(o, "postgresql-15", query); got != s.want || queries != s.queries {
			t.Errorf("%s: candidate %q after %d queries, want %q after %d", s.name, got, queries, s.want, s.queries)
		}
	}
	t.Setenv("PGAEGIS_NO_HOST_CACHE", "1")
	cachedCandidate(o, "postgresql-15", query)
	if queries != 5 {
		t.Errorf("PGAEGIS_NO_HOST_CACHE: the cache was still used (%d queries)", queries)
	}
}
