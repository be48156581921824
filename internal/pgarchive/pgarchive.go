// Package pgarchive reads a pg_dump custom-format archive (-Fc) as it
// streams past, without storing it: the header, the table of contents and
// every data block, so a backup can be called complete (every entry that
// has data had its block, the stream ended where the format says it ends)
// and its rows counted, before it is ever restored.
//
// Only uncompressed archives (pg_dump -Z 0) have countable rows: pgaegis
// compresses the whole stream itself (zstd), which is faster than
// pg_dump's per-block gzip and leaves the COPY text readable here.
package pgarchive

import (
	"errors"
	"io"
)

// Entry is one table-of-contents entry.
type Entry struct {
	DumpID    int
	HadDumper bool   // the entry has a data block (TABLE DATA, BLOBS, ...)
	Desc      string // "TABLE DATA", "TABLE", "INDEX", "BLOBS", ...
	Namespace string
	Tag       string // object name, e.g. the table's
	Owner     string
	Section   int // 1 none, 2 pre-data, 3 data, 4 post-data (pg_dump's numbering)
}

// Table is what the data blocks said about one TABLE DATA entry.
type Table struct {
	DumpID    int
	Namespace string
	Name      string
	Rows      int64 // rows of COPY text seen in its data block
	Bytes     int64 // bytes of COPY text
}

// Summary is what a complete archive held.
type Summary struct {
	Version                    string // archive format version, "1.14"
	Compressed                 bool   // pg_dump compressed the data blocks itself (rows not countable)
	Database                   string // dbname in the header
	ServerVersion, DumpVersion string
	Entries                    []Entry
	Tables                     []Table // TABLE DATA entries, in dump order, with their counts
	Blobs                      int64   // large objects seen in BLOBS blocks
	Bytes                      int64   // bytes of archive read
}

// ErrIncomplete wraps every way an archive can stop short: end of input
// before the end block, an entry with data that never had its block.
var ErrIncomplete = errors.New("archive incomplete")

// Reader parses an archive written to it (an io.Writer, to sit on a tee
// behind pg_dump's stdout). It never buffers more than one chunk header.
type Reader struct {
	err error
}

// NewReader starts a parse.
func NewReader() *Reader { return &Reader{} }

// Write feeds the next bytes of the archive. A malformed archive makes it
// return an error naming the offset and what was expected.
func (r *Reader) Write(p []byte) (int, error) {
	return 0, errors.New("pgarchive: not implemented")
}

// Close says the input ended; it returns the summary of a complete
// archive, or an error wrapping ErrIncomplete.
func (r *Reader) Close() (*Summary, error) {
	return nil, errors.New("pgarchive: not implemented")
}

// Read parses a whole archive from in.
func Read(in io.Reader) (*Summary, error) {
	r := NewReader()
	if _, err := io.Copy(r, in); err != nil {
		return nil, err
	}
	return r.Close()
}
