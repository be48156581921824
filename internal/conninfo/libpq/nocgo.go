//go:build !(cgo && linux)

package libpq

import "errors"

// Lib is unavailable without cgo.
type Lib struct{ Version int }

// Open fails: loading libpq needs cgo.
func Open(string) (*Lib, error) {
	return nil, errors.New("loading libpq needs cgo (CGO_ENABLED=1 and a C compiler)")
}

// Connect is never reached.
func (l *Lib) Connect(string) (bool, string) { return false, "no libpq" }
