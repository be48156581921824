// Package pwgen generates random passwords from crypto/rand for credential
// rotation: a chosen length and alphabet, every character drawn uniformly
// (rejection sampling, no modulo bias).
package pwgen

import (
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// Alphabet names, as --alphabet takes them (docs/rotate.md).
const (
	Alnum   = "alnum"   // A-Z a-z 0-9 (default): safe in every destination unquoted
	ASCII   = "ascii"   // printable ASCII without space, quote, backslash
	Hex     = "hex"     // 0-9a-f
	Unicode = "unicode" // letters of several scripts that SASLprep leaves unchanged, plus alnum
)

// Alphabets lists the names Generate accepts, default first.
var Alphabets = []string{Alnum, ASCII, Hex, Unicode}

// Length bounds: below MinLength a password is guessable, above MaxLength
// some clients truncate.
const (
	DefaultLength = 32
	MinLength     = 16
	MaxLength     = 1024
)

// Options choose the password's shape. Zero values are the defaults.
type Options struct {
	Length   int    // characters, not bytes; 0: DefaultLength
	Alphabet string // one of Alphabets; "": Alnum
}

// alphabet is a set of distinct runes split into classes; a generated
// password holds at least one rune of every class.
type alphabet struct {
	runes   []rune
	classOf []int // class index of runes[i]
	classes int
}

func span(lo, hi rune, skip ...rune) []rune {
	var rs []rune
next:
	for r := lo; r <= hi; r++ {
		for _, s := range skip {
			if r == s {
				continue next
			}
		}
		rs = append(rs, r)
	}
	return rs
}

var (
	upper  = span('A', 'Z')
	lower  = span('a', 'z')
	digits = span('0', '9')
	// symbols: printable ASCII punctuation without ' " \ (quoting in SQL,
	// shells, pgpass and JSON) and without space (trimmed by many tools).
	symbols = func() []rune {
		var rs []rune
		for r := rune(0x21); r <= 0x7e; r++ {
			if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '\'' || r == '"' || r == '\\') {
				rs = append(rs, r)
			}
		}
		return rs
	}()
	// UnicodeLetters are the non-ASCII runes of the unicode alphabet:
	// Greek capitals and small letters (U+0391-U+03A9 and U+03B1-U+03C9,
	// without the unassigned U+03A2 and the final sigma U+03C2), Cyrillic
	// U+0410-U+044F, and the 256 CJK ideographs U+4E00-U+4EFF. All were
	// assigned in Unicode 3.2 (SASLprep's version), none has a compatibility
	// or canonical decomposition, none is a space, mapped to nothing,
	// prohibited or right-to-left, so SASLprep (PostgreSQL's, libpq's) and
	// PRECIS OpaqueString (pgx's) both leave them as they are: the tests
	// check every one.
	nonASCII = append(append(append(span(0x0391, 0x03A9, 0x03A2), span(0x03B1, 0x03C9, 0x03C2)...), span(0x0410, 0x044F)...), span(0x4E00, 0x4EFF)...)
)

func newAlphabet(classes ...[]rune) alphabet {
	var a alphabet
	for i, c := range classes {
		a.runes = append(a.runes, c...)
		for range c {
			a.classOf = append(a.classOf, i)
		}
	}
	a.classes = len(classes)
	return a
}

var alphabets = map[string]alphabet{
	Alnum:   newAlphabet(upper, lower, digits),
	ASCII:   newAlphabet(upper, lower, digits, symbols),
	Hex:     newAlphabet(digits, span('a', 'f')),
	Unicode: newAlphabet(upper, lower, digits, nonASCII),
}

// Runes returns the characters of the named alphabet (for tests and
// documentation), or nil for an unknown name.
func Runes(name string) []rune {
	if name == "" {
		name = Alnum
	}
	a, ok := alphabets[name]
	if !ok {
		return nil
	}
	return append([]rune(nil), a.runes...)
}

// resolve applies the defaults and checks o.
func resolve(o Options) (int, alphabet, error) {
	n := o.Length
	if n == 0 {
		n = DefaultLength
	}
	if n < MinLength || n > MaxLength {
		return 0, alphabet{}, fmt.Errorf("pwgen: length %d is out of range %d..%d characters", o.Length, MinLength, MaxLength)
	}
	name := o.Alphabet
	if name == "" {
		name = Alnum
	}
	a, ok := alphabets[name]
	if !ok {
		return 0, alphabet{}, fmt.Errorf("pwgen: unknown alphabet %q (one of %s)", o.Alphabet, strings.Join(Alphabets, ", "))
	}
	return n, a, nil
}

// maxTries bounds the redraws for a password missing a class. The worst
// case (unicode, 16 characters) accepts about one draw in nine, so
// reaching this limit (odds below 1e-50) means the random source is broken.
const maxTries = 1000

// Generate returns a new random password. The result is at least as
// strong as Length characters of Alphabet and always contains at least
// one character of each class the alphabet has (policies that require
// them are satisfied). Errors never contain the password.
func Generate(o Options) ([]byte, error) {
	n, a, err := resolve(o)
	if err != nil {
		return nil, err
	}
	idx := make([]int, n)
	seen := make([]bool, a.classes)
	for range maxTries {
		if err := draw(idx, len(a.runes)); err != nil {
			return nil, err
		}
		// Redrawing the whole password until every class is present keeps
		// it uniform over the passwords that have them all; fixing up one
		// position would not.
		clear(seen)
		missing := a.classes
		for _, i := range idx {
			if c := a.classOf[i]; !seen[c] {
				seen[c] = true
				missing--
			}
		}
		if missing > 0 {
			continue
		}
		out := make([]byte, 0, n*utf8.UTFMax)
		for _, i := range idx {
			out = utf8.AppendRune(out, a.runes[i])
		}
		clear(idx)
		return out, nil
	}
	clear(idx)
	return nil, fmt.Errorf("pwgen: no password with every character class in %d draws (broken random source?)", maxTries)
}

// randReader is crypto/rand's; tests replace it to reach the error paths.
var randReader io.Reader = rand.Reader

// draw fills idx with uniform indexes into an alphabet of size n (at most
// 65536): 16-bit values at or above the largest multiple of n are
// rejected, so v%n has no modulo bias.
func draw(idx []int, n int) error {
	const space = 1 << 16
	limit := space - space%n
	buf := make([]byte, 2*len(idx))
	defer clear(buf)
	filled := 0
	for filled < len(idx) {
		if _, err := io.ReadFull(randReader, buf); err != nil {
			return fmt.Errorf("pwgen: reading crypto/rand: %w", err)
		}
		for j := 0; j+1 < len(buf) && filled < len(idx); j += 2 {
			v := int(buf[j])<<8 | int(buf[j+1])
			if v >= limit {
				continue
			}
			idx[filled] = v % n
			filled++
		}
	}
	return nil
}

// Bits is the entropy of a password of o in bits (for the report):
// Length*log2(alphabet size), or 0 for invalid options. Requiring every
// class removes a share of the possible passwords: at 16 characters about
// 0.1 bits (alnum), 0.3 (ascii) and 3.1 of 140 (unicode, where few
// draws hold an ASCII digit); at 32, 1.4 bits of 280 (unicode) and under
// 0.04 for the others.
func Bits(o Options) float64 {
	n, a, err := resolve(o)
	if err != nil {
		return 0
	}
	return float64(n) * math.Log2(float64(len(a.runes)))
}
