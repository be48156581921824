package logscan

import (
	"bytes"
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
	whole := rec
	var f []byte
	more, ok := true, true
	for i := 0; i <= csvSeverityColumn; i++ {
		if !more {
			return false
		}
		f, rec, _, more, ok = csvNext(rec)
		if !ok {
			// Let the full parse report the broken record when it
			// looks like one worth reading.
			return bytes.Contains(whole, []byte(",FATAL,"))
		}
	}
	sev := f
	// SQLSTATE (5 characters), a comma, then the quoted message.
	if !more || len(rec) < 8 || rec[5] != ',' || rec[6] != '"' {
		return false
	}
	msg, _, _, _, ok := csvNext(rec[6:])
	if !ok {
		return true // broken record: let the full parse report it
	}
	return interestingMessage(sev, msg, v)
}
