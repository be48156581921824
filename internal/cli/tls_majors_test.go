package cli

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/tlsca"
)

// `tls issue server --pgdata` on every major, for every key type: the
// settings it prints, applied with ALTER SYSTEM and ssl = on, survive a
// restart (the registry packages of every major bundle OpenSSL 1.1,
// Debian's 15 links OpenSSL 3), and pgaegis's own connection code
// (conninfo.Config, what every command uses) gets a verify-full session
// with the issued CA. sslnegotiation=direct in the connection string
// reaches pgx: it works on 17 and 18 and is refused by 13 to 16, which
// have no direct TLS.
func TestTLSIssueServerEveryMajor(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		// One server per major; each key type replaces the last (--force).
		srv := pgtest.StartMajor(t, major, localpg.Options{})
		for _, kt := range []string{tlsca.ECDSA, tlsca.Ed25519, tlsca.RSA3072} {
			t.Run(kt, func(t *testing.T) {
				ctx := pgtest.Ctx(t)
				code, out, errs := runCLI(t, "tls", "issue", "server", "--pgdata", srv.DataDir, "--key-type", kt, "--force")
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errs)
				}
				crt, err := tlsca.ReadCert(filepath.Join(srv.DataDir, tlsca.ServerCertName))
				if err != nil {
					t.Fatal(err)
				}
				if alg := map[string]x509.PublicKeyAlgorithm{tlsca.ECDSA: x509.ECDSA, tlsca.Ed25519: x509.Ed25519, tlsca.RSA3072: x509.RSA}[kt]; crt.PublicKeyAlgorithm != alg {
					t.Fatalf("the certificate in place has a %v key, want %v", crt.PublicKeyAlgorithm, alg)
				}
				stmts := []string{"ALTER SYSTEM SET ssl = on"}
				n := 0
				for _, l := range strings.Split(out, "\n") {
					if k, v, ok := strings.Cut(l, " = '"); ok && (k == "ssl_cert_file" || k == "ssl_key_file") {
						stmts = append(stmts, "ALTER SYSTEM SET "+k+" = "+quote.Literal(v[:strings.IndexByte(v, '\'')]))
						n++
					}
				}
				if n != 2 {
					t.Fatalf("settings printed:\n%s", out)
				}
				must(t, srv.Exec(ctx, stmts...))
				if err := srv.Restart(ctx); err != nil {
					t.Fatalf("restart with the issued certificate: %v\n%s", err, tailFile(srv.LogFile))
				}
				caCert := filepath.Join(tlsca.DefaultCADir(srv.DataDir), tlsca.CACert)
				for _, neg := range []string{"postgres", "direct"} {
					// localhost: a name of the certificate's defaults. (pgx
					// has no hostaddr: it would go to the server as a setting.)
					dsn := fmt.Sprintf("host=localhost port=%d user=%s dbname=postgres sslmode=verify-full sslrootcert=%s sslnegotiation=%s",
						srv.Port, srv.AdminUser, caCert, neg)
					cfg, err := conninfo.Config(conninfo.Flags{DSN: dsn, ConnectTimeout: 30 * time.Second})
					if err != nil {
						t.Fatal(err)
					}
					cfg.Password = srv.Password
					if cfg.SSLNegotiation != neg {
						t.Errorf("sslnegotiation=%s did not reach pgx: %q", neg, cfg.SSLNegotiation)
					}
					c, err := pgx.ConnectConfig(ctx, cfg)
					wantOK := neg == "postgres" || major >= 17
					if (err == nil) != wantOK {
						t.Errorf("sslnegotiation=%s on %d: connected=%v, want %v (%v)", neg, major, err == nil, wantOK, err)
					}
					if err != nil {
						continue
					}
					var ssl bool
					var version string
					err = c.QueryRow(ctx, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &version)
					c.Close(ctx)
					if err != nil || !ssl {
						t.Errorf("sslnegotiation=%s: not a TLS session (%v)", neg, err)
					}
				}
			})
		}
	})
}
