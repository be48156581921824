package backup

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// pump reads src to its end and writes every byte to each of dsts, each
// destination in its own goroutine behind a queue of pipeDepth buffers:
// the archive parser and zstd run side by side, and the reader (pg_dump's
// pipe) only waits when both queues are full. It returns the bytes read
// and the first error of a read or of any destination; after an error it
// stops reading, and calls stop (once, from any goroutine) so that the
// writer at the pipe's other end is ended rather than left blocked.
func pump(src io.Reader, stop func(), dsts ...io.Writer) (int64, error) {
	type chunk struct {
		b    []byte
		refs atomic.Int32
	}
	free := make(chan []byte, pipeDepth)
	for range pipeDepth {
		free <- make([]byte, copyBuffer)
	}
	var (
		mu     sync.Mutex
		first  error
		failed atomic.Bool
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		if !failed.Swap(true) && stop != nil {
			stop()
		}
	}
	queues := make([]chan *chunk, len(dsts))
	var wg sync.WaitGroup
	for i, d := range dsts {
		q := make(chan *chunk, pipeDepth)
		queues[i] = q
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range q {
				if !failed.Load() {
					if _, err := d.Write(c.b); err != nil {
						fail(err)
					}
				}
				if c.refs.Add(-1) == 0 {
					free <- c.b[:cap(c.b)]
				}
			}
		}()
	}
	var total int64
	for !failed.Load() {
		buf := <-free
		n, err := fill(src, buf)
		if n > 0 {
			total += int64(n)
			c := &chunk{b: buf[:n]}
			c.refs.Store(int32(len(dsts)))
			for _, q := range queues {
				q <- c
			}
		} else {
			free <- buf
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fail(err)
			}
			break
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return total, first
}

// fill reads until buf is a quarter full, or the input ends: a pipe
// hands out what the writer has put there so far, often a few kB, and a
// queue of tiny chunks would absorb little.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf)/4 {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// growPipe asks for a 1 MiB pipe buffer (Linux: F_SETPIPE_SZ, up to
// /proc/sys/fs/pipe-max-size), so pg_dump can run ahead of a reader
// busy for a moment; the default 64 kB is one read's worth. Best effort.
func growPipe(f *os.File) {
	sc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = sc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, copyBuffer)
	})
}
