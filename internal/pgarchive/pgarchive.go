// Package pgarchive reads a pg_dump custom-format archive (-Fc) as it
// streams past, without storing it: the header, the table of contents and
// every data block, so a backup can be called complete (every entry that
// has data had its block, the stream ended where the format says it ends)
// and its rows counted, before it is ever restored.
//
// Only uncompressed archives (pg_dump -Z 0) have countable rows: pgaegis
// compresses the whole stream itself (zstd), which is faster than
// pg_dump's per-block gzip and leaves the COPY text readable here.
//
// The layout (learnt from PostgreSQL's pg_backup_archiver.c and
// pg_backup_custom.c, archive versions 1.12 to 1.16):
//
//	header  "PGDMP" vmaj vmin vrev intSize offSize format
//	        compression (1.15+: algorithm byte; before: level int)
//	        7 ints (creation time), dbname, server version, pg_dump version
//	toc     count, then per entry: dumpId hadDumper tableoid oid tag desc
//	        section defn dropStmt copyStmt namespace tablespace
//	        [tableam 1.14+] [relkind int 1.16+] owner withOids deps... NULL
//	        and the custom format's data offset (flag byte + offSize bytes)
//	data    blocks: type byte (1 data, 3 blobs), dumpId int, then chunks
//	        (int length + bytes) ended by a zero length; a blobs block is
//	        (oid int, chunks) repeated, ended by oid 0. The archive ends
//	        right after the last block: there is no end marker.
//
// An int is a sign byte and intSize little-endian magnitude bytes; a
// string is an int length (-1 for NULL) and that many bytes.
package pgarchive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
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
	// Rows of COPY text in its data block (lines, less pg_dump's "\."
	// end-of-data line and the blank lines after it); -1 when not
	// countable (compressed, or not COPY).
	Rows  int64
	Bytes int64 // bytes of the block's data as stored (COPY text when uncompressed)
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

// The archive versions read here: 1.12 (PostgreSQL 9.0) to 1.16.x (17, 18).
const (
	minVersion = 1<<16 | 12<<8
	maxVersion = 1<<16 | 16<<8 | 255
	v1_14      = 1<<16 | 14<<8
	v1_15      = 1<<16 | 15<<8
	v1_16      = 1<<16 | 16<<8
)

const (
	blkData  = 1
	blkBlobs = 3

	archCustom = 1

	offsetNotSet = 1
	offsetSet    = 2
	offsetNoData = 3

	// A kept string (name, tag, owner) longer than this is not one.
	maxKeptString = 1 << 20
)

type state uint8

const (
	stPrefix    state = iota // magic .. format, 11 bytes
	stProg                   // header or TOC entry fields, driven by prog/pc
	stStrBody                // the bytes of a string
	stBlockType              // a data block's type byte, or the end
	stBlockID
	stChunkLen
	stChunk
	stBlobOID
)

// kind is how a program step is read.
type kind uint8

const (
	kByte kind = iota
	kInt
	kStr    // kept
	kSkip   // string skipped
	kOffset // flag byte + offSize bytes
	kDeps   // strings until a NULL one
)

// field says what a step's value is for.
type field uint8

const (
	fNone field = iota
	fCompression
	fDB
	fServer
	fDump
	fTocCount
	fDumpID
	fHadDumper
	fTag
	fDesc
	fSection
	fCopy
	fNamespace
	fOwner
	fOffset
)

type step struct {
	k kind
	f field
}

type entryState struct {
	Entry
	dataState int
	dataPos   int64
	hasCopy   bool
	seen      bool
}

// Reader parses an archive written to it (an io.Writer, to sit on a tee
// behind pg_dump's stdout). It never buffers more than one chunk header.
type Reader struct {
	err    error
	closed bool

	st     state
	hdr    [24]byte // a fixed-size item split across writes
	hn     int
	off    int64 // bytes consumed
	itemAt int64 // where the item being read started

	version          int
	intSize, offSize int

	prog      []step
	pc        int
	inEntries bool
	tocCount  int64

	strLeft int64
	strKeep bool
	strBuf  []byte
	strF    field

	sum     Summary
	entries []entryState
	byID    map[int]int
	cur     entryState // entry being read

	blk      int // index into entries of the block being read
	blkType  int
	blkAt    int64
	table    int // index into sum.Tables, -1 for blobs
	inBlob   bool
	chunk    int64
	countNL  bool
	tail     [8]byte // the block's last bytes, to find the "\." line
	tailN    int
	expected int // entries with data
	got      int
}

// NewReader starts a parse.
func NewReader() *Reader { return &Reader{byID: map[int]int{}, table: -1} }

func (r *Reader) fail(format string, a ...any) error {
	r.err = fmt.Errorf("pgarchive: at offset %d: "+format, append([]any{r.itemAt}, a...)...)
	return r.err
}

// need is the size of the fixed item the state waits for.
func (r *Reader) need() int {
	switch r.st {
	case stPrefix:
		return 11
	case stBlockType:
		return 1
	case stProg:
		switch r.prog[r.pc].k {
		case kByte:
			return 1
		case kOffset:
			return 1 + r.offSize
		}
	}
	return 1 + r.intSize
}

// Write feeds the next bytes of the archive. A malformed archive makes it
// return an error naming the offset and what was expected.
func (r *Reader) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.closed {
		return 0, errors.New("pgarchive: write after Close")
	}
	total := len(p)
	for len(p) > 0 {
		switch r.st {
		case stChunk:
			take := len(p)
			if int64(take) > r.chunk {
				take = int(r.chunk)
			}
			if r.countNL {
				r.sum.Tables[r.table].Rows += int64(bytes.Count(p[:take], nl))
				r.keepTail(p[:take])
			}
			if r.table >= 0 {
				r.sum.Tables[r.table].Bytes += int64(take)
			}
			p = p[take:]
			r.off += int64(take)
			r.chunk -= int64(take)
			if r.chunk == 0 {
				r.st = stChunkLen
			}
			continue
		case stStrBody:
			take := len(p)
			if int64(take) > r.strLeft {
				take = int(r.strLeft)
			}
			if r.strKeep {
				r.strBuf = append(r.strBuf, p[:take]...)
			}
			p = p[take:]
			r.off += int64(take)
			r.strLeft -= int64(take)
			if r.strLeft == 0 {
				r.st = stProg
				if err := r.endStr(string(r.strBuf)); err != nil {
					return total - len(p), err
				}
			}
			continue
		}
		need := r.need()
		if r.hn == 0 {
			r.itemAt = r.off
		}
		var b []byte
		if r.hn == 0 && len(p) >= need {
			b = p[:need]
			p = p[need:]
		} else {
			c := copy(r.hdr[r.hn:need], p)
			r.hn += c
			p = p[c:]
			r.off += int64(c)
			if r.hn < need {
				break
			}
			b = r.hdr[:need]
			r.hn = 0
			r.off -= int64(need) // counted again below
		}
		r.off += int64(need)
		if err := r.item(b); err != nil {
			return total - len(p), err
		}
	}
	return total, nil
}

var nl = []byte{'\n'}

// int decodes one of pg_dump's ints: sign byte, little-endian magnitude.
func (r *Reader) int(b []byte) (int64, error) {
	var u uint64
	for i := r.intSize; i >= 1; i-- {
		u = u<<8 | uint64(b[i])
	}
	if u > math.MaxInt64 {
		return 0, r.fail("integer out of range")
	}
	v := int64(u)
	if b[0] != 0 {
		v = -v
	}
	return v, nil
}

func (r *Reader) item(b []byte) error {
	switch r.st {
	case stPrefix:
		return r.prefix(b)
	case stProg:
		return r.progItem(b)
	case stBlockType:
		switch b[0] {
		case blkData, blkBlobs:
		default:
			return r.fail("unknown data block type %d", b[0])
		}
		r.blkType = int(b[0])
		r.blkAt = r.itemAt
		r.st = stBlockID
		return nil
	}
	v, err := r.int(b)
	if err != nil {
		return err
	}
	switch r.st {
	case stBlockID:
		return r.blockStart(v)
	case stChunkLen:
		switch {
		case v < 0:
			return r.fail("negative data chunk length %d", v)
		case v == 0:
			if r.inBlob {
				r.inBlob = false
				r.st = stBlobOID
			} else {
				r.endTable()
				r.st = stBlockType
			}
		default:
			r.chunk = v
			r.st = stChunk
		}
	case stBlobOID:
		if v == 0 {
			r.st = stBlockType
			return nil
		}
		// Oids above 2^31 are written as negative ints: any nonzero is one.
		r.sum.Blobs++
		r.inBlob = true
		r.st = stChunkLen
	}
	return nil
}

func (r *Reader) prefix(b []byte) error {
	if string(b[:5]) != "PGDMP" {
		return r.fail("not a pg_dump custom-format archive (no PGDMP magic)")
	}
	r.version = int(b[5])<<16 | int(b[6])<<8 | int(b[7])
	r.sum.Version = fmt.Sprintf("%d.%d", b[5], b[6])
	if b[7] != 0 {
		r.sum.Version += fmt.Sprintf(".%d", b[7])
	}
	if r.version < minVersion || r.version > maxVersion {
		return r.fail("archive version %d.%d.%d is not one read here (1.12 to 1.16)", b[5], b[6], b[7])
	}
	r.intSize, r.offSize = int(b[8]), int(b[9])
	if r.intSize < 1 || r.intSize > 8 {
		return r.fail("integer size %d is not sane", r.intSize)
	}
	if r.offSize < 1 || r.offSize > 8 {
		return r.fail("offset size %d is not sane", r.offSize)
	}
	if b[10] != archCustom {
		return r.fail("archive format %d is not the custom format (-Fc)", b[10])
	}
	comp := step{kInt, fCompression}
	if r.version >= v1_15 {
		comp.k = kByte
	}
	r.prog = []step{comp,
		{kInt, fNone}, {kInt, fNone}, {kInt, fNone}, {kInt, fNone}, {kInt, fNone}, {kInt, fNone}, {kInt, fNone},
		{kStr, fDB}, {kStr, fServer}, {kStr, fDump}, {kInt, fTocCount}}
	r.pc = 0
	r.st = stProg
	return nil
}

func (r *Reader) entryProg() []step {
	s := []step{{kInt, fDumpID}, {kInt, fHadDumper}, {kSkip, fNone}, {kSkip, fNone},
		{kStr, fTag}, {kStr, fDesc}, {kInt, fSection}, {kSkip, fNone}, {kSkip, fNone},
		{kSkip, fCopy}, {kStr, fNamespace}, {kSkip, fNone}}
	if r.version >= v1_14 {
		s = append(s, step{kSkip, fNone}) // tableam
	}
	if r.version >= v1_16 {
		s = append(s, step{kInt, fNone}) // relkind
	}
	return append(s, step{kStr, fOwner}, step{kSkip, fNone}, step{kDeps, fNone}, step{kOffset, fOffset})
}

func (r *Reader) progItem(b []byte) error {
	s := r.prog[r.pc]
	switch s.k {
	case kByte:
		return r.value(s.f, int64(b[0]), "")
	case kOffset:
		var u uint64
		for i := r.offSize; i >= 1; i-- {
			u = u<<8 | uint64(b[i])
		}
		if u > math.MaxInt64 {
			return r.fail("data offset out of range")
		}
		r.cur.dataState, r.cur.dataPos = int(b[0]), int64(u)
		return r.value(s.f, 0, "")
	case kInt:
		v, err := r.int(b)
		if err != nil {
			return err
		}
		return r.value(s.f, v, "")
	}
	// A string's length (kStr, kSkip, kDeps).
	n, err := r.int(b)
	if err != nil {
		return err
	}
	if n < -1 {
		return r.fail("negative string length %d", n)
	}
	if s.k == kDeps {
		if n == -1 {
			return r.value(fNone, 0, "")
		}
		r.strKeep, r.strF = false, fNone
	} else {
		if n == -1 {
			return r.value(s.f, -1, "")
		}
		r.strKeep, r.strF = s.k == kStr, s.f
		if s.f == fCopy {
			return r.value(fCopy, n, "") // only whether there is one matters; the body is skipped below
		}
	}
	if r.strKeep && n > maxKeptString {
		return r.fail("string of %d bytes where a name was expected", n)
	}
	r.strBuf = r.strBuf[:0]
	r.strLeft = n
	if n == 0 {
		return r.endStr("")
	}
	r.st = stStrBody
	return nil
}

// endStr ends a string body; a dependency repeats its step.
func (r *Reader) endStr(s string) error {
	r.st = stProg
	if r.prog[r.pc].k == kDeps {
		return nil
	}
	if r.prog[r.pc].f == fCopy {
		r.advance()
		return nil
	}
	return r.value(r.strF, 0, s)
}

// value stores a step's value and moves to the next step.
func (r *Reader) value(f field, v int64, s string) error {
	switch f {
	case fCompression:
		r.sum.Compressed = v != 0
	case fDB:
		r.sum.Database = s
	case fServer:
		r.sum.ServerVersion = s
	case fDump:
		r.sum.DumpVersion = s
	case fTocCount:
		if v < 0 {
			return r.fail("negative entry count %d", v)
		}
		r.tocCount = v
		r.entries = make([]entryState, 0, min(v, 4096))
		r.sum.Entries = make([]Entry, 0, min(v, 4096))
		r.prog, r.pc, r.inEntries = r.entryProg(), 0, true
		r.cur = entryState{}
		if v == 0 {
			r.st = stBlockType
		}
		return nil
	case fDumpID:
		if v <= 0 || v > math.MaxInt32 {
			return r.fail("entry ID %d out of range", v)
		}
		if _, dup := r.byID[int(v)]; dup {
			return r.fail("entry ID %d appears twice", v)
		}
		r.cur.DumpID = int(v)
	case fHadDumper:
		r.cur.HadDumper = v != 0
	case fTag:
		r.cur.Tag = s
	case fDesc:
		r.cur.Desc = s
	case fSection:
		r.cur.Section = int(v)
	case fCopy:
		r.cur.hasCopy = v > 0
		if v > 0 {
			// Skip the statement's body without keeping it.
			r.strKeep, r.strLeft, r.strF = false, v, fNone
			r.st = stStrBody
			return nil
		}
	case fNamespace:
		r.cur.Namespace = s
	case fOwner:
		r.cur.Owner = s
	case fOffset:
		switch r.cur.dataState {
		case offsetNotSet, offsetSet, offsetNoData:
		default:
			return r.fail("unknown data offset flag %d in entry %d", r.cur.dataState, r.cur.DumpID)
		}
		r.byID[r.cur.DumpID] = len(r.entries)
		r.entries = append(r.entries, r.cur)
		r.sum.Entries = append(r.sum.Entries, r.cur.Entry)
		if r.cur.HadDumper {
			r.expected++
		}
		r.cur = entryState{}
		r.pc = 0
		if int64(len(r.entries)) == r.tocCount {
			r.st = stBlockType
		}
		return nil
	}
	r.advance()
	return nil
}

func (r *Reader) advance() {
	r.pc++
	if r.pc == len(r.prog) { // only the header program ends this way
		r.pc = 0
	}
}

func (r *Reader) blockStart(id int64) error {
	i, ok := r.byID[int(id)]
	if id <= 0 || id > math.MaxInt32 || !ok {
		return r.fail("data block for entry %d, which is not in the table of contents", id)
	}
	e := &r.entries[i]
	if !e.HadDumper {
		return r.fail("data block for entry %d (%s), which has no data", id, e.Desc)
	}
	if e.seen {
		return r.fail("second data block for entry %d (%s)", id, e.Desc)
	}
	if e.dataState == offsetSet && e.dataPos != r.blkAt {
		return r.fail("data block for entry %d at offset %d, the table of contents says %d", id, r.blkAt, e.dataPos)
	}
	e.seen = true
	r.got++
	r.blk = i
	r.table = -1
	r.countNL = false
	r.tailN = 0
	if r.blkType == blkBlobs {
		r.st = stBlobOID
		return nil
	}
	if e.Desc == "TABLE DATA" {
		t := Table{DumpID: e.DumpID, Namespace: e.Namespace, Name: e.Tag, Rows: -1}
		if e.hasCopy && !r.sum.Compressed {
			t.Rows = 0
			r.countNL = true
		}
		r.table = len(r.sum.Tables)
		r.sum.Tables = append(r.sum.Tables, t)
	}
	r.st = stChunkLen
	return nil
}

func (r *Reader) keepTail(b []byte) {
	if len(b) >= len(r.tail) {
		r.tailN = copy(r.tail[:], b[len(b)-len(r.tail):])
		return
	}
	if r.tailN+len(b) > len(r.tail) {
		drop := r.tailN + len(b) - len(r.tail)
		r.tailN = copy(r.tail[:], r.tail[drop:r.tailN])
	}
	r.tailN += copy(r.tail[r.tailN:], b)
}

// endTable takes pg_dump's end-of-data line ("\." then blank lines, which
// pg_dump 15 writes into the block) out of the row count. A row's line is
// never "\." alone: COPY writes a backslash in data as "\\".
func (r *Reader) endTable() {
	if !r.countNL {
		return
	}
	t := &r.sum.Tables[r.table]
	s := r.tail[:r.tailN]
	nls := 0
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
		nls++
	}
	if nls == 0 || !bytes.HasSuffix(s, []byte(`\.`)) {
		return
	}
	s = s[:len(s)-2]
	if len(s) > 0 && s[len(s)-1] == '\n' || len(s) == 0 && t.Bytes == int64(nls+2) {
		t.Rows -= int64(nls)
	}
}

// where names the part of the archive being read, for errors.
func (r *Reader) where() string {
	switch r.st {
	case stPrefix:
		return "the header"
	case stProg, stStrBody:
		if !r.inEntries {
			return "the header"
		}
		return fmt.Sprintf("the table of contents (entry %d of %d)", len(r.entries)+1, r.tocCount)
	case stBlockID:
		return "a data block's header"
	}
	e := r.entries[r.blk]
	return fmt.Sprintf("the data block of entry %d (%s %s)", e.DumpID, e.Desc, qualified(e.Namespace, e.Tag))
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "." + name
}

// Close says the input ended; it returns the summary of a complete
// archive, or an error wrapping ErrIncomplete.
func (r *Reader) Close() (*Summary, error) {
	r.closed = true
	if r.err != nil {
		return nil, r.err
	}
	if r.st != stBlockType || r.hn != 0 {
		r.err = fmt.Errorf("pgarchive: %w: input ended at offset %d inside %s", ErrIncomplete, r.off, r.where())
		return nil, r.err
	}
	if r.got != r.expected {
		for _, e := range r.entries {
			if e.HadDumper && !e.seen {
				r.err = fmt.Errorf("pgarchive: %w: input ended at offset %d with %d of %d data blocks; none for entry %d (%s %s)",
					ErrIncomplete, r.off, r.got, r.expected, e.DumpID, e.Desc, qualified(e.Namespace, e.Tag))
				return nil, r.err
			}
		}
	}
	s := r.sum
	s.Bytes = r.off
	return &s, nil
}

// Read parses a whole archive from in.
func Read(in io.Reader) (*Summary, error) {
	r := NewReader()
	if _, err := io.Copy(r, in); err != nil {
		return nil, err
	}
	return r.Close()
}
