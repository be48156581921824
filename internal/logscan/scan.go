package logscan

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Options control a scan.
type Options struct {
	Format Format  // "" detects
	Prefix *Prefix // stderr: log_line_prefix (nil: detected from the first lines)
	Since  time.Time
	Until  time.Time
	// Progress is told how many bytes were read (for a progress bar).
	Progress func(done int64)
	Workers  int
	// Thresholds tune the detectors (DefaultThresholds when zero).
	Thresholds *Thresholds
	// Warn, when set, is told of records Watch skips (longer than
	// MaxRecord); Scan lists them in Stats.Errors.
	Warn func(msg string)
}

// signal is one interesting record, reduced to what the analysis needs.
type signal struct {
	kind    sigKind
	rec     Record
	text    string // redacted statement, or the failure reason
	line    int    // line within the chunk (fixed up when merged)
	badLine string // parse problem
	rule    int    // statement: index in statementRules, or -1
	secret  bool   // statement: carries a password
	// statement: which log wrote it (log_statement, pgaudit, an error's
	// STATEMENT), pgaudit's statement id, and a hash of the text, so one
	// statement logged by several is counted once.
	src     byte
	auditID string
	hash    uint64
	own     bool // statement: one pgaegis's own audit runs (by its text)
}

type sigKind uint8

const (
	sigAuthFail sigKind = iota
	sigReceived
	sigAuthorized
	sigNoise
	sigStatement
	sigBad
	// sigDetail: `DETAIL:  Role "x" does not exist.` on its own stderr
	// line, after the failure it explains.
	sigDetail
)

// Where a statement signal came from.
const (
	srcLogStatement   = 'S' // log_statement / log_min_duration_statement
	srcAudit          = 'A' // pgaudit
	srcErrorStatement = 'E' // the STATEMENT of an error (log_min_error_statement)
	srcError          = 'M' // an error message itself
)

// Stats describe what was read.
type Stats struct {
	Files   []string `json:"files"`
	Bytes   int64    `json:"bytes"`
	Lines   int64    `json:"lines"`
	Signals int64    `json:"signals"`
	Errors  []string `json:"errors,omitempty"` // unparseable lines (file:line), first few
	Format  Format   `json:"format"`
}

// Inputs expands paths: a directory gives its log files in time order
// (modification time, then name).
func Inputs(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == "-" {
			out = append(out, p)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		type f struct {
			path string
			mod  time.Time
		}
		var fs []f
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() || !(strings.Contains(n, ".log") || strings.HasSuffix(n, ".csv") || strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".gz") || strings.HasSuffix(n, ".zst")) {
				continue
			}
			// os.Stat follows a symlink: only regular files are logs (a
			// FIFO named x.log would block the scan).
			info, err := os.Stat(filepath.Join(p, n))
			if err != nil || !info.Mode().IsRegular() {
				continue
			}
			fs = append(fs, f{filepath.Join(p, n), info.ModTime()})
		}
		sort.Slice(fs, func(i, j int) bool {
			if !fs[i].mod.Equal(fs[j].mod) {
				return fs[i].mod.Before(fs[j].mod)
			}
			return fs[i].path < fs[j].path
		})
		for _, x := range fs {
			out = append(out, x.path)
		}
	}
	return out, nil
}

// MaxRecord is the longest log record read (a statement the server logs
// can be long, but not this long): a longer one is skipped with a warning
// naming its file and line, so one runaway line (a decompression bomb,
// /dev/zero copied into a log) costs bounded memory and linear time.
const MaxRecord = 64 << 20

// zstdMaxWindow bounds the memory a .zst file can make the decoder take
// (zstd --long=27 writes 128 MiB windows; the default levels far less).
const zstdMaxWindow = 128 << 20

// CorruptError is a compressed log that ends early or fails its checks:
// the scan read only part of it.
type CorruptError struct {
	Path  string
	Bytes int64 // decompressed bytes read before the failure
	Lines int64 // lines read before the failure (set by the scan)
	Err   error
}

func (e *CorruptError) Error() string {
	what := "is corrupt"
	if errors.Is(e.Err, io.ErrUnexpectedEOF) {
		what = "is truncated"
	}
	return fmt.Sprintf("%s: compressed file %s (%v) after %d lines (%d bytes of log): the scan is incomplete", e.Path, what, e.Err, e.Lines, e.Bytes)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// decompressed wraps a decompressor so that its failures, io.ErrUnexpectedEOF
// included, cannot pass for the end of the file: io.ReadFull reports a
// short read with the same error value.
type decompressed struct {
	r     io.Reader
	path  string
	n     int64
	err   error
	close func() error
}

func (d *decompressed) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	if err != nil && err != io.EOF {
		d.err = &CorruptError{Path: d.path, Bytes: d.n, Err: err}
		return n, d.err
	}
	return n, err
}

func (d *decompressed) Close() error { return d.close() }

// open returns a reader, decompressing .gz and .zst. Only regular files
// (and - for stdin) are read: a FIFO would block, /dev/zero never ends.
func open(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	f, err := safefile.Open(path)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(path, ".gz"):
		z, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, &CorruptError{Path: path, Err: err}
		}
		return &decompressed{r: z, path: path, close: f.Close}, nil
	case strings.HasSuffix(path, ".zst"):
		z, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			f.Close()
			return nil, &CorruptError{Path: path, Err: err}
		}
		return &decompressed{r: z, path: path, close: func() error { z.Close(); return f.Close() }}, nil
	}
	return f, nil
}

// Detect guesses the format from the first bytes.
func Detect(head []byte) Format {
	t := bytes.TrimLeft(head, " \t\r\n")
	if bytes.HasPrefix(t, []byte("{")) {
		return JSON
	}
	line := t
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if len(line) > 24 && line[4] == '-' && bytes.Count(line, []byte(",")) >= 12 && bytes.Contains(line, []byte(`,"`)) {
		return CSV
	}
	return Stderr
}

// chunkSize is what one worker parses at a time: small enough that the
// buffers read(2) copies into stay in cache (256 KiB took 7-10% less CPU
// than 1 MiB on the heavy stderr and jsonlog logs, the same on csvlog,
// and 7 MB less memory), large enough that handing chunks over is noise.
const chunkSize = 1 << 18

// bufRing is a fixed set of chunk buffers that circulate between the
// reader and the workers: a gigabyte log reuses the same few megabytes
// (no garbage, no fresh pages for the kernel to fault in).
type bufRing chan *[]byte

func newBufRing(n int) bufRing {
	r := make(bufRing, n)
	for i := 0; i < n; i++ {
		b := make([]byte, 0, chunkSize+chunkSize/4)
		r <- &b
	}
	return r
}

type chunk struct {
	seq   int
	file  string
	data  []byte
	buf   *[]byte // returned to bufs once parsed
	lines int     // newlines in data
	sigs  []signal
	// skipped: an overlong record of this many lines was dropped here.
	skipped bool
}

// Scan reads the inputs in order and returns the interesting signals,
// ready for Analyze. Chunks are parsed on all cores.
func Scan(paths []string, o Options) (*Analysis, Stats, error) {
	var st Stats
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	an := newAnalysis()
	if o.Thresholds != nil {
		an.T = *o.Thresholds
	}
	for _, p := range paths {
		st.Files = append(st.Files, p)
		if err := scanFile(p, &o, &st, an); err != nil {
			return nil, st, err
		}
	}
	st.Format = o.Format
	return an, st, nil
}

// readFull is io.ReadFull that tells the end of the input (io.EOF, also
// after a short read) from a failure.
func readFull(r io.Reader, b []byte) (int, bool, error) {
	n, err := io.ReadFull(r, b)
	switch {
	case err == nil:
		return n, false, nil
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return n, true, nil
	}
	return n, true, err
}

func scanFile(path string, o *Options, st *Stats, an *Analysis) error {
	rc, err := open(path)
	if err != nil {
		return err
	}
	defer rc.Close()
	headBuf := make([]byte, 4096)
	hn, headEOF, headErr := readFull(rc, headBuf)
	head := headBuf[:hn]
	format := o.Format
	if format == "" {
		format = Detect(head)
		o.Format = format
	}
	if o.Prefix == nil && format == Stderr {
		o.Prefix = DetectPrefix(head)
	}
	in := make(chan *chunk, o.Workers*2)
	out := make(chan *chunk, o.Workers*2)
	ring := newBufRing(o.Workers*4 + 2)
	var wg sync.WaitGroup
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range in {
				if !c.skipped {
					c.sigs = parseChunk(c.data, format, o.Prefix)
					c.lines = bytes.Count(c.data, []byte{'\n'})
				}
				if c.buf != nil {
					if cap(*c.buf) > 2*chunkSize {
						// A long record's buffer: do not keep it in the ring.
						b := make([]byte, 0, chunkSize+chunkSize/4)
						c.buf = &b
					}
					*c.buf = (*c.buf)[:0]
					ring <- c.buf
					c.buf, c.data = nil, nil
				}
				out <- c
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(in)
		carry := append([]byte(nil), head...)
		st.Bytes += int64(len(head))
		seq := 0
		eof, rerr := headEOF, headErr
		send := func(c *chunk) {
			c.seq, c.file = seq, path
			seq++
			in <- c
		}
		for {
			bp := <-ring
			buf := append((*bp)[:0], carry...)
			carry = nil
			if !eof {
				buf = grow(buf, chunkSize)
				n, e, err := readFull(rc, buf[len(buf):len(buf)+chunkSize])
				buf = buf[:len(buf)+n]
				st.Bytes += int64(n)
				eof, rerr = e, err
			}
			// A record longer than the buffer: read on into the same buffer
			// (appending, so copies are amortised), up to MaxRecord.
			cut := len(buf)
			if !eof {
				cut = recordCut(buf, format)
			}
			for cut <= 0 && !eof && len(buf) <= MaxRecord {
				step := min(len(buf), MaxRecord+1-len(buf)) // never past MaxRecord+1: a longer record is overlong
				buf = grow(buf, step)
				n, e, err := readFull(rc, buf[len(buf):len(buf)+step])
				buf = buf[:len(buf)+n]
				st.Bytes += int64(n)
				eof, rerr = e, err
				cut = len(buf)
				if !eof {
					cut = recordCut(buf, format)
				}
			}
			if o.Progress != nil {
				o.Progress(st.Bytes)
			}
			*bp = buf
			if cut <= 0 && !eof {
				// Overlong: drop it and everything up to the next record.
				lines := bytes.Count(buf, []byte{'\n'})
				*bp = buf[:0]
				ring <- bp
				var n int
				carry, n, eof, rerr = skipRecord(rc, format, st)
				send(&chunk{skipped: true, lines: lines + n})
			} else {
				carry = append(carry, buf[cut:]...)
				if cut > 0 {
					send(&chunk{data: buf[:cut], buf: bp})
				} else {
					*bp = buf[:0]
					ring <- bp
				}
			}
			if eof && len(carry) == 0 {
				readErr <- rerr
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()
	// Merge in order, fixing up line numbers.
	pending := map[int]*chunk{}
	next, line := 0, 1
	for c := range out {
		pending[c.seq] = c
		for {
			cc, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			if cc.skipped && len(st.Errors) < 20 {
				st.Errors = append(st.Errors, fmt.Sprintf("%s:%d: record longer than %d MiB skipped (%d lines)", path, line, MaxRecord>>20, cc.lines))
			}
			for i := range cc.sigs {
				s := &cc.sigs[i]
				s.rec.File, s.rec.Line = path, line+s.line
				if s.kind == sigBad {
					if len(st.Errors) < 20 {
						st.Errors = append(st.Errors, fmt.Sprintf("%s:%d: %s", path, s.rec.Line, s.badLine))
					}
					continue
				}
				if !o.Since.IsZero() && !s.rec.Time.IsZero() && s.rec.Time.Before(o.Since) {
					continue
				}
				if !o.Until.IsZero() && !s.rec.Time.IsZero() && s.rec.Time.After(o.Until) {
					continue
				}
				st.Signals++
				an.add(s)
			}
			line += cc.lines
			st.Lines += int64(cc.lines)
			next++
		}
	}
	an.flush()
	err = <-readErr
	var ce *CorruptError
	if errors.As(err, &ce) {
		ce.Lines = int64(line - 1)
		return ce
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// grow makes room for n more bytes after len(b).
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// skipRecord reads past the rest of an overlong record, in fixed-size
// pieces, and returns what follows it (the start of the next record), the
// lines skipped, and whether the input ended.
func skipRecord(r io.Reader, f Format, st *Stats) ([]byte, int, bool, error) {
	const keep = 8 // enough to see a record start (a csvlog date) across reads
	piece := make([]byte, chunkSize+keep)
	have, lines := 0, 0
	for {
		n, eof, err := readFull(r, piece[have:])
		st.Bytes += int64(n)
		b := piece[:have+n]
		if c := firstCut(b, f); c > 0 {
			lines += bytes.Count(b[:c], []byte{'\n'})
			return append([]byte(nil), b[c:]...), lines, eof, err
		}
		if eof {
			return nil, lines + bytes.Count(b, []byte{'\n'}), true, err
		}
		// Keep the tail: a newline at the end needs the next byte.
		k := len(b) - keep
		lines += bytes.Count(b[:k], []byte{'\n'})
		have = copy(piece, b[k:])
	}
}

// firstCut is recordCut from the front: where the first record that
// starts after a newline begins, or 0.
func firstCut(buf []byte, f Format) int {
	for from := 0; ; {
		i := bytes.IndexByte(buf[from:], '\n')
		if i < 0 {
			return 0
		}
		i += from
		if i+6 >= len(buf) {
			return 0 // the next bytes decide; wait for them
		}
		c := buf[i+1]
		switch f {
		case Stderr:
			if c != '\t' {
				return i + 1
			}
		case CSV:
			if buf[i+5] == '-' && c >= '0' && c <= '9' {
				return i + 1
			}
		default:
			return i + 1
		}
		from = i + 1
	}
}

// recordCut finds where to cut a buffer so no record is split: after the
// last newline that starts a new record (stderr: not a tab continuation;
// csv: a line starting with a date).
func recordCut(buf []byte, f Format) int {
	end := len(buf)
	for end > 0 {
		i := bytes.LastIndexByte(buf[:end], '\n')
		if i < 0 {
			return 0
		}
		if i+1 < len(buf) {
			c := buf[i+1]
			switch f {
			case Stderr:
				if c != '\t' {
					return i + 1
				}
			case CSV:
				if i+5 < len(buf) && buf[i+5] == '-' && c >= '0' && c <= '9' {
					return i + 1
				}
			default:
				return i + 1
			}
		}
		end = i
	}
	return 0
}

// parseChunk finds the signals in a chunk of whole records.
func parseChunk(data []byte, f Format, p *Prefix) []signal {
	v := verdictPool.Get().(*verdicts)
	defer verdictPool.Put(v)
	switch f {
	case JSON:
		return parseJSON(data, v)
	case CSV:
		return parseCSV(data, v)
	}
	return parseStderr(data, p, v)
}

// stderr -------------------------------------------------------------

func parseStderr(data []byte, p *Prefix, v *verdicts) []signal {
	var sigs []signal
	line := 0
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		var l []byte
		if nl < 0 {
			l, data = data, nil
		} else {
			l, data = data[:nl], data[nl+1:]
		}
		// Continuation lines of this record (tab-indented).
		cont := 0
		for len(data) > 0 && data[0] == '\t' {
			nl2 := bytes.IndexByte(data, '\n')
			if nl2 < 0 {
				nl2 = len(data)
			}
			if cont == 0 {
				// Only copied when the record turns out to matter.
				l = append(append([]byte(nil), l...), '\n')
			}
			l = append(append(l, data[:nl2]...), '\n')
			cont++
			if nl2 >= len(data) {
				data = nil
			} else {
				data = data[nl2+1:]
			}
		}
		start := line
		line += 1 + cont
		// Cheap filter: the severity separator, then the message start.
		sep := severityEnd(l)
		if sep < 0 {
			continue
		}
		msg := l[sep+3:]
		if !interestingMessage(l[:sep], msg, v) {
			continue
		}
		var r Record
		sev, message, used := parseLine(p, l, &r)
		if used == nil {
			sigs = append(sigs, signal{kind: sigBad, line: start, badLine: "line does not match log_line_prefix " + fmt.Sprintf("%q", p.spec)})
			continue
		}
		if used != p {
			// log_line_prefix changed in the file (a reload, or the audit's
			// own LOG-23 fix): say so, and still read the record.
			sigs = append(sigs, signal{kind: sigBad, line: start, badLine: fmt.Sprintf("log_line_prefix changed: read with %q instead of %q", used.spec, p.spec)})
		}
		r.Severity, r.Message = sev, message
		if s, ok := classify(&r); ok {
			s.line = start
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// parseLine reads a line that passed the fast filter with p, or, when p
// does not fit it (prefix or severity), with the first common prefix that
// does: the prefix can change in the middle of a file, and a line that
// fits no prefix must be reported, never dropped. It returns the prefix
// used, nil when none fits. Only lines of interest get here, so trying the
// others costs nothing measurable.
func parseLine(p *Prefix, l []byte, r *Record) (string, string, *Prefix) {
	if sev, msg, ok := parseWith(p, l, r); ok {
		return sev, msg, p // the common case: no allocation, no other prefix tried
	}
	for _, q := range commonCompiled() {
		if q.spec == p.spec {
			continue
		}
		if sev, msg, ok := parseWith(q, l, r); ok {
			return sev, msg, q
		}
	}
	*r = Record{}
	return "", "", nil
}

func parseWith(q *Prefix, l []byte, r *Record) (string, string, bool) {
	*r = Record{}
	if rest, ok := q.parse(l, r); ok {
		return splitSeverity(rest)
	}
	return "", "", false
}

// severityEnd is bytes.Index(l, ":  "). The prefix holds colons of its
// own (the timestamp's), and an IndexByte call for each cost a third of
// the stderr scan: this looks at eight bytes a step instead (a zero byte
// in the word XOR ':' is a colon; the bit trick can also flag a byte
// after a real colon, so every hit is checked).
func severityEnd(l []byte) int {
	const ones, highs, colons = 0x0101010101010101, 0x8080808080808080, 0x3a3a3a3a3a3a3a3a
	i := 0
	for ; i+8 <= len(l); i += 8 {
		x := binary.LittleEndian.Uint64(l[i:]) ^ colons
		for m := (x - ones) &^ x & highs; m != 0; m &= m - 1 {
			k := i + bits.TrailingZeros64(m)/8
			if l[k] == ':' && k+2 < len(l) && l[k+1] == ' ' && l[k+2] == ' ' {
				return k
			}
		}
	}
	for ; i < len(l); i++ {
		if l[i] == ':' && i+2 < len(l) && l[i+1] == ' ' && l[i+2] == ' ' {
			return i
		}
	}
	return -1
}

// interestingMessage is the per-line fast path: most lines are rejected
// by a few byte comparisons.
func interestingMessage(before, msg []byte, v *verdicts) bool {
	if len(before) == 0 {
		return false
	}
	// The last letter of the severity and the first of the message pick
	// the one comparison that can succeed (DETAIL lines, a third of a
	// log_statement log, fail at once).
	switch before[len(before)-1] {
	case 'G', 'L', 'R', 'T':
	default:
		return false
	}
	switch {
	case bytes.HasSuffix(before, []byte("LOG")):
		if len(msg) == 0 {
			return false
		}
		switch msg[0] {
		case 's', 'd', 'e', 'A', 'c', 'i', 'u':
		default:
			return false
		}
		switch {
		case bytes.HasPrefix(msg, []byte("statement: ")):
			return v.check(verdictStatement, msg[len("statement: "):], statementOfInterest)
		case bytes.HasPrefix(msg, []byte("duration: ")):
			if i := bytes.Index(msg, []byte("statement: ")); i >= 0 {
				return v.check(verdictStatement, msg[i+len("statement: "):], statementOfInterest)
			}
			return false
		case bytes.HasPrefix(msg, []byte("execute ")):
			if i := nameEnd(msg); i >= 0 {
				return v.check(verdictStatement, msg[i+2:], statementOfInterest)
			}
			return false
		}
		if bytes.HasPrefix(msg, []byte("AUDIT: ")) {
			// The whole pgaudit line: the statement inside it (a CSV field)
			// has no word the line lacks.
			return v.auditInteresting(msg[len("AUDIT: "):])
		}
		return bytes.HasPrefix(msg, []byte("connection ")) ||
			bytes.HasPrefix(msg, []byte("invalid ")) || bytes.HasPrefix(msg, []byte("incomplete startup")) ||
			bytes.HasPrefix(msg, []byte("could not accept SSL")) || bytes.HasPrefix(msg, []byte("unsupported frontend"))
	case bytes.HasSuffix(before, []byte("FATAL")):
		return true
	case bytes.HasSuffix(before, []byte("ERROR")):
		return bytes.Contains(msg, []byte("syntax error")) && mayHoldSecret(msg)
	case bytes.HasSuffix(before, []byte("STATEMENT")):
		return mayHoldSecret(msg)
	case bytes.HasSuffix(before, []byte("DETAIL")):
		// Under password auth an unknown role fails as a wrong password;
		// only this DETAIL line (stderr) says the role does not exist.
		return bytes.HasPrefix(msg, []byte(`Role "`))
	}
	return false
}

// nameEnd is bytes.Index(m, []byte(": ")) for an execute line, where
// the statement name comes first and is short.
func nameEnd(m []byte) int {
	for i := 0; i+1 < len(m); i++ {
		if m[i] == ':' && m[i+1] == ' ' {
			return i
		}
	}
	return -1
}

// json ---------------------------------------------------------------

func parseJSON(data []byte, v *verdicts) []signal {
	var sigs []signal
	line := 0
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		var l []byte
		if nl < 0 {
			l, data = data, nil
		} else {
			l, data = data[:nl], data[nl+1:]
		}
		cur := line
		line++
		if !jsonInteresting(l, v) {
			continue
		}
		var j jsonRecord
		if err := decodeJSONRecord(l, &j); err != nil {
			sigs = append(sigs, signal{kind: sigBad, line: cur, badLine: "not a JSON log record: " + err.Error()})
			continue
		}
		r := Record{Time: parseTime(j.Timestamp), PID: j.PID, User: j.User, Database: j.Dbname, Host: j.RemoteHost, Severity: j.Severity, Message: j.Message, Detail: j.Detail,
			App: j.App, Query: j.Statement}
		sigs = appendClassified(sigs, &r, cur)
	}
	return sigs
}

// appendClassified adds the signals of a csvlog or jsonlog record: the
// record's own, and its statement (the query column) where stderr would
// write a STATEMENT line that the fast path lets through, so the three
// formats count the same statements.
func appendClassified(sigs []signal, r *Record, line int) []signal {
	q := r.Query
	if s, ok := classify(r); ok {
		s.line = line
		sigs = append(sigs, s)
	}
	if q != "" && r.Severity != "LOG" && mayHoldSecret([]byte(q)) {
		st := Record{Time: r.Time, PID: r.PID, User: r.User, Database: r.Database, Host: r.Host, App: r.App, Severity: "STATEMENT", Message: q}
		if s, ok := classify(&st); ok {
			s.line = line
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// csv ----------------------------------------------------------------

func parseCSV(data []byte, v *verdicts) []signal {
	var sigs []signal
	var fields []string
	line := 0
	for len(data) > 0 {
		// A record ends at a newline followed by a date (or the end).
		end := 0
		for {
			nl := bytes.IndexByte(data[end:], '\n')
			if nl < 0 {
				end = len(data)
				break
			}
			end += nl + 1
			if end >= len(data) || (end+5 < len(data) && data[end+4] == '-' && data[end] >= '0' && data[end] <= '9') {
				break
			}
		}
		rec := data[:end]
		data = data[end:]
		cur := line
		line += bytes.Count(rec, []byte{'\n'})
		if !csvInteresting(rec, v) {
			continue
		}
		var ok bool
		fields, ok = splitCSVRecord(rec, fields[:0])
		f := fields
		if !ok || len(f) < 14 {
			sigs = append(sigs, signal{kind: sigBad, line: cur, badLine: "not a csvlog record"})
			continue
		}
		// csvlog: log_time, user, db, pid, connection_from, session_id, line,
		// command_tag, session_start, vxid, xid, severity, sqlstate, message, detail, ...
		r := Record{Time: parseTime(f[0]), User: f[1], Database: f[2], Severity: f[11], Message: f[13]}
		r.PID, _ = strconv.Atoi(f[3])
		// connection_from is host:port (IPv6 too), or [local].
		h := f[4]
		if i := strings.LastIndexByte(h, ':'); i > 0 {
			h = h[:i]
		}
		r.Host = h
		if len(f) > 14 {
			r.Detail = f[14]
		}
		if len(f) > csvQueryColumn {
			r.Query = f[csvQueryColumn]
		}
		if len(f) > csvAppColumn {
			r.App = f[csvAppColumn]
		}
		sigs = appendClassified(sigs, &r, cur)
	}
	return sigs
}

// jsonSeverityValue returns where the error_severity value starts, or -1.
// It searches for the key's tail: a search starts from the needle's first
// byte, and 'v' is rare in a log record where '"' is everywhere. Inside a
// string value the quotes would be escaped, so a match is the key.
func jsonSeverityValue(l []byte) int {
	const head, tail = `"error_se`, `verity":"`
	for from := 0; ; {
		k := bytes.Index(l[from:], []byte(tail))
		if k < 0 {
			return -1
		}
		k += from
		if k >= len(head) && string(l[k-len(head):k]) == head {
			return k + len(tail)
		}
		from = k + 1
	}
}

// jsonInteresting is the fast path for jsonlog: it finds the severity
// and the start of the message (in that order in every record) and asks
// the same question as for stderr lines.
func jsonInteresting(l []byte, v *verdicts) bool {
	i := jsonSeverityValue(l)
	if i < 0 {
		return false
	}
	e := bytes.IndexByte(l[i:], '"')
	if e < 0 {
		return false
	}
	sev := l[i : i+e]
	rest := l[i+e:]
	m := bytes.Index(rest, []byte(`"message":"`))
	if m < 0 {
		return false
	}
	// Only the message: the fields after it (application_name, ...)
	// would cost the statement checks a second look for nothing.
	msg, after, ok := jsonString(rest[m+len(`"message":`):])
	if !ok {
		return true // broken record: let the decoder report it
	}
	if interestingMessage(sev, msg, v) {
		return true
	}
	// An error's statement (stderr's STATEMENT line) follows the message.
	if string(sev) == "LOG" {
		return false
	}
	k := bytes.Index(after, []byte(`"statement":"`))
	if k < 0 {
		return false
	}
	q, _, ok := jsonString(after[k+len(`"statement":`):])
	return !ok || mayHoldSecret(q) || bytes.Contains(q, []byte(`\u`))
}
