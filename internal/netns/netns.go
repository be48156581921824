// Package netns runs a process, or opens a socket, inside a named network
// namespace (/run/netns/NAME, as `ip netns add` makes them). Tests use it
// to put a PostgreSQL server and its clients on either side of a veth
// pair; the firewall's apply uses it to load a ruleset into a namespace.
package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Path is where `ip netns` keeps the namespace called name.
func Path(name string) string { return filepath.Join("/run/netns", name) }

// inside runs fn in a goroutine locked to an OS thread that has entered
// the namespace (or gets the error). The thread is never unlocked: when fn
// returns, the Go runtime discards it instead of reusing a thread in the
// wrong namespace.
func inside(name string, fn func(error)) {
	onFreshThread(func() {
		f, err := os.Open(Path(name))
		if err != nil {
			fn(fmt.Errorf("network namespace %s: %w", name, err))
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			fn(fmt.Errorf("entering network namespace %s: %w", name, err))
			return
		}
		fn(nil)
	})
}

// onFreshThread runs fn in a new goroutine locked to a thread that is not
// the process's main thread: the runtime cannot discard the main thread,
// and the process's /proc/self/net would follow it into the namespace.
func onFreshThread(fn func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Hold the main thread so fn's goroutine lands on another.
			done := make(chan struct{})
			onFreshThread(func() { defer close(done); fn() })
			<-done
			runtime.UnlockOSThread()
			return
		}
		fn()
	}()
}

// Start starts cmd inside the namespace and returns a channel that gets
// cmd.Wait's result. The child is forked from a thread that stays alive
// (blocked in Wait) for the child's whole life, so a Pdeathsig set on cmd
// fires when the child's parent really goes, not when the thread would.
func Start(cmd *exec.Cmd, name string) (<-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	inside(name, func(err error) {
		if err == nil {
			err = cmd.Start()
		}
		started <- err
		if err == nil {
			done <- cmd.Wait()
		}
	})
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

// Dial connects from inside the namespace, from local address laddr when
// it is not empty. A socket belongs to the namespace it was created in, so
// the returned connection keeps working from any goroutine.
func Dial(ctx context.Context, name, network, laddr, raddr string) (net.Conn, error) {
	return call(name, func() (net.Conn, error) {
		d := net.Dialer{}
		if laddr != "" {
			a, err := net.ResolveTCPAddr(network, net.JoinHostPort(laddr, "0"))
			if err != nil {
				return nil, err
			}
			d.LocalAddr = a
		}
		return d.DialContext(ctx, network, raddr)
	})
}

// call runs fn on a thread inside the namespace and returns its result.
func call[T any](name string, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	inside(name, func(err error) {
		if err != nil {
			var zero T
			ch <- result{zero, err}
			return
		}
		v, err := fn()
		ch <- result{v, err}
	})
	r := <-ch
	return r.v, r.err
}

// Command is an exec.Cmd running argv inside the namespace through
// `ip netns exec`, for tools (nft, iptables-restore) that need no more
// than that.
func Command(ctx context.Context, name string, argv ...string) *exec.Cmd {
	if name == "" {
		return exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", name}, argv...)...)
}

// Listen opens a listening socket inside the namespace; like Dial's
// sockets it stays in that namespace whatever goroutine uses it.
func Listen(name, network, addr string) (net.Listener, error) {
	return call(name, func() (net.Listener, error) { return net.Listen(network, addr) })
}
