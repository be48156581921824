// Package tlsca issues the certificates a PostgreSQL deployment needs, in
// Go with no openssl: a server CA and a client CA, server certificates
// (names and addresses as SANs), client certificates (CN = role name),
// renewals and a CRL. Private keys are written 0600 and never printed.
package tlsca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Key types.
const (
	ECDSA   = "ecdsa-p256"
	Ed25519 = "ed25519"
	RSA3072 = "rsa-3072"
	RSA4096 = "rsa-4096"
)

// File names inside a CA or output directory.
const (
	CACert     = "ca.crt"
	CAKey      = "ca.key"
	CRLFile    = "ca.crl"
	IssuedFile = "issued.json"
)

// NewKey generates a private key of the given type.
func NewKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "", ECDSA:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key type %q (ecdsa-p256, ed25519, rsa-3072, rsa-4096)", kind)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// CA is a loaded certificate authority.
type CA struct {
	Dir  string
	Cert *x509.Certificate
	Key  crypto.Signer
}

// InitCA creates a CA in dir (refusing to overwrite one). An existing
// dir must be the caller's, root's or a trusted user's (see LoadCA).
func InitCA(dir, name, keyType string, validity time.Duration, trusted ...Trust) (*CA, error) {
	t := trustSet(trusted)
	if _, err := os.Lstat(dir); err == nil {
		// Checked before MkdirAll, which would follow a planted link.
		if err := t.checkDir(dir); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, CAKey)); err == nil {
		return nil, fmt.Errorf("%s: a CA key already exists; refusing to overwrite it", filepath.Join(dir, CAKey))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := t.checkDir(dir); err != nil {
		return nil, err
	}
	// Both files are checked before either is written: a refused
	// certificate path must not leave a lone key that blocks the next try.
	for _, f := range []string{CAKey, CACert} {
		if _, err := safefile.CheckReplace(filepath.Join(dir, f)); err != nil {
			return nil, err
		}
	}
	key, err := NewKey(keyType)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-5 * time.Minute)
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: name},
		NotBefore: now, NotAfter: now.Add(validity), IsCA: true, BasicConstraintsValid: true, MaxPathLen: 0, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writeKey(filepath.Join(dir, CAKey), key, nil); err != nil {
		return nil, err
	}
	if err := writeCert(filepath.Join(dir, CACert), der); err != nil {
		return nil, err
	}
	return &CA{Dir: dir, Cert: cert, Key: key}, nil
}

// LoadCA reads a CA directory, checking that the key matches the
// certificate and that the CA is valid today. The directory, ca.crt and
// ca.key (and any link to them) must belong to the caller, root or a
// trusted user, the directory and certificate closed to other writers and
// the key to other readers: whoever else owns them could hold the key.
func LoadCA(dir string, trusted ...Trust) (*CA, error) {
	t := trustSet(trusted)
	if err := t.checkDir(dir); err != nil {
		return nil, err
	}
	data, err := t.readCAFile(filepath.Join(dir, CACert), false)
	if err != nil {
		return nil, err
	}
	cert, err := parseCert(filepath.Join(dir, CACert), data)
	if err != nil {
		return nil, err
	}
	if data, err = t.readCAFile(filepath.Join(dir, CAKey), true); err != nil {
		return nil, err
	}
	key, err := parseKey(filepath.Join(dir, CAKey), data)
	if err != nil {
		return nil, err
	}
	if !samePublic(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not match the key in %s", filepath.Join(dir, CACert), filepath.Join(dir, CAKey))
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, CACert))
	}
	now := time.Now()
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%s: the CA expired on %s", filepath.Join(dir, CACert), cert.NotAfter.Format("2006-01-02"))
	}
	return &CA{Dir: dir, Cert: cert, Key: key}, nil
}

func samePublic(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(eq); ok {
		return e.Equal(b)
	}
	return false
}

// Request describes a leaf certificate.
type Request struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Client     bool // client certificate (ExtKeyUsageClientAuth), else server
	KeyType    string
	Validity   time.Duration
	// Passphrase, when set, encrypts the written key (the server then
	// needs ssl_passphrase_command).
	Passphrase []byte
	// Owner, when set, receives the written key and certificate (root
	// issuing into the data directory of a cluster run by another user).
	Owner *Owner
}

// Issued is what Issue wrote.
type Issued struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// Issue signs a new key pair and writes name.crt / name.key into out.
func (ca *CA) Issue(r Request, out, name string) (*Issued, error) {
	if r.CommonName == "" {
		return nil, errors.New("a certificate needs a common name")
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	key, err := NewKey(r.KeyType)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	if r.Validity == 0 {
		r.Validity = 397 * 24 * time.Hour
	}
	now := time.Now().Add(-5 * time.Minute)
	notAfter := now.Add(r.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: r.CommonName},
		NotBefore: now, NotAfter: notAfter, DNSNames: r.DNSNames, IPAddresses: r.IPs,
		KeyUsage: x509.KeyUsageDigitalSignature}
	if _, isRSA := key.(*rsa.PrivateKey); isRSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if r.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	is := &Issued{CertFile: filepath.Join(out, name+".crt"), KeyFile: filepath.Join(out, name+".key"), Cert: cert}
	if r.Owner != nil {
		if err := r.Owner.CanGive(); err != nil {
			return nil, err
		}
	}
	var keyPEM []byte
	if len(r.Passphrase) > 0 {
		keyPEM, err = encryptedKeyPEM(key, r.Passphrase)
	} else {
		keyPEM, err = keyPEMOf(key)
	}
	if err != nil {
		return nil, err
	}
	// Both files are staged before either is renamed into place: a failed
	// write leaves the old pair whole.
	stKey, err := stage(is.KeyFile, keyPEM, 0o600, r.Owner)
	if err != nil {
		return nil, err
	}
	stCert, err := stage(is.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644, r.Owner)
	if err != nil {
		stKey.discard()
		return nil, err
	}
	if err := stKey.commit(); err != nil {
		stCert.discard()
		return nil, err
	}
	if err := stCert.commit(); err != nil {
		return nil, err
	}
	return is, ca.record(cert, is.CertFile)
}

// issuedEntry is one line of the CA's register of what it signed.
type issuedEntry struct {
	Serial   string    `json:"serial"`
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
	File     string    `json:"file"`
	Revoked  time.Time `json:"revoked,omitzero"`
}

func (ca *CA) register() ([]issuedEntry, error) {
	data, err := safefile.ReadFile(filepath.Join(ca.Dir, IssuedFile), safefile.ConfigMax)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var es []issuedEntry
	if err := json.Unmarshal(data, &es); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(ca.Dir, IssuedFile), err)
	}
	return es, nil
}

func (ca *CA) saveRegister(es []issuedEntry) error {
	data, _ := json.MarshalIndent(es, "", "  ")
	return writeAtomic(filepath.Join(ca.Dir, IssuedFile), data, 0o600)
}

func (ca *CA) record(c *x509.Certificate, file string) error {
	es, err := ca.register()
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(file)
	es = append(es, issuedEntry{Serial: c.SerialNumber.Text(16), Subject: c.Subject.CommonName, NotAfter: c.NotAfter, File: abs})
	return ca.saveRegister(es)
}

// Revoke marks a certificate (by its file or serial) revoked and rewrites
// the CRL.
func (ca *CA) Revoke(certOrSerial string) error {
	target := strings.ToLower(certOrSerial)
	if c, err := ReadCert(certOrSerial); err == nil {
		target = c.SerialNumber.Text(16)
	}
	es, err := ca.register()
	if err != nil {
		return err
	}
	found := false
	for i := range es {
		if es[i].Serial == target && es[i].Revoked.IsZero() {
			es[i].Revoked = time.Now().UTC()
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no certificate with serial %s in %s", target, filepath.Join(ca.Dir, IssuedFile))
	}
	if err := ca.saveRegister(es); err != nil {
		return err
	}
	return ca.WriteCRL(7 * 24 * time.Hour)
}

// WriteCRL writes ca.crl listing every revoked certificate.
func (ca *CA) WriteCRL(validity time.Duration) error {
	es, err := ca.register()
	if err != nil {
		return err
	}
	var revoked []x509.RevocationListEntry
	for _, e := range es {
		if e.Revoked.IsZero() {
			continue
		}
		sn, ok := new(big.Int).SetString(e.Serial, 16)
		if !ok {
			continue
		}
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: sn, RevocationTime: e.Revoked})
	}
	num, _ := serial()
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: num, ThisUpdate: now, NextUpdate: now.Add(validity), RevokedCertificateEntries: revoked}, ca.Cert, ca.Key)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(ca.Dir, CRLFile), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
}

// ExpiringWithin lists issued, unrevoked certificates that expire within d.
func (ca *CA) ExpiringWithin(d time.Duration) ([]string, error) {
	es, err := ca.register()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		if e.Revoked.IsZero() && time.Until(e.NotAfter) < d {
			out = append(out, e.File)
		}
	}
	return out, nil
}

// ReadCert reads the first certificate of a PEM file.
func ReadCert(path string) (*x509.Certificate, error) {
	data, err := safefile.ReadFile(path, safefile.ConfigMax)
	if err != nil {
		return nil, err
	}
	return parseCert(path, data)
}

func parseCert(path string, data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: no PEM certificate", path)
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			return c, nil
		}
	}
}

// ReadKey reads a PEM private key (PKCS#8, EC or PKCS#1).
func ReadKey(path string) (crypto.Signer, error) {
	data, err := safefile.ReadFile(path, safefile.ConfigMax)
	if err != nil {
		return nil, err
	}
	return parseKey(path, data)
}

func parseKey(path string, data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM private key", path)
	}
	if strings.Contains(b.Type, "ENCRYPTED") {
		return nil, fmt.Errorf("%s: the key is passphrase-protected; pgaegis signs only with unencrypted CA keys", path)
	}
	var k any
	var err error
	switch b.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable private key: %v", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported key type", path)
	}
	return s, nil
}

func keyPEMOf(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func writeKey(path string, key crypto.Signer, owner *Owner) error {
	data, err := keyPEMOf(key)
	if err != nil {
		return err
	}
	return writeOwned(path, data, 0o600, owner)
}

func writeCert(path string, der []byte) error {
	return writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeAtomic writes through a temporary file (no half-written keys), and
// only to a new path or over a regular file: never through a symlink
// planted in the output directory, never over a device.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	return safefile.WriteFile(path, data, mode)
}

// encryptedKeyPEM renders a passphrase-protected key in the traditional
// OpenSSL form (Proc-Type/DEK-Info, AES-256-CBC) that the server reads
// with ssl_passphrase_command.
func encryptedKeyPEM(key crypto.Signer, pass []byte) ([]byte, error) {
	var der []byte
	var typ string
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		der, typ = b, "EC PRIVATE KEY"
	case *rsa.PrivateKey:
		der, typ = x509.MarshalPKCS1PrivateKey(k), "RSA PRIVATE KEY"
	default:
		return nil, errors.New("passphrase protection supports ecdsa-p256 and rsa keys")
	}
	//lint:ignore SA1019 the traditional format is what OpenSSL (and so the server) reads for encrypted EC keys
	block, err := x509.EncryptPEMBlock(rand.Reader, typ, der, pass, x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(block), nil
}
