package leakscan

import (
	"bytes"
	"fmt"
)

// finder looks for needles in a stream fed in chunks: the last bytes of a
// chunk (one fewer than the longest form) are kept and searched again with
// the next, so a needle across two chunks is found.
type finder struct {
	forms  []form
	labels []string // in the needles' order, for the report
	max    int
	// barrier is looked for as well, not reported as a hit (Scan's
	// marker that the collector has caught up).
	barrier []byte
}

// stream is one file read in chunks: what the last chunk leaves to the
// next, and what was found.
type stream struct {
	buf     []byte
	tail    int // bytes at the start of buf carried from the last chunk
	found   map[string]bool
	barrier bool
}

// form is one way a needle can be written in a log or a statement text.
type form struct {
	label string
	b     []byte
}

func newFinder(needles []Needle) *finder {
	f := &finder{}
	for _, n := range needles {
		if len(n.Value) == 0 {
			continue // would match everywhere
		}
		f.labels = append(f.labels, n.Label)
		for _, b := range forms(n.Value) {
			f.forms = append(f.forms, form{n.Label, b})
			f.max = max(f.max, len(b))
		}
	}
	return f
}

// forms are the spellings of v the server may write: as is, inside a SQL
// literal (' doubled), and each of those as csvlog (" doubled) and jsonlog
// (escaped as PostgreSQL's escape_json does) write it.
func forms(v []byte) [][]byte {
	var out [][]byte
	add := func(b []byte) {
		for _, o := range out {
			if bytes.Equal(o, b) {
				return
			}
		}
		out = append(out, b)
	}
	for _, b := range [][]byte{v, bytes.ReplaceAll(v, []byte("'"), []byte("''"))} {
		add(b)
		add(bytes.ReplaceAll(b, []byte(`"`), []byte(`""`)))
		add(jsonEscape(b))
	}
	return out
}

// jsonEscape escapes b as PostgreSQL's escape_json does (without the
// quotes): \" \\ \b \f \n \r \t, other control characters as \u00XX,
// everything else (UTF-8 included) as is.
func jsonEscape(b []byte) []byte {
	var out []byte
	for _, c := range b {
		switch c {
		case '"':
			out = append(out, `\"`...)
		case '\\':
			out = append(out, `\\`...)
		case '\b':
			out = append(out, `\b`...)
		case '\f':
			out = append(out, `\f`...)
		case '\n':
			out = append(out, `\n`...)
		case '\r':
			out = append(out, `\r`...)
		case '\t':
			out = append(out, `\t`...)
		default:
			if c < 0x20 {
				out = append(out, fmt.Sprintf(`\u%04x`, c)...)
			} else {
				out = append(out, c)
			}
		}
	}
	return out
}

// withBarrier makes f look for b too.
func (f *finder) withBarrier(b []byte) {
	f.barrier = b
	f.max = max(f.max, len(b))
}

// feed searches the next chunk of s.
func (f *finder) feed(s *stream, chunk []byte) {
	if len(f.forms) == 0 && f.barrier == nil {
		return
	}
	s.buf = append(s.buf[:s.tail], chunk...)
	f.search(s, s.buf)
	if f.barrier != nil && !s.barrier && bytes.Contains(s.buf, f.barrier) {
		s.barrier = true
	}
	keep := min(f.max-1, len(s.buf))
	copy(s.buf, s.buf[len(s.buf)-keep:])
	s.buf = s.buf[:keep]
	s.tail = keep
}

// whole searches one separate text (a pg_stat_statements entry) into s.
func (f *finder) whole(s *stream, b []byte) { f.search(s, b) }

func (f *finder) search(s *stream, b []byte) {
	for _, fm := range f.forms {
		if !s.found[fm.label] && bytes.Contains(b, fm.b) {
			if s.found == nil {
				s.found = map[string]bool{}
			}
			s.found[fm.label] = true
		}
	}
}

// labels returns the labels found in s, in the needles' order.
func (f *finder) found(s *stream) []string {
	var got []string
	seen := map[string]bool{}
	for _, l := range f.labels {
		if s.found[l] && !seen[l] {
			got = append(got, l)
			seen[l] = true
		}
	}
	return got
}
