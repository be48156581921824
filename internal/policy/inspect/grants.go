package inspect

import (
	"sort"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/policy"
)

// privLetters is the order the server prints privileges in; lists in a
// File follow it so that equal grants are equal lists.
const privLetters = "arwdDxtXUCTcsAm"

var (
	privRank  = map[string]int{}
	withGrant = map[string]string{} // "SELECT" -> "SELECT WITH GRANT OPTION", shared strings
)

func init() {
	for i := 0; i < len(privLetters); i++ {
		n, _ := acl.PrivilegeName(privLetters[i])
		privRank[n] = i
		withGrant[n] = n + " WITH GRANT OPTION"
	}
}

// ownerFull is the owner's own full default privileges for an ACL kind
// (acl.Default's letters): what Grants leave implicit.
func ownerFull(kind byte, major int) map[string]bool {
	items, err := acl.Default(kind, "o", major)
	full := map[string]bool{}
	if err != nil {
		return full
	}
	for _, it := range items {
		if it.Grantee == "o" {
			for _, g := range it.Grants {
				full[g.Privilege] = true
			}
		}
	}
	return full
}

const (
	held  = 1
	grant = 2
)

// toGrants turns an ACL into a File's grants: per grantee, privileges in
// server order, " WITH GRANT OPTION" where any grantor gave it. The owner
// is listed only when what it holds is not exactly full (nil full: the
// owner is not special, as for columns).
func toGrants(items []acl.Item, owner string, full map[string]bool) policy.Grants {
	per := map[string]map[string]uint8{}
	for _, it := range items {
		m := per[it.Grantee]
		if m == nil {
			m = map[string]uint8{}
			per[it.Grantee] = m
		}
		for _, g := range it.Grants {
			m[g.Privilege] |= held
			if g.GrantOption {
				m[g.Privilege] |= grant
			}
		}
	}
	out := policy.Grants{}
	if full != nil {
		m := per[owner]
		same := len(m) == len(full)
		for p, f := range m {
			if !full[p] || f&grant != 0 {
				same = false
			}
		}
		if same {
			delete(per, owner)
		} else if m == nil {
			per[owner] = map[string]uint8{} // revoked from itself: holds nothing
		}
	}
	for who, m := range per {
		out[who] = privList(m)
	}
	return out
}

func privList(m map[string]uint8) []string {
	names := make([]string, 0, len(m))
	for p := range m {
		names = append(names, p)
	}
	sort.Slice(names, func(i, j int) bool { return privRank[names[i]] < privRank[names[j]] })
	for i, p := range names {
		if m[p]&grant != 0 {
			names[i] = withGrant[p]
		}
	}
	return names
}

// grantCache shares the Grants of equal ACLs: 140k tables hold a few
// dozen distinct ACLs, and parsing and building each once keeps a read in
// seconds. The maps it returns are shared: read-only.
type grantCache struct {
	in    *acl.Interner
	major int
	full  map[byte]map[string]bool
	m     map[cacheKey]map[string]policy.Grants
}

type cacheKey struct {
	kind  byte
	owner string
}

func newGrantCache(in *acl.Interner, major int) *grantCache {
	return &grantCache{in: in, major: major, full: map[byte]map[string]bool{}, m: map[cacheKey]map[string]policy.Grants{}}
}

// nullACL keys the cache for a NULL ACL (no text form starts with NUL).
const nullACL = "\x00"

// get returns the grants of an ACL given as the text of aclitem[] (or
// nullACL for NULL: the kind's built-in default), owned by owner.
// columns: no owner semantics, and NULL means nothing granted.
func (c *grantCache) get(kind byte, owner string, text []byte, columns bool) (policy.Grants, error) {
	k := cacheKey{kind, owner}
	byText := c.m[k]
	if byText == nil {
		byText = map[string]policy.Grants{}
		c.m[k] = byText
	}
	if g, ok := byText[string(text)]; ok { // no allocation for the lookup
		return g, nil
	}
	var items []acl.Item
	var err error
	if string(text) == nullACL {
		if !columns {
			items, err = acl.Default(kind, owner, c.major)
		}
	} else {
		items, err = c.in.ParseArrayText(string(text))
	}
	if err != nil {
		return nil, err
	}
	var full map[string]bool
	if !columns {
		full = c.full[kind]
		if full == nil {
			full = ownerFull(kind, c.major)
			c.full[kind] = full
		}
	}
	g := toGrants(items, owner, full)
	byText[string(text)] = g
	return g, nil
}
