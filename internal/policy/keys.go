package policy

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"weak"

	"gopkg.in/yaml.v3"
)

// checkKeys refuses a key the model does not have, before yaml's decoder
// does (whose message names Go types): the error names the key, where
// it is (role "app", table "d.s.t") and the nearest valid key or all of
// them.
//
// It also records the first line each role name is used on (a grantee,
// an owner, a membership), so a diff error about a role names the line.
func checkKeys(file string, n *yaml.Node, t reflect.Type, where string, uses map[string]int) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return checkKeys(file, n.Alias, t, where, uses)
	}
	use := func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && n.Value != "" && uses[n.Value] == 0 {
			uses[n.Value] = n.Line
		}
	}
	switch {
	case t == reflect.TypeFor[Grants]() && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			use(n.Content[i])
		}
		return nil
	case t == reflect.TypeFor[Membership]() && n.Kind == yaml.ScalarNode:
		use(n)
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // a type error the decoder reports
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f
			names = append(names, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == "<<" && n.Content[i].Tag == "!!merge" {
				// A merge key: its mapping (or list of them) holds this type's keys.
				v := n.Content[i+1]
				list := []*yaml.Node{v}
				if v.Kind == yaml.SequenceNode {
					list = v.Content
				}
				for _, m := range list {
					if err := checkKeys(file, m, t, where, uses); err != nil {
						return err
					}
				}
				continue
			}
			f, ok := fields[k]
			if !ok {
				hint := "valid keys: " + strings.Join(names, ", ")
				if near := nearest(k, names); near != "" {
					hint = fmt.Sprintf("did you mean %q? (%s)", near, hint)
				}
				return fmt.Errorf("%s:%d: unknown key %q in %s; %s", file, n.Content[i].Line, oneLineText(k), where, hint)
			}
			if v := n.Content[i+1]; roleField[k] {
				use(v)
				if v.Kind == yaml.SequenceNode {
					for _, e := range v.Content {
						use(e)
					}
				}
			}
			if err := checkKeys(file, n.Content[i+1], f.Type, childLabel(f.Type, k, where, ""), uses); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(file, n.Content[i+1], t.Elem(), childLabel(t.Elem(), n.Content[i].Value, where, "map"), uses); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			if err := checkKeys(file, c, t.Elem(), fmt.Sprintf("entry %d of %s", i+1, where), uses); err != nil {
				return err
			}
		}
	}
	return nil
}

// roleField: struct keys whose value names a role (or a list of them).
var roleField = map[string]bool{"owner": true, "role": true, "grantor": true, "roles": true, "as": true}

// kindLabels name what a mapping of the model is, for errors.
var kindLabels = map[reflect.Type]string{
	reflect.TypeFor[Role]():              "role",
	reflect.TypeFor[Database]():          "database",
	reflect.TypeFor[Schema]():            "schema",
	reflect.TypeFor[Object]():            "object",
	reflect.TypeFor[DefaultPrivileges](): "default privileges of role",
	reflect.TypeFor[RLS]():               "rls of table",
	reflect.TypeFor[RowPolicy]():         "policy",
}

// childLabel: a map entry of a labelled kind is named by its key (within
// its parent's name, "d.s.t"); a field keeps its parent's label with the
// field name.
func childLabel(t reflect.Type, key, parent, how string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if how != "map" {
		return key + " of " + parent
	}
	kind, ok := kindLabels[t]
	if !ok {
		return fmt.Sprintf("%q in %s", key, parent)
	}
	// The parent names the enclosing object: `schema "d.s"` and so on.
	name := key
	if i := strings.Index(parent, `"`); i >= 0 && kind != "role" && kind != "database" && kind != "default privileges of role" {
		if j := strings.Index(parent[i+1:], `"`); j >= 0 {
			name = parent[i+1:i+1+j] + "." + key
		}
	}
	if kind == "object" {
		f, _, _ := strings.Cut(parent, " of ")
		kind = map[string]string{"tables": "table", "sequences": "sequence", "functions": "function"}[f]
		if kind == "" {
			kind = "object"
		}
	}
	return fmt.Sprintf("%s %q", kind, name)
}

// nearest is the valid key within two edits of k, if one is.
func nearest(k string, names []string) string {
	best, dist := "", 3
	for _, n := range names {
		if d := editDistance(k, n); d < dist {
			best, dist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// badIndent finds the line a "did not find expected key" error is
// about. yaml reports where the enclosing mapping starts (0-based, so
// one line early); the culprit is the first line after it that dedents
// to a column no open block uses, or indents deeper under a line that
// already holds its value. 0 when no such line is found.
func badIndent(data []byte, start int) (line, col int) {
	lines := strings.Split(string(data), "\n")
	if start < 1 || start > len(lines) {
		return 0, 0
	}
	indent := func(s string) (int, bool) {
		t := strings.TrimLeft(s, " ")
		if t == "" || strings.HasPrefix(t, "#") {
			return 0, false
		}
		return len(s) - len(t), true
	}
	base, ok := indent(lines[start-1])
	if !ok {
		return 0, 0
	}
	stack := []int{base}
	opens := func(s string) bool { // the line's value continues below it
		t := strings.TrimSpace(s)
		if i := strings.Index(t, " #"); i >= 0 {
			t = strings.TrimSpace(t[:i])
		}
		return strings.HasSuffix(t, ":") || t == "-" || strings.HasSuffix(t, "|") || strings.HasSuffix(t, ">") ||
			strings.HasSuffix(t, "|-") || strings.HasSuffix(t, ">-")
	}
	prev := lines[start-1]
	for i := start; i < len(lines); i++ {
		in, ok := indent(lines[i])
		if !ok {
			continue
		}
		if in < base {
			return 0, 0
		}
		top := stack[len(stack)-1]
		switch {
		case in > top && opens(prev):
			stack = append(stack, in)
		case in > top:
			return i + 1, in + 1
		default:
			for len(stack) > 1 && stack[len(stack)-1] > in {
				stack = stack[:len(stack)-1]
			}
			if stack[len(stack)-1] != in {
				return i + 1, in + 1
			}
		}
		prev = lines[i]
	}
	return 0, 0
}

// uses keeps, for each File that Parse returned, the first line each
// role name is used on. Keyed weakly, so a File that is dropped takes
// its entry with it; a File built in code has none.
var uses sync.Map // weak.Pointer[File] -> map[string]int

func rememberUses(f *File, u map[string]int) {
	k := weak.Make(f)
	uses.Store(k, u)
	runtime.AddCleanup(f, func(k weak.Pointer[File]) { uses.Delete(k) }, k)
}

func useLine(f *File, role string) int {
	v, ok := uses.Load(weak.Make(f))
	if !ok {
		return 0
	}
	return v.(map[string]int)[role]
}

// LineError is a diff error placed at a line of the policy file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// unknownRole is a role the file names that neither it nor the server has.
type unknownRole struct {
	role string
	text string
}

func (e *unknownRole) Error() string { return e.text }

// placeErr puts an error about a role at the line the file first uses it.
func placeErr(f *File, err error) error {
	var u *unknownRole
	if errors.As(err, &u) {
		if line := useLine(f, u.role); line > 0 {
			return &LineError{Line: line, Err: err}
		}
	}
	return err
}
