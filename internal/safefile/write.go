package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Existing describes the file a write would replace.
type Existing struct {
	Exists   bool
	Mode     fs.FileMode
	UID, GID int
}

// CheckReplace allows a write to path only when it is a new path or a
// regular file. A symbolic link is refused rather than followed (output
// must not land where a link planted in a shared directory points), and a
// directory, device, FIFO or socket is refused because renaming over it
// would replace a node that is not ours.
func CheckReplace(path string) (Existing, error) {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Existing{UID: -1, GID: -1}, nil
	case err != nil:
		return Existing{}, err
	case st.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return Existing{}, fmt.Errorf("%s: refusing to write through a symbolic link (to %s): give the target path itself", path, target)
	case !st.Mode().IsRegular():
		return Existing{}, fmt.Errorf("%s: refusing to replace %s: give a regular file or a new path", path, Kind(st.Mode()))
	}
	e := Existing{Exists: true, Mode: st.Mode().Perm(), UID: -1, GID: -1}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = int(sys.Uid), int(sys.Gid)
	}
	return e, nil
}

// WriteFile writes data to path through a temporary file in the same
// directory and a rename, so readers never see half a file, and only over
// what CheckReplace allows (checked again just before the rename). The file
// gets mode whether or not it existed: keys and baselines must not inherit
// a looser mode.
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	if _, err := CheckReplace(path); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pgaegis-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if _, err := CheckReplace(path); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
