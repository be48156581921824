package backupset

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A set's lock is an exclusive flock on its directory, held by whoever
// writes the set (backup, verify, rekey, prune's removal). It leaves no
// file behind and dies with its process, so a killed backup never leaves
// a set looking busy.

// ErrInUse is Lock's answer while another process holds the set.
var ErrInUse = errors.New("the set is in use by another pgaegis (a backup, verify, rekey or prune is running)")

// Lock takes the set's lock without waiting; Close the file to release.
func Lock(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrInUse)
		}
		return nil, fmt.Errorf("%s: locking: %w", dir, err)
	}
	return f, nil
}

// inUse reports whether some process holds dir's lock.
func inUse(dir string) bool {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// Unfinished reports whether dir holds what only a backup of ours leaves
// while it runs or after it died: a sealed file's partial
// (".NAME.partial-RANDOM", ciphertext only).
func Unfinished(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") && strings.Contains(n, ".partial-") {
			return true
		}
	}
	return false
}

// ioError tells an error reading a record (permission, I/O) from one
// about its content: a set that could not be read is not known to be bad.
func ioError(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && !errors.Is(err, fs.ErrNotExist)
}

// Rehash reads every file of each verified set in sets and compares its
// sha256 with the manifest's. No key is needed: a file changed after
// verification (a flipped byte, a file of the same size swapped in) then
// gives the set a Problem and it no longer counts as verified. With
// limit > 0 it stops once that many sets passed (newest first, as List
// orders them): enough for a judgement about the newest verified set.
func Rehash(sets []Set, limit int) {
	good := 0
	for i := range sets {
		s := &sets[i]
		if !s.Verified() {
			continue
		}
		if p := hashProblem(s.Dir, s.Manifest); p != "" {
			s.Problem = p
			continue
		}
		s.Rehashed = true
		good++
		if limit > 0 && good >= limit {
			return
		}
	}
}

func hashProblem(dir string, m *Manifest) string {
	for _, f := range m.AllFiles() {
		sum, err := FileSHA256(filepath.Join(dir, f.Name))
		if err != nil {
			return fmt.Sprintf("%s could not be read: %v", f.Name, err)
		}
		if sum != f.SHA256 {
			return fmt.Sprintf("%s changed since it was written (sha256 %s…, the manifest says %s…)", f.Name, sum[:12], f.SHA256[:min(12, len(f.SHA256))])
		}
	}
	return ""
}

// FileSHA256 is the hex sha256 of a file's bytes.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
