package inventory

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a place in an inventory file. Col is 0 when only the line is
// known (YAML syntax errors: the parser reports lines only).
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	if p.Col == 0 {
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

func posOf(file string, n *yaml.Node) Pos { return Pos{File: file, Line: n.Line, Col: n.Column} }

// Error is one problem in an inventory, at its place. Messages never
// hold a value that may be a secret.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errors are all the problems found, in the order the files were read; Load returns them
// as one error.
type Errors []*Error

// maxErrors stops the list of a hopeless file (random bytes) from
// growing without bound.
const maxErrors = 50

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// errs collects errors while loading.
type errs struct{ list Errors }

func (c *errs) add(p Pos, format string, args ...any) {
	if len(c.list) < maxErrors {
		c.list = append(c.list, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
	}
}

func (c *errs) full() bool { return len(c.list) >= maxErrors }

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}
