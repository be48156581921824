package collect

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/hbapolicy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/tlsprobe"
)

// probeTLS looks at the server's port from outside (no credentials sent):
// TLS offered (SSLRequest and, from 17, direct TLS), plaintext accepted,
// protocol versions on each path. The plaintext check logs in as the
// audit's own role and database and matches pg_hba.conf first, so that
// it leaves no failed login in the server's log; without a pg_hba.conf
// that can be trusted it is not run.
func probeTLS(ctx context.Context, cfg *pgx.ConnConfig, s *snapshot.Snapshot) *snapshot.TLSProbe {
	o := tlsprobe.Options{Addr: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Timeout: 5 * time.Second, SkipCiphers: true,
		User: cfg.User, Database: cfg.Database}
	if o.Database == "" {
		o.Database = o.User // the server's default
	}
	// Only a file read without errors or hidden quoting: the server keeps
	// its old rules when the file has errors, and a name read as a keyword
	// could match the probe where the server would not.
	if h := s.HBA; h != nil && s.Gap(snapshot.GapHBA) == "" && len(h.Errors) == 0 && len(h.Ambiguous) == 0 {
		o.HBA, o.HBAEnv = h.Rules, hbapolicy.EnvFromSnapshot(s)
	}
	// The major alone lets the probe skip the direct-TLS attempt a server
	// before 17 logs as an invalid startup packet.
	if o.HBAEnv.Version == 0 {
		o.HBAEnv.Version = s.MajorVersion()
	}
	r := tlsprobe.Probe(ctx, o)
	p := &snapshot.TLSProbe{Address: r.Addr, TLSOffered: r.TLSOffered, PlaintextAccepted: r.PlaintextAccepted,
		PlaintextAnswer: r.PlaintextAnswer, Protocols: r.Protocols, DirectTLS: r.DirectTLS, DirectProtocols: r.DirectProtocols, Errors: r.Errors}
	if c := r.Certificate; c != nil {
		d := c.DaysLeft
		p.CertDaysLeft, p.CertSelfSigned = &d, c.SelfSigned
	}
	return p
}
