package tlsprobe

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

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
			r := Probe(context.Background(), Options{Addr: addr, Timeout: time.Second})
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
