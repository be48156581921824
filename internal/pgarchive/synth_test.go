package pgarchive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strconv"
	"testing"
)

// synth writes archives the way pg_dump's custom format does (per
// pg_backup_archiver.c WriteHead/WriteToc and pg_backup_custom.c), for
// the format versions no pg_dump on this machine writes (1.15, 1.16) and
// for the benchmark's large archive.
type synth struct {
	bytes.Buffer
	minor int
}

func (w *synth) int(v int64) {
	sign := byte(0)
	if v < 0 {
		sign, v = 1, -v
	}
	w.WriteByte(sign)
	for i := 0; i < 4; i++ {
		w.WriteByte(byte(v >> (8 * i)))
	}
}

func (w *synth) str(s string) { w.int(int64(len(s))); w.WriteString(s) }
func (w *synth) null()        { w.int(-1) }

type synthEntry struct {
	id        int
	desc, tag string
	data      bool
}

func (w *synth) head(compressed bool, entries []synthEntry) {
	w.WriteString("PGDMP")
	w.Write([]byte{1, byte(w.minor), 0, 4, 8, archCustom})
	switch {
	case w.minor >= 15 && compressed:
		w.WriteByte(1) // gzip
	case w.minor >= 15:
		w.WriteByte(0)
	case compressed:
		w.int(-1) // Z_DEFAULT_COMPRESSION
	default:
		w.int(0)
	}
	for _, v := range []int64{1, 2, 3, 4, 5, 126, 0} {
		w.int(v)
	}
	w.str("db")
	w.str("15.4")
	w.str("15.4")
	w.int(int64(len(entries)))
	for _, e := range entries {
		w.int(int64(e.id))
		had := int64(0)
		if e.data {
			had = 1
		}
		w.int(had)
		w.str("0")
		w.str("0")
		w.str(e.tag)
		w.str(e.desc)
		w.int(3)
		w.str("")
		w.str("")
		if e.desc == "TABLE DATA" {
			w.str("COPY public." + e.tag + " (a) FROM stdin;\n")
		} else {
			w.null()
		}
		w.str("public")
		w.str("")
		if w.minor >= 14 {
			w.str("heap")
		}
		if w.minor >= 16 {
			w.int('r')
		}
		w.str("postgres")
		w.str("false")
		w.str("1")
		w.str("2")
		w.null()
		if e.data {
			w.WriteByte(offsetNotSet)
		} else {
			w.WriteByte(offsetNoData)
		}
		w.Write(make([]byte, 8))
	}
}

func (w *synth) table(id int, rows []string) {
	w.WriteByte(blkData)
	w.int(int64(id))
	for _, r := range rows {
		w.str(r)
	}
	w.int(0)
}

func (w *synth) blobs(id int, los ...string) {
	w.WriteByte(blkBlobs)
	w.int(int64(id))
	for i, lo := range los {
		w.int(int64(16384 + i))
		w.str(lo)
		w.int(0)
	}
	w.int(0)
}

func small(minor int) []byte {
	w := &synth{minor: minor}
	w.head(false, []synthEntry{{1, "TABLE", "t", false}, {2, "TABLE DATA", "t", true}, {3, "BLOBS", "BLOBS", true}, {4, "TABLE DATA", "e", true}})
	w.table(2, []string{"1\ta\\nb\n", "2\tc\n", "3\t\\N\n"})
	w.blobs(3, "x", "yz")
	w.table(4, nil)
	return w.Bytes()
}

func TestSynthVersions(t *testing.T) {
	for _, minor := range []int{12, 13, 14, 15, 16} {
		t.Run("1."+strconv.Itoa(minor), func(t *testing.T) {
			s, err := Read(bytes.NewReader(small(minor)))
			if err != nil {
				t.Fatal(err)
			}
			if s.Version != fmt.Sprintf("1.%d", minor) || len(s.Entries) != 4 || s.Blobs != 2 || len(s.Tables) != 2 ||
				s.Tables[0].Rows != 3 || s.Tables[1].Rows != 0 || s.Compressed || s.Database != "db" {
				t.Fatalf("%+v", s)
			}
		})
	}
}

func TestSynthMalformed(t *testing.T) {
	good := small(14)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name, want string
		in         []byte
	}{
		{"magic", "PGDMP", mod(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"version", "version", mod(func(b []byte) []byte { b[6] = 17; return b })},
		{"old version", "version", mod(func(b []byte) []byte { b[6] = 11; return b })},
		{"int size", "integer size", mod(func(b []byte) []byte { b[8] = 0; return b })},
		{"format", "custom format", mod(func(b []byte) []byte { b[10] = 5; return b })},
		{"trailing garbage", "block type", append(mod(func(b []byte) []byte { return b }), 9)},
		{"second block", "second data block", func() []byte {
			w := &synth{minor: 14, Buffer: *bytes.NewBuffer(append([]byte(nil), good...))}
			w.table(2, nil)
			return w.Bytes()
		}()},
		{"unknown id", "not in the table of contents", func() []byte {
			w := &synth{minor: 14, Buffer: *bytes.NewBuffer(append([]byte(nil), good...))}
			w.table(99, nil)
			return w.Bytes()
		}()},
		{"no data entry", "has no data", func() []byte {
			w := &synth{minor: 14, Buffer: *bytes.NewBuffer(append([]byte(nil), good...))}
			w.table(1, nil)
			return w.Bytes()
		}()},
		{"negative chunk", "negative data chunk", func() []byte {
			w := &synth{minor: 14}
			w.head(false, []synthEntry{{2, "TABLE DATA", "t", true}})
			w.WriteByte(blkData)
			w.int(2)
			w.int(-5)
			return w.Bytes()
		}()},
		{"negative string", "negative string length", func() []byte {
			w := &synth{minor: 14}
			w.WriteString("PGDMP")
			w.Write([]byte{1, 14, 0, 4, 8, archCustom})
			w.int(0)
			for i := 0; i < 7; i++ {
				w.int(0)
			}
			w.int(-7)
			return w.Bytes()
		}()},
		{"huge name", "where a name was expected", func() []byte {
			w := &synth{minor: 14}
			w.WriteString("PGDMP")
			w.Write([]byte{1, 14, 0, 4, 8, archCustom})
			w.int(0)
			for i := 0; i < 7; i++ {
				w.int(0)
			}
			w.int(1 << 30)
			return w.Bytes()
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.in))
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) || errors.Is(err, ErrIncomplete) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// TestSynthTruncated: every strict prefix of a complete archive is
// incomplete, fed whole or in pieces.
func TestSynthTruncated(t *testing.T) {
	for _, minor := range []int{14, 16} {
		b := small(minor)
		for n := 0; n < len(b); n++ {
			_, err := Read(bytes.NewReader(b[:n]))
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("1.%d prefix %d of %d: %v", minor, n, len(b), err)
			}
		}
	}
}

// TestSplitWrites: the summary does not depend on how the stream is cut.
func TestSplitWrites(t *testing.T) {
	b := small(16)
	want, err := Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 200; trial++ {
		r := NewReader()
		for rest := b; len(rest) > 0; {
			n := 1 + rng.Intn(min(len(rest), 1+trial%40))
			if _, err := r.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		got, err := r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("trial %d: %+v, want %+v", trial, got, want)
		}
	}
}

// BenchmarkReader: a 1.14 archive of 100-byte COPY rows, each its own
// chunk, as pg_dump -Z 0 writes them.
func BenchmarkReader(b *testing.B) {
	row := bytes.Repeat([]byte("x"), 99)
	row = append(row, '\n')
	w := &synth{minor: 14}
	w.head(false, []synthEntry{{1, "TABLE DATA", "t", true}})
	w.WriteByte(blkData)
	w.int(1)
	for w.Len() < 64<<20 {
		w.int(int64(len(row)))
		w.Write(row)
	}
	w.int(0)
	arch := w.Bytes()
	b.SetBytes(int64(len(arch)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := NewReader()
		for rest := arch; len(rest) > 0; {
			n := min(len(rest), 64<<10)
			if _, err := r.Write(rest[:n]); err != nil {
				b.Fatal(err)
			}
			rest = rest[n:]
		}
		if _, err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSynthTerminator: the "\." line pg_dump 15 ends COPY data with is
// not a row, whether the table is empty, has zero-column rows (empty
// lines), or the line ends a chunk with rows.
func TestSynthTerminator(t *testing.T) {
	cases := []struct {
		chunks []string
		rows   int64
	}{
		{[]string{"\\.\n\n\n"}, 0},
		{[]string{"a\n", "b\n", "\\.\n\n\n"}, 2},
		{[]string{"\n", "\n", "\\.\n\n\n"}, 2},
		{[]string{"a\nb\n\\", ".\n", "\n\n"}, 2},
		{[]string{"a\\\\.\n"}, 1},   // a row ending in an escaped backslash and a dot
		{[]string{"\\\\.\n"}, 1},    // a row that is a backslash and a dot
		{[]string{"a\n", "b\n"}, 2}, // no terminator (a newer pg_dump may drop it)
	}
	for i, c := range cases {
		w := &synth{minor: 14}
		w.head(false, []synthEntry{{1, "TABLE DATA", "t", true}})
		w.table(1, c.chunks)
		s, err := Read(bytes.NewReader(w.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if s.Tables[0].Rows != c.rows {
			t.Errorf("case %d %q: %d rows, want %d", i, c.chunks, s.Tables[0].Rows, c.rows)
		}
	}
}

// FuzzReader: no input panics, and an input read as complete has no
// strict prefix that is also complete (a truncated archive is never
// called complete). Seeds: real pg_dump 15 archives (testdata) and the
// synthetic ones.
func FuzzReader(f *testing.F) {
	for _, minor := range []int{12, 14, 15, 16} {
		f.Add(small(minor))
	}
	for _, name := range []string{"testdata/pg15-z0.dump", "testdata/pg15-gzip.dump"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader()
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+int(rest[0])%61)
			if _, err := r.Write(rest[:n]); err != nil {
				break
			}
			rest = rest[n:]
		}
		r.Close()
		s, err := Read(bytes.NewReader(data))
		if err != nil {
			if s != nil {
				t.Fatal("summary with an error")
			}
			return
		}
		for _, n := range []int{0, len(data) / 2, len(data) - 1} {
			if n < len(data) {
				if _, err := Read(bytes.NewReader(data[:n])); !errors.Is(err, ErrIncomplete) {
					t.Fatalf("prefix %d of a complete %d-byte archive: %v", n, len(data), err)
				}
			}
		}
	})
}

// BenchmarkReaderFile reads a real archive named by
// $PGARCHIVE_BENCH_FILE (e.g. a pg_dump -Fc -Z0 of bench/backup's
// database), in 128 kB writes as from a pipe.
func BenchmarkReaderFile(b *testing.B) {
	name := os.Getenv("PGARCHIVE_BENCH_FILE")
	if name == "" {
		b.Skip("set PGARCHIVE_BENCH_FILE to a pg_dump -Fc archive")
	}
	f, err := os.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	buf := make([]byte, 128<<10)
	for i := 0; i < b.N; i++ {
		if _, err := f.Seek(0, 0); err != nil {
			b.Fatal(err)
		}
		r := NewReader()
		if _, err := io.CopyBuffer(struct{ io.Writer }{r}, struct{ io.Reader }{f}, buf); err != nil {
			b.Fatal(err)
		}
		s, err := r.Close()
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			var rows int64
			for _, t := range s.Tables {
				rows += t.Rows
			}
			b.ReportMetric(float64(rows), "rows")
		}
	}
}
