package logscan

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Watch follows a log file, or the newest log file of a directory (so
// rotation is followed), and feeds new records to the analysis as they
// are written. It returns when ctx ends. Memory stays bounded: only the
// unfinished last record is kept between reads.
func Watch(ctx context.Context, path string, o Options, an *Analysis, poll time.Duration) error {
	if o.Prefix == nil {
		o.Prefix, _ = CompilePrefix("%m [%p] ")
	}
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	// A FIFO or a device is refused up front, as by scan; a directory is
	// followed (its newest log file).
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		f, err := safefile.Open(path)
		if err != nil {
			return err
		}
		f.Close()
	}
	var cur string
	var off int64
	var carry []byte
	line := 1
	first := true
	skipping := false // dropping the rest of an overlong record
	for {
		target, err := newest(path)
		if err == nil && target != cur {
			cur, off, carry, line, skipping = target, 0, nil, 1, false
			if first {
				// Start at the end of what already exists: watch is for new events.
				if st, err := os.Stat(cur); err == nil {
					off = st.Size()
				}
			}
			if o.Format == "" {
				if f, err := safefile.Open(cur); err == nil {
					head := make([]byte, 4096)
					n, _ := f.Read(head)
					f.Close()
					if n > 0 {
						o.Format = Detect(head[:n])
					}
				}
			}
		}
		first = false
		if cur != "" {
			if st, err := os.Stat(cur); err == nil && st.Size() < off {
				off, carry, line = 0, nil, 1 // truncated in place (copytruncate)
			}
			if f, err := safefile.Open(cur); err == nil {
				f.Seek(off, io.SeekStart)
				data, _ := io.ReadAll(io.LimitReader(f, 64<<20))
				f.Close()
				off += int64(len(data))
				if skipping {
					// Keep the last bytes: a record start may straddle reads.
					c := firstCut(data, o.Format)
					if c == 0 && len(data) > 8 {
						line += countLines(data[:len(data)-8])
						off -= 8
						data = nil
					} else if c > 0 {
						line += countLines(data[:c])
						data = data[c:]
						skipping = false
					} else {
						off -= int64(len(data))
						data = nil
					}
				}
				buf := append(carry, data...)
				cut := recordCut(buf, o.Format)
				if len(data) == 0 && len(buf) > 0 && buf[len(buf)-1] == '\n' {
					cut = len(buf) // quiet for a poll: the last record is complete
				}
				if len(buf) > 0 && buf[len(buf)-1] == '\n' && o.Format != Stderr {
					cut = len(buf)
				}
				if cut > 0 {
					fmtOr := o.Format
					if fmtOr == "" {
						fmtOr = Stderr
					}
					for _, s := range parseChunk(buf[:cut], fmtOr, o.Prefix) {
						s := s
						s.rec.File, s.rec.Line = cur, line+s.line
						if s.kind != sigBad {
							an.add(&s)
						}
					}
					line += countLines(buf[:cut])
					carry = append([]byte(nil), buf[cut:]...)
				} else {
					carry = buf
				}
				if len(carry) > MaxRecord {
					// A runaway record is dropped, not kept forever.
					if o.Warn != nil {
						o.Warn(fmt.Sprintf("%s:%d: record longer than %d MiB skipped", cur, line, MaxRecord>>20))
					}
					line += countLines(carry)
					carry, skipping = nil, true
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// newest returns path itself, or the newest log file in a directory.
func newest(path string) (string, error) {
	files, err := Inputs([]string{path})
	if err != nil || len(files) == 0 {
		return "", err
	}
	return files[len(files)-1], nil
}
