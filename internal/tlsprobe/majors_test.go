package tlsprobe

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// The oracle: a real server of every major, reconfigured (settings and
// pg_hba.conf, then a reload) with generated TLS configurations; each
// probe result is compared with what that configuration tells the server
// to do. The expectations are written from PostgreSQL's and OpenSSL's
// documented behaviour, never from a probe run.

// suite is an ECDSA or RSA cipher suite by its OpenSSL name (what
// ssl_ciphers takes), with Go's name for it and the oldest TLS version
// that can carry it. The test certificate is ECDSA, so RSA-authenticated
// suites can never be agreed.
type suite struct {
	openssl, goName string
	minVer          uint16
	ecdsa           bool
}

var suites = []suite{
	{"ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", tls.VersionTLS12, true},
	{"ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", tls.VersionTLS12, true},
	{"ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", tls.VersionTLS12, true},
	{"ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", tls.VersionTLS12, true},
	{"ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", tls.VersionTLS10, true},
	{"ECDHE-ECDSA-AES256-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", tls.VersionTLS10, true},
	{"ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", tls.VersionTLS12, false},
	{"ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", tls.VersionTLS10, false},
}

// tls13 are the TLS 1.3 suites (ssl_tls13_ciphers on 18) in OpenSSL's
// default order, which a server preferring its own order picks from.
var tls13 = []string{"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}

var verNames = map[string]uint16{"TLSv1": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11, "TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}

// Go's client offers its groups in this order (X25519MLKEM768 first,
// which the servers' OpenSSL 1.1 and 3.0 do not know).
var goGroups = []string{"X25519", "prime256v1", "secp384r1", "secp521r1"}
var goGroupName = map[string]string{"X25519": "X25519", "prime256v1": "CurveP256", "secp384r1": "CurveP384", "secp521r1": "CurveP521"}

type hbaLine struct{ typ, db, user, addr, method string }

func (l hbaLine) String() string {
	return strings.Join([]string{l.typ, l.db, l.user, l.addr, l.method}, " ")
}

// tlsConfig is one generated configuration.
type tlsConfig struct {
	ssl                 bool
	minV, maxV          string // maxV "" is unbounded
	classCiphers        string // an OpenSSL class string, or "" when explicit is used
	explicit            []suite
	secLevel0           bool
	preferServer        bool
	tls13Ciphers        []string // 18: ssl_tls13_ciphers (nil: the default)
	groups              []string // ssl_groups (18) or the one ssl_ecdh_curve
	caFile              bool
	passwordEncryption  string
	hba                 []hbaLine
	expectDirectOffered bool
}

func (c *tlsConfig) cipherString() string {
	s := c.classCiphers
	if s == "" {
		var names []string
		for _, x := range c.explicit {
			names = append(names, x.openssl)
		}
		s = strings.Join(names, ":")
	}
	if c.secLevel0 {
		s += ":@SECLEVEL=0"
	}
	return s
}

func (c *tlsConfig) conf(major int, nonce int) string {
	b := &strings.Builder{}
	fmt.Fprintf(b, "ssl = %v\n", map[bool]string{true: "on", false: "off"}[c.ssl])
	fmt.Fprintf(b, "ssl_min_protocol_version = '%s'\nssl_max_protocol_version = '%s'\n", c.minV, c.maxV)
	fmt.Fprintf(b, "ssl_ciphers = '%s'\nssl_prefer_server_ciphers = %v\n", c.cipherString(), c.preferServer)
	if major >= 18 {
		fmt.Fprintf(b, "ssl_tls13_ciphers = '%s'\nssl_groups = '%s'\n", strings.Join(c.tls13Ciphers, ":"), strings.Join(c.groups, ":"))
	} else {
		fmt.Fprintf(b, "ssl_ecdh_curve = '%s'\n", c.groups[0])
	}
	if c.caFile {
		b.WriteString("ssl_ca_file = 'server.crt'\n")
	} else {
		b.WriteString("ssl_ca_file = ''\n")
	}
	fmt.Fprintf(b, "password_encryption = '%s'\npgaegis.nonce = '%d'\n", c.passwordEncryption, nonce)
	return b.String()
}

func (c *tlsConfig) hbaFile() string {
	// The test's own admin connection comes over the socket.
	lines := []string{"local all postgres scram-sha-256"}
	for _, l := range c.hba {
		lines = append(lines, l.String())
	}
	return strings.Join(lines, "\n") + "\n"
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func genConfig(r *rand.Rand, major int) *tlsConfig {
	vers := []string{"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
	c := &tlsConfig{ssl: r.IntN(10) != 0, preferServer: r.IntN(3) != 0, caFile: r.IntN(3) == 0,
		passwordEncryption: pick(r, "md5", "scram-sha-256")}
	lo := r.IntN(4)
	c.minV = vers[lo]
	if r.IntN(3) != 0 {
		c.maxV = vers[lo+r.IntN(4-lo)]
	}
	if r.IntN(4) == 0 {
		c.classCiphers = pick(r, "HIGH:MEDIUM:+3DES:!aNULL", "HIGH:!aNULL:!MD5", "ECDHE+AESGCM:ECDHE+AES")
	} else {
		perm := r.Perm(len(suites))
		for _, i := range perm[:1+r.IntN(4)] {
			c.explicit = append(c.explicit, suites[i])
		}
	}
	c.secLevel0 = r.IntN(2) == 0
	if major >= 18 {
		if r.IntN(4) != 0 {
			perm := r.Perm(len(tls13))
			for _, i := range perm[:1+r.IntN(3)] {
				c.tls13Ciphers = append(c.tls13Ciphers, tls13[i])
			}
		}
		perm := r.Perm(len(goGroups))
		for _, i := range perm[:1+r.IntN(3)] {
			c.groups = append(c.groups, goGroups[i])
		}
	} else {
		// ssl_ecdh_curve names one EC curve (X25519 is not one before 18).
		c.groups = []string{pick(r, "prime256v1", "secp384r1", "secp521r1")}
	}
	n := 1 + r.IntN(4)
	for i := 0; i < n; i++ {
		l := hbaLine{typ: pick(r, "host", "hostssl", "hostssl", "hostnossl", "hostnogssenc"),
			db: pick(r, "all", "all", "pgaegis_probe", "postgres", "sameuser"), user: pick(r, "all", "all", "pgaegis_probe", "postgres"),
			addr: pick(r, "127.0.0.1/32", "0.0.0.0/0", "10.0.0.0/8", "samehost", "all"), method: pick(r, "scram-sha-256", "md5", "password", "trust", "reject")}
		if l.typ == "hostssl" && r.IntN(3) == 0 {
			l.method = "cert"
		}
		if !c.ssl && l.typ == "hostssl" {
			l.typ = "hostnossl" // hostssl without ssl is a configuration error
			if l.method == "cert" {
				l.method = "scram-sha-256"
			}
		}
		c.hba = append(c.hba, l)
	}
	return c
}

// openSSL is the major version of the libssl the running postmaster
// mapped (the registry packages bundle 1.1, Debian's links its system 3).
func openSSL(t *testing.T, s *localpg.Server) string {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", s.PostmasterPID()))
	if err != nil {
		t.Fatalf("reading the postmaster's mappings: %v", err)
	}
	m := regexp.MustCompile(`libssl\.so\.([0-9.]+)`).FindSubmatch(maps)
	if m == nil {
		t.Fatal("the postmaster has no libssl mapped")
	}
	return string(m[1])
}

// want is what the configuration makes the server do.
type want struct {
	offered, direct, plainAccepted, clientCert bool
	plainAnswer                                string // exact, or a prefix for rejections
	protocols                                  map[string]bool
	ciphers12                                  map[string][]string // per version <1.3 (explicit lists only)
	tls13Suite                                 string              // "" when not decided exactly
	tls13Among                                 []string
}

func (c *tlsConfig) expect(major int, libssl string) want {
	w := want{offered: c.ssl, protocols: map[string]bool{}}
	lo := verNames[c.minV]
	hi := uint16(tls.VersionTLS13)
	if c.maxV != "" {
		hi = verNames[c.maxV]
	}
	for name, v := range map[string]uint16{"TLSv1.0": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11, "TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13} {
		ok := c.ssl && v >= lo && v <= hi
		// OpenSSL 3 at its default security level 1 refuses TLS below
		// 1.2 (SHA-1 signatures); 1.1 allows them.
		if v < tls.VersionTLS12 && !strings.HasPrefix(libssl, "1.") && !c.secLevel0 {
			ok = false
		}
		if v < tls.VersionTLS13 && c.classCiphers == "" {
			// ssl_ciphers governs TLS 1.2 and older: some configured suite
			// must be usable with an ECDSA certificate at this version.
			// (Every class string used holds suites for each version.)
			var names []string
			for _, s := range c.explicit {
				if s.ecdsa && s.minVer <= v {
					names = append(names, s.goName)
				}
			}
			ok = ok && len(names) > 0
			if w.ciphers12 == nil {
				w.ciphers12 = map[string][]string{}
			}
			if ok {
				w.ciphers12[name] = names
			} else {
				w.ciphers12[name] = nil
			}
		}
		if ok && v == tls.VersionTLS13 && major >= 18 && c.tls13Ciphers != nil {
			ok = len(c.tls13Ciphers) > 0
		}
		w.protocols[name] = ok
	}
	if w.protocols["TLSv1.3"] {
		order := tls13
		if major >= 18 && c.tls13Ciphers != nil {
			order = c.tls13Ciphers
		}
		if c.preferServer {
			w.tls13Suite = order[0]
		} else {
			w.tls13Among = order
		}
	}
	anyV := false
	for _, ok := range w.protocols {
		anyV = anyV || ok
	}
	w.direct = major >= 17 && anyV
	w.clientCert = c.caFile && anyV
	// Plaintext: the first pg_hba.conf line that an unencrypted TCP
	// connection from 127.0.0.1 as pgaegis_probe to pgaegis_probe (a
	// role with a SCRAM secret and its database) matches.
	w.plainAnswer = "rejected: no pg_hba.conf entry"
lines:
	for _, l := range c.hba {
		if l.typ == "hostssl" || l.db == "postgres" || l.user == "postgres" || l.addr == "10.0.0.0/8" {
			continue
		}
		switch l.method {
		case "reject":
			w.plainAnswer = "rejected: pg_hba.conf rejects connection"
		case "trust":
			w.plainAccepted, w.plainAnswer = true, "accepted without authentication (trust)"
		case "password":
			w.plainAccepted, w.plainAnswer = true, "asked for a clear-text password"
		case "scram-sha-256":
			w.plainAccepted, w.plainAnswer = true, "asked for SCRAM authentication"
		case "md5":
			// The probe's role has a SCRAM secret, and md5 lines then
			// ask for SCRAM, whatever password_encryption says.
			w.plainAccepted, w.plainAnswer = true, "asked for SCRAM authentication"
		}
		break lines
	}
	return w
}

// groupFor is the group a handshake at version v should agree on: with
// one group there is no choice; otherwise OpenSSL takes the client's key
// share when it holds a group the server has (Go sends X25519), and else
// the first shared group in the server's order (its preference) or the
// client's.
func (c *tlsConfig) groupFor(v string) string {
	if len(c.groups) == 1 {
		return goGroupName[c.groups[0]]
	}
	if v == "TLSv1.3" && slices.Contains(c.groups, "X25519") {
		return "X25519"
	}
	if c.preferServer {
		return goGroupName[c.groups[0]]
	}
	for _, g := range goGroups {
		if slices.Contains(c.groups, g) {
			return goGroupName[g]
		}
	}
	return ""
}

func versionID(name string) uint16 {
	for _, v := range versions {
		if v.name == name {
			return v.v
		}
	}
	return 0
}

func socketConn(ctx context.Context, s *localpg.Server) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d sslmode=disable connect_timeout=30", s.SocketDir, s.Port))
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password, cfg.Database = s.AdminUser, s.Password, "postgres"
	return pgx.ConnectConfig(ctx, cfg)
}

// apply writes the configuration, reloads, and waits until a new backend
// runs with it (the nonce), checking the server took every line.
func apply(ctx context.Context, t *testing.T, s *localpg.Server, c *tlsConfig, major, nonce int) {
	t.Helper()
	if err := s.WriteDataFile("tlsoracle.conf", c.conf(major, nonce)); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteDataFile("pg_hba.conf", c.hbaFile()); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		conn, err := socketConn(ctx, s)
		if err != nil {
			t.Fatalf("admin connection: %v", err)
		}
		var got string
		err = conn.QueryRow(ctx, "SELECT current_setting('pgaegis.nonce', true)").Scan(&got)
		if err == nil && got == strconv.Itoa(nonce) {
			var bad string
			err = conn.QueryRow(ctx, `SELECT coalesce(string_agg(x, '; '), '') FROM (
				SELECT name || ': ' || coalesce(error, 'not applied') AS x FROM pg_file_settings WHERE error IS NOT NULL OR (NOT applied AND sourcefile LIKE '%tlsoracle.conf')
				UNION ALL SELECT 'pg_hba.conf line ' || line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT NULL) e`).Scan(&bad)
			conn.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if bad != "" {
				t.Fatalf("configuration %d not taken: %s\n%s%s", nonce, bad, c.conf(major, nonce), c.hbaFile())
			}
			return
		}
		conn.Close(ctx)
		if i > 600 {
			t.Fatalf("reload %d not seen", nonce)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hbaShapes are the pg_hba.conf shapes the log check must see: trust, a
// password challenge of each kind, reject, no matching line, hostssl only.
var hbaShapes = [][]hbaLine{
	{{"host", "all", "all", "127.0.0.1/32", "trust"}},
	{{"host", "all", "all", "127.0.0.1/32", "scram-sha-256"}},
	{{"hostnossl", "all", "all", "all", "md5"}},
	{{"host", "all", "all", "samehost", "password"}},
	{{"host", "all", "all", "127.0.0.1/32", "reject"}},
	{{"host", "all", "postgres", "127.0.0.1/32", "trust"}},
	{{"hostssl", "all", "all", "127.0.0.1/32", "scram-sha-256"}},
}

// probeLogin creates the role and database the probe logs in as (as the
// audit's own login would be) and returns where the log stands.
func probeLogin(t *testing.T, s *localpg.Server) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Exec(ctx, "SET password_encryption = 'scram-sha-256'", "CREATE ROLE pgaegis_probe LOGIN PASSWORD 'probe-test-only'",
		"CREATE DATABASE pgaegis_probe OWNER pgaegis_probe"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(s.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// failureLines are the FATAL and ERROR lines the server logged after from.
func failureLines(t *testing.T, s *localpg.Server, from int64) []string {
	t.Helper()
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, l := range strings.Split(string(b[from:]), "\n") {
		if strings.Contains(l, "FATAL:") || strings.Contains(l, "ERROR:") || strings.Contains(l, "PANIC:") {
			bad = append(bad, l)
		}
	}
	return bad
}

func TestProbeOracleEveryMajor(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		began := time.Now()
		s := pgtest.StartMajor(t, major, localpg.Options{Conf: []string{"ssl = on", "include_if_exists = 'tlsoracle.conf'"}, Init: pgtest.SelfSignedTLS})
		libssl := openSSL(t, s)
		r := rand.New(rand.NewPCG(uint64(major), 14))
		configs := 32
		cases, disagreements := 0, 0
		seen := map[string]int{} // outcomes, to show the generator reaches each
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		logFrom := probeLogin(t, s)
		for n := 1; n <= configs; n++ {
			c := genConfig(r, major)
			if n <= len(hbaShapes) {
				// Every pg_hba.conf shape at least once, whatever the
				// generator draws: the log check below covers each.
				c.hba, c.ssl = hbaShapes[n-1], true // hostssl needs ssl = on
			}
			// A deadline per configuration: the whole run takes minutes
			// on a busy machine.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			apply(ctx, t, s, c, major, n)
			// Cipher enumeration on every other configuration keeps the
			// run short; versions, direct TLS and plaintext on all.
			skip := n%2 == 0
			rules := hba.Parse("pg_hba.conf", []byte(c.hbaFile()), hba.Options{SSL: c.ssl, Version: major})
			got := Probe(ctx, Options{Addr: addr, Timeout: 2 * time.Minute, SkipCiphers: skip, User: "pgaegis_probe", Database: "pgaegis_probe",
				HBA: rules.Rules, HBAEnv: hba.Env{Version: major, HostAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}})
			cancel()
			w := c.expect(major, libssl)
			var diffs []string
			for v, ok := range got.Protocols {
				seen[v+" accepted="+strconv.FormatBool(ok)]++
			}
			seen["direct="+strconv.FormatBool(got.DirectTLS)]++
			seen["plaintext accepted="+strconv.FormatBool(got.PlaintextAccepted)]++
			seen["client certificate="+strconv.FormatBool(got.ClientCertRequested)]++
			check := func(what string, ok bool, detail string) {
				cases++
				if !ok {
					disagreements++
					diffs = append(diffs, what+": "+detail)
				}
			}
			check("tls offered", got.TLSOffered == w.offered, fmt.Sprint(got.TLSOffered))
			check("direct tls", got.DirectTLS == w.direct, fmt.Sprint(got.DirectTLS))
			check("plaintext accepted", got.PlaintextAccepted == w.plainAccepted, fmt.Sprint(got.PlaintextAccepted))
			check("plaintext answer", strings.HasPrefix(got.PlaintextAnswer, w.plainAnswer), got.PlaintextAnswer)
			check("client certificate requested", got.ClientCertRequested == w.clientCert, fmt.Sprint(got.ClientCertRequested))
			for v, ok := range w.protocols {
				check("protocol "+v, got.Protocols[v] == ok, fmt.Sprint(got.Protocols[v]))
				if w.direct {
					check("direct protocol "+v, got.DirectProtocols[v] == ok, fmt.Sprint(got.DirectProtocols[v]))
				}
				if ok {
					g := c.groupFor(v)
					check("group "+v, got.Groups[v] == g, got.Groups[v]+", want "+g)
				}
			}
			if !skip {
				// Each suite Go can try at each version is one decision.
				for v, names := range w.ciphers12 {
					for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
						if !slices.Contains(cs.SupportedVersions, versionID(v)) {
							continue
						}
						in := slices.Contains(got.Ciphers[v], cs.Name)
						check("cipher "+v+" "+cs.Name, in == slices.Contains(names, cs.Name), fmt.Sprint(in))
					}
				}
				if w.tls13Suite != "" {
					check("TLS 1.3 suite", slices.Equal(got.Ciphers["TLSv1.3"], []string{w.tls13Suite}), fmt.Sprint(got.Ciphers["TLSv1.3"], " want ", w.tls13Suite))
				} else if w.tls13Among != nil {
					check("TLS 1.3 suite", len(got.Ciphers["TLSv1.3"]) == 1 && slices.Contains(w.tls13Among, got.Ciphers["TLSv1.3"][0]), fmt.Sprint(got.Ciphers["TLSv1.3"]))
				}
			}
			if len(diffs) > 0 {
				t.Errorf("configuration %d (libssl %s):\n%s%s probe: %+v\n  %s", n, libssl, c.conf(major, n), c.hbaFile(), got, strings.Join(diffs, "\n  "))
			}
		}
		// A generator that never produced an outcome proves nothing about it.
		for _, v := range []string{"TLSv1.2", "TLSv1.3", "plaintext", "client certificate"} {
			for _, b := range []string{"false", "true"} {
				k := v + " accepted=" + b
				if !strings.HasPrefix(v, "TLS") {
					k = v + "=" + b
					if v == "plaintext" {
						k = "plaintext accepted=" + b
					}
				}
				if seen[k] == 0 {
					t.Errorf("no configuration gave %s", k)
				}
			}
		}
		if major >= 17 && seen["direct=true"] == 0 || seen["direct=false"] == 0 {
			t.Errorf("direct TLS outcomes: %v", seen)
		}
		// The probe must leave no failure in the server's log: logs scan
		// reads FATAL lines before a login as a guessed password.
		if bad := failureLines(t, s, logFrom); len(bad) > 0 {
			disagreements += len(bad)
			t.Errorf("the probe left failures in the server log:\n%s", strings.Join(bad, "\n"))
		}
		cases++
		t.Logf("outcomes: %v", seen)
		t.Logf("ORACLE tls-probe pg%d: cases=%d disagreements=%d seconds=%.0f", major, cases, disagreements, time.Since(began).Seconds())
	})
}
