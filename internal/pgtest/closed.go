package pgtest

import (
	"syscall"
	"testing"
)

// ClosedPorts returns n loopback TCP ports that refuse connections for
// the rest of the test: each is a socket bound to 127.0.0.1 that never
// listens, so the kernel answers a connection with a reset and no other
// process can take the port meanwhile (a port merely released may be
// handed to another test's listener on a busy machine).
func ClosedPorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	for range n {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatalf("socket: %v", err)
		}
		tb.Cleanup(func() { syscall.Close(fd) })
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			tb.Fatalf("bind: %v", err)
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			tb.Fatalf("getsockname: %v", err)
		}
		ports = append(ports, sa.(*syscall.SockaddrInet4).Port)
	}
	return ports
}
