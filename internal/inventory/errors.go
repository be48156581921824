package inventory

import (
	"fmt"
	"sort"
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

// Errors are all the problems found, file by file in the order the
// files were read (an included file after the file including it), and
// within a file by line and column. Load returns them as one error.
type Errors []*Error

// maxErrors is how many problems Load lists; when there are more, one
// last entry says so. It stops the list of a hopeless file (random bytes)
// from growing without bound.
const maxErrors = 50

// maxCollect bounds the problems gathered before sorting: enough that
// the first maxErrors in file order are among them, and a bound on the
// work a hopeless inventory makes.
const maxCollect = 20 * maxErrors

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
type errs struct {
	list  Errors
	order map[string]int // file -> the order it was first read in
}

// file records that path is read now: its errors sort after those of
// the files read before it.
func (c *errs) file(path string) {
	if c.order == nil {
		c.order = map[string]int{}
	}
	if _, ok := c.order[path]; !ok {
		c.order[path] = len(c.order)
	}
}

func (c *errs) add(p Pos, format string, args ...any) {
	if len(c.list) < maxCollect {
		c.list = append(c.list, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
	}
}

func (c *errs) full() bool { return len(c.list) >= maxCollect }

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	list := append(Errors(nil), c.list...)
	rank := func(f string) int {
		if i, ok := c.order[f]; ok {
			return i
		}
		return len(c.order)
	}
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i].Pos, list[j].Pos
		if ra, rb := rank(a.File), rank(b.File); ra != rb {
			return ra < rb
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	if len(list) > maxErrors {
		more := "more problems follow"
		if !c.full() {
			more = fmt.Sprintf("%d more problems follow", len(list)-maxErrors)
		}
		list = append(list[:maxErrors:maxErrors], &Error{Pos: list[maxErrors].Pos, Msg: more + fmt.Sprintf(" (only the first %d are listed)", maxErrors)})
	}
	return list
}
