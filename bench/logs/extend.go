package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// extend grows the server's logs to size (stderr) by appending copies of
// them, each later in time than the one before (timestamps advanced past
// the seed's span) and with other pids, so that sessions, bursts and
// windows stay as the server wrote them. Only the header fields move:
// messages are the server's own bytes.
func extend(dir string, m *meta, size int64) error {
	seedStderr := m.Sizes["stderr"]
	if seedStderr == 0 {
		return fmt.Errorf("the seed stderr log is empty")
	}
	copies := int((size + seedStderr - 1) / seedStderr)
	// The span and pid range of the seed, from its stderr log.
	first, last, minPid, maxPid, err := stderrSpan(filepath.Join(dir, realFiles["stderr"]))
	if err != nil {
		return err
	}
	sh := shift{dt: last.Sub(first) + time.Second, dpid: maxPid - minPid + 1}
	m.SeedBytes, m.Copies = seedStderr, copies
	for f, name := range realFiles {
		path := filepath.Join(dir, name)
		seed, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(out, 1<<20)
		for k := 1; k < copies; k++ {
			if err := sh.copy(w, seed, f, k); err != nil {
				out.Close()
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		if err := w.Flush(); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		m.Sizes[f] = st.Size()
	}
	return nil
}

const stampLayout = "2006-01-02 15:04:05.000"

// stderrSpan reads the first and last timestamps and the pid range of a
// stderr log written with prefix.
func stderrSpan(path string) (first, last time.Time, minPid, maxPid int, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return
	}
	defer fh.Close()
	r := bufio.NewReaderSize(fh, 1<<20)
	minPid = 1 << 30
	for {
		line, rerr := r.ReadSlice('\n')
		if isStamp(line) {
			if t, perr := time.Parse(stampLayout, string(line[:23])); perr == nil {
				if first.IsZero() {
					first = t
				}
				last = t
			}
			if pid, ok := stderrPid(line); ok {
				minPid, maxPid = min(minPid, pid), max(maxPid, pid)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != bufio.ErrBufferFull {
			return first, last, 0, 0, rerr
		}
	}
	if first.IsZero() || maxPid == 0 {
		return first, last, 0, 0, fmt.Errorf("%s: no timestamps or pids in the seed log", path)
	}
	return
}

// stderrPid reads the pid after "<stamp> UTC [".
func stderrPid(line []byte) (int, bool) {
	i := bytes.IndexByte(line, '[')
	j := bytes.IndexByte(line, ']')
	if i < 0 || j < i || j > 64 {
		return 0, false
	}
	pid, err := strconv.Atoi(string(line[i+1 : j]))
	return pid, err == nil
}

type shift struct {
	dt   time.Duration
	dpid int
}

// copy writes the k-th copy of seed, in format f, to w.
func (s shift) copy(w *bufio.Writer, seed []byte, f string, k int) error {
	dt, dpid := time.Duration(k)*s.dt, k*s.dpid
	for len(seed) > 0 {
		n := bytes.IndexByte(seed, '\n') + 1
		if n == 0 {
			n = len(seed)
		}
		line := seed[:n]
		seed = seed[n:]
		var out []byte
		switch f {
		case "stderr":
			out = s.stderrLine(line, dt, dpid)
		case "csvlog":
			out = s.csvLine(line, dt, dpid)
		case "jsonlog":
			out = s.jsonLine(line, dt, dpid)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
}

// advance rewrites a timestamp ("2006-01-02 15:04:05[.000]") at b.
func advance(dst, b []byte, dt time.Duration) ([]byte, int) {
	layout := stampLayout
	if len(b) < len(layout) || b[19] != '.' {
		layout = layout[:19]
	}
	if len(b) < len(layout) {
		return dst, 0
	}
	t, err := time.Parse(layout, string(b[:len(layout)]))
	if err != nil {
		return dst, 0
	}
	return t.Add(dt).AppendFormat(dst, layout), len(layout)
}

func (s shift) stderrLine(line []byte, dt time.Duration, dpid int) []byte {
	if !isStamp(line) {
		return line // a continuation line
	}
	out, n := advance(make([]byte, 0, len(line)+8), line, dt)
	i := bytes.IndexByte(line, '[')
	j := bytes.IndexByte(line, ']')
	pid, err := strconv.Atoi(string(line[i+1 : j]))
	if n == 0 || i < n || err != nil {
		return line
	}
	out = append(out, line[n:i+1]...)
	out = strconv.AppendInt(out, int64(pid+dpid), 10)
	return append(out, line[j:]...)
}

// csvLine rewrites log_time, process_id, session_id and
// session_start_time, the 1st, 4th, 6th and 9th fields of a record's
// first line.
func (s shift) csvLine(line []byte, dt time.Duration, dpid int) []byte {
	if !isStamp(line) {
		return line // inside a quoted field
	}
	out := make([]byte, 0, len(line)+16)
	rest := line
	for field := 0; field < 9; field++ {
		end := csvFieldEnd(rest)
		if end >= len(rest) {
			return line
		}
		v := rest[:end]
		switch field {
		case 0, 8:
			var n int
			if out, n = advance(out, v, dt); n == 0 {
				return line
			}
			out = append(out, v[n:]...)
		case 3:
			pid, err := strconv.Atoi(string(v))
			if err != nil {
				return line
			}
			out = strconv.AppendInt(out, int64(pid+dpid), 10)
		case 5:
			out = append(out, sessionID(v, dt, dpid)...)
		default:
			out = append(out, v...)
		}
		out = append(out, ',')
		rest = rest[end+1:]
	}
	return append(out, rest...)
}

// csvFieldEnd is the index of the comma ending the first field of b.
func csvFieldEnd(b []byte) int {
	if len(b) == 0 || b[0] != '"' {
		if i := bytes.IndexByte(b, ','); i >= 0 {
			return i
		}
		return len(b)
	}
	for i := 1; i < len(b); i++ {
		if b[i] == '"' {
			if i+1 < len(b) && b[i+1] == '"' {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(b)
}

// sessionID advances "<start hex>.<pid hex>".
func sessionID(v []byte, dt time.Duration, dpid int) []byte {
	dot := bytes.IndexByte(v, '.')
	if dot < 0 {
		return v
	}
	st, err1 := strconv.ParseInt(string(v[:dot]), 16, 64)
	pid, err2 := strconv.ParseInt(string(v[dot+1:]), 16, 64)
	if err1 != nil || err2 != nil {
		return v
	}
	out := strconv.AppendInt(nil, st+int64(dt/time.Second), 16)
	out = append(out, '.')
	return strconv.AppendInt(out, pid+int64(dpid), 16)
}

// jsonLine rewrites timestamp, pid, session_id and session_start; the
// server writes them before the message, so the first match is the field.
func (s shift) jsonLine(line []byte, dt time.Duration, dpid int) []byte {
	out := make([]byte, 0, len(line)+16)
	rest := line
	for _, key := range []string{`"timestamp":"`, `"pid":`, `"session_id":"`, `"session_start":"`} {
		i := bytes.Index(rest, []byte(key))
		if i < 0 {
			continue
		}
		i += len(key)
		out = append(out, rest[:i]...)
		rest = rest[i:]
		switch key {
		case `"pid":`:
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			pid, err := strconv.Atoi(string(rest[:j]))
			if err != nil {
				continue
			}
			out = strconv.AppendInt(out, int64(pid+dpid), 10)
			rest = rest[j:]
		case `"session_id":"`:
			j := bytes.IndexByte(rest, '"')
			if j < 0 {
				continue
			}
			out = append(out, sessionID(rest[:j], dt, dpid)...)
			rest = rest[j:]
		default:
			var n int
			out, n = advance(out, rest, dt)
			rest = rest[n:]
		}
	}
	return append(out, rest...)
}
