package collect

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/tlsprobe"
)

// probeTLS looks at the server's port from outside (no credentials sent):
// TLS offered (SSLRequest and, from 17, direct TLS), plaintext accepted,
// protocol versions on each path.
func probeTLS(ctx context.Context, host string, port uint16) *snapshot.TLSProbe {
	r := tlsprobe.Probe(ctx, tlsprobe.Options{Addr: net.JoinHostPort(host, strconv.Itoa(int(port))), Timeout: 5 * time.Second, SkipCiphers: true})
	p := &snapshot.TLSProbe{Address: r.Addr, TLSOffered: r.TLSOffered, PlaintextAccepted: r.PlaintextAccepted,
		PlaintextAnswer: r.PlaintextAnswer, Protocols: r.Protocols, DirectTLS: r.DirectTLS, DirectProtocols: r.DirectProtocols, Errors: r.Errors}
	if c := r.Certificate; c != nil {
		d := c.DaysLeft
		p.CertDaysLeft, p.CertSelfSigned = &d, c.SelfSigned
	}
	return p
}
