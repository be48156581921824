package hostcheck

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/pgaegis/pgaegis/internal/usercache"
)

// The candidate version apt would install changes only when the package
// lists, the installed packages or apt's configuration change; asking
// apt-cache costs a second or more of CPU where the binary package cache
// is disabled (container images), which made it the slowest part of an
// audit. The answer is kept in the user's cache, keyed by the state of
// those files.

// aptState lists the files apt's candidate depends on.
var aptState = []string{
	"/var/lib/dpkg/status", "/etc/apt/preferences", "/etc/apt/sources.list", "/etc/apt/apt.conf",
	"/etc/apt/preferences.d", "/etc/apt/sources.list.d", "/etc/apt/apt.conf.d", "/var/lib/apt/lists",
}

// aptStateKey fingerprints the names, sizes and times of apt's files
// (and of the entries of its directories).
func aptStateKey(o Options, pkg string) string {
	h := sha256.New()
	fmt.Fprintf(h, "v1\x00%s\x00", pkg)
	stamp := func(p string, fi os.FileInfo) {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, fi.Size(), fi.ModTime().UnixNano())
	}
	for _, p := range aptState {
		fi, err := os.Stat(o.path(p))
		if err != nil {
			fmt.Fprintf(h, "%s\x00-\x00", p)
			continue
		}
		stamp(p, fi)
		if !fi.IsDir() {
			continue
		}
		ents, _ := os.ReadDir(o.path(p))
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				stamp(p+"/"+e.Name(), fi)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

const cacheWhat = "host-package cache"

type pkgCacheEntry struct {
	Key       string `json:"key"`
	Candidate string `json:"candidate"`
}

// pkgCachePath is the cache file, or "" when there is no safe place.
func pkgCachePath() string {
	if os.Getenv("PGAEGIS_NO_HOST_CACHE") != "" {
		return ""
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "pgaegis", "host-packages.json")
}

// privateDir makes dir (each directory from the user cache down checked
// as the password cache's are) and tells whether it is safe to use.
func privateDir(dir string) bool {
	return usercache.MakeDir(cacheWhat, dir) == nil && usercache.CheckPrivate(cacheWhat, dir, true) == nil
}

// ownedPrivate: the file is not a symlink, is ours and writable by nobody
// else (a planted version would hide a missing patch).
func ownedPrivate(p string) bool {
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&os.ModeSymlink != 0 || fi.Mode().Perm()&0o022 != 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

func readPkgCache(path string) map[string]pkgCacheEntry {
	m := map[string]pkgCacheEntry{}
	if path == "" || !privateDir(filepath.Dir(path)) || !ownedPrivate(path) {
		return m
	}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func writePkgCache(path string, m map[string]pkgCacheEntry) {
	if path == "" {
		return
	}
	dir := filepath.Dir(path)
	if !privateDir(dir) {
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".host-packages-*")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), path) != nil {
		os.Remove(f.Name())
	}
}

// cachedCandidate returns the candidate for pkg from the cache, or asks
// query and remembers a non-empty answer.
func cachedCandidate(o Options, pkg string, query func() string) string {
	path := pkgCachePath()
	key := aptStateKey(o, pkg)
	m := readPkgCache(path)
	if e, ok := m[pkg]; ok && e.Key == key {
		return e.Candidate
	}
	c := query()
	if c != "" {
		m[pkg] = pkgCacheEntry{Key: key, Candidate: c}
		writePkgCache(path, m)
	}
	return c
}
