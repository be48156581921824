package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// The changed file: the export with a change touching many objects, of
// the kinds a real estate sees in one review.
const (
	newRoles       = 500 // roles added (login, each in a group)
	changedMembers = 200 // roles whose memberships change (one dropped, one added)
)

// changeSummary says what change made, for the report.
type changeSummary struct {
	reader        string // the role given SELECT on every table of one database's schemas
	readerDB      string
	readerSchemas int
	readerObjects int // object entries ("*" included) the SELECT went into
	added         int
	members       int
	removed       string // the role whose grants were removed everywhere
	removedGrants int    // grant entries removed
}

func (s changeSummary) String() string {
	return fmt.Sprintf("SELECT for %s on every table of %d schemas of %s (%d entries), %d roles added, %d roles' memberships changed, "+
		"%s's grants removed everywhere (%d entries)", s.reader, s.readerSchemas, s.readerDB, s.readerObjects, s.added, s.members,
		s.removed, s.removedGrants)
}

// change writes to out the file at in, changed.
func change(in, out string) (changeSummary, error) {
	data, err := os.ReadFile(in)
	if err != nil {
		return changeSummary{}, err
	}
	var f policy.File
	if err := yaml.Unmarshal(data, &f); err != nil {
		return changeSummary{}, fmt.Errorf("%s: %v", in, err)
	}
	s, err := changeFile(&f)
	if err != nil {
		return s, fmt.Errorf("%s: %v", in, err)
	}
	// Indented as the export is, so that a diff of the two shows the change.
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(2)
	if err := e.Encode(&f); err != nil {
		return s, err
	}
	return s, os.WriteFile(out, b.Bytes(), 0o644)
}

var benchRole = regexp.MustCompile(`^r([0-9]+)$`)

// changeFile makes the change in f: deterministic, so that every run
// times the same plan.
func changeFile(f *policy.File) (changeSummary, error) {
	var s changeSummary
	if len(f.Roles) == 0 {
		return s, fmt.Errorf("no roles in the file")
	}
	owners := ownersOf(f)
	count := grantCounts(f)
	// The bench's roles r<n> in number order.
	var rs []string
	for _, n := range sortedKeys(f.Roles) {
		if benchRole.MatchString(n) {
			rs = append(rs, n)
		}
	}
	slices.SortFunc(rs, func(a, b string) int { return roleNumber(a) - roleNumber(b) })
	if len(rs) < changedMembers+2 {
		return s, fmt.Errorf("%d roles r<n>, want at least %d", len(rs), changedMembers+2)
	}
	// The reader owns nothing (its implicit privileges would hide the
	// grant); the removed role is the one granted the most, besides.
	for _, r := range rs {
		if !owners[r] {
			s.reader = r
			break
		}
	}
	for _, r := range sortedKeys(f.Roles) {
		if r != s.reader && (s.removed == "" || count[r] > count[s.removed]) {
			s.removed = r
		}
	}
	if s.reader == "" || count[s.removed] == 0 {
		return s, fmt.Errorf("no role owning nothing, or no role granted anything")
	}

	// SELECT for the reader on every table of the first database that
	// has schemas: on each entry that manages grants, "*" included.
	for _, dn := range sortedKeys(f.Databases) {
		d := f.Databases[dn]
		if d == nil || len(d.Schemas) == 0 {
			continue
		}
		s.readerDB = dn
		for _, sn := range sortedKeys(d.Schemas) {
			sc := d.Schemas[sn]
			if sc == nil || sc.Tables == nil {
				continue
			}
			s.readerSchemas++
			for _, on := range sortedKeys(sc.Tables) {
				o := sc.Tables[on]
				if o == nil || o.Grants == nil {
					continue // falls back to "*"
				}
				if !slices.Contains(o.Grants[s.reader], "SELECT") {
					o.Grants[s.reader] = append(o.Grants[s.reader], "SELECT")
				}
				s.readerObjects++
			}
		}
		break
	}

	// The removed role's grants, everywhere.
	s.removedGrants = forEachGrants(f, func(g policy.Grants) int {
		if _, ok := g[s.removed]; ok {
			delete(g, s.removed)
			return 1
		}
		return 0
	})

	// New roles, each in a group role the file has (or none).
	var groups []string
	for _, n := range sortedKeys(f.Roles) {
		if r := f.Roles[n]; r != nil && (r.Login == nil || !*r.Login) && !benchRole.MatchString(n) && !owners[n] && n != "postgres" {
			groups = append(groups, n)
		}
	}
	yes := true
	for i := 0; i < newRoles; i++ {
		r := &policy.Role{Login: &yes}
		if len(groups) > 0 {
			r.MemberOf = policy.Memberships{{Role: groups[i%len(groups)]}}
		}
		name := fmt.Sprintf("bench_new_%03d", i)
		if f.Roles[name] != nil {
			return s, fmt.Errorf("the file already has a role %s", name)
		}
		f.Roles[name] = r
		s.added++
	}

	// Memberships: the first of each role's dropped, one in a group
	// added (groups are members of no bench role: never a cycle).
	if len(groups) == 0 {
		return s, fmt.Errorf("no group roles to change memberships with")
	}
	for i, name := range rs {
		if s.members == changedMembers {
			break
		}
		r := f.Roles[name]
		if r == nil || name == s.reader || name == s.removed {
			continue
		}
		ms := slices.Clone(r.MemberOf)
		if len(ms) > 0 {
			ms = ms[1:]
		}
		g := groups[(i*7+3)%len(groups)]
		if !slices.ContainsFunc(ms, func(m policy.Membership) bool { return m.Role == g }) {
			ms = append(ms, policy.Membership{Role: g})
		}
		r.MemberOf = ms
		s.members++
	}
	return s, nil
}

func roleNumber(r string) int {
	n, _ := strconv.Atoi(r[1:])
	return n
}

// ownersOf are the roles the file names as an owner of anything, and the
// creating roles of default privileges.
func ownersOf(f *policy.File) map[string]bool {
	o := map[string]bool{}
	for _, d := range f.Databases {
		if d == nil {
			continue
		}
		o[d.Owner] = true
		for r := range d.DefaultPrivileges {
			o[r] = true
		}
		for _, sc := range d.Schemas {
			if sc == nil {
				continue
			}
			o[sc.Owner] = true
			for r := range sc.DefaultPrivileges {
				o[r] = true
			}
			for _, objs := range []policy.Objects{sc.Tables, sc.Sequences, sc.Functions} {
				for _, ob := range objs {
					if ob != nil {
						o[ob.Owner] = true
					}
				}
			}
		}
	}
	delete(o, "")
	return o
}

// grantCounts counts the grant entries of each grantee.
func grantCounts(f *policy.File) map[string]int {
	n := map[string]int{}
	forEachGrants(f, func(g policy.Grants) int {
		for r := range g {
			n[r]++
		}
		return 0
	})
	return n
}

// forEachGrants calls fn on every Grants map of f (databases, schemas,
// objects, columns, default privileges) and sums what it returns.
func forEachGrants(f *policy.File, fn func(policy.Grants) int) int {
	n := 0
	do := func(g policy.Grants) {
		if g != nil {
			n += fn(g)
		}
	}
	dp := func(m policy.DefaultPrivilegesByRole) {
		for _, p := range m {
			if p != nil {
				for _, g := range []policy.Grants{p.Tables, p.Sequences, p.Functions, p.Types, p.Schemas} {
					do(g)
				}
			}
		}
	}
	for _, d := range f.Databases {
		if d == nil {
			continue
		}
		do(d.Grants)
		dp(d.DefaultPrivileges)
		for _, sc := range d.Schemas {
			if sc == nil {
				continue
			}
			do(sc.Grants)
			dp(sc.DefaultPrivileges)
			for _, objs := range []policy.Objects{sc.Tables, sc.Sequences, sc.Functions} {
				for _, ob := range objs {
					if ob == nil {
						continue
					}
					do(ob.Grants)
					for _, g := range ob.Columns {
						do(g)
					}
				}
			}
		}
	}
	return n
}
