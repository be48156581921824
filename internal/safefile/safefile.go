// Package safefile opens the files pgaegis is told to read (configuration
// files, snapshots, policies, logs) without trusting what the path is: a
// FIFO would block forever, /dev/zero would never end, a device could have
// side effects. Only regular files are read, and whole-file reads are capped.
package safefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Default caps for whole-file reads. Configuration files are small; a
// snapshot of a 140k-table catalog is large but bounded.
const (
	ConfigMax   = 64 << 20
	SnapshotMax = 4 << 30
)

// ErrNotRegular is returned for a path that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// Open opens path for reading when it is a regular file (after symlinks).
// It never blocks on a FIFO: the open is non-blocking and the type is
// checked on the opened descriptor, so the file cannot be swapped between
// the check and the read.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, Kind(st.Mode()))}
	}
	// Back to blocking reads for a regular file (O_NONBLOCK has no effect on
	// them, but keep the descriptor ordinary).
	if err := syscall.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads a regular file of at most max bytes. A larger file is an
// error naming the path and the limit, not a partial read.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > max {
		return nil, tooLarge(path, max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(data)) > max {
		return nil, tooLarge(path, max)
	}
	return data, nil
}

func tooLarge(path string, max int64) error {
	return &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("file is larger than %s, the limit for this kind of file", size(max))}
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Kind names a file type for messages ("a FIFO", "a directory").
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "an irregular file"
}

// LineMax caps one line of a configuration file. The server's own limits
// are far lower for pg_hba.conf tokens; this only keeps a file of one
// endless line (a /dev/zero copy, a sparse file) from being worked on.
const LineMax = 1 << 20

// LineError is an overlong line, named by file and line number.
type LineError struct {
	File string
	Line int
	Max  int
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: line is longer than %s, the limit for a configuration line", e.File, e.Line, size(int64(e.Max)))
}

// CheckLines returns a *LineError for the first line of data longer than
// max bytes (the newline not counted).
func CheckLines(name string, data []byte, max int) error {
	line := 1
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		n := i
		if i < 0 {
			n = len(data)
		}
		if n > max {
			return &LineError{File: name, Line: line, Max: max}
		}
		if i < 0 {
			break
		}
		data = data[i+1:]
		line++
	}
	return nil
}

// ReadConfig reads a configuration file: a regular file of at most
// ConfigMax bytes whose lines are at most LineMax bytes.
func ReadConfig(path string) ([]byte, error) {
	data, err := ReadFile(path, ConfigMax)
	if err != nil {
		return nil, err
	}
	if err := CheckLines(path, data, LineMax); err != nil {
		return nil, err
	}
	return data, nil
}

// OpenLimited opens a regular file for streaming reads of at most max
// bytes: a larger file is refused when its size says so, and a file that
// grows past max while read fails the read with the same error.
func OpenLimited(path string, max int64) (io.ReadCloser, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Close()
		return nil, tooLarge(path, max)
	}
	return &limited{f: f, path: path, max: max, left: max}, nil
}

type limited struct {
	f         *os.File
	path      string
	max, left int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a file of exactly max bytes from a longer one.
		var one [1]byte
		if n, _ := l.f.Read(one[:]); n > 0 {
			return 0, tooLarge(l.path, l.max)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.f.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *limited) Close() error { return l.f.Close() }
