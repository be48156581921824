package secretsink

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// maxFile caps what is read of a file being updated: pgpass and service
// files are small, and a huge one is more likely a wrong path.
const maxFile = 16 << 20

// current is a destination file as it was read before an update.
type current struct {
	existed  bool
	data     []byte
	mode     fs.FileMode
	uid, gid int // -1 when it did not exist
}

// checkDir refuses a directory where someone else could swap the file
// between our check and our rename: one not owned by us or root, or one
// others may write without the sticky bit.
func checkDir(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: directory: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", path, dir)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read the owner of %s", path, dir)
	}
	if uid := int(sys.Uid); uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("%s: refusing to write a secret into %s, owned by uid %d (not by us, uid %d, or root): its owner could replace the file", path, dir, uid, os.Geteuid())
	}
	if st.Mode().Perm()&0o022 != 0 && st.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("%s: refusing to write a secret into %s (mode %04o): others may write that directory and it has no sticky bit, so they could replace the file", path, dir, st.Mode().Perm())
	}
	return nil
}

// readCurrent reads the destination as it is now: missing, or a regular
// file (never through a symbolic link).
func readCurrent(path string) (current, error) {
	e, err := safefile.CheckReplace(path)
	if err != nil {
		return current{}, err
	}
	c := current{existed: e.Exists, mode: e.Mode, uid: e.UID, gid: e.GID}
	if !c.existed {
		return c, nil
	}
	if c.data, err = safefile.ReadFile(path, maxFile); err != nil {
		return current{}, err
	}
	return c, nil
}

// owner checks that replacing the file keeps its owner able to read it:
// root gives the new file the old one's owner and group; anyone else may
// replace only a file they own, since the new file is theirs with mode
// 0600 and its old owner would lose it.
func (c current) owner(path string) (uid, gid int, err error) {
	if !c.existed {
		return -1, -1, nil
	}
	if os.Geteuid() == 0 {
		return c.uid, c.gid, nil
	}
	if c.uid != os.Geteuid() {
		return -1, -1, fmt.Errorf("%s: owned by uid %d, not by us (uid %d): a replacement would be ours with mode 0600 and its owner could no longer read it; run as that user or as root", path, c.uid, os.Geteuid())
	}
	return -1, -1, nil
}

// writeAtomic replaces path with data: a new file in the same directory
// (O_EXCL, mode set at creation so the secret is never readable by
// others, even for an instant), fsync, a rename, and an fsync of the
// directory so the rename survives a crash. want is what the file must
// still hold just before the rename (nil: it must still be missing);
// a change since it was read is an error, not a lost update.
func writeAtomic(path string, data []byte, mode fs.FileMode, uid, gid int, was current) error {
	dir := filepath.Dir(path)
	var tmp *os.File
	for i := 0; ; i++ {
		var rnd [8]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return err
		}
		name := filepath.Join(dir, "."+filepath.Base(path)+".pgaegis-"+hex.EncodeToString(rnd[:]))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
		if err == nil {
			tmp = f
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 10 {
			return fmt.Errorf("%s: creating a temporary file: %w", path, err)
		}
	}
	name := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(name)
		}
	}()
	// The umask may have narrowed mode at creation; set it exactly.
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("%s: keeping the owner uid %d: %w", path, uid, err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("%s: writing: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("%s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	now, err := readCurrent(path)
	if err != nil {
		return err
	}
	if now.existed != was.existed || !bytes.Equal(now.data, was.data) {
		return fmt.Errorf("%s: changed while being updated (by another program?): not replaced, try again", path)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("%s: fsync of %s: %w", path, dir, err)
		}
	}
	return nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// replace writes data over path (mode 0600) given what it held before,
// and returns the Delivery with an Undo that puts the old bytes, mode
// (and, as root, owner) back, or removes a file that did not exist,
// unless the file was changed since.
func replace(sink, path string, was current, data []byte) (*Delivery, error) {
	uid, gid, err := was.owner(path)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(path, data, 0o600, uid, gid, was); err != nil {
		return nil, err
	}
	written := sum(data)
	d := &Delivery{Sink: sink, Path: path, Existed: was.existed, Previous: was.data, PreviousMode: uint32(was.mode), Written: written}
	d.Undo = func() error { return undo(path, written, was) }
	return d, nil
}

// undo restores was at path when path still holds what was written.
func undo(path, written string, was current) error {
	now, err := readCurrent(path)
	if err != nil {
		return err
	}
	if !now.existed || sum(now.data) != written {
		return fmt.Errorf("%s: changed since pgaegis wrote it: not restored", path)
	}
	if !was.existed {
		if err := os.Remove(path); err != nil {
			return err
		}
		return syncDir(path)
	}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		uid, gid = was.uid, was.gid
	}
	return writeAtomic(path, was.data, was.mode, uid, gid, now)
}

func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
