package tlsca

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Trust names a user, besides the caller and root, whose CA may be used:
// the data directory's owner for `tls issue server --pgdata`.
type Trust struct {
	Owner
	Role string // for messages: "the data directory's owner"
}

// trustSet is who may own a CA directory and its files: anyone else
// could hold ca.key and have pgaegis sign with it (a CA planted in a
// shared directory such as /tmp before root issues from it).
type trustSet []Trust

func (t trustSet) ok(uid int) bool {
	if uid == 0 || uid == os.Geteuid() {
		return true
	}
	for _, x := range t {
		if x.UID == uid {
			return true
		}
	}
	return false
}

func (t trustSet) expected() string {
	who := []string{fmt.Sprintf("this user (uid %d)", os.Geteuid())}
	if os.Geteuid() != 0 {
		who = append(who, "root")
	}
	for _, x := range t {
		if x.UID != 0 && x.UID != os.Geteuid() {
			who = append(who, strings.TrimSuffix(x.Owner.String(), ")")+", "+x.Role+")")
		}
	}
	if len(who) == 1 {
		return who[0]
	}
	return strings.Join(who[:len(who)-1], ", ") + " or " + who[len(who)-1]
}

func uidOf(st os.FileInfo) int {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid)
	}
	return -1
}

func ownerName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return Owner{UID: uid, Name: u.Username}.String()
	}
	return fmt.Sprintf("uid %d", uid)
}

func (t trustSet) refuse(what, path string, uid int) error {
	return fmt.Errorf("%s %s is owned by %s: expected %s; not used (whoever owns it may hold the CA key)", what, path, ownerName(uid), t.expected())
}

// checkLink: a symbolic link is followed only when a trusted user made it.
func (t trustSet) checkLink(what, path string) error {
	lst, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if lst.Mode()&os.ModeSymlink != 0 && !t.ok(uidOf(lst)) {
		return t.refuse(what+" (a symbolic link)", path, uidOf(lst))
	}
	return nil
}

// checkDir: the CA directory is a trusted user's and closed to other
// writers, who could otherwise swap its files.
func (t trustSet) checkDir(dir string) error {
	if err := t.checkLink("CA directory", dir); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("CA directory %s: not a directory", dir)
	}
	if !t.ok(uidOf(st)) {
		return t.refuse("CA directory", dir, uidOf(st))
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("CA directory %s has mode %04o: others may write to it; expected no group or world write (chmod go-w); not used", dir, st.Mode().Perm())
	}
	return nil
}

// readCAFile reads ca.crt or ca.key (secret), checking the opened file
// itself: a trusted user's, the key closed to everyone else, the
// certificate to other writers.
func (t trustSet) readCAFile(path string, secret bool) ([]byte, error) {
	if err := t.checkLink("CA file", path); err != nil {
		return nil, err
	}
	f, err := safefile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !t.ok(uidOf(st)) {
		return nil, t.refuse("CA file", path, uidOf(st))
	}
	if secret && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("CA key %s has mode %04o: others may read it; expected 0600 (chmod 0600); not used", path, st.Mode().Perm())
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("CA file %s has mode %04o: others may write to it; expected no group or world write (chmod go-w); not used", path, st.Mode().Perm())
	}
	return io.ReadAll(io.LimitReader(f, safefile.ConfigMax))
}
