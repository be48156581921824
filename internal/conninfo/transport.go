package conninfo

import (
	"crypto/tls"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Transport says how conn reaches the server. TLS counts as verified
// only when every configuration pgx may have used checks the server's
// certificate (verify-ca, verify-full, or require with a root
// certificate, which libpq and pgx treat as verify-ca).
func Transport(conn *pgx.Conn, cfg *pgx.ConnConfig) string {
	nc := NetConn(conn.PgConn().Conn()) // under the require_auth guard
	if nc.RemoteAddr() != nil && nc.RemoteAddr().Network() == "unix" {
		return "unix"
	}
	if _, ok := nc.(*tls.Conn); !ok {
		return "plain"
	}
	verifies := func(t *tls.Config) bool { return t != nil && (!t.InsecureSkipVerify || t.VerifyPeerCertificate != nil) }
	ok := verifies(cfg.TLSConfig)
	for _, fb := range cfg.Fallbacks {
		if !strings.HasPrefix(fb.Host, "/") {
			ok = ok && verifies(fb.TLSConfig)
		}
	}
	if ok {
		return "tls-verified"
	}
	return "tls-unverified"
}
