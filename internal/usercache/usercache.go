// Package usercache keeps pgaegis's files under the user's cache
// directory private: every directory from the cache root down is the
// user's (or root's), closed to other writers and not a link, so no
// other user can swap a cache for theirs.
package usercache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// MakeDir creates dir one component at a time, checking each from
// the user cache directory down (MkdirAll would follow links).
func MakeDir(what, dir string) error {
	dir = filepath.Clean(dir)
	root, err := os.UserCacheDir()
	var below []string
	if err == nil {
		root = filepath.Clean(root)
		if rel, err := filepath.Rel(root, dir); err == nil && rel != "." && filepath.IsLocal(rel) {
			below = strings.Split(rel, string(filepath.Separator))
		}
	}
	if below == nil {
		// Not under the user cache directory: only dir itself is checked
		// (by the caller), as the user chose it.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("%s %s: %v", what, dir, cleanErr(err))
		}
		return nil
	}
	// The root itself may be a link (a home on another disk, say); it
	// must still be the user's or root's and closed to writers.
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("%s %s: %v", what, root, cleanErr(err))
	}
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("%s %s: %v", what, root, cleanErr(err))
	}
	if err := checkParent(what, root, st); err != nil {
		return err
	}
	p := root
	for k, c := range below {
		p = filepath.Join(p, c)
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s %s: %v", what, p, cleanErr(err))
		}
		st, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("%s %s: %v", what, p, cleanErr(err))
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s %s: a symbolic link, not used", what, p)
		}
		if k < len(below)-1 {
			if err := checkParent(what, p, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkParent: a directory above the cache is a directory owned by this
// user or root, that no one else may write to unless it is root's and
// sticky (like /tmp: others cannot rename what is ours).
func checkParent(what, path string, st os.FileInfo) error {
	if !st.IsDir() {
		return fmt.Errorf("%s %s: not a directory", what, path)
	}
	uid := -1
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		uid = int(sys.Uid)
	}
	if uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("%s %s: owned by uid %d, not by this user or root: not used", what, path, uid)
	}
	if st.Mode().Perm()&0o022 != 0 && !(uid == 0 && st.Mode()&os.ModeSticky != 0) {
		return fmt.Errorf("%s %s: mode %04o, others may write to it: not used", what, path, st.Mode().Perm())
	}
	return nil
}

// CheckPrivate: dir (or file) is ours, not a link, closed to others; a
// directory of ours that is too open is closed.
func CheckPrivate(what, path string, dir bool) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("%s %s: %v", what, path, cleanErr(err))
	}
	if st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s %s: a symbolic link, not used", what, path)
	}
	if dir != st.IsDir() || (!dir && !st.Mode().IsRegular()) {
		return fmt.Errorf("%s %s: not a %s", what, path, map[bool]string{true: "directory", false: "regular file"}[dir])
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s %s: owned by uid %d, not by this user: not used", what, path, sys.Uid)
	}
	if st.Mode().Perm()&0o077 != 0 {
		want := os.FileMode(0o600)
		if dir {
			want = 0o700
		}
		if err := os.Chmod(path, want); err != nil {
			return fmt.Errorf("%s %s: mode %04o, and it could not be closed: %v", what, path, st.Mode().Perm(), cleanErr(err))
		}
	}
	return nil
}

func cleanErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
