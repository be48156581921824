// Package privileges computes effective privileges the way the server's
// acl.c does: role membership with inheritance (NOINHERIT before 16, the
// per-grant INHERIT and SET options from 16), PUBLIC, owners' implicit
// grant options, superusers, column privileges, built-in default ACLs and
// the pg_read_all_data / pg_write_all_data / pg_maintain predefined roles,
// and pg_database_owner inside each database (InDatabase). Everything is
// computed in memory from a snapshot: closures once per role, then bit
// tests per object.
package privileges

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Bits of privileges, one per SQL privilege.
type Bits uint32

// Privilege bits in acl.h order.
const (
	Insert Bits = 1 << iota
	Select
	Update
	Delete
	Truncate
	References
	Trigger
	Execute
	Usage
	Create
	Temporary
	Connect
	Set
	AlterSystem
	Maintain
)

var bitNames = []string{"INSERT", "SELECT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "EXECUTE", "USAGE", "CREATE", "TEMPORARY", "CONNECT", "SET", "ALTER SYSTEM", "MAINTAIN"}

// ParsePrivilege reads a privilege name (TEMP is TEMPORARY).
func ParsePrivilege(name string) (Bits, error) {
	if b, ok := bitByName[name]; ok { // the common case: acl.Item names
		return b, nil
	}
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "TEMP" {
		n = "TEMPORARY"
	}
	if b, ok := bitByName[n]; ok {
		return b, nil
	}
	return 0, fmt.Errorf("unknown privilege %q", name)
}

// Introduced says from which major a privilege exists: SET and ALTER
// SYSTEM on parameters from 15, MAINTAIN from 17 (the server refuses the
// name before that, so "no" would be the wrong answer).
func Introduced(b Bits) int {
	switch {
	case b&Maintain != 0:
		return 17
	case b&(Set|AlterSystem) != 0:
		return 15
	}
	return 0
}

// CheckExists is an error naming the major when b does not exist on m's.
func (m *Model) CheckExists(b Bits) error {
	if v := Introduced(b); m.Version > 0 && m.Version < v {
		return fmt.Errorf("privilege %s exists from PostgreSQL %d; this server is %d", b, v, m.Version)
	}
	return nil
}

var bitByName = func() map[string]Bits {
	m := map[string]Bits{}
	for i, n := range bitNames {
		m[n] = 1 << i
	}
	return m
}()

// Names lists the privileges in b.
func (b Bits) Names() []string {
	var out []string
	for i, n := range bitNames {
		if b&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func (b Bits) String() string { return strings.Join(b.Names(), ", ") }

// Kind is an object kind.
type Kind string

// Object kinds.
const (
	Table      Kind = "table"
	Sequence   Kind = "sequence"
	Function   Kind = "function"
	Schema     Kind = "schema"
	Database   Kind = "database"
	Language   Kind = "language"
	LargeObj   Kind = "large object"
	FDWServer  Kind = "foreign server"
	Parameter  Kind = "parameter"
	ColumnKind Kind = "column"
)

// Applicable lists the privileges that exist for a kind.
func Applicable(k Kind) Bits {
	switch k {
	case Table:
		return Insert | Select | Update | Delete | Truncate | References | Trigger | Maintain
	case ColumnKind:
		return Insert | Select | Update | References
	case Sequence:
		return Usage | Select | Update
	case Function:
		return Execute
	case Schema:
		return Usage | Create
	case Database:
		return Create | Temporary | Connect
	case Language, FDWServer:
		return Usage
	case LargeObj:
		return Select | Update
	case Parameter:
		return Set | AlterSystem
	}
	return 0
}

// defaultACL is acldefault(): the ACL an object has while its ACL column
// is NULL, and PUBLIC's part of it.
func defaultACL(k Kind) (owner, public Bits) {
	switch k {
	case Table:
		return Insert | Select | Update | Delete | Truncate | References | Trigger | Maintain, 0
	case Sequence:
		return Usage | Select | Update, 0
	case Function:
		return Execute, Execute
	case Schema:
		return Usage | Create, 0
	case Database:
		return Create | Temporary | Connect, Temporary | Connect
	case Language:
		return Usage, Usage
	case LargeObj:
		return Select | Update, 0
	case FDWServer:
		return Usage, 0
	}
	return 0, 0
}

// Role is one node of the role graph.
type Role struct {
	Name       string
	Super      bool
	Inherit    bool
	Login      bool
	CreateRole bool
	// Replication: before 16 only a superuser may alter such a role,
	// CREATEROLE or not.
	Replication bool
	Predefined  bool
}

// Model is the role graph with its closures, for one server.
type Model struct {
	Version int
	Roles   []Role
	index   map[string]int
	// edges[m] lists the memberships of role m (m is a member of Role).
	edges [][]edge
	// privsOf[m]: roles whose privileges m has (has_privs_of_role, m included).
	privsOf []roleSet
	// memberOf[m]: roles m is a member of by any path (is_member_of_role).
	memberOf []roleSet
	// setTo[m]: roles m can SET ROLE to (16+: SET option on every step).
	setTo []roleSet
	// parents remember one path for explanations.
	privParent []map[int32]int32
	heldBy     []roleSet
	supers     bitset
	// seen is closure's scratch set, left empty between calls.
	seen bitset
	// bootstrap is the bootstrap superuser (OID 10, -2 when unknown): the
	// owner acl.c gives parameters, whose ACLs have no owner column.
	bootstrap int
	// dbOwner maps each database to its owner's index, for
	// pg_database_owner (14+); perDB caches InDatabase's models by owner.
	dbOwner map[string]int
	perDB   map[int]*Model
}

type edge struct {
	to           int
	inherit, set bool
	admin        bool
}

// Build makes the model from a snapshot's roles and memberships.
func Build(s *snapshot.Snapshot) *Model {
	m := &Model{Version: s.MajorVersion(), index: map[string]int{}, bootstrap: -2, dbOwner: map[string]int{}, perDB: map[int]*Model{}}
	for _, r := range s.Roles {
		if r.OID == 10 {
			m.bootstrap = len(m.Roles)
		}
		m.index[r.Name] = len(m.Roles)
		m.Roles = append(m.Roles, Role{Name: r.Name, Super: r.Superuser, Inherit: r.Inherit, Login: r.CanLogin, CreateRole: r.CreateRole,
			Replication: r.Replication, Predefined: r.Predefined()})
	}
	for _, d := range s.Databases {
		if o, ok := m.index[d.Owner]; ok {
			m.dbOwner[d.Name] = o
		}
	}
	m.edges = make([][]edge, len(m.Roles))
	for _, ms := range s.Memberships {
		from, ok1 := m.index[ms.Member]
		to, ok2 := m.index[ms.Role]
		if !ok1 || !ok2 {
			continue
		}
		m.edges[from] = append(m.edges[from], edge{to: to, inherit: ms.Inherit, set: ms.Set, admin: ms.Admin})
	}
	m.closures()
	return m
}

// closures computes privsOf (memberOf and setTo come on first use).
func (m *Model) closures() {
	n := len(m.Roles)
	m.privsOf = make([]roleSet, n)
	m.memberOf = make([]roleSet, n)
	m.setTo = make([]roleSet, n)
	m.seen = newBitset(n)
	m.privParent = make([]map[int32]int32, n)
	for i := 0; i < n; i++ {
		m.privsOf[i], m.privParent[i] = m.closure(i, func(from int, e edge) bool {
			if m.Version >= 16 {
				return e.inherit
			}
			// Before 16: a NOINHERIT role does not pass on what its
			// memberships give (roles_is_member_of, ROLERECURSE_PRIVS).
			return m.Roles[from].Inherit
		})
	}
}

// InDatabase is the model as seen from inside one database: from 14 its
// owner is implicitly a member of pg_database_owner there
// (roles_is_member_of adds the edge for every kind of walk; before 16 a
// NOINHERIT owner passes no privileges on, as for any membership), so
// privileges granted to pg_database_owner, such as CREATE on 15's public
// schema, reach the owner and whoever has the owner's privileges. An
// unknown database, or a major without the role, gives m itself.
func (m *Model) InDatabase(name string) *Model {
	if m.Version < 14 || m.perDB == nil {
		return m
	}
	owner, ok := m.dbOwner[name]
	pdo, ok2 := m.index["pg_database_owner"]
	if !ok || !ok2 {
		return m
	}
	if d, ok := m.perDB[owner]; ok {
		return d
	}
	d := &Model{Version: m.Version, Roles: m.Roles, index: m.index, bootstrap: m.bootstrap, dbOwner: m.dbOwner}
	d.edges = make([][]edge, len(m.edges))
	copy(d.edges, m.edges)
	d.edges[owner] = append(slices.Clip(m.edges[owner]), edge{to: pdo, inherit: true, set: true})
	d.seen = newBitset(len(m.Roles))
	d.closures()
	m.perDB[owner] = d
	return d
}

func (m *Model) memberSet(i int) roleSet {
	if m.memberOf[i].empty() {
		m.memberOf[i], _ = m.closure(i, func(int, edge) bool { return true })
	}
	return m.memberOf[i]
}

func (m *Model) setSet(i int) roleSet {
	if m.Version < 16 {
		return m.memberSet(i) // before 16 every membership allows SET ROLE
	}
	if m.setTo[i].empty() {
		m.setTo[i], _ = m.closure(i, func(_ int, e edge) bool { return e.set })
	}
	return m.setTo[i]
}

// closure walks memberships from start, following edges that follow
// allows; it returns the reached set (never empty: start is in it) and a
// parent array for paths.
func (m *Model) closure(start int, follow func(from int, e edge) bool) (roleSet, map[int32]int32) {
	seen := m.seen
	var parent map[int32]int32 // sparse: closures are small, role counts are not
	seen.add(start)
	reached := []int32{int32(start)} // the BFS queue, kept whole
	for head := 0; head < len(reached); head++ {
		cur := int(reached[head])
		for _, e := range m.edges[cur] {
			if seen.has(e.to) || !follow(cur, e) {
				continue
			}
			seen.add(e.to)
			if parent == nil {
				parent = map[int32]int32{}
			}
			parent[int32(e.to)] = int32(cur)
			reached = append(reached, int32(e.to))
		}
	}
	for _, r := range reached {
		seen.remove(int(r))
	}
	return newRoleSet(reached, len(m.Roles)), parent
}

// RoleIndex finds a role.
func (m *Model) RoleIndex(name string) (int, bool) {
	i, ok := m.index[name]
	return i, ok
}

// HasPrivsOfRole is has_privs_of_role: superusers have every role's privileges.
func (m *Model) HasPrivsOfRole(member, role int) bool {
	return m.Roles[member].Super || m.privsOf[member].has(role)
}

// IsMemberOfRole is is_member_of_role (any path; superusers are members of all).
func (m *Model) IsMemberOfRole(member, role int) bool {
	return m.Roles[member].Super || m.memberSet(member).has(role)
}

// IsAdminOfRole is is_admin_of_role: a role holds ADMIN OPTION on role
// when a role it is a member of, by any path, was granted role WITH
// ADMIN OPTION (superusers administer every role; since 15 no role
// administers itself, and 13-14's self-administration applies only to
// the session user outside SECURITY DEFINER code, which a whole-graph
// model cannot know, so it is left out here too).
func (m *Model) IsAdminOfRole(member, role int) bool {
	if m.Roles[member].Super {
		return true
	}
	if member == role {
		return false
	}
	found := false
	m.memberSet(member).each(func(r int) {
		for _, e := range m.edges[r] {
			if e.to == role && e.admin {
				found = true
			}
		}
	})
	return found
}

// CanSetRole is member_can_set_role (16+: SET option along the path).
func (m *Model) CanSetRole(member, role int) bool {
	return m.Roles[member].Super || m.setSet(member).has(role)
}

// PrivPath returns the inheritance path from member to role (names).
func (m *Model) PrivPath(member, role int) []string {
	if member == role {
		return []string{m.Roles[member].Name}
	}
	p := m.privParent[member]
	if _, ok := p[int32(role)]; !ok {
		return nil
	}
	var rev []string
	for cur := role; cur != member; cur = int(p[int32(cur)]) {
		rev = append(rev, m.Roles[cur].Name)
	}
	rev = append(rev, m.Roles[member].Name)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

// bitset is a set of role indices.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) add(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) remove(i int)   { b[i/64] &^= 1 << (i % 64) }
func (b bitset) has(i int) bool { return i >= 0 && i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0 }

// roleSet is a set of role indices for a closure: a sorted list while it
// is small, as most are (a few roles up a chain), and a bitset once the
// list would be the larger. A bitset per role is n² bits: 50 MB for
// 20,000 roles, where the lists take a few.
type roleSet struct {
	list []int32 // sorted; nil when bits is set
	bits bitset
}

// newRoleSet takes the members (in any order; the slice is reused).
func newRoleSet(members []int32, n int) roleSet {
	if len(members)*32 > n {
		b := newBitset(n)
		for _, r := range members {
			b.add(int(r))
		}
		return roleSet{bits: b}
	}
	slices.Sort(members)
	return roleSet{list: slices.Clip(members)}
}

// empty is true for the zero roleSet: a closure not computed yet.
func (s roleSet) empty() bool { return s.list == nil && s.bits == nil }

func (s roleSet) has(i int) bool {
	if s.bits != nil {
		return s.bits.has(i)
	}
	_, ok := slices.BinarySearch(s.list, int32(i))
	return ok
}

// each calls fn with every member, in increasing order.
func (s roleSet) each(fn func(int)) {
	if s.bits == nil {
		for _, r := range s.list {
			fn(int(r))
		}
		return
	}
	for w, word := range s.bits {
		for ; word != 0; word &= word - 1 {
			fn(w*64 + bits.TrailingZeros64(word))
		}
	}
}

// addTo adds the members to a full bitset.
func (s roleSet) addTo(b bitset) {
	if s.bits != nil {
		for w := range b {
			b[w] |= s.bits[w]
		}
		return
	}
	for _, r := range s.list {
		b.add(int(r))
	}
}
func (b bitset) count() (n int) {
	for _, w := range b {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// ACL is an object ACL compiled to role indices.
type ACL struct {
	Owner   int
	Entries []Entry
}

// Entry is one grantee's privileges (-1 is PUBLIC).
type Entry struct {
	Grantee int
	Privs   Bits
	Grant   Bits // with grant option
}

// Compile turns an ACL into indices; a NULL ACL becomes the kind's
// built-in default.
func (m *Model) Compile(k Kind, owner string, items []acl.Item, isDefault bool) ACL {
	o, ok := m.index[owner]
	if !ok {
		o = -2
	}
	if k == Parameter && owner == "" {
		o = m.bootstrap // pg_parameter_acl has no owner: acl.c uses the bootstrap superuser
	}
	a := ACL{Owner: o}
	if isDefault {
		op, pub := defaultACL(k)
		if op != 0 {
			a.Entries = append(a.Entries, Entry{Grantee: o, Privs: op})
		}
		if pub != 0 {
			a.Entries = append(a.Entries, Entry{Grantee: -1, Privs: pub})
		}
		return a
	}
	for _, it := range items {
		g := -1
		if it.Grantee != acl.Public {
			var ok bool
			if g, ok = m.index[it.Grantee]; !ok {
				continue // a dropped role's leftovers cannot apply
			}
		}
		var e Entry
		e.Grantee = g
		for _, gr := range it.Grants {
			b, err := ParsePrivilege(gr.Privilege)
			if err != nil {
				continue
			}
			e.Privs |= b
			if gr.GrantOption {
				e.Grant |= b
			}
		}
		a.Entries = append(a.Entries, e)
	}
	return a
}

// holders returns, for each role g, the roles that have g's privileges
// (the transpose of privsOf), built on first use.
func (m *Model) holders() []roleSet {
	if m.heldBy != nil {
		return m.heldBy
	}
	n := len(m.Roles)
	m.supers = newBitset(n)
	for i, r := range m.Roles {
		if r.Super {
			m.supers.add(i)
		}
	}
	lists := make([][]int32, n)
	for r := 0; r < n; r++ {
		m.privsOf[r].each(func(g int) { lists[g] = append(lists[g], int32(r)) })
	}
	m.heldBy = make([]roleSet, n)
	for g, l := range lists {
		m.heldBy[g] = newRoleSet(l, n) // r ascends: already sorted
	}
	return m.heldBy
}

// Holders counts the roles that hold priv on an object (superusers,
// PUBLIC grants and inheritance included; column grants and predefined
// data roles left out): the aggregated matrix, one bitset union per ACL
// entry instead of one check per role.
func (m *Model) Holders(o Object, priv Bits) int {
	m = m.InDatabase(o.Database)
	n := len(m.Roles)
	hb := m.holders()
	set := make(bitset, len(m.supers))
	copy(set, m.supers)
	for _, e := range o.acl.Entries {
		if e.Privs&priv == 0 {
			continue
		}
		if e.Grantee == -1 {
			return n
		}
		hb[e.Grantee].addTo(set)
	}
	return set.count()
}
