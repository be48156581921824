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

// ParseItem parses one aclitem in its text form.
func ParseItem(s string) (Item, error) {
	var it Item
	grantee, rest, err := readName(s, 0)
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
	if i >= len(s) {
		return it, fmt.Errorf("aclitem %q: missing \"/\" and grantor", s)
	}
	grantor, end, err := readName(s, i+1)
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

// readName reads a possibly double-quoted name starting at i and returns it
// and the index just past it.
func readName(s string, i int) (string, int, error) {
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
	return sb.String(), i, nil
}

// ParseList parses a list of aclitems as read from a text[] column.
func ParseList(items []string) ([]Item, error) {
	out := make([]Item, 0, len(items))
	for _, s := range items {
		it, err := ParseItem(s)
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
func ParseArrayText(s string) ([]Item, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("aclitem array %q: missing braces", s)
	}
	body := s[1 : len(s)-1]
	var out []Item
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
		it, err := ParseItem(elem)
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
