package logscan

import (
	"bytes"
	"hash/maphash"
	"sync"
)

// verdicts remembers the fast path's answers for the statement texts a
// worker saw last. A server's traffic repeats a few statements (prepared
// ones verbatim, in an execute line and again in pgaudit's line), and a
// hash and a compare cost less than the keyword checks. The text itself
// is kept and compared, so a hash collision cannot change an answer.
type verdicts struct {
	seed  maphash.Seed
	slots [verdictSlots]verdictSlot
}

type verdictSlot struct {
	h    uint64
	kind uint8 // 0: empty
	ok   bool
	text []byte
}

const (
	verdictSlots = 1024
	verdictMax   = 512 // longer texts are checked each time (rarely repeated, and memory stays bounded)

	verdictStatement = 1 // statementOfInterest
	verdictAudit     = 2 // mayMatter of an AUDIT line's fields after the statement numbers
)

var verdictPool = sync.Pool{New: func() any { return &verdicts{seed: maphash.MakeSeed()} }}

func (v *verdicts) check(kind uint8, text []byte, f func([]byte) bool) bool {
	if v == nil || len(text) > verdictMax {
		return f(text)
	}
	h := maphash.Bytes(v.seed, text)
	s := &v.slots[(h^uint64(kind))%verdictSlots]
	if s.kind == kind && s.h == h && bytes.Equal(s.text, text) {
		return s.ok
	}
	ok := f(text)
	s.h, s.kind, s.ok = h, kind, ok
	s.text = append(s.text[:0], text...)
	return ok
}

// auditInteresting: a pgaudit line (after "AUDIT: ") can hold a statement
// that matters. Its first three fields (SESSION or OBJECT, the statement
// and substatement numbers) change from line to line and hold no word
// mayMatter looks for (no such word has a comma or a digit), so the
// rest, the same for every run of a prepared statement, is what is
// remembered.
func (v *verdicts) auditInteresting(m []byte) bool {
	rest := m
	switch {
	case bytes.HasPrefix(rest, []byte("SESSION,")):
		rest = rest[len("SESSION,"):]
	case bytes.HasPrefix(rest, []byte("OBJECT,")):
		rest = rest[len("OBJECT,"):]
	default:
		return mayMatter(m)
	}
	for n := 0; n < 2; n++ {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i >= len(rest) || rest[i] != ',' {
			return mayMatter(m)
		}
		rest = rest[i+1:]
	}
	return v.check(verdictAudit, rest, mayMatter[[]byte])
}
