package fix_test

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/fixtest"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TLS-03's fixes on every major: weak TLS 1.2 ciphers, weak key exchange
// groups (ssl_groups on 18, ssl_ecdh_curve before) and, on 18, a weak
// TLS 1.3 suite in ssl_tls13_ciphers are planted; the plan's steps close
// every finding and the server reloads and restarts with them.
func TestTLSCipherFixesEveryMajor(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		conf := []string{"ssl = on", "ssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL'"}
		want := []string{"setting ssl_ciphers"}
		if major >= 18 {
			conf = append(conf, "ssl_groups = 'X25519:secp224r1'", "ssl_tls13_ciphers = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_CCM_8_SHA256'")
			want = append(want, "setting ssl_groups", "setting ssl_tls13_ciphers")
		} else {
			conf = append(conf, "ssl_ecdh_curve = 'secp224r1'")
			want = append(want, "setting ssl_ecdh_curve")
		}
		srv := pgtest.StartMajor(t, major, localpg.Options{Conf: conf, Init: pgtest.SelfSignedTLS})
		pr := fixtest.Prove(t, srv, []string{"TLS-03"}, fixtest.Options{})
		closed := map[string]bool{}
		for _, s := range pr.Plan.Steps {
			for _, c := range s.Closes {
				if c.Rule == "TLS-03" {
					closed[c.Object] = true
				}
			}
		}
		for _, o := range want {
			if !closed[o] {
				t.Errorf("no step closes TLS-03 %s: %v", o, closed)
			}
		}
		for o := range closed {
			if !strings.HasPrefix(o, "setting ssl_") {
				t.Errorf("TLS-03 closes %q", o)
			}
		}
	})
}
