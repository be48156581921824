package conninfo_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/conninfo/libpq"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// The oracle is a real libpq (the newest the registry packages ship, 18)
// connecting to the same real server with the same require_auth: for
// every server-side method and every generated require_auth value, pgaegis
// must connect exactly when libpq does, refuse before authenticating
// exactly when libpq refuses, and never send a password, hash or SCRAM
// message when it refuses (a loopback proxy records what the client sent).

const raHBA = `local all all trust
hostssl all u_split 127.0.0.1/32 password
hostnossl all u_split 127.0.0.1/32 scram-sha-256
host all u_trust 127.0.0.1/32 trust
host all u_password 127.0.0.1/32 password
host all u_md5 127.0.0.1/32 md5
host all u_md5scram 127.0.0.1/32 md5
host all u_scram 127.0.0.1/32 scram-sha-256
host all u_reject 127.0.0.1/32 reject
host all all 127.0.0.1/32 scram-sha-256
`

// raUsers are the server sides: each role meets one pg_hba method (u_md5
// has an MD5 verifier, so the server really asks for md5; u_md5scram has a
// SCRAM one, so md5 in pg_hba means SCRAM; u_split is asked for a
// cleartext password over TLS and for SCRAM without).
var raUsers = []string{"u_trust", "u_password", "u_md5", "u_md5scram", "u_scram", "u_reject", "u_split"}

// requireAuthValues generates the require_auth values: every method alone
// and negated, seeded random lists and negated lists, "none" mixed in, and
// invalid ones (unknown names, spaces libpq does not trim, case, mixing,
// duplicates, empty entries).
func requireAuthValues() []string {
	methods := []string{"password", "md5", "gss", "sspi", "scram-sha-256", "none"}
	set := map[string]bool{"": true}
	for _, m := range append(methods, "oauth") {
		set[m], set["!"+m] = true, true
	}
	r := rand.New(rand.NewSource(16))
	for len(set) < 25 {
		n := 2 + r.Intn(3)
		perm := r.Perm(len(methods))[:n]
		neg := r.Intn(2) == 0
		var parts []string
		for _, i := range perm {
			p := methods[i]
			if neg {
				p = "!" + p
			}
			parts = append(parts, p)
		}
		set[strings.Join(parts, ",")] = true
	}
	for _, v := range []string{"md5, password", "PASSWORD", "password,!md5", "md5,md5", "!none,!none", "scram-sha-256,oauth"} {
		set[v] = true
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// recorder is a loopback proxy in front of the server that keeps what
// clients sent.
type recorder struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	cond     *sync.Cond
	accepted int // connections since the last take
	active   int // connections still open
	sent     bytes.Buffer
}

func newRecorder(t *testing.T, target string) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, target: target}
	r.cond = sync.NewCond(&r.mu)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.accepted++
			r.active++
			r.cond.Broadcast()
			r.mu.Unlock()
			go r.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (r *recorder) serve(c net.Conn) {
	defer func() {
		r.mu.Lock()
		r.active--
		r.cond.Broadcast()
		r.mu.Unlock()
	}()
	defer c.Close()
	s, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(c, s)
		c.Close()
		close(done)
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.sent.Write(buf[:n])
			r.mu.Unlock()
			s.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	s.Close()
	<-done
}

func (r *recorder) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// take waits for n connections (the kernel accepts them before we do) to
// have come and gone and returns what their clients sent.
func (r *recorder) take(n int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.accepted < n || r.active > 0 {
		r.cond.Wait()
	}
	r.accepted = 0
	b := append([]byte(nil), r.sent.Bytes()...)
	r.sent.Reset()
	return b
}

// clientMessages lists the message types clients sent. Packets without a
// type byte (startup, SSLRequest, CancelRequest: their length's first byte
// is 0, and no message type is 0) are skipped; pgx's cancel requests come
// on connections of their own, so they may sit anywhere between whole
// packets.
func clientMessages(b []byte) ([]byte, error) {
	var types []byte
	for len(b) > 0 {
		if len(b) < 5 {
			return nil, errors.New("truncated message")
		}
		if b[0] == 0 {
			n := int(binary.BigEndian.Uint32(b))
			if n < 8 || n > len(b) {
				return nil, errors.New("bad packet length")
			}
			b = b[n:]
			continue
		}
		n := int(binary.BigEndian.Uint32(b[1:]))
		if n < 4 || 1+n > len(b) {
			return nil, errors.New("bad message length")
		}
		types = append(types, b[0])
		b = b[1+n:]
	}
	return types, nil
}

type outcome string

const (
	connected  outcome = "connected"
	badOption  outcome = "invalid require_auth"
	refusedReq outcome = "refused by require_auth"
	failed     outcome = "failed"
)

func libpqOutcome(ok bool, msg string) outcome {
	switch {
	case ok:
		return connected
	case strings.Contains(msg, "authentication method requirement"):
		return refusedReq
	case strings.Contains(msg, "require_auth"):
		return badOption
	}
	return failed
}

func pgaegisOutcome(cfgErr, connErr error) outcome {
	var re *conninfo.RefusedError
	switch {
	case cfgErr != nil && strings.Contains(cfgErr.Error(), "require_auth"):
		return badOption
	case cfgErr != nil:
		return failed
	case connErr == nil:
		return connected
	case errors.As(connErr, &re):
		return refusedReq
	}
	return failed
}

// libpqOf finds the libpq shipped beside the server binaries of major.
func libpqOf(major string) string {
	dir, err := localpg.FindBinDir(major)
	if err != nil {
		return ""
	}
	for _, p := range []string{filepath.Join(dir, "..", "lib", "libpq.so.5"), filepath.Join(dir, "..", "lib", "x86_64-linux-gnu", "libpq.so.5")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func libpqPath(t *testing.T) string {
	for _, m := range []string{"18", "17", "16"} {
		if p := libpqOf(m); p != "" {
			return p
		}
	}
	return ""
}

// cheapSCRAM is a SCRAM-SHA-256 verifier of pw with one iteration (the
// server takes a verifier as the password): the matrix makes thousands of
// logins, and 4096 iterations on both sides of each would dominate it.
func cheapSCRAM(pw string) string {
	salt := []byte("pgaegis-require-auth-test")
	mac := func(key []byte, msg ...[]byte) []byte {
		h := hmac.New(sha256.New, key)
		for _, m := range msg {
			h.Write(m)
		}
		return h.Sum(nil)
	}
	salted := mac([]byte(pw), salt, []byte{0, 0, 0, 1}) // PBKDF2 with one iteration
	stored := sha256.Sum256(mac(salted, []byte("Client Key")))
	b64 := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$1:" + b64(salt) + "$" + b64(stored[:]) + ":" + b64(mac(salted, []byte("Server Key")))
}

func TestRequireAuthMatchesLibpq(t *testing.T) {
	path := libpqPath(t)
	if path == "" {
		pgtest.Unavailable(t, errors.New("no libpq 16+ beside the installed server binaries (.ci/pg-majors unpacks them)"))
		return
	}
	lib, err := libpq.Open(path)
	if err != nil {
		pgtest.Unavailable(t, fmt.Errorf("loading %s: %v", path, err))
		return
	}
	if lib.Version < 180000 {
		t.Logf("oracle libpq %d predates 18: oauth values are compared against it as they are", lib.Version)
	}
	all := requireAuthValues()
	majors := pgtest.Majors(t)
	newest := majors[len(majors)-1]
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		start := time.Now()
		// require_auth is the client's: the server's major only changes
		// what it asks for. The full matrix runs on the reference major
		// and the newest; the others get every third value (the suite's
		// time budget), still every method and mode.
		values := all
		if strconv.Itoa(major) != pgtest.Version && major != newest {
			values = nil
			for i := 0; i < len(all); i += 3 {
				values = append(values, all[i])
			}
		}
		srv := pgtest.StartMajor(t, major, localpg.Options{HBA: raHBA, Conf: []string{"ssl = on"}, Init: pgtest.SelfSignedTLS})
		secret := "Ra-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-secret"
		var setup []string
		for _, u := range raUsers {
			enc := "scram-sha-256"
			if u == "u_md5" {
				enc = "md5"
			}
			pw := secret
			if enc == "scram-sha-256" {
				pw = cheapSCRAM(secret)
			}
			setup = append(setup, "SET password_encryption = '"+enc+"'", "CREATE ROLE "+u+" LOGIN PASSWORD '"+pw+"'")
		}
		if err := srv.Exec(pgtest.Ctx(t), setup...); err != nil {
			t.Fatal(err)
		}
		rec := newRecorder(t, "127.0.0.1:"+strconv.Itoa(srv.Port))
		cases, disagreements, defaults, refusals := 0, 0, 0, 0
		for _, v := range values {
			for _, u := range raUsers {
				for _, mode := range []struct {
					ssl      string
					password bool
				}{{"disable", true}, {"disable", false}, {"prefer", true}} {
					if !mode.password && u != "u_trust" && u != "u_password" && u != "u_md5" && u != "u_scram" {
						continue
					}
					ci := "host=127.0.0.1 dbname=postgres connect_timeout=20 passfile=/nonexistent user=" + u + " sslmode=" + mode.ssl
					if v != "" {
						ci += " require_auth='" + v + "'"
					}
					if mode.password {
						ci += " password=" + secret
					}
					ok, msg := lib.Connect(ci + " port=" + strconv.Itoa(srv.Port))
					want := libpqOutcome(ok, msg)

					port := srv.Port
					if mode.ssl == "disable" {
						port = rec.port()
					}
					cfg, cfgErr := conninfo.Config(conninfo.Flags{DSN: ci + " port=" + strconv.Itoa(port)})
					var connErr error
					if cfgErr == nil {
						var c *pgx.Conn
						if c, connErr = pgx.ConnectConfig(pgtest.Ctx(t), cfg); connErr == nil {
							c.Close(pgtest.Ctx(t))
						}
					}
					got := pgaegisOutcome(cfgErr, connErr)
					cases++
					name := fmt.Sprintf("require_auth=%q user=%s sslmode=%s password=%v", v, u, mode.ssl, mode.password)
					// pgaegis's documented default: without require_auth, no
					// cleartext password over TCP without TLS.
					if v == "" && mode.password && mode.ssl == "disable" && u == "u_password" && want == connected && got == refusedReq {
						defaults++
					} else if got != want {
						disagreements++
						t.Errorf("%s: libpq %s (%s), pgaegis %s (%v %v)", name, want, strings.TrimSpace(msg), got, cfgErr, connErr)
					}
					var re *conninfo.RefusedError
					if got == refusedReq && errors.As(connErr, &re) {
						// The error names the value and what the server asked for.
						if msg := connErr.Error(); re.RequireAuth != v || (v != "" && !strings.Contains(msg, strconv.Quote(v))) || !strings.Contains(msg, re.Asked) {
							t.Errorf("%s: unclear refusal: %v", name, connErr)
						}
					}
					if cfgErr == nil && connErr != nil {
						if s := connErr.Error(); strings.Contains(s, secret) {
							t.Errorf("%s: the error shows the password", name)
						}
					}
					if mode.ssl == "disable" && cfgErr == nil {
						sent := rec.take(1)
						types, err := clientMessages(sent)
						if err != nil {
							t.Errorf("%s: reading what the client sent: %v\n%q", name, err, sent)
						}
						if got == refusedReq {
							refusals++
							if bytes.IndexByte(types, 'p') >= 0 || bytes.Contains(sent, []byte(secret)) {
								t.Errorf("%s: refused, yet the client sent an authentication response (messages %q)", name, types)
							}
						}
						if bytes.Contains(sent, []byte(secret)) && !(u == "u_password" && got == connected) {
							t.Errorf("%s: the password crossed the wire in cleartext", name)
						}
					}
				}
			}
		}
		if refusals == 0 || defaults == 0 {
			t.Errorf("the matrix never refused (%d) or never hit the default (%d): it tests nothing", refusals, defaults)
		}
		t.Logf("ORACLE require-auth pg%d: cases=%d disagreements=%d seconds=%.1f", major, cases, disagreements, time.Since(start).Seconds())
		t.Logf("require-auth pg%d: %d refusals proven silent on the wire, %d cases where pgaegis's default refuses a cleartext password libpq would send", major, refusals, defaults)
	})
}

// TestRequireAuthParseMatchesLibpq compares which require_auth values are
// accepted, on thousands of generated values, with libpq 16, 17 and 18
// themselves (libpq checks the option before it connects, so a closed
// port tells a bad value from a good one). pgaegis follows 18; 16 and 17
// differ from it only in not knowing oauth.
func TestRequireAuthParseMatchesLibpq(t *testing.T) {
	words := []string{"password", "md5", "gss", "sspi", "scram-sha-256", "oauth", "none", "!password", "!md5", "!scram-sha-256", "!none", "!oauth",
		"", " md5", "md5 ", "MD5", "Password", "scram", "scram-sha-1", "trust", "cert", "!", "!!md5", "! md5", "none!", "pass word", "\tmd5"}
	r := rand.New(rand.NewSource(14))
	seen := map[string]bool{}
	var values []string
	for len(values) < 3000 {
		n := 1 + r.Intn(4)
		var parts []string
		neg := r.Intn(2) == 0
		for i := 0; i < n; i++ {
			w := words[r.Intn(len(words))]
			if r.Intn(3) > 0 { // mostly well-formed: valid names, one polarity
				w = strings.TrimPrefix(words[r.Intn(7)], "!")
				if neg {
					w = "!" + w
				}
			}
			parts = append(parts, w)
		}
		v := strings.Join(parts, ",")
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		values = append(values, v)
	}
	libs := 0
	for _, major := range []string{"16", "17", "18"} {
		path := libpqOf(major)
		if path == "" {
			continue
		}
		lib, err := libpq.Open(path)
		if err != nil {
			pgtest.Unavailable(t, fmt.Errorf("loading %s: %v", path, err))
			return
		}
		libs++
		start := time.Now()
		cases, disagreements, accepted := 0, 0, 0
		for _, v := range values {
			ci := "host=127.0.0.1 port=1 connect_timeout=2 passfile=/nonexistent require_auth='" + strings.ReplaceAll(v, "\\", "\\\\") + "'"
			_, msg := lib.Connect(ci)
			libpqRejects := strings.Contains(msg, "require_auth")
			_, cfgErr := conninfo.Config(conninfo.Flags{DSN: ci})
			want := libpqRejects
			ours := cfgErr != nil
			if lib.Version < 180000 {
				// pgaegis accepts oauth as 18 does; 16 and 17 must reject
				// exactly the values 18 accepts only because of it.
				ours = ours || hasMethod(v, "oauth")
			}
			cases++
			if !ours {
				accepted++
			}
			if ours != want {
				disagreements++
				t.Errorf("libpq %d: require_auth=%q: libpq rejects=%v (%s), pgaegis rejects=%v (%v)", lib.Version, v, libpqRejects, strings.TrimSpace(msg), cfgErr != nil, cfgErr)
			}
		}
		if accepted == 0 || accepted == cases {
			t.Errorf("libpq %d: %d of %d values accepted: the generator tests nothing", lib.Version, accepted, cases)
		}
		t.Logf("ORACLE require-auth-parse pg%s: cases=%d disagreements=%d seconds=%.1f (libpq %d, %d values accepted)", major, cases, disagreements, time.Since(start).Seconds(), lib.Version, accepted)
	}
	if libs == 0 {
		pgtest.Unavailable(t, errors.New("no libpq 16+ beside the installed server binaries (.ci/pg-majors unpacks them)"))
	}
}

func hasMethod(v, m string) bool {
	for _, p := range strings.Split(v, ",") {
		if strings.TrimPrefix(p, "!") == m {
			return true
		}
	}
	return false
}
