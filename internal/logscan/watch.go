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
	// With no prefix given it is detected from the file's first lines, as
	// scan does (a fixed default missed every event on Debian's prefix).
	detect := o.Prefix == nil
	if detect {
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
				// Start at the end of what already exists: watch is for new
				// events. Its lines are counted (streaming) so evidence
				// names the right line.
				if f, err := safefile.Open(cur); err == nil {
					n, lines := linesIn(f)
					f.Close()
					off, line = n, 1+lines
				}
			}
			if o.Format == "" || detect {
				if f, err := safefile.Open(cur); err == nil {
					head := make([]byte, 4096)
					n, _ := f.Read(head)
					f.Close()
					if n > 0 && o.Format == "" {
						o.Format = Detect(head[:n])
					}
					if n > 0 && detect && (o.Format == Stderr || o.Format == "") {
						o.Prefix, detect = DetectPrefix(head[:n]), false
					}
				}
			}
		}
		first = false
		if cur != "" {
			if st, err := os.Stat(cur); err == nil && st.Size() < off {
				off, carry, line, skipping = 0, nil, 1, false // truncated in place (copytruncate)
			}
			if f, err := safefile.Open(cur); err == nil {
				f.Seek(off, io.SeekStart)
				data, _ := io.ReadAll(io.LimitReader(f, 64<<20))
				f.Close()
				off += int64(len(data))
				fmtOr := o.Format
				if fmtOr == "" {
					fmtOr = Stderr
				}
				buf := append(carry, data...)
				carry = nil
				if skipping {
					// Drop the rest of an overlong record. Its end may straddle
					// reads: the last bytes wait for the next ones.
					if c := firstCut(buf, fmtOr); c > 0 {
						line += countLines(buf[:c])
						buf, skipping = buf[c:], false
					} else {
						k := max(len(buf)-8, 0)
						line += countLines(buf[:k])
						carry, buf = append([]byte(nil), buf[k:]...), nil
					}
				}
				// The record at the start, continued from earlier reads, may
				// have grown past the limit: dropped, not kept or parsed.
				if !skipping && len(buf) > MaxRecord {
					if c := firstCut(buf, fmtOr); c == 0 || c > MaxRecord {
						if o.Warn != nil {
							o.Warn(fmt.Sprintf("%s:%d: record longer than %d MiB skipped", cur, line, MaxRecord>>20))
						}
						if c > 0 {
							line += countLines(buf[:c])
							buf = buf[c:]
						} else {
							k := len(buf) - 8
							line += countLines(buf[:k])
							carry, buf, skipping = append([]byte(nil), buf[k:]...), nil, true
						}
					}
				}
				if len(buf) > 0 {
					cut := recordCut(buf, o.Format)
					if len(data) == 0 && buf[len(buf)-1] == '\n' {
						cut = len(buf) // quiet for a poll: the last record is complete
					}
					if buf[len(buf)-1] == '\n' && o.Format != Stderr {
						cut = len(buf)
					}
					if cut > 0 && detect && fmtOr == Stderr {
						o.Prefix, detect = DetectPrefix(buf[:min(cut, 4096)]), false // the file was empty at first
					}
					if cut > 0 {
						for _, s := range parseChunk(buf[:cut], fmtOr, o.Prefix) {
							s := s
							s.rec.File, s.rec.Line = cur, line+s.line
							if s.kind != sigBad {
								an.add(&s)
							}
						}
						an.flush()
						line += countLines(buf[:cut])
						carry = append([]byte(nil), buf[cut:]...)
					} else {
						carry = buf
					}
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

// linesIn reads r to its end in fixed-size pieces and returns its size and
// its newlines.
func linesIn(r io.Reader) (int64, int) {
	buf := make([]byte, 64<<10)
	var n int64
	lines := 0
	for {
		k, err := r.Read(buf)
		n += int64(k)
		lines += countLines(buf[:k])
		if err != nil {
			return n, lines
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
