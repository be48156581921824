// Package backupscan looks at the backup directories an audit is told
// about: the sets in them (their manifests and verification records,
// through backupset), every file's mode and owner, and what each file's
// first bytes are, so that a plaintext dump beside the encrypted sets is
// found. It reads at most HeadSize bytes of any file and never a key.
package backupscan

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/sealedfile"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Defaults for the ages the rules accept: a daily backup with two hours
// of slack, a weekly restore test with a day of slack.
const (
	DefaultMaxAge            = 26 * time.Hour
	DefaultRestoreTestMaxAge = 8 * 24 * time.Hour
)

// HeadSize is how much of each file is read to tell what it is.
const HeadSize = 64

// MaxEntries bounds the walk of one directory: past it the rest is
// unknown (BackupDir.Truncated), never assumed clean.
const MaxEntries = 100000

// Options say what to scan.
type Options struct {
	Dirs              []string
	MaxAge            time.Duration // 0: DefaultMaxAge
	RestoreTestMaxAge time.Duration // 0: DefaultRestoreTestMaxAge
	// Now is the scan's time (tests); zero: time.Now.
	Now time.Time
	// MaxEntries overrides the package's (tests); 0: MaxEntries.
	MaxEntries int
	// List lists the sets under a root; nil: backupset.List.
	List func(root string) ([]backupset.Set, error)
}

// Scan reads every directory. It never fails as a whole: what could not
// be read is in each BackupDir's Error (or a set's Problem).
func Scan(o Options) *snapshot.Backups {
	b := &snapshot.Backups{ScannedAt: o.Now, MaxAgeSeconds: int64(o.MaxAge / time.Second), RestoreTestMaxAgeSeconds: int64(o.RestoreTestMaxAge / time.Second)}
	if b.ScannedAt.IsZero() {
		b.ScannedAt = time.Now().UTC().Truncate(time.Second)
	}
	if o.MaxAge <= 0 {
		b.MaxAgeSeconds = int64(DefaultMaxAge / time.Second)
	}
	if o.RestoreTestMaxAge <= 0 {
		b.RestoreTestMaxAgeSeconds = int64(DefaultRestoreTestMaxAge / time.Second)
	}
	if u, err := user.Current(); err == nil {
		b.User = u.Username
	}
	max := o.MaxEntries
	if max <= 0 {
		max = MaxEntries
	}
	names := newNameCache()
	list := o.List
	if list == nil {
		list = backupset.List
	}
	for _, d := range o.Dirs {
		b.Dirs = append(b.Dirs, scanDir(d, max, names, list))
	}
	return b
}

func scanDir(path string, max int, names *nameCache, list func(string) ([]backupset.Set, error)) snapshot.BackupDir {
	d := snapshot.BackupDir{Path: path}
	abs, err := filepath.Abs(path)
	if err == nil {
		path = abs
		d.Path = abs
	}
	st, err := os.Lstat(path)
	if err != nil {
		d.Error, d.Missing = errText(path, err), errors.Is(err, fs.ErrNotExist)
		d.Dir = snapshot.File{Path: path, Kind: "backup_dir", UID: -1, GID: -1, Error: d.Error}
		return d
	}
	d.Dir = fileOf(path, st, names)
	d.Dir.Kind = "backup_dir"
	root := path
	if st.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			d.Error, d.Missing = errText(path, err), errors.Is(err, fs.ErrNotExist)
			return d
		}
		d.Resolved = target
		tst, err := os.Stat(target)
		if err != nil {
			d.Error, d.Missing = errText(target, err), errors.Is(err, fs.ErrNotExist)
			return d
		}
		t := fileOf(target, tst, names)
		t.Kind = "backup_dir"
		d.Target = &t
		root, st = target, tst
	}
	if !st.IsDir() {
		d.Error = path + " is " + safefile.Kind(st.Mode()) + ", not a directory"
		return d
	}
	if _, err := os.ReadDir(root); err != nil {
		d.Error = errText(root, err)
		return d
	}
	d.Sets, d.SetsError = sets(root, list)
	d.Entries, d.Truncated = walk(root, max, names)
	return d
}

func sets(root string, list func(string) ([]backupset.Set, error)) ([]snapshot.BackupSet, string) {
	found, err := list(root)
	if err != nil {
		return nil, "backup sets not listed: " + err.Error()
	}
	// The newest verified set is what BKP-06.verified and retention lean
	// on: its files are read again (sha256, no key), so one changed since
	// its verification is not taken for verified. Older verified sets are
	// read only until one passes.
	backupset.Rehash(found, 1)
	var out []snapshot.BackupSet
	for _, s := range found {
		bs := snapshot.BackupSet{Name: filepath.Base(s.Dir), Dir: s.Dir, Problem: s.Problem, Verified: s.Verified()}
		if m := s.Manifest; m != nil {
			if !m.Started.IsZero() {
				t := m.Started
				bs.Started = &t
			}
			if !m.Finished.IsZero() {
				t := m.Finished
				bs.Finished = &t
			}
			for _, f := range m.AllFiles() {
				bs.Files = append(bs.Files, f.Name)
			}
			for _, db := range m.Databases {
				bs.Databases = append(bs.Databases, db.Name)
			}
		}
		if v := s.Verification; v != nil {
			t := v.Verified
			bs.VerifiedAt, bs.VerifyOK, bs.VerifyProblems = &t, v.OK, v.Problems
			if v.RestoreTest != nil {
				if at := v.RestoreTest.At; !at.IsZero() {
					bs.RestoreTested = &at
				} else {
					bs.RestoreTested = &t
				}
				bs.RestoreMismatches = v.RestoreTest.Mismatches
			}
		}
		out = append(out, bs)
	}
	return out, ""
}

// walk lists the tree below root without following links.
func walk(root string, max int, names *nameCache) ([]snapshot.BackupEntry, bool) {
	var out []snapshot.BackupEntry
	truncated := false
	filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if len(out) >= max {
			truncated = true
			return filepath.SkipAll
		}
		if p == root {
			return nil
		}
		if err != nil {
			out = append(out, snapshot.BackupEntry{File: snapshot.File{Path: p, UID: -1, GID: -1, Error: errText(p, err)}, Content: snapshot.ContentUnreadable, Detail: errText(p, err)})
			if de != nil && de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		e := snapshot.BackupEntry{File: fileOf(p, info, names)}
		e.Kind = "backup_file"
		switch {
		case info.IsDir():
			e.Kind = "backup_dir"
		case info.Mode().IsRegular():
			e.Size = info.Size()
			e.Content, e.Detail = classify(p)
		}
		out = append(out, e)
		return nil
	})
	return out, truncated
}

func fileOf(path string, st fs.FileInfo, names *nameCache) snapshot.File {
	f := snapshot.File{Path: path, Exists: true, IsDir: st.IsDir(), Mode: uint32(st.Mode().Perm()), UID: -1, GID: -1, Symlink: st.Mode()&fs.ModeSymlink != 0}
	if f.Symlink {
		target, _ := os.Readlink(path)
		f.Error = "symlink to " + target
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		f.UID, f.GID = int(sys.Uid), int(sys.Gid)
		f.Owner, f.Group = names.user(f.UID), names.group(f.GID)
	}
	return f
}

// names caches account and group names: a tree of many files has few
// owners, and each lookup reads /etc/passwd or /etc/group.
// One cache per scan: names may change between audits of a long-lived
// process.
func newNameCache() *nameCache {
	return &nameCache{users: map[int]string{}, groups: map[int]string{}}
}

type nameCache struct {
	mu            sync.Mutex
	users, groups map[int]string
}

func (c *nameCache) user(id int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.users[id]
	if !ok {
		if u, err := user.LookupId(strconv.Itoa(id)); err == nil {
			n = u.Username
		}
		c.users[id] = n
	}
	return n
}

func (c *nameCache) group(id int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.groups[id]
	if !ok {
		if g, err := user.LookupGroupId(strconv.Itoa(id)); err == nil {
			n = g.Name
		}
		c.groups[id] = n
	}
	return n
}

// errText names the path and what went wrong, once.
func errText(path string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return path + ": " + pe.Err.Error()
	}
	return path + ": " + err.Error()
}

// classify reads a file's first HeadSize bytes.
func classify(path string) (content, detail string) {
	f, err := safefile.Open(path)
	if err != nil {
		return snapshot.ContentUnreadable, errText(path, err)
	}
	defer f.Close()
	head := make([]byte, HeadSize)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return snapshot.ContentUnreadable, errText(path, err)
	}
	head = head[:n]
	switch base := filepath.Base(path); {
	case IsAge(head):
		return snapshot.ContentAge, ""
	case base == backupset.ManifestName || base == backupset.VerificationName:
		return snapshot.ContentRecord, ""
	}
	return Classify(head)
}

// IsAge reports whether a file starting with head is an age file (binary
// or armored): sealedfile's test, the one the backup flow relies on.
func IsAge(head []byte) bool { return sealedfile.IsAge(head) }

// Classify names what the first bytes of a file that is not an age file
// show: a plaintext dump (pg_dump's archive magic, a tar-format archive,
// pg_dump or pg_dumpall SQL), a compressed stream (any of them, not
// encrypted), or something else.
func Classify(head []byte) (content, detail string) {
	switch {
	case bytes.HasPrefix(head, []byte("PGDMP")):
		// PGDMP, then the archive version: major, minor, revision.
		if len(head) >= 8 {
			return snapshot.ContentPgDump, "PGDMP " + strconv.Itoa(int(head[5])) + "." + strconv.Itoa(int(head[6])) + "." + strconv.Itoa(int(head[7]))
		}
		return snapshot.ContentPgDump, "PGDMP"
	case bytes.HasPrefix(head, []byte("toc.dat\x00")):
		// A tar archive's first member name: pg_dump -Ft writes toc.dat first.
		return snapshot.ContentPgDumpTar, "tar with toc.dat"
	case bytes.Contains(head, []byte("-- PostgreSQL database dump")), bytes.Contains(head, []byte("-- PostgreSQL database cluster dump")):
		return snapshot.ContentSQLDump, "SQL text"
	}
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return snapshot.ContentCompressed, m.name
		}
	}
	// zstd skippable frames: 0x184D2A50..5F, little-endian.
	if len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18 {
		return snapshot.ContentCompressed, "zstd (skippable frame)"
	}
	return snapshot.ContentOther, ""
}

var magics = []struct {
	name  string
	magic []byte
}{
	{"gzip", []byte{0x1f, 0x8b}},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
	{"bzip2", []byte("BZh")},
	{"lz4", []byte{0x04, 0x22, 0x4d, 0x18}},
}
