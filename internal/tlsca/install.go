package tlsca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Owner is the OS user and group that written files are given to, so
// that a server running as another user than the caller (root issuing for
// the cluster's OS user) can read its key.
type Owner struct {
	UID, GID int
	Name     string // for messages; may be empty
}

func (o Owner) String() string {
	if o.Name != "" {
		return fmt.Sprintf("%s (uid %d)", o.Name, o.UID)
	}
	return fmt.Sprintf("uid %d", o.UID)
}

// OwnerOf is the owner of an existing path.
func OwnerOf(path string) (Owner, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Owner{}, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return Owner{}, fmt.Errorf("%s: no owner information on this system", path)
	}
	o := Owner{UID: int(sys.Uid), GID: int(sys.Gid)}
	if u, err := user.LookupId(strconv.Itoa(o.UID)); err == nil {
		o.Name = u.Username
	}
	return o, nil
}

// ParseOwner reads USER[:GROUP] (names or numbers); without a group, the
// user's primary group.
func ParseOwner(s string) (Owner, error) {
	name, group, hasGroup := strings.Cut(s, ":")
	if name == "" {
		return Owner{}, fmt.Errorf("--owner %q: give USER or USER:GROUP", s)
	}
	var o Owner
	if u, err := user.Lookup(name); err == nil {
		o.UID, _ = strconv.Atoi(u.Uid)
		o.GID, _ = strconv.Atoi(u.Gid)
		o.Name = u.Username
	} else if uid, nerr := strconv.Atoi(name); nerr == nil && uid >= 0 {
		// A bare uid need not have an account (containers): then the
		// group must be given too.
		o.UID, o.GID = uid, -1
		if u, err := user.LookupId(name); err == nil {
			o.GID, _ = strconv.Atoi(u.Gid)
			o.Name = u.Username
		}
	} else {
		return Owner{}, fmt.Errorf("--owner %q: no such user", s)
	}
	if hasGroup {
		g, err := user.LookupGroup(group)
		if err != nil {
			if gid, nerr := strconv.Atoi(group); nerr == nil && gid >= 0 {
				o.GID = gid
			} else {
				return Owner{}, fmt.Errorf("--owner %q: no such group %q", s, group)
			}
		} else {
			o.GID, _ = strconv.Atoi(g.Gid)
		}
	}
	if o.GID < 0 {
		return Owner{}, fmt.Errorf("--owner %q: give USER:GROUP", s)
	}
	return o, nil
}

// CanGive reports why the caller cannot give files to o (only root can
// give a file to another user), or nil.
func (o Owner) CanGive() error {
	if os.Geteuid() == 0 || o.UID == os.Geteuid() {
		return nil
	}
	return fmt.Errorf("the files must belong to %s, and only root can give files to another user: run as that user or as root", o)
}

// writeOwned is writeAtomic that also gives the file to owner (nil: the
// caller keeps it). The temporary file is given away through its open
// descriptor before the rename, so the final path never holds a key the
// server cannot read, nor one a planted link could redirect.
func writeOwned(path string, data []byte, mode fs.FileMode, owner *Owner) error {
	if owner == nil {
		return writeAtomic(path, data, mode)
	}
	st, err := stage(path, data, mode, owner)
	if err != nil {
		return err
	}
	return st.commit()
}

// staged is a file written beside its final path, not yet renamed there.
type staged struct{ tmp, path string }

// stage writes data to a temporary file beside path with mode and owner
// (nil: the caller's). Staging the certificate and the key before
// renaming either keeps a failed write from leaving a new key with the old
// certificate: a pair the server would refuse at its next start.
func stage(path string, data []byte, mode fs.FileMode, owner *Owner) (*staged, error) {
	if _, err := safefile.CheckReplace(path); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pgaegis-*")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*staged, error) { tmp.Close(); os.Remove(tmp.Name()); return nil, err }
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if owner != nil {
		// Only root gives files away; anyone else may only be the owner
		// (CanGive), and the file is theirs already.
		if os.Geteuid() == 0 {
			if err := tmp.Chown(owner.UID, owner.GID); err != nil {
				return fail(fmt.Errorf("%s: giving it to %s: %w", path, owner, err))
			}
		} else if owner.UID != os.Geteuid() {
			return fail(fmt.Errorf("%s: %w", path, owner.CanGive()))
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	return &staged{tmp: tmp.Name(), path: path}, nil
}

// commit renames the staged file into place, checking again that the
// path is still one we may replace.
func (s *staged) commit() error {
	if _, err := safefile.CheckReplace(s.path); err != nil {
		s.discard()
		return err
	}
	if err := os.Rename(s.tmp, s.path); err != nil {
		s.discard()
		return err
	}
	return nil
}

func (s *staged) discard() { os.Remove(s.tmp) }

// Install copies a public file (a CA certificate or CRL) to dst with mode
// and owner (nil: the caller's).
func Install(src, dst string, mode fs.FileMode, owner *Owner) error {
	data, err := safefile.ReadFile(src, safefile.ConfigMax)
	if err != nil {
		return err
	}
	return writeOwned(dst, data, mode, owner)
}

// ErrNoPair is returned by CheckPair when neither file exists.
var ErrNoPair = errors.New("no certificate in place")

// Want is what an existing server certificate must satisfy to be kept.
type Want struct {
	DNSNames []string
	IPs      []net.IP
	// MinLeft: a certificate expiring sooner is not kept.
	MinLeft time.Duration
}

// CheckPair says whether the certificate and key at the two paths are a
// usable server pair: both readable, the key the certificate's, a server
// certificate valid now and for at least w.MinLeft, covering every name
// and address in w. It returns the certificate with the reason it is not
// usable (nil when it is), or ErrNoPair when neither file exists. An
// encrypted key cannot be matched without its passphrase and is taken as
// it is.
func CheckPair(certFile, keyFile string, w Want) (*x509.Certificate, error) {
	_, cErr := os.Lstat(certFile)
	_, kErr := os.Lstat(keyFile)
	if errors.Is(cErr, fs.ErrNotExist) && errors.Is(kErr, fs.ErrNotExist) {
		return nil, ErrNoPair
	}
	cert, err := ReadCert(certFile)
	if err != nil {
		return nil, err
	}
	if data, err := safefile.ReadFile(keyFile, safefile.ConfigMax); err != nil {
		return cert, err
	} else if !strings.Contains(string(data), "ENCRYPTED") {
		key, err := ReadKey(keyFile)
		if err != nil {
			return cert, err
		}
		if !samePublic(cert.PublicKey, key.Public()) {
			return cert, fmt.Errorf("%s is not the key of %s", keyFile, certFile)
		}
	}
	now := time.Now()
	switch {
	case now.Before(cert.NotBefore):
		return cert, fmt.Errorf("%s is not valid before %s", certFile, cert.NotBefore.UTC().Format(time.RFC3339))
	case now.After(cert.NotAfter):
		return cert, fmt.Errorf("%s expired on %s", certFile, cert.NotAfter.Format("2006-01-02"))
	case now.Add(w.MinLeft).After(cert.NotAfter):
		return cert, fmt.Errorf("%s expires on %s, within %d days", certFile, cert.NotAfter.Format("2006-01-02"), int(w.MinLeft.Hours()/24))
	}
	if len(cert.ExtKeyUsage) > 0 && !hasExtUsage(cert, x509.ExtKeyUsageServerAuth) && !hasExtUsage(cert, x509.ExtKeyUsageAny) {
		return cert, fmt.Errorf("%s is not a server certificate (no serverAuth usage)", certFile)
	}
	for _, n := range w.DNSNames {
		if err := cert.VerifyHostname(n); err != nil {
			return cert, fmt.Errorf("%s does not cover the name %s", certFile, n)
		}
	}
	for _, ip := range w.IPs {
		if err := cert.VerifyHostname(ip.String()); err != nil {
			return cert, fmt.Errorf("%s does not cover the address %s", certFile, ip)
		}
	}
	return cert, nil
}

func hasExtUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	for _, x := range c.ExtKeyUsage {
		if x == u {
			return true
		}
	}
	return false
}

// Signed reports whether cert was signed by this CA.
func (ca *CA) Signed(cert *x509.Certificate) bool {
	return cert != nil && cert.CheckSignatureFrom(ca.Cert) == nil
}

// LoadOrInit loads the CA in dir, or creates one named name (with its
// CRL) when dir holds neither ca.crt nor ca.key. A directory holding only
// one of them is an error, never overwritten. trusted: as for LoadCA.
func LoadOrInit(dir, name string, trusted ...Trust) (ca *CA, created bool, err error) {
	_, cErr := os.Lstat(filepath.Join(dir, CACert))
	_, kErr := os.Lstat(filepath.Join(dir, CAKey))
	if !errors.Is(cErr, fs.ErrNotExist) || !errors.Is(kErr, fs.ErrNotExist) {
		ca, err = LoadCA(dir, trusted...)
		return ca, false, err
	}
	ca, err = InitCA(dir, name, ECDSA, 10*365*24*time.Hour, trusted...)
	if err != nil {
		return nil, false, err
	}
	return ca, true, ca.WriteCRL(30 * 24 * time.Hour)
}

// FixOwnership gives an existing regular file to owner with mode, without
// following a link planted in its place (the directory may belong to the
// owner). It reports whether anything changed.
func FixOwnership(path string, mode fs.FileMode, owner Owner) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() {
		return false, fmt.Errorf("%s: not a regular file (%s)", path, safefile.Kind(st.Mode()))
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	changed := false
	wrong := sys == nil || int(sys.Uid) != owner.UID
	if os.Geteuid() == 0 && sys != nil && int(sys.Gid) != owner.GID {
		wrong = true // only root changes the group to one of its choosing
	}
	if wrong {
		if err := f.Chown(owner.UID, owner.GID); err != nil {
			return false, fmt.Errorf("%s: giving it to %s: %w", path, owner, err)
		}
		changed = true
	}
	if st.Mode().Perm() != mode {
		if err := f.Chmod(mode); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

// The files `pgaegis tls issue server --pgdata DIR` writes into DIR: the
// values for ssl_cert_file and ssl_key_file (also the server's defaults,
// relative to the data directory).
const (
	ServerCertName = "server.crt"
	ServerKeyName  = "server.key"
)

// DefaultCADir is where `tls issue server --pgdata DIR` keeps its CA when
// no --ca is given: beside the data directory, never inside it (a base
// backup or a replica must not carry the CA key).
func DefaultCADir(pgdata string) string { return filepath.Join(filepath.Dir(pgdata), "pgaegis-ca") }

// ServerCommand is the argv that puts a usable certificate into a data
// directory for ssl = on, non-interactively and idempotently (a valid
// certificate in place: nothing done, exit 0). The fix planner emits it
// for TLS-01; plan.Step.Command holds it as is (quote.Shell each word for
// a script).
func ServerCommand(pgdata string) []string {
	return []string{"pgaegis", "tls", "issue", "server", "--pgdata", pgdata}
}
