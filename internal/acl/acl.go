// Package acl reads PostgreSQL access control items (aclitem) as the server
// prints them: grantee=privileges/grantor, with names quoted when they hold
// anything but letters, digits and underscores, and an empty grantee for
// PUBLIC.
package acl

import (
	"fmt"
	"sort"
	"strings"
)

// Public is the grantee name used for PUBLIC (the empty grantee).
const Public = "PUBLIC"

// Privilege letters, as in src/include/utils/acl.h.
var privNames = map[byte]string{
	'a': "INSERT", 'r': "SELECT", 'w': "UPDATE", 'd': "DELETE", 'D': "TRUNCATE",
	'x': "REFERENCES", 't': "TRIGGER", 'X': "EXECUTE", 'U': "USAGE", 'C': "CREATE",
	'T': "TEMPORARY", 'c': "CONNECT", 's': "SET", 'A': "ALTER SYSTEM", 'm': "MAINTAIN",
}

// privOrder is the order the server prints privileges in.
const privOrder = "arwdDxtXUCTcsAm"

// PrivilegeName returns the SQL name of a privilege letter.
func PrivilegeName(c byte) (string, bool) { n, ok := privNames[c]; return n, ok }

// Grant is one privilege held by a grantee.
type Grant struct {
	Privilege   string `json:"privilege"` // SQL name: SELECT, USAGE, ...
	GrantOption bool   `json:"grant_option,omitempty"`
}

// Item is one aclitem.
type Item struct {
	Grantee string  `json:"grantee"` // role name, or PUBLIC
	Grantor string  `json:"grantor"`
	Grants  []Grant `json:"grants"`
}

// Has reports whether the item grants the privilege (by SQL name).
func (it Item) Has(priv string) bool {
	for _, g := range it.Grants {
		if g.Privilege == priv {
			return true
		}
	}
	return false
}

// String prints the item the way the server does.
func (it Item) String() string {
	var sb strings.Builder
	if it.Grantee != Public {
		sb.WriteString(QuoteName(it.Grantee))
	}
	sb.WriteByte('=')
	held := map[string]bool{}
	grant := map[string]bool{}
	for _, g := range it.Grants {
		held[g.Privilege] = true
		grant[g.Privilege] = grant[g.Privilege] || g.GrantOption
	}
	for i := 0; i < len(privOrder); i++ {
		n := privNames[privOrder[i]]
		if held[n] {
			sb.WriteByte(privOrder[i])
			if grant[n] {
				sb.WriteByte('*')
			}
		}
	}
	sb.WriteByte('/')
	sb.WriteString(QuoteName(it.Grantor))
	return sb.String()
}

// QuoteName quotes a role name as aclitem output does.
func QuoteName(s string) string {
	safe := s != ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Interner shares what the ACLs of a large catalog repeat: role names
// (a few thousand roles name 800k aclitems) and privilege lists (a few
// dozen distinct ones). Items parsed through it share their strings and
// Grants slices, so those must be treated as read-only (every slice is
// full to capacity: an append copies). The zero value is not usable; a
// nil *Interner shares nothing. Not safe for concurrent use.
type Interner struct {
	names  map[string]string
	grants map[string][]Grant
}

// NewInterner returns an interner that knows names already (the roles
// of the server: their strings are then the ones shared).
func NewInterner(names ...string) *Interner {
	in := &Interner{names: make(map[string]string, len(names)), grants: map[string][]Grant{}}
	for _, n := range names {
		in.names[n] = n
	}
	return in
}

// Name returns the shared copy of s (s itself without an interner).
func (in *Interner) Name(s string) string {
	if in == nil {
		return s
	}
	if v, ok := in.names[s]; ok {
		return v
	}
	v := strings.Clone(s) // s may be part of a much larger string
	in.names[v] = v
	return v
}

// NameBytes is Name for bytes that are only borrowed (a driver's buffer).
func (in *Interner) NameBytes(b []byte) string {
	if in == nil {
		return string(b)
	}
	if v, ok := in.names[string(b)]; ok { // no copy for the lookup
		return v
	}
	v := string(b)
	in.names[v] = v
	return v
}

// ParseItem parses one aclitem in its text form.
func ParseItem(s string) (Item, error) { return (*Interner)(nil).ParseItem(s) }

// ParseItem parses one aclitem in its text form, sharing names and
// privilege lists.
func (in *Interner) ParseItem(s string) (Item, error) {
	var it Item
	grantee, rest, err := in.readName(s, 0)
	if err != nil {
		return it, fmt.Errorf("aclitem %q: %v", s, err)
	}
	if rest >= len(s) || s[rest] != '=' {
		return it, fmt.Errorf("aclitem %q: missing \"=\" sign", s)
	}
	it.Grantee = grantee
	if grantee == "" {
		it.Grantee = Public
	}
	i := rest + 1
	end := strings.IndexByte(s[i:], '/')
	if end < 0 {
		end = len(s)
	} else {
		end += i
	}
	mode := s[i:end]
	if g, ok := in.sharedGrants(mode); ok {
		it.Grants, i = g, end
	} else {
		for i < len(s) && s[i] != '/' {
			n, ok := privNames[s[i]]
			if !ok {
				return it, fmt.Errorf("aclitem %q: invalid mode character %q", s, s[i])
			}
			g := Grant{Privilege: n}
			if i+1 < len(s) && s[i+1] == '*' {
				g.GrantOption = true
				i++
			}
			it.Grants = append(it.Grants, g)
			i++
		}
		in.keepGrants(mode, it.Grants)
	}
	if i >= len(s) {
		return it, fmt.Errorf("aclitem %q: missing \"/\" and grantor", s)
	}
	grantor, end, err := in.readName(s, i+1)
	if err != nil {
		return it, fmt.Errorf("aclitem %q: %v", s, err)
	}
	if grantor == "" {
		return it, fmt.Errorf("aclitem %q: missing grantor name", s)
	}
	if end != len(s) {
		return it, fmt.Errorf("aclitem %q: extra garbage at the end", s)
	}
	it.Grantor = grantor
	return it, nil
}

func (in *Interner) sharedGrants(mode string) ([]Grant, bool) {
	if in == nil {
		return nil, false
	}
	g, ok := in.grants[mode]
	return g, ok
}

// keepGrants remembers the privileges of a mode string that parsed.
func (in *Interner) keepGrants(mode string, g []Grant) {
	if in != nil {
		in.grants[strings.Clone(mode)] = g[:len(g):len(g)]
	}
}

// readName reads a possibly double-quoted name starting at i and returns it
// and the index just past it.
func (in *Interner) readName(s string, i int) (string, int, error) {
	// Most names are plain: a slice of s, no copy.
	for j := i; ; j++ {
		if j == len(s) || s[j] == '=' || s[j] == '/' || s[j] == ' ' {
			return in.Name(s[i:j]), j, nil
		}
		if s[j] == '"' {
			break
		}
	}
	var sb strings.Builder
	inQuote := false
	for i < len(s) {
		c := s[i]
		if c == '"' {
			if inQuote && i+1 < len(s) && s[i+1] == '"' {
				sb.WriteByte('"')
				i += 2
				continue
			}
			inQuote = !inQuote
			i++
			continue
		}
		if !inQuote && (c == '=' || c == '/' || c == ' ') {
			break
		}
		sb.WriteByte(c)
		i++
	}
	if inQuote {
		return "", i, fmt.Errorf("unterminated quoted name")
	}
	return in.Name(sb.String()), i, nil
}

// ParseList parses a list of aclitems as read from a text[] column.
func ParseList(items []string) ([]Item, error) { return (*Interner)(nil).ParseList(items) }

// ParseList parses a list of aclitems as read from a text[] column,
// sharing names and privilege lists.
func (in *Interner) ParseList(items []string) ([]Item, error) {
	out := make([]Item, 0, len(items))
	for _, s := range items {
		it, err := in.ParseItem(s)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

// Exploded is one (grantor, grantee, privilege, grantable) row, as
// aclexplode() returns it.
type Exploded struct {
	Grantor, Grantee, Privilege string
	Grantable                   bool
}

// Explode flattens items into rows, sorted for comparison.
func Explode(items []Item) []Exploded {
	var out []Exploded
	for _, it := range items {
		for _, g := range it.Grants {
			out = append(out, Exploded{it.Grantor, it.Grantee, g.Privilege, g.GrantOption})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Grantee != b.Grantee {
			return a.Grantee < b.Grantee
		}
		if a.Privilege != b.Privilege {
			return a.Privilege < b.Privilege
		}
		return a.Grantor < b.Grantor
	})
	return out
}

// Holds reports whether grantee (or PUBLIC, when includePublic) holds priv
// directly in items.
func Holds(items []Item, grantee, priv string) bool {
	for _, it := range items {
		if it.Grantee == grantee && it.Has(priv) {
			return true
		}
	}
	return false
}

// ParseArrayText parses an aclitem[] in its text form ({a=r/b,"c d=r/b"}),
// which is cheaper to pull than a text[] for 100k rows.
func ParseArrayText(s string) ([]Item, error) { return (*Interner)(nil).ParseArrayText(s) }

// ParseArrayText parses an aclitem[] in its text form, sharing names and
// privilege lists.
func (in *Interner) ParseArrayText(s string) ([]Item, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("aclitem array %q: missing braces", s)
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return nil, nil
	}
	// Sized once: a comma inside a quoted name only over-counts.
	out := make([]Item, 0, strings.Count(body, ",")+1)
	for i := 0; i < len(body); {
		var elem string
		if body[i] == '"' {
			var sb strings.Builder
			j := i + 1
			for ; j < len(body) && body[j] != '"'; j++ {
				if body[j] == '\\' && j+1 < len(body) {
					j++
				}
				sb.WriteByte(body[j])
			}
			if j >= len(body) {
				return nil, fmt.Errorf("aclitem array %q: unterminated quote", s)
			}
			elem, i = sb.String(), j+1
		} else {
			j := strings.IndexByte(body[i:], ',')
			if j < 0 {
				j = len(body) - i
			}
			elem, i = body[i:i+j], i+j
		}
		it, err := in.ParseItem(elem)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
		if i < len(body) {
			if body[i] != ',' {
				return nil, fmt.Errorf("aclitem array %q: expected a comma", s)
			}
			i++
		}
	}
	return out, nil
}
