// Package tlsprobe looks at a PostgreSQL server from the network: whether
// it offers TLS (SSLRequest, and PostgreSQL 17's direct TLS), whether it
// also accepts unencrypted sessions, which TLS versions and cipher suites
// it accepts, and its certificate. It never sends credentials: the
// plaintext check stops at the authentication request.
//
// It must leave no authentication failure in the server's log (a FATAL
// before an administrator's login reads as a guessed password): the
// TLS checks send no startup message at all, and the plaintext check
// sends one only as the audit's own login, and only when pg_hba.conf
// (read through the audit's connection) says the server will answer it
// with trust or a password challenge, which a client may hang up on
// without a log line. Everything else is decided from pg_hba.conf, or
// reported as not checked.
package tlsprobe

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// Options for a probe.
type Options struct {
	Addr       string         // host:port
	ServerName string         // for the hostname check (default: the host)
	RootCAs    *x509.CertPool // to test whether the chain verifies
	// Timeout is one deadline for the whole probe: every dial, read,
	// write and handshake of every connection ends by then. A server that
	// accepts and then says nothing is reported as a stall (Result.Stalled)
	// within it, never as a refusal.
	Timeout time.Duration
	// SkipCiphers does not enumerate cipher suites (faster).
	SkipCiphers bool
	// User and Database name the unencrypted startup message: a role and
	// database that exist (the audit's own login), so that a trust line
	// opens a session instead of logging "role does not exist". Empty:
	// the plaintext check is not run.
	User, Database string
	// HBA is pg_hba.conf as the server loaded it, and HBAEnv what matching
	// it needs (role membership, the server's addresses, the major). nil:
	// not known, and the plaintext check is not run, since a line that
	// rejects the probe would log a FATAL.
	// HBAEnv.Version, when set, is also the server's major: before 17 no
	// direct TLS handshake is tried (the server would log it).
	HBA    []hba.Rule
	HBAEnv hba.Env
}

// Result is what the probe found.
type Result struct {
	Addr       string `json:"address"`
	TLSOffered bool   `json:"tls_offered"`
	DirectTLS  bool   `json:"direct_tls"`
	// DirectProtocols are the TLS versions a direct TLS handshake (ALPN
	// "postgresql", PostgreSQL 17+) accepts; nil when direct TLS is not
	// offered. A server shares one TLS context between both paths, but a
	// proxy in front of it need not.
	DirectProtocols map[string]bool `json:"direct_protocols,omitempty"`
	// Groups is the key exchange group the server chose per accepted TLS
	// version ("X25519", "CurveP384"): what ssl_ecdh_curve (ssl_groups on
	// 18) allows of what the client offers.
	Groups            map[string]string `json:"groups,omitempty"`
	PlaintextAccepted bool              `json:"plaintext_accepted"`
	// PlaintextChecked is false when neither the wire nor pg_hba.conf
	// could say (no login or no pg_hba.conf to decide from):
	// PlaintextAnswer then starts with "not checked".
	PlaintextChecked    bool                `json:"plaintext_checked"`
	PlaintextAnswer     string              `json:"plaintext_answer"`
	Protocols           map[string]bool     `json:"protocols"`
	Ciphers             map[string][]string `json:"ciphers,omitempty"`
	Certificate         *Cert               `json:"certificate,omitempty"`
	Chain               []string            `json:"chain,omitempty"`
	ClientCertRequested bool                `json:"client_certificate_requested"`
	Errors              []string            `json:"errors,omitempty"`
	// Stalled says which step got no answer before the deadline ("no
	// answer to SSLRequest within 5s"); the steps after it were not run
	// and NotTested lists the TLS versions that were not decided.
	Stalled   string   `json:"stalled,omitempty"`
	NotTested []string `json:"not_tested,omitempty"`
}

// Cert summarises the server certificate.
type Cert struct {
	Subject      string    `json:"subject"`
	Issuer       string    `json:"issuer"`
	KeyType      string    `json:"key_type"`
	KeyBits      int       `json:"key_bits"`
	SignatureAlg string    `json:"signature_algorithm"`
	NotBefore    time.Time `json:"not_before"`
	NotAfter     time.Time `json:"not_after"`
	DaysLeft     int       `json:"days_left"`
	DNSNames     []string  `json:"dns_names,omitempty"`
	IPs          []string  `json:"ip_addresses,omitempty"`
	HostnameOK   bool      `json:"hostname_matches"`
	ChainOK      *bool     `json:"chains_to_ca,omitempty"`
	SelfSigned   bool      `json:"self_signed"`
}

var versions = []struct {
	name string
	v    uint16
}{{"TLSv1.0", tls.VersionTLS10}, {"TLSv1.1", tls.VersionTLS11}, {"TLSv1.2", tls.VersionTLS12}, {"TLSv1.3", tls.VersionTLS13}}

// sslRequest is the 8-byte SSLRequest message.
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// Probe runs every check, all within o.Timeout.
func Probe(ctx context.Context, o Options) *Result {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.ServerName == "" {
		o.ServerName, _, _ = net.SplitHostPort(o.Addr)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &Result{Addr: o.Addr, Protocols: map[string]bool{}}
	for _, v := range versions {
		r.Protocols[v.name] = false
	}
	// stall records a step that ran out of time and reports whether the
	// probe must stop (the deadline is shared, so nothing after it can run).
	stall := func(err error, step string) bool {
		if !isStall(ctx, err) {
			return false
		}
		r.Stalled = fmt.Sprintf("%s within %s", step, o.Timeout)
		// Also an error, for callers that only look at Errors (the
		// audit's probe): a stall must never read as a clean refusal.
		r.Errors = append(r.Errors, r.Stalled)
		return true
	}
	undecided := func(from int) {
		for _, v := range versions[from:] {
			if !r.Protocols[v.name] {
				r.NotTested = append(r.NotTested, v.name)
			}
		}
	}
	offered, err := offersTLS(ctx, o)
	if stall(err, "no answer to SSLRequest") {
		undecided(0)
		return r
	}
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	r.TLSOffered = offered
	if offered {
		for i, v := range versions {
			st, err := handshake(ctx, o, &tls.Config{MinVersion: v.v, MaxVersion: v.v, CipherSuites: allSuites()}, false)
			if stall(err, "TLS handshake ("+v.name+") not finished") {
				undecided(i)
				return r
			}
			if err == nil {
				r.Protocols[v.name] = true
				if r.Groups == nil {
					r.Groups = map[string]string{}
				}
				r.Groups[v.name] = groupName(st.CurveID)
				if r.Certificate == nil {
					r.describeCert(st, o)
				}
			}
		}
		if !o.SkipCiphers {
			var err error
			r.Ciphers, err = ciphers(ctx, o, r.Protocols)
			if stall(err, "cipher suite enumeration not finished") {
				return r
			}
		}
		asked, err := clientCertRequested(ctx, o)
		if stall(err, "TLS handshake (client certificate check) not finished") {
			return r
		}
		r.ClientCertRequested = asked
	}
	var answer string
	r.PlaintextAccepted, answer, err = plaintext(ctx, o)
	if stall(err, "no answer to an unencrypted startup message") {
		return r
	}
	r.PlaintextAnswer = answer
	r.PlaintextChecked = !strings.HasPrefix(answer, notChecked)
	// A server before 17 reads a ClientHello as a startup packet and logs
	// "invalid length of startup packet" (LOG, not FATAL): when the major
	// is known (HBAEnv.Version, the audit's probe) it is not asked.
	if v := o.HBAEnv.Version; v > 0 && v < 17 {
		return r
	}
	// Direct TLS: the whole version range, so a server that only speaks
	// TLS 1.0 or 1.1 is not taken for one without direct TLS.
	st, err := handshake(ctx, o, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS13, CipherSuites: allSuites(), NextProtos: []string{"postgresql"}}, true)
	if stall(err, "direct TLS handshake not finished") {
		return r
	}
	if err != nil || st.NegotiatedProtocol != "postgresql" {
		return r
	}
	r.DirectTLS = true
	r.DirectProtocols = map[string]bool{}
	for _, v := range versions {
		st, err := handshake(ctx, o, &tls.Config{MinVersion: v.v, MaxVersion: v.v, CipherSuites: allSuites(), NextProtos: []string{"postgresql"}}, true)
		if stall(err, "direct TLS handshake ("+v.name+") not finished") {
			return r
		}
		r.DirectProtocols[v.name] = err == nil && st.NegotiatedProtocol == "postgresql"
	}
	return r
}

// allSuites is every TLS 1.0-1.2 suite Go can speak, the insecure ones
// included: a version is accepted when any suite works at it, and Go's
// default list leaves out suites a server may be configured with alone
// (ECDHE-ECDSA-AES128-SHA256), which would hide the version.
func allSuites() []uint16 {
	var ids []uint16
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		ids = append(ids, cs.ID)
	}
	return ids
}

// groupName names a key exchange group as Go does, or by number for one
// Go has no name for.
func groupName(id tls.CurveID) string {
	if id == 0 {
		return ""
	}
	return id.String()
}

// isStall tells a step that ran out of time from one the server answered
// (a refusal, a closed connection).
func isStall(ctx context.Context, err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() || errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// hungUp: the peer closed the connection (cleanly, or with a reset when
// it closed before reading what we sent).
func hungUp(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func dial(ctx context.Context, o Options) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	// The probe's one deadline covers every read and write.
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return c, nil
}

// offersTLS sends an SSLRequest and reads the one-byte answer.
func offersTLS(ctx context.Context, o Options) (bool, error) {
	c, err := dial(ctx, o)
	if err != nil {
		return false, fmt.Errorf("connecting to %s: %w", o.Addr, err)
	}
	defer c.Close()
	if _, err := c.Write(sslRequest); err != nil {
		if hungUp(err) {
			return false, errors.New("the server closed the connection without answering SSLRequest (not PostgreSQL?)")
		}
		return false, fmt.Errorf("sending SSLRequest: %w", err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		if hungUp(err) {
			return false, errors.New("the server closed the connection without answering SSLRequest (not PostgreSQL?)")
		}
		return false, fmt.Errorf("no answer to SSLRequest: %w", err)
	}
	switch b[0] {
	case 'S':
		return true, nil
	case 'N':
		return false, nil
	}
	return false, fmt.Errorf("unexpected answer %q to SSLRequest (not PostgreSQL?)", b[0])
}

// notChecked starts the plaintext answer when nothing was learned.
const notChecked = "not checked"

// plaintext decides whether an unencrypted session gets past pg_hba.conf.
// The line it matches is found first (the probe's own source address, the
// caller's login): reject and no line are answered from the file, since
// the server logs a FATAL for them whatever the client does. Only trust
// and password challenges (password, md5, scram-sha-256) are confirmed on
// the wire: a client that hangs up at the challenge ends with STATUS_EOF,
// which the server does not log, and a trust session for a real role and
// database is closed with Terminate. Other methods (ident, ldap, pam, gss,
// ...) log their own failures, so they are answered from the file too.
// No password is ever sent. The error is set only when the step ran out
// of time; every answer (or none) is described in the string.
func plaintext(ctx context.Context, o Options) (bool, string, error) {
	if o.User == "" || o.Database == "" || strings.ContainsRune(o.User+o.Database, 0) {
		return false, notChecked + ": no login to probe as (a startup message for a made-up role is logged as a failed login)", nil
	}
	if o.HBA == nil {
		return false, notChecked + ": pg_hba.conf not known (a rejected startup message is logged as a failed login)", nil
	}
	c, err := dial(ctx, o)
	if err != nil {
		if isStall(ctx, err) {
			return false, "", err
		}
		return false, err.Error(), nil
	}
	defer c.Close()
	var src netip.Addr
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		src = ta.AddrPort().Addr().Unmap()
	}
	m := hba.Match(o.HBA, hba.Conn{User: o.User, Database: o.Database, Addr: src}, o.HBAEnv)
	if len(m.Depends) > 0 {
		return false, notChecked + ": the pg_hba.conf line depends on " + strings.Join(m.Depends, "; "), nil
	}
	if !m.Matched {
		return false, "rejected: no pg_hba.conf entry for " + src.String() + " without TLS (from pg_hba.conf, not sent)", nil
	}
	file := m.Rule.File
	if file == "" {
		file = "pg_hba.conf" // the server's view names no file
	}
	where := fmt.Sprintf("%s line %d", file, m.Rule.Line)
	switch m.Rule.Method {
	case "reject":
		return false, "rejected: pg_hba.conf rejects connection (" + where + ", not sent)", nil
	case "trust", "password", "md5", "scram-sha-256":
	default:
		return true, fmt.Sprintf("reaches %s authentication (%s; not sent: a failed %s check is logged)", m.Rule.Method, where, m.Rule.Method), nil
	}
	return startup(ctx, c, o)
}

// startup sends the unencrypted startup message and reads the first answer.
func startup(ctx context.Context, c net.Conn, o Options) (bool, string, error) {
	params := "user\x00" + o.User + "\x00database\x00" + o.Database + "\x00application_name\x00pgaegis-probe\x00\x00"
	msg := make([]byte, 8+len(params))
	binary.BigEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.BigEndian.PutUint32(msg[4:], 196608) // protocol 3.0
	copy(msg[8:], params)
	if _, err := c.Write(msg); err != nil {
		if isStall(ctx, err) {
			return false, "", err
		}
		if hungUp(err) {
			return false, "closed without an answer", nil
		}
		return false, err.Error(), nil
	}
	head := make([]byte, 5)
	if _, err := io.ReadFull(c, head); err != nil {
		if isStall(ctx, err) {
			return false, "", err
		}
		return false, "closed without an answer", nil
	}
	n := int(binary.BigEndian.Uint32(head[1:])) - 4
	if n < 0 || n > 1<<16 {
		return false, "malformed answer", nil
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		if isStall(ctx, err) {
			return false, "", err
		}
		return false, "closed in the middle of its answer", nil
	}
	switch head[0] {
	case 'R':
		code := uint32(0)
		if len(body) >= 4 {
			code = binary.BigEndian.Uint32(body)
		}
		if code == 0 {
			// Trust: the session is being set up. Wait for ReadyForQuery so
			// that Terminate ends it as a client logging off.
			if err := untilReady(c); err != nil && isStall(ctx, err) {
				return false, "", err
			}
			c.Write([]byte{'X', 0, 0, 0, 4})
		}
		// A challenge is left unanswered and the connection closed: the
		// server sees end of file (STATUS_EOF), which it does not log. A
		// Terminate here would be logged ("expected password response").
		return true, authName(code), nil
	case 'E':
		return false, "rejected: " + errorMessage(body), nil
	}
	return false, fmt.Sprintf("unexpected message %q", head[0]), nil
}

// untilReady reads messages up to ReadyForQuery ('Z') or an error ('E').
func untilReady(c net.Conn) error {
	head := make([]byte, 5)
	for {
		if _, err := io.ReadFull(c, head); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(head[1:])) - 4
		if n < 0 || n > 1<<20 {
			return errors.New("malformed message")
		}
		if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
			return err
		}
		if head[0] == 'Z' || head[0] == 'E' {
			return nil
		}
	}
}

func authName(code uint32) string {
	switch code {
	case 0:
		return "accepted without authentication (trust)"
	case 3:
		return "asked for a clear-text password"
	case 5:
		return "asked for an md5 password"
	case 10:
		return "asked for SCRAM authentication"
	}
	return fmt.Sprintf("asked for authentication (code %d)", code)
}

func errorMessage(body []byte) string {
	for _, f := range strings.Split(string(body), "\x00") {
		if strings.HasPrefix(f, "M") {
			return f[1:]
		}
	}
	return "error"
}

// handshake does SSLRequest (or direct TLS) and a TLS handshake; it then
// closes without sending a startup message.
func handshake(ctx context.Context, o Options, cfg *tls.Config, direct bool) (tls.ConnectionState, error) {
	c, err := dial(ctx, o)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	if !direct {
		if _, err := c.Write(sslRequest); err != nil {
			return tls.ConnectionState{}, err
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			return tls.ConnectionState{}, err // a stall stays a stall
		}
		if b[0] != 'S' {
			return tls.ConnectionState{}, errors.New("TLS not offered")
		}
	}
	cfg.InsecureSkipVerify = true // verification is reported, not enforced
	cfg.ServerName = o.ServerName
	tc := tls.Client(c, cfg)
	defer tc.Close()
	if err := tc.HandshakeContext(ctx); err != nil {
		return tls.ConnectionState{}, err
	}
	return tc.ConnectionState(), nil
}

func (r *Result) describeCert(st tls.ConnectionState, o Options) {
	if len(st.PeerCertificates) == 0 {
		return
	}
	x := st.PeerCertificates[0]
	c := &Cert{Subject: x.Subject.String(), Issuer: x.Issuer.String(), SignatureAlg: x.SignatureAlgorithm.String(),
		NotBefore: x.NotBefore, NotAfter: x.NotAfter, DaysLeft: int(time.Until(x.NotAfter).Hours() / 24), DNSNames: x.DNSNames}
	for _, ip := range x.IPAddresses {
		c.IPs = append(c.IPs, ip.String())
	}
	switch k := x.PublicKey.(type) {
	case *rsa.PublicKey:
		c.KeyType, c.KeyBits = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		c.KeyType, c.KeyBits = "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		c.KeyType, c.KeyBits = "Ed25519", 256
	}
	c.HostnameOK = x.VerifyHostname(o.ServerName) == nil
	c.SelfSigned = x.Subject.String() == x.Issuer.String() && x.CheckSignatureFrom(x) == nil
	if o.RootCAs != nil {
		inter := x509.NewCertPool()
		for _, ic := range st.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := x.Verify(x509.VerifyOptions{Roots: o.RootCAs, Intermediates: inter})
		ok := err == nil
		c.ChainOK = &ok
	}
	for _, pc := range st.PeerCertificates {
		r.Chain = append(r.Chain, pc.Subject.String())
	}
	r.Certificate = c
}

// ciphers tries each cipher suite Go can speak, one at a time, for TLS
// 1.0-1.2; for TLS 1.3 the suite the server picks is reported (Go offers
// all three and does not let a client choose).
func ciphers(ctx context.Context, o Options, accepted map[string]bool) (map[string][]string, error) {
	out := map[string][]string{}
	all := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
	for _, v := range versions {
		if !accepted[v.name] {
			continue
		}
		if v.v == tls.VersionTLS13 {
			st, err := handshake(ctx, o, &tls.Config{MinVersion: v.v, MaxVersion: v.v}, false)
			if isStall(ctx, err) {
				return out, err
			}
			if err == nil {
				out[v.name] = []string{tls.CipherSuiteName(st.CipherSuite)}
			}
			continue
		}
		for _, cs := range all {
			supported := false
			for _, sv := range cs.SupportedVersions {
				if sv == v.v {
					supported = true
				}
			}
			if !supported {
				continue
			}
			_, err := handshake(ctx, o, &tls.Config{MinVersion: v.v, MaxVersion: v.v, CipherSuites: []uint16{cs.ID}}, false)
			if isStall(ctx, err) {
				return out, err
			}
			if err == nil {
				out[v.name] = append(out[v.name], cs.Name)
			}
		}
	}
	return out, nil
}

// clientCertRequested: the server asks for a client certificate (it has
// ssl_ca_file); whether one is required is pg_hba.conf's decision.
func clientCertRequested(ctx context.Context, o Options) (bool, error) {
	asked := false
	cfg := &tls.Config{MinVersion: tls.VersionTLS10, CipherSuites: allSuites(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		return &tls.Certificate{}, nil
	}}
	_, err := handshake(ctx, o, cfg, false)
	if isStall(ctx, err) {
		return asked, err
	}
	return asked, nil
}
