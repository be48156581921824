package logscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strings"
)

// csvlog records are RFC 4180 CSV with a fixed column order. A small
// splitter that returns sub-slices of the record is several times faster
// than encoding/csv here (no reader, no per-record buffers), and the fast
// path can skip to the severity column without splitting the rest.

// csvNext splits the first field off a record. field is the raw value
// (quotes removed, doubled quotes still doubled: escaped says so); more
// is false for the last field; ok is false for an unterminated quote or
// bytes after a closing quote.
func csvNext(rec []byte) (field, rest []byte, escaped, more, ok bool) {
	if len(rec) > 0 && rec[0] == '"' {
		i := 1
		for {
			q := bytes.IndexByte(rec[i:], '"')
			if q < 0 {
				return nil, nil, false, false, false
			}
			i += q
			if i+1 < len(rec) && rec[i+1] == '"' {
				escaped = true
				i += 2
				continue
			}
			break
		}
		field, rest = rec[1:i], rec[i+1:]
		if len(rest) == 0 {
			return field, nil, escaped, false, true
		}
		if rest[0] != ',' {
			return nil, nil, false, false, false
		}
		return field, rest[1:], escaped, true, true
	}
	// Unquoted fields are short (numbers, times, ids): a plain loop beats
	// a call to IndexByte.
	for c := 0; c < len(rec); c++ {
		if rec[c] == ',' {
			return rec[:c], rec[c+1:], false, true, true
		}
	}
	return rec, nil, false, false, true
}

// splitCSVRecord splits a whole csvlog record (trailing newlines allowed)
// into its fields, appended to dst.
func splitCSVRecord(rec []byte, dst []string) ([]string, bool) {
	rec = bytes.TrimRight(rec, "\r\n") // blank lines after a record belong to none
	for {
		f, rest, esc, more, ok := csvNext(rec)
		if !ok {
			return dst, false
		}
		s := string(f)
		if esc {
			s = strings.ReplaceAll(s, `""`, `"`)
		}
		dst = append(dst, s)
		if !more {
			return dst, true
		}
		rec = rest
	}
}

// csvSeverityColumn is the index of error_severity in a csvlog record.
const csvSeverityColumn = 11

// csvInteresting is the fast path for csvlog: skip to the severity
// column, then look at the start of the message two columns on.
func csvInteresting(rec []byte, v *verdicts) bool {
	sev, rest, more, st := csvSkip(rec, csvSeverityColumn)
	switch st {
	case csvBroken:
		// Let the full parse report the broken record when it looks
		// like one worth reading.
		return bytes.Contains(rec, []byte(",FATAL,"))
	case csvShort:
		return false
	}
	// SQLSTATE (5 characters), a comma, then the quoted message.
	if !more || len(rest) < 8 || rest[5] != ',' || rest[6] != '"' {
		return false
	}
	msg, _, _, _, ok := csvNext(rest[6:])
	if !ok {
		return true // broken record: let the full parse report it
	}
	if interestingMessage(sev, msg, v) {
		return true
	}
	// An error's statement (what stderr writes on a STATEMENT line of its
	// own): only records above LOG carry one, and those are few.
	if string(sev) == "LOG" {
		return false
	}
	q, _, _, qst := csvSkip(rec, csvQueryColumn)
	return qst == csvFound && mayHoldSecret(q)
}

// Columns of a csvlog record read besides the severity.
const (
	csvQueryColumn = 19
	csvAppColumn   = 22
)

const (
	csvFound = iota
	csvShort // fewer fields
	csvBroken
)

// csvSkip is csvNext applied n+1 times: field n (raw) and what follows
// it. The fields before the message are short (times, numbers, names),
// and a call per field cost more than the fields: this searches eight
// bytes a step, in line.
func csvSkip(rec []byte, n int) (field, rest []byte, more bool, status int) {
	i := 0
	for f := 0; ; f++ {
		if i < len(rec) && rec[i] == '"' {
			j := i + 1
			for {
				j = indexByteFrom(rec, j, '"')
				if j < 0 {
					return nil, nil, false, csvBroken
				}
				if j+1 < len(rec) && rec[j+1] == '"' {
					j += 2
					continue
				}
				break
			}
			field, i = rec[i+1:j], j+1
			if i < len(rec) && rec[i] != ',' {
				return nil, nil, false, csvBroken
			}
		} else {
			j := indexByteFrom(rec, i, ',')
			if j < 0 {
				j = len(rec)
			}
			field, i = rec[i:j], j
		}
		more = i < len(rec)
		if more {
			i++
		}
		if f == n {
			return field, rec[i:], more, csvFound
		}
		if !more {
			return nil, nil, false, csvShort
		}
	}
}

// indexByteFrom is the index of c in b at or after i, or -1, found eight
// bytes a step: for the short distances here an IndexByte call costs
// more than the search. (The lowest byte the zero-byte trick flags is
// always a real match.)
func indexByteFrom(b []byte, i int, c byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	pat := uint64(c) * ones
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:]) ^ pat
		if m := (x - ones) &^ x & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}
