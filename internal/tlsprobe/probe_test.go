package tlsprobe

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/hba"
)

func rules(t *testing.T, lines string) []hba.Rule {
	t.Helper()
	f := hba.Parse("pg_hba.conf", []byte(lines+"\n"), hba.Options{SSL: true})
	if len(f.Errors) > 0 {
		t.Fatal(f.Errors)
	}
	return f.Rules
}

// The plaintext check sends a startup message only where pg_hba.conf says
// the server answers it with trust or a password challenge; every other
// answer comes from the file (or is "not checked"), since the server logs
// a FATAL for it whatever the client does. The fake server rejects every
// startup message with its own words, so an answer from the file shows
// that nothing was sent.
func TestPlaintextSendsOnlyWhatLeavesNoLogLine(t *testing.T) {
	addr := fakeServer(t, errorsPlain)
	cases := []struct {
		name, user, hba string
		env             hba.Env
		answer          string
		accepted        bool
		checked         bool
	}{
		{name: "no login", hba: "host all all all trust", answer: "not checked: no login"},
		{name: "no pg_hba.conf", user: "alice", answer: "not checked: pg_hba.conf not known"},
		{name: "reject line", user: "alice", hba: "host all all 127.0.0.1/32 reject", answer: "rejected: pg_hba.conf rejects connection (pg_hba.conf line 1, not sent)", checked: true},
		{name: "no matching line", user: "alice", hba: "host all bob all trust", answer: "rejected: no pg_hba.conf entry for 127.0.0.1 without TLS (from pg_hba.conf, not sent)", checked: true},
		{name: "hostssl only", user: "alice", hba: "hostssl all all all scram-sha-256", answer: "rejected: no pg_hba.conf entry for 127.0.0.1", checked: true},
		{name: "ident", user: "alice", hba: "host all all all ident", answer: "reaches ident authentication (pg_hba.conf line 1; not sent", accepted: true, checked: true},
		{name: "samehost unknown", user: "alice", hba: "host all all samehost reject", answer: "not checked: the pg_hba.conf line depends on"},
		{name: "samehost known", user: "alice", hba: "host all all samehost reject", env: hba.Env{HostAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
			answer: "rejected: pg_hba.conf rejects connection", checked: true},
		{name: "password line: sent", user: "alice", hba: "host all all all md5", answer: "rejected: no pg_hba.conf entry", checked: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Addr: addr, Timeout: 5 * time.Second, SkipCiphers: true, User: c.user, Database: "app", HBAEnv: c.env}
			if c.hba != "" {
				o.HBA = rules(t, c.hba)
			}
			r := Probe(context.Background(), o)
			if !strings.HasPrefix(r.PlaintextAnswer, c.answer) || r.PlaintextAccepted != c.accepted || r.PlaintextChecked != c.checked {
				t.Errorf("plaintext = %v %v %q, want %v %v %q", r.PlaintextAccepted, r.PlaintextChecked, r.PlaintextAnswer, c.accepted, c.checked, c.answer)
			}
		})
	}
}

// Listener behaviours of servers that are not (or no longer) PostgreSQL.
const (
	silent      = "accepts and never answers"
	sThenStall  = "answers S to SSLRequest, then stalls"
	closes      = "accepts and closes"
	errorsPlain = "answers N and rejects startup" // a quick, honest server
	plainStall  = "answers N, then says nothing to a startup message"
	directStall = "answers N, rejects startup, stalls on direct TLS"
)

// fakeServer listens on loopback and treats each connection as kind says.
// Connections are held open until the test ends.
func fakeServer(t *testing.T, kind string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go serve(c, kind)
		}
	}()
	return l.Addr().String()
}

func serve(c net.Conn, kind string) {
	switch kind {
	case silent:
		io.Copy(io.Discard, c) // read whatever comes, say nothing
		return
	case closes:
		c.Close()
		return
	}
	first := make([]byte, 8)
	if _, err := io.ReadFull(c, first); err != nil {
		return
	}
	if first[0] == 0x16 && kind == directStall { // a TLS ClientHello: direct TLS
		io.Copy(io.Discard, c)
		return
	}
	if bytes.Equal(first, sslRequest) {
		if kind == sThenStall {
			c.Write([]byte{'S'})
			io.Copy(io.Discard, c) // the ClientHello is never answered
			return
		}
		c.Write([]byte{'N'})
		return
	}
	if kind == plainStall {
		io.Copy(io.Discard, c)
		return
	}
	msg := "SFATAL\x00C28000\x00Mno pg_hba.conf entry\x00\x00"
	e := []byte{'E', 0, 0, 0, byte(4 + len(msg))}
	c.Write(append(e, msg...))
	c.Close()
}

func TestProbeTellsStallsFromRefusals(t *testing.T) {
	cases := []struct {
		kind      string
		stalled   string // substring of Result.Stalled; "" for no stall
		notTested int
		errorHas  string
		offered   bool
		plaintext string
	}{
		{kind: silent, stalled: "no answer to SSLRequest within 1s", notTested: 4},
		{kind: sThenStall, stalled: "TLS handshake (TLSv1.0) not finished within 1s", notTested: 4, offered: true},
		{kind: closes, errorHas: "closed the connection without answering SSLRequest", plaintext: "closed without an answer"},
		{kind: errorsPlain, plaintext: "rejected: no pg_hba.conf entry"},
		{kind: plainStall, stalled: "no answer to an unencrypted startup message within 1s"},
		{kind: directStall, stalled: "direct TLS handshake not finished within 1s", plaintext: "rejected: no pg_hba.conf entry"},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			addr := fakeServer(t, c.kind)
			r := Probe(context.Background(), Options{Addr: addr, Timeout: time.Second, User: "alice", Database: "app", HBA: rules(t, "host all all all scram-sha-256")})
			if c.stalled != "" && !strings.Contains(strings.Join(r.Errors, "; "), c.stalled) {
				t.Errorf("the stall is not among the errors: %q", r.Errors)
			}
			if !strings.Contains(r.Stalled, c.stalled) || (c.stalled == "") != (r.Stalled == "") {
				t.Errorf("stalled = %q, want %q", r.Stalled, c.stalled)
			}
			if len(r.NotTested) != c.notTested {
				t.Errorf("not tested = %v, want %d versions", r.NotTested, c.notTested)
			}
			if r.TLSOffered != c.offered {
				t.Errorf("TLS offered = %v", r.TLSOffered)
			}
			if c.errorHas != "" && !strings.Contains(strings.Join(r.Errors, "; "), c.errorHas) {
				t.Errorf("errors = %q, want %q", r.Errors, c.errorHas)
			}
			if r.PlaintextAnswer != c.plaintext {
				t.Errorf("plaintext answer = %q, want %q", r.PlaintextAnswer, c.plaintext)
			}
			for v, ok := range r.Protocols {
				if ok {
					t.Errorf("%s reported accepted", v)
				}
			}
		})
	}
}

// The deadline is one for the whole probe: with a server that answers 'S'
// and stalls, the probe returns once, after the first handshake, rather
// than waiting a timeout per version, per cipher and per check.
func TestProbeStopsAtTheFirstStall(t *testing.T) {
	addr := fakeServer(t, sThenStall)
	r := Probe(context.Background(), Options{Addr: addr, Timeout: 500 * time.Millisecond})
	if r.Ciphers != nil || r.ClientCertRequested || r.PlaintextAnswer != "" {
		t.Errorf("steps after the stall ran: %+v", r)
	}
}
