// Package pwgen generates random passwords from crypto/rand for credential
// rotation: a chosen length and alphabet, every character drawn uniformly
// (rejection sampling, no modulo bias).
package pwgen

import "errors"

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

// Generate returns a new random password. The result is at least as
// strong as Length characters of Alphabet and always contains at least
// one character of each class the alphabet has (policies that require
// them are satisfied). Errors never contain the password.
func Generate(o Options) ([]byte, error) {
	return nil, errors.New("pwgen: not built yet")
}

// Bits is the entropy of a password of o in bits (for the report).
func Bits(o Options) float64 { return 0 }
