package rules

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// The TLS rules on a real server of every major, collected and probed the
// way an audit does: a weak transport configuration and a hardened one.
func TestTLSRulesEveryMajor(t *testing.T) {
	type expect struct {
		rule, object string
		fail         bool
		evidence     string // substring of the finding's evidence
	}
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		// The groups setting is ssl_groups from 18 (a list), ssl_ecdh_curve before.
		groups := "ssl_ecdh_curve"
		weakGroups, strongGroups := "secp224r1", "prime256v1"
		if major >= 18 {
			groups, weakGroups, strongGroups = "ssl_groups", "X25519:secp224r1", "X25519:prime256v1"
		}
		direct := "" // what TLS-08 says of direct TLS
		if major >= 17 {
			direct = "direct TLS (sslnegotiation=direct) offered"
		}
		cases := []struct {
			name string
			conf []string
			hba  string
			want []expect
		}{
			{"weak", []string{"ssl_min_protocol_version = 'TLSv1'", "ssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL:@SECLEVEL=0'"},
				"local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
				[]expect{{"TLS-08", "port 127.0.0.1", true, "TLSv1.0 accepted"}, {"TLS-08", "port 127.0.0.1", true, "an unencrypted session reached authentication"},
					{"TLS-08", "port 127.0.0.1", true, direct}, {"TLS-02", "setting ssl_min_protocol_version", true, "TLSv1"},
					{"TLS-03", "setting ssl_ciphers", true, "MEDIUM"}}},
			// A curve Go does not speak: before 18 the only one, so no
			// handshake at all succeeds, and TLS-08 must say so.
			{"weak groups", []string{"ssl_min_protocol_version = 'TLSv1.2'", groups + " = '" + weakGroups + "'"},
				"local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
				[]expect{{"TLS-03", "setting " + groups, true, "secp224r1"}, {"TLS-08", "port 127.0.0.1", true, map[bool]string{true: "no handshake succeeded", false: "unencrypted session"}[major < 18]}}},
			{"hardened", []string{"ssl_min_protocol_version = 'TLSv1.2'", "ssl_ciphers = 'HIGH:!aNULL:!MD5'", groups + " = '" + strongGroups + "'"},
				"local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n",
				[]expect{{"TLS-08", "port 127.0.0.1", false, "plaintext refused"}, {"TLS-08", "port 127.0.0.1", false, direct},
					{"TLS-02", "setting ssl_min_protocol_version", false, "TLSv1.2"}, {"TLS-03", "setting ssl_ciphers", false, ""},
					{"TLS-03", "setting " + groups, false, strongGroups}}},
		}
		if major >= 18 {
			cases[0].conf = append(cases[0].conf, "ssl_tls13_ciphers = 'TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_8_SHA256'")
			cases[0].want = append(cases[0].want, expect{"TLS-03", "setting ssl_tls13_ciphers", true, "TLS_AES_128_CCM_8_SHA256"})
			cases[2].conf = append(cases[2].conf, "ssl_tls13_ciphers = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256'")
			cases[2].want = append(cases[2].want, expect{"TLS-03", "setting ssl_tls13_ciphers", false, ""})
		}
		// One server per major, restarted into each configuration.
		s := pgtest.StartMajor(t, major, localpg.Options{Conf: []string{"ssl = on", "include_if_exists = 'tlsrules.conf'"}, Init: pgtest.SelfSignedTLS})
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if err := s.WriteDataFile("tlsrules.conf", strings.Join(tc.conf, "\n")+"\n"); err != nil {
					t.Fatal(err)
				}
				if err := s.WriteDataFile("pg_hba.conf", tc.hba); err != nil {
					t.Fatal(err)
				}
				if err := s.Restart(pgtest.Ctx(t)); err != nil {
					t.Fatal(err)
				}
				snap, err := collect.Collect(pgtest.Ctx(t), collect.Options{Conn: s.ConnConfig("postgres"), NoFiles: true})
				if err != nil {
					t.Fatal(err)
				}
				fs := Run(snap)
				for _, w := range tc.want {
					found := false
					for _, f := range fs {
						if f.Rule != w.rule || !strings.HasPrefix(f.Object, w.object) {
							continue
						}
						found = true
						if (f.Status == Fail) != w.fail || !strings.Contains(f.Evidence, w.evidence) {
							t.Errorf("%s %s: %s %q, want fail=%v with %q", w.rule, f.Object, f.Status, f.Evidence, w.fail, w.evidence)
						}
						if major < 17 && strings.Contains(f.Evidence, "direct TLS") {
							t.Errorf("%s on %d mentions direct TLS: %q", w.rule, major, f.Evidence)
						}
					}
					if !found {
						t.Errorf("no %s finding for %s", w.rule, w.object)
					}
				}
			})
		}
	})
}
