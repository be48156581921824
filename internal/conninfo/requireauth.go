package conninfo

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"weak"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Authentication methods require_auth can name (libpq 16+, oauth from 18).
const (
	methPassword = 1 << iota
	methMD5
	methGSS
	methSSPI
	methSCRAM
	methOAuth
	methAll = methPassword | methMD5 | methGSS | methSSPI | methSCRAM | methOAuth
)

var methodBits = map[string]uint{
	"password": methPassword, "md5": methMD5, "gss": methGSS, "sspi": methSSPI,
	"scram-sha-256": methSCRAM, "oauth": methOAuth,
}

// AuthPolicy is a parsed require_auth value, with libpq's semantics
// (fe-connect.c, "parse and validate require_auth option"; fe-auth.c,
// check_expected_areq): the methods the server may ask for, and whether
// it must ask at all.
type AuthPolicy struct {
	Raw      string // the value as given; empty: no require_auth
	Required bool   // the server must complete an authentication exchange ("none" not allowed)
	allowed  uint
}

// Set reports whether require_auth was given.
func (p AuthPolicy) Set() bool { return p.Raw != "" }

// Allows reports whether the server may ask for method (a require_auth
// method name other than "none").
func (p AuthPolicy) Allows(method string) bool {
	return !p.Set() || p.allowed&methodBits[method] != 0
}

// ParseRequireAuth parses require_auth as libpq does: a comma-separated
// list cut at every comma with no trimming (so "md5, password" names the
// invalid method " password"), case-sensitive; either every entry is
// negated with "!" or none is; a method named twice is an error (a typo
// in a setting where typos are risky). A positive list starts from
// nothing allowed and authentication required ("none" lifts that); a
// negated list starts from everything allowed and nothing required
// ("!none" requires it).
func ParseRequireAuth(s string) (AuthPolicy, error) {
	p := AuthPolicy{Raw: s, allowed: methAll}
	if s == "" {
		return p, nil
	}
	p.Required, p.allowed = true, 0
	negated := false
	for i, part := range strings.Split(s, ",") {
		method := part
		if strings.HasPrefix(method, "!") {
			if i == 0 {
				negated = true
				p.Required, p.allowed = false, methAll
			} else if !negated {
				return AuthPolicy{}, fmt.Errorf("require_auth %q: the negated method %q cannot be mixed with non-negated ones", s, part)
			}
			method = method[1:]
		} else if negated {
			return AuthPolicy{}, fmt.Errorf("require_auth %q: the method %q cannot be mixed with negated ones", s, part)
		}
		if method == "none" {
			// "none" is no bit: it says whether no exchange at all
			// (trust, cert) is acceptable.
			if p.Required == negated {
				return AuthPolicy{}, fmt.Errorf("require_auth %q: method %q is given more than once", s, part)
			}
			p.Required = negated
			continue
		}
		bit, ok := methodBits[method]
		if !ok {
			return AuthPolicy{}, fmt.Errorf("require_auth %q: invalid method %q (want password, md5, gss, sspi, scram-sha-256, oauth or none, optionally each with !)", s, method)
		}
		if (p.allowed&bit != 0) != negated {
			return AuthPolicy{}, fmt.Errorf("require_auth %q: method %q is given more than once", s, part)
		}
		p.allowed ^= bit
	}
	return p, nil
}

// Authentication request codes of the protocol's AuthenticationRequest
// ('R') message.
const (
	areqOK        = 0
	areqPassword  = 3
	areqMD5       = 5
	areqGSS       = 7
	areqGSSCont   = 8
	areqSSPI      = 9
	areqSASL      = 10
	areqSASLCont  = 11
	areqSASLFinal = 12
)

// RefusedError is a login pgaegis broke off before answering the server:
// its authentication request was not one the policy allows.
type RefusedError struct {
	RequireAuth string // the require_auth value; empty for pgaegis's own default
	Asked       string // what the server asked for, as a require_auth method name ("none": no exchange)
	reason      string
}

func (e *RefusedError) Error() string {
	if e.RequireAuth == "" {
		return e.reason
	}
	return fmt.Sprintf("require_auth %q refused the login before sending anything: %s", e.RequireAuth, e.reason)
}

// errDefaultCleartext is pgaegis's default without require_auth: the
// password itself never crosses a network without TLS.
func errDefaultCleartext() error {
	return &RefusedError{Asked: "password", reason: "the server asked for the password in cleartext (method password) over a TCP connection without TLS; " +
		"pgaegis does not send it there (a server or anyone in between could read it): use TLS (sslmode=require or verify-full), " +
		"or allow it explicitly with require_auth=password"}
}

// refusals remembers, per connection attempt (pgx passes the same
// *pgconn.Config to every host and TLS fallback of one Connect, and copies
// it per Connect), that the policy refused a server: libpq then fails the
// whole connection, it does not try the next address or sslmode=prefer's
// plaintext retry, so neither do we.
var refusals sync.Map // weak.Pointer[pgconn.Config] -> error

func refused(cfg *pgconn.Config) error {
	if v, ok := refusals.Load(weak.Make(cfg)); ok {
		return v.(error)
	}
	return nil
}

func remember(cfg *pgconn.Config, err error) {
	k := weak.Make(cfg)
	if _, loaded := refusals.LoadOrStore(k, err); !loaded {
		runtime.AddCleanup(cfg, func(k weak.Pointer[pgconn.Config]) { refusals.Delete(k) }, k)
	}
}

// Guard makes cfg enforce require_auth (cfg.RequireAuth, however it was
// given: connection string, URI, service file or PGREQUIREAUTH) with
// libpq's rules before pgx answers the server, and, without require_auth,
// pgaegis's default: no cleartext password over TCP without TLS. It
// checks the value as libpq does (pgx alone trims spaces libpq rejects).
// A Copy of cfg shares the guard; guarding twice is harmless.
func Guard(cfg *pgx.ConnConfig) error {
	pol, err := ParseRequireAuth(cfg.RequireAuth)
	if err != nil {
		return err
	}
	next := cfg.AfterNetConnect
	cfg.AfterNetConnect = func(ctx context.Context, pc *pgconn.Config, conn net.Conn) (net.Conn, error) {
		// On an error pgx closes the conn it gets back: return the one it gave.
		if refused(pc) != nil {
			return conn, errors.New("not tried: the login was refused above, and like libpq pgaegis then tries no other address and no plaintext retry")
		}
		if next != nil {
			c, err := next(ctx, pc, conn)
			if err != nil {
				return c, err
			}
			conn = c
			if _, ok := conn.(*authGuard); ok {
				return conn, nil // guarded twice (Guard on a Copy): one guard reads along
			}
		}
		p := pol
		if pc.RequireAuth != pol.Raw { // changed after Guard
			if p, err = ParseRequireAuth(pc.RequireAuth); err != nil {
				return conn, err
			}
		}
		_, isTLS := conn.(*tls.Conn)
		unix := conn.RemoteAddr() != nil && conn.RemoteAddr().Network() == "unix"
		return &authGuard{Conn: conn, pol: p, cfg: pc,
			noCleartext: !p.Set() && pc.Password != "" && !isTLS && !unix,
			oauth:       pc.OAuthTokenProvider != nil}, nil
	}
	return nil
}

// authGuard reads the server's side of the startup exchange ahead of pgx
// and fails the read that carries a forbidden authentication request, so
// pgx never sees it and never answers: no password, hash or SCRAM
// message leaves the client.
type authGuard struct {
	net.Conn
	pol         AuthPolicy
	cfg         *pgconn.Config
	noCleartext bool
	oauth       bool // pgx would answer OAUTHBEARER rather than SCRAM

	hdr      [5]byte
	hdrN     int
	left     int    // body bytes of the current message still to come
	body     []byte // the body of an 'R' message, while it arrives
	isAuth   bool
	finished bool // the client's half of an exchange completed (libpq's client_finished_auth)
	done     bool // authentication is over: stop reading along
	err      error
}

// NetConn is the connection under the guard (a *tls.Conn for TLS), for
// callers that look at how a pgx connection reached the server.
func NetConn(c net.Conn) net.Conn {
	if g, ok := c.(*authGuard); ok {
		return g.Conn
	}
	return c
}

// maxAuthBody bounds an authentication request we buffer; real ones are
// a few hundred bytes.
const maxAuthBody = 1 << 16

func (g *authGuard) Read(b []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.Conn.Read(b)
	if !g.done && n > 0 {
		if e := g.scan(b[:n]); e != nil {
			g.err = e
			if _, ok := e.(*RefusedError); ok {
				remember(g.cfg, e)
			}
			g.Conn.Close()
			return 0, e
		}
	}
	return n, err
}

func (g *authGuard) scan(b []byte) error {
	for len(b) > 0 && !g.done {
		if g.left == 0 && g.hdrN < 5 {
			c := copy(g.hdr[g.hdrN:], b)
			g.hdrN += c
			b = b[c:]
			if g.hdrN < 5 {
				return nil
			}
			size := int(binary.BigEndian.Uint32(g.hdr[1:])) - 4
			if size < 0 {
				return errors.New("malformed message from the server during login")
			}
			g.isAuth = g.hdr[0] == 'R'
			if g.isAuth && size > maxAuthBody {
				return errors.New("oversized authentication request from the server")
			}
			g.left, g.body = size, g.body[:0]
			if size == 0 {
				if err := g.message(); err != nil {
					return err
				}
				continue
			}
		}
		c := min(g.left, len(b))
		if g.isAuth {
			g.body = append(g.body, b[:c]...)
		}
		g.left -= c
		b = b[c:]
		if g.left == 0 {
			if err := g.message(); err != nil {
				return err
			}
		}
	}
	return nil
}

// message judges one complete message.
func (g *authGuard) message() error {
	g.hdrN = 0
	if !g.isAuth {
		return nil
	}
	if len(g.body) < 4 {
		return errors.New("malformed authentication request from the server")
	}
	code := binary.BigEndian.Uint32(g.body)
	refuse := func(asked, what string) error {
		return &RefusedError{RequireAuth: g.pol.Raw, Asked: asked, reason: "the server asked for " + what}
	}
	switch code {
	case areqOK:
		g.done = true
		if g.pol.Required && !g.finished {
			return refuse("none", "no authentication (it accepted the login without an exchange, as trust does), and \"none\" is not allowed")
		}
	case areqPassword:
		if !g.pol.Allows("password") {
			return refuse("password", "the password in cleartext (method password)")
		}
		if g.noCleartext {
			return errDefaultCleartext()
		}
		g.finished = true
	case areqMD5:
		if !g.pol.Allows("md5") {
			return refuse("md5", "an MD5 password hash (method md5)")
		}
		g.finished = true
	case areqGSS:
		if !g.pol.Allows("gss") {
			return refuse("gss", "GSSAPI authentication (method gss)")
		}
	case areqSSPI:
		if !g.pol.Allows("sspi") {
			return refuse("sspi", "SSPI authentication (method sspi)")
		}
	case areqGSSCont:
		if !g.pol.Allows("gss") && !g.pol.Allows("sspi") {
			return refuse("gss", "GSSAPI authentication (method gss)")
		}
		g.finished = true
	case areqSASL:
		if g.oauth && saslOffers(g.body[4:], "OAUTHBEARER") {
			if !g.pol.Allows("oauth") {
				return refuse("oauth", "OAuth authentication (method oauth)")
			}
		} else if !g.pol.Allows("scram-sha-256") {
			return refuse("scram-sha-256", "SCRAM authentication (method scram-sha-256)")
		}
	case areqSASLCont:
		if !g.pol.Allows("scram-sha-256") && !g.pol.Allows("oauth") {
			return refuse("scram-sha-256", "SCRAM authentication (method scram-sha-256)")
		}
	case areqSASLFinal:
		// pgx checks the server's signature in it before it goes on.
		g.finished = true
	default:
		if g.pol.Set() {
			return refuse("", fmt.Sprintf("an authentication method pgaegis does not know (request %d)", code))
		}
	}
	return nil
}

func saslOffers(list []byte, mech string) bool {
	for _, m := range strings.Split(string(list), "\x00") {
		if m == mech {
			return true
		}
	}
	return false
}
