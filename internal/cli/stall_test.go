package cli

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// stallProxy forwards to a real server and stops passing its answers on
// after the n-th ReadyForQuery of each connection: a server that stops
// answering after the login.
func stallProxy(t *testing.T, port, n int) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go io.Copy(s, c)
			go func() {
				hdr := make([]byte, 5)
				for seen := 0; seen < n; {
					if _, err := io.ReadFull(s, hdr); err != nil {
						return
					}
					body := make([]byte, int(binary.BigEndian.Uint32(hdr[1:]))-4)
					if _, err := io.ReadFull(s, body); err != nil {
						return
					}
					if _, err := c.Write(append(append([]byte(nil), hdr...), body...)); err != nil {
						return
					}
					if hdr[0] == 'Z' {
						seen++
					}
				}
				io.Copy(io.Discard, s)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// Defect 7: with --statement-timeout 2s --connect-timeout 2s, a server
// that stopped answering after the login hung audit, collect, access and
// escalations forever.
func TestStalledServerIsAnErrorNotAHang(t *testing.T) {
	srv := pgtest.Shared(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"audit", []string{"audit", "--statement-timeout", "1s", "--no-probe"}},
		{"collect", []string{"collect", "--statement-timeout", "1s", "--no-probe", "-o", "-"}},
		{"escalations", []string{"escalations", "--statement-timeout", "1s"}},
		{"access", []string{"access", "--role", "postgres", "--statement-timeout", "1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Two ReadyForQuery: the login and BEGIN; the first catalog
			// query gets no answer.
			port := stallProxy(t, srv.Port, 2)
			t.Setenv("PGPASSWORD", srv.Password)
			args := append(tc.args, "--connect-timeout", "2s", "-d",
				fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable", port, srv.AdminUser))
			type result struct {
				code     int
				out, err string
			}
			done := make(chan result, 1)
			go func() {
				code, out, errs := runCLI(t, args...)
				done <- result{code, out, errs}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(3 * time.Minute): // generous: the point is that it returns
				t.Fatal("the command did not return")
			}
			if r.code != ExitError {
				t.Errorf("exit %d, want %d", r.code, ExitError)
			}
			if !strings.Contains(r.err, "stopped answering") || !strings.Contains(r.err, "reading server identity") {
				t.Errorf("stderr does not name the stalled step: %s", r.err)
			}
			if strings.Contains(r.err+r.out, srv.Password) {
				t.Error("the password appears in the output")
			}
		})
	}
}
