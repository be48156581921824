package conninfo_test

import (
	"bytes"
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
	for len(set) < 44 {
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
	for _, v := range []string{
		"md5, password", "password ", " scram-sha-256", "PASSWORD", "Scram-Sha-256", "scram", "trust", "cert",
		"password,!md5", "!password,md5", "md5,md5", "!md5,!md5", "none,none", "!none,!none", "password,", ",", "!",
		"!!password", "scram-sha-256,,md5", "password,md5,scram-sha-256,gss,sspi,none", "!password,!md5,!scram-sha-256,!gss,!sspi,!none",
		"scram-sha-256,oauth", "!oauth", "password;md5",
	} {
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
	ln     net.Listener
	target string
	mu       sync.Mutex
	cond     *sync.Cond
	accepted int
	sent     bytes.Buffer
	wg       sync.WaitGroup
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
			r.wg.Add(1)
			r.mu.Lock()
			r.accepted++
			r.cond.Broadcast()
			r.mu.Unlock()
			go r.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (r *recorder) serve(c net.Conn) {
	defer r.wg.Done()
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
	for r.accepted < n {
		r.cond.Wait()
	}
	r.accepted = 0
	r.mu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
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

func libpqPath(t *testing.T) string {
	for _, m := range []string{"18", "17", "16"} {
		dir, err := localpg.FindBinDir(m)
		if err != nil {
			continue
		}
		for _, p := range []string{filepath.Join(dir, "..", "lib", "libpq.so.5"), filepath.Join(dir, "..", "lib", "x86_64-linux-gnu", "libpq.so.5")} {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return ""
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
	var libpqMu sync.Mutex // PQconnectdb is reentrant, but keep the oracle's load on the machine to one connection
	values := requireAuthValues()
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		start := time.Now()
		srv := pgtest.StartMajor(t, major, localpg.Options{HBA: raHBA, Conf: []string{"ssl = on"}, Init: pgtest.SelfSignedTLS})
		secret := "Ra-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-secret"
		var setup []string
		for _, u := range raUsers {
			enc := "scram-sha-256"
			if u == "u_md5" {
				enc = "md5"
			}
			setup = append(setup, "SET password_encryption = '"+enc+"'", "CREATE ROLE "+u+" LOGIN PASSWORD '"+secret+"'")
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
					ci := "host=127.0.0.1 dbname=postgres connect_timeout=20 passfile=/nonexistent user=" + u + " sslmode=" + mode.ssl
					if v != "" {
						ci += " require_auth='" + v + "'"
					}
					if mode.password {
						ci += " password=" + secret
					}
					libpqMu.Lock()
					ok, msg := lib.Connect(ci + " port=" + strconv.Itoa(srv.Port))
					libpqMu.Unlock()
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
