package pwcheck

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/usercache"
)

// Cache keeps the verdicts of earlier searches so that an unchanged
// verifier is not searched again: at 20,000 SCRAM roles the default
// search is minutes of CPU, and the deep one hours.
//
// Only SCRAM verdicts are kept. An entry is keyed by HMAC-SHA256 over the
// role name and the verifier, with a random key kept beside the cache
// (both 0600 in a 0700 directory). A SCRAM verifier holds a random salt
// that is not stored, so even with the key an entry cannot be used to
// test password guesses; md5 and plaintext passwords have no such salt
// (an entry would be a guessing oracle) and are cheap to search again, so
// they are never cached.
type Cache struct {
	dir     string
	key     []byte
	mu      sync.Mutex
	entries map[string]Entry
	changed map[string]Entry
	today   string
}

// Entry is what the cache knows about one verifier.
type Entry struct {
	// Verdict and List: what matched ("" when nothing did).
	Verdict string `json:"verdict,omitempty"`
	List    string `json:"list,omitempty"`
	// Tried lists the IDs of the lists tried in full without a match.
	Tried []string `json:"tried,omitempty"`
	// By is the search that last added to the entry ("default", "deep"),
	// Dict the version of the built-in lists then.
	By   string `json:"by"`
	Dict string `json:"dict"`
	// Seen is the last day the verifier was looked up (for pruning).
	Seen string `json:"seen"`
}

type cacheFile struct {
	Format  int              `json:"format"`
	Entries map[string]Entry `json:"entries"`
}

const (
	cacheFormat  = 1
	keyFile      = "key"
	verdictsFile = "verdicts.json"
	lockFile     = "lock"
	// maxCacheFile bounds what is read (20,000 roles take ~3 MB).
	maxCacheFile = 256 << 20
	// pruneAfter drops verdicts of verifiers not seen for this long.
	pruneAfter = 180 * 24 * time.Hour
)

// DefaultCacheDir is the per-user cache directory of the verdicts.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "pgaegis", "passwords"), nil
}

// OpenCache opens (creating when needed) the cache in dir. It refuses a
// directory or file that another user owns, that others may read, or
// that is a symbolic link. When dir is under the user cache directory
// (~/.cache, $XDG_CACHE_HOME) every directory from there down is checked
// too: one another user could write to, or a link, would let them swap
// the cache for theirs.
func OpenCache(dir string) (*Cache, error) {
	if err := usercache.MakeDir("password cache", dir); err != nil {
		return nil, err
	}
	if err := usercache.CheckPrivate("password cache", dir, true); err != nil {
		return nil, err
	}
	c := &Cache{dir: dir, entries: map[string]Entry{}, changed: map[string]Entry{}, today: time.Now().UTC().Format("2006-01-02")}
	key, err := c.loadKey()
	if err != nil {
		return nil, err
	}
	c.key = key
	if f, err := c.readFile(); err == nil {
		c.entries = f.Entries
	} else if !errors.Is(err, os.ErrNotExist) {
		// An unreadable or damaged cache is only lost work: start afresh,
		// and the next save replaces it.
		c.entries = map[string]Entry{}
	}
	return c, nil
}

// Dir is where the cache lives.
func (c *Cache) Dir() string { return c.dir }

// Len is the number of verdicts held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func cleanErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// openPrivate opens an existing file of the cache without following links.
func openPrivate(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if err := usercache.CheckPrivate("password cache", path, false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// loadKey reads the HMAC key, creating it on first use. Two processes
// racing to create it agree: the key is linked into place, never
// overwritten.
func (c *Cache) loadKey() ([]byte, error) {
	path := filepath.Join(c.dir, keyFile)
	read := func() ([]byte, error) {
		f, err := openPrivate(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 1024))
		if err != nil {
			return nil, err
		}
		key, err := hex.DecodeString(string(b))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("password cache %s: not a key (64 hex digits)", path)
		}
		return key, nil
	}
	key, err := read()
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	key = make([]byte, 32)
	rand.Read(key)
	tmp, err := os.CreateTemp(c.dir, ".key-*")
	if err != nil {
		return nil, fmt.Errorf("password cache %s: %v", c.dir, cleanErr(err))
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(key))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("password cache %s: %v", path, cleanErr(err))
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("password cache %s: %v", path, cleanErr(err))
	}
	return read()
}

func (c *Cache) readFile() (*cacheFile, error) {
	f, err := openPrivate(filepath.Join(c.dir, verdictsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCacheFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCacheFile {
		return nil, errors.New("too large")
	}
	var cf cacheFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, err
	}
	if cf.Format != cacheFormat || cf.Entries == nil {
		return nil, errors.New("another format")
	}
	return &cf, nil
}

// ids returns the entry keys of targets: nothing of a verifier can be
// recovered or tested from its key without the cache key. One HMAC is
// reused: at 20,000 roles a fresh one per key is most of a cached run.
func (c *Cache) ids(targets []Target) []string {
	m := hmac.New(sha256.New, c.key)
	out := make([]string, len(targets))
	var sum []byte
	for i := range targets {
		m.Reset()
		m.Write([]byte("pgaegis password verdict v1\x00"))
		m.Write([]byte(targets[i].Role))
		m.Write([]byte{0})
		m.Write([]byte(targets[i].stored))
		sum = m.Sum(sum[:0])
		out[i] = hex.EncodeToString(sum)
	}
	return out
}

// get returns the entry k when it was made with the current lists.
func (c *Cache) get(k string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return Entry{}, false
	}
	if e.Dict != DictVersion {
		// A match stays a match; what was tried of older lists is not
		// what the current lists hold.
		e.Tried = nil
		if e.Verdict == "" {
			return Entry{}, false
		}
	}
	return e, true
}

func (c *Cache) touch(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok && e.Seen != c.today {
		e.Seen = c.today
		c.entries[k] = e
		c.changed[k] = e
	}
}

func (c *Cache) put(k string, e Entry) {
	e.Dict, e.Seen = DictVersion, c.today
	sort.Strings(e.Tried)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[k] = e
	c.changed[k] = e
}

// merge combines what two runs learnt about one verifier.
func merge(old, new Entry) Entry {
	if old.Dict != new.Dict {
		return new
	}
	if new.Verdict == "" && old.Verdict != "" {
		new.Verdict, new.List = old.Verdict, old.List
	}
	seen := map[string]bool{}
	var tried []string
	for _, id := range append(old.Tried, new.Tried...) {
		if !seen[id] {
			seen[id] = true
			tried = append(tried, id)
		}
	}
	sort.Strings(tried)
	new.Tried = tried
	return new
}

// Save writes what changed, merged with what another run may have
// written meanwhile, atomically (a new file renamed into place).
func (c *Cache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.changed) == 0 {
		return nil
	}
	lock, err := os.OpenFile(filepath.Join(c.dir, lockFile), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("password cache %s: %v", c.dir, cleanErr(err))
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("password cache %s: lock: %v", c.dir, err)
	}
	entries := map[string]Entry{}
	if f, err := c.readFile(); err == nil {
		entries = f.Entries
	}
	for k, e := range c.changed {
		if old, ok := entries[k]; ok {
			e = merge(old, e)
		}
		entries[k] = e
	}
	cutoff := time.Now().UTC().Add(-pruneAfter).Format("2006-01-02")
	for k, e := range entries {
		if e.Seen < cutoff {
			delete(entries, k)
		}
	}
	b, err := json.Marshal(cacheFile{Format: cacheFormat, Entries: entries})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, ".verdicts-*")
	if err != nil {
		return fmt.Errorf("password cache %s: %v", c.dir, cleanErr(err))
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(c.dir, verdictsFile))
	}
	if err != nil {
		return fmt.Errorf("password cache %s: %v", filepath.Join(c.dir, verdictsFile), cleanErr(err))
	}
	if d, err := os.Open(c.dir); err == nil {
		d.Sync()
		d.Close()
	}
	c.entries = entries
	c.changed = map[string]Entry{}
	return nil
}
