package plan

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// A journal is what rollback writes back into the server's files, so it
// must be ours alone: a directory another user can write to (or swap, by
// writing its parent) would let them choose what pgaegis restores.

// trustedDir checks that dir is a real directory (not a symlink) owned by
// us, that no one else can write to it, and that every directory above it
// is owned by us or root and, when others can write to it, sticky.
func trustedDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("journal %s is a symbolic link: give the real directory", abs)
	}
	if !st.IsDir() {
		return fmt.Errorf("journal %s is not a directory", abs)
	}
	if err := ownedByUs(abs, st); err != nil {
		return err
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("journal %s can be written by other users (mode %04o): it must be private (chmod 0700)", abs, st.Mode().Perm())
	}
	// The parents: resolved, since a symlinked /var/run is fine as long as
	// where it leads is safe.
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for p := parent; ; p = filepath.Dir(p) {
		pst, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		uid := pst.Sys().(*syscall.Stat_t).Uid
		if int(uid) != os.Geteuid() && uid != 0 {
			return fmt.Errorf("journal %s: %s belongs to another user (uid %d), who could replace the journal", abs, p, uid)
		}
		if pst.Mode().Perm()&0o022 != 0 && pst.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("journal %s: %s can be written by other users and is not sticky, so the journal could be replaced", abs, p)
		}
		if p == "/" || p == filepath.Dir(p) {
			return nil
		}
	}
}

// trustedFile checks a file inside a journal: a regular file of ours that
// only we can read or write.
func trustedFile(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("journal file %s is not a regular file", path)
	}
	if err := ownedByUs(path, st); err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("journal file %s is open to other users (mode %04o)", path, st.Mode().Perm())
	}
	return nil
}

func ownedByUs(path string, st os.FileInfo) error {
	if uid := st.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Geteuid() {
		return fmt.Errorf("journal %s belongs to uid %d, not to this user (uid %d): run pgaegis as the user that applied the plan", path, uid, os.Geteuid())
	}
	return nil
}
