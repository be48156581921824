package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Object kinds the file grants on, by the name their errors use.
const (
	kindDatabase = "database"
	kindSchema   = "schema"
	kindTable    = "table"
	kindColumn   = "column"
	kindSequence = "sequence"
	kindFunction = "function"
	kindType     = "type"
)

// privileges per kind, in the order the server's aclitems print them
// (acl.h's "arwdDxtXUCTcsAm", INSERT before SELECT), which is also the
// export's order: plan SQL, notes and differences list privileges the
// way the exported file and relacl do. MAINTAIN is PostgreSQL 17+,
// checked against Live.Major at diff time.
var kindPrivileges = map[string][]string{
	kindDatabase: {"CREATE", "TEMPORARY", "CONNECT"},
	kindSchema:   {"USAGE", "CREATE"},
	kindTable:    {"INSERT", "SELECT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"},
	kindColumn:   {"INSERT", "SELECT", "UPDATE", "REFERENCES"},
	kindSequence: {"SELECT", "UPDATE", "USAGE"},
	kindFunction: {"EXECUTE"},
	kindType:     {"USAGE"},
}

// privSet is what one grantee holds on one object: privilege -> held
// with grant option.
type privSet map[string]bool

const withGrantOption = " WITH GRANT OPTION"

// parsePriv reads one privilege as the file writes it: an SQL name, "ALL"
// or either followed by " WITH GRANT OPTION"; TEMP is TEMPORARY. Case and
// inner spacing are forgiven, unknown names for the kind are not.
func parsePriv(kind, s string) (names []string, grant bool, err error) {
	f := strings.Fields(strings.ToUpper(s))
	if n := len(f); n >= 4 && strings.Join(f[n-3:], " ") == "WITH GRANT OPTION" {
		grant, f = true, f[:n-3]
	}
	if len(f) == 2 && f[0] == "ALL" && f[1] == "PRIVILEGES" {
		f = f[:1]
	}
	if len(f) != 1 {
		return nil, false, fmt.Errorf("%s privilege %q: want one name, optionally followed by WITH GRANT OPTION", kind, oneLineText(s))
	}
	name := f[0]
	if name == "TEMP" {
		name = "TEMPORARY"
	}
	if name == "ALL" {
		return kindPrivileges[kind], grant, nil
	}
	for _, p := range kindPrivileges[kind] {
		if p == name {
			return []string{p}, grant, nil
		}
	}
	return nil, false, fmt.Errorf("%q is not a %s privilege (want one of %s, or ALL)", oneLineText(s), kind, strings.Join(kindPrivileges[kind], ", "))
}

// toSet reads a grantee's list; ALL expands to what the major has
// (MAINTAIN only on 17+), an explicit MAINTAIN before 17 is an error.
func toSet(kind string, list []string, major int) (privSet, error) {
	s := privSet{}
	for _, p := range list {
		names, grant, err := parsePriv(kind, p)
		if err != nil {
			return nil, err
		}
		all := len(names) > 1 || strings.HasPrefix(strings.ToUpper(strings.TrimSpace(p)), "ALL")
		for _, n := range names {
			if n == "MAINTAIN" && major > 0 && major < 17 {
				if all {
					continue
				}
				return nil, fmt.Errorf("MAINTAIN needs PostgreSQL 17 or later (the server is %d)", major)
			}
			s[n] = s[n] || grant
		}
	}
	return s, nil
}

// ordered lists a set's privileges in the kind's order.
func (s privSet) ordered(kind string) []string {
	var out []string
	for _, p := range kindPrivileges[kind] {
		if _, ok := s[p]; ok {
			out = append(out, p)
		}
	}
	return out
}

// oneLineText shows a value in an error on one line.
func oneLineText(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// sortedKeys returns a map's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
