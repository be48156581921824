package inspect

import (
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// ExportOptions limit an export. Empty lists mean everything read.
type ExportOptions struct {
	Databases []string
	Schemas   []string
	Roles     []string
}

// Export is the live state as a policy file for people: per schema and
// object kind the most common owner and grants become "*" and only the
// objects that differ are named; role attributes only where they differ
// from CREATE ROLE's defaults; memberships as plain names where their
// options are the defaults. It is faithful: Expand(Export(live), live)
// is live.File, object by object. Mode authoritative, no ignore_roles.
//
// The file manages the whole scope it read: where a role has no
// memberships, member_of: [] is written (an authoritative apply revokes
// a membership added later); a schema without tables, sequences or
// functions gets "*": {grants: {}} for the kind, and default_privileges
// is always written ({} when there are none). Settings,
// database_settings, column privileges and rls are written only where
// there are some: the model has no way to write an empty one (yaml
// leaves an empty map of those types out), and Diff reads an rls map as
// the tables it names, so an empty one would not turn RLS off anywhere.
func Export(live *policy.Live, o ExportOptions) *policy.File {
	f := &policy.File{Version: policy.FormatVersion, Mode: policy.Authoritative, Roles: policy.Roles{}, Databases: map[string]*policy.Database{}}
	in := func(list []string, s string) bool { return len(list) == 0 || slices.Contains(list, s) }
	if live == nil || live.File == nil {
		return f
	}
	for name, r := range live.File.Roles {
		if in(o.Roles, name) {
			f.Roles[name] = exportRole(r)
		}
	}
	keys := newKeyer()
	for dn, d := range live.File.Databases {
		if !in(o.Databases, dn) {
			continue
		}
		ed := &policy.Database{Owner: d.Owner, Grants: copyGrants(d.Grants), DefaultPrivileges: copyDefaults(d.DefaultPrivileges), Schemas: map[string]*policy.Schema{}}
		for sn, s := range d.Schemas {
			if !in(o.Schemas, sn) {
				continue
			}
			es := &policy.Schema{Owner: s.Owner, Grants: copyGrants(s.Grants), DefaultPrivileges: copyDefaults(s.DefaultPrivileges),
				Tables: keys.compact(s.Tables, true), Sequences: keys.compact(s.Sequences, false), Functions: keys.compact(s.Functions, false)}
			if len(s.RLS) > 0 {
				es.RLS = map[string]*policy.RLS{}
				for t, x := range s.RLS {
					c := *x
					c.Policies = copyPolicies(x.Policies)
					es.RLS[t] = &c
				}
			}
			ed.Schemas[sn] = es
		}
		f.Databases[dn] = ed
	}
	return f
}

func exportRole(r *policy.Role) *policy.Role {
	e := &policy.Role{ValidUntil: r.ValidUntil}
	on := func(p *bool, def bool) *bool {
		if p != nil && *p != def {
			return ptr(*p)
		}
		return nil
	}
	e.Login, e.Superuser, e.CreateDB, e.CreateRole = on(r.Login, false), on(r.Superuser, false), on(r.CreateDB, false), on(r.CreateRole, false)
	e.Inherit, e.Replication, e.BypassRLS = on(r.Inherit, true), on(r.Replication, false), on(r.BypassRLS, false)
	if r.ConnectionLimit != nil && *r.ConnectionLimit != -1 {
		e.ConnectionLimit = ptr(*r.ConnectionLimit)
	}
	e.MemberOf = append(policy.Memberships{}, r.MemberOf...)
	if len(r.Settings) > 0 {
		e.Settings = policy.Settings{}
		for k, v := range r.Settings {
			e.Settings[k] = v
		}
	}
	if len(r.DatabaseSettings) > 0 {
		e.DatabaseSettings = map[string]policy.Settings{}
		for d, s := range r.DatabaseSettings {
			c := policy.Settings{}
			for k, v := range s {
				c[k] = v
			}
			e.DatabaseSettings[d] = c
		}
	}
	return e
}

// keyer gives grants a comparable key; Read shares the maps of equal
// ACLs, so most keys come from the map's identity, not its contents.
type keyer struct{ byPtr map[uintptr]string }

func newKeyer() *keyer { return &keyer{byPtr: map[uintptr]string{}} }

func (k *keyer) key(g policy.Grants) string {
	if g == nil {
		return "\x00nil"
	}
	p := reflect.ValueOf(g).Pointer()
	if s, ok := k.byPtr[p]; ok {
		return s
	}
	who := make([]string, 0, len(g))
	for w := range g {
		who = append(who, w)
	}
	sort.Strings(who)
	var sb strings.Builder
	for _, w := range who {
		privs := slices.Clone(g[w])
		sort.Strings(privs)
		sb.WriteString(w)
		sb.WriteByte(0)
		sb.WriteString(strings.Join(privs, "\x01"))
		sb.WriteByte(0)
	}
	s := sb.String()
	k.byPtr[p] = s
	return s
}

// compact folds one kind's objects into "*" and exceptions. A kind
// with no objects is still managed, as "*" with no grants: an empty map
// would name no object, so Diff would leave alone a table created later
// with SELECT for PUBLIC; "*" covers it and an authoritative plan
// revokes. Its owner stays unmanaged (nothing says who should own it).
func (k *keyer) compact(objs policy.Objects, tables bool) policy.Objects {
	if len(objs) == 0 {
		o := &policy.Object{Grants: policy.Grants{}}
		if tables {
			o.Columns = policy.ColumnGrants{}
		}
		return policy.Objects{"*": o}
	}
	out := policy.Objects{}
	if _, ok := objs["*"]; ok {
		// An object really named "*" would read as the pattern: name
		// every object, so the pattern covers that one alone.
		for n, o := range objs {
			out[n] = copyObject(o)
		}
		return out
	}
	owners := map[string]int{}
	grants := map[string]int{}
	sample := map[string]policy.Grants{}
	for _, o := range objs {
		owners[o.Owner]++
		gk := k.key(o.Grants)
		grants[gk]++
		sample[gk] = o.Grants
	}
	star := &policy.Object{Owner: mostCommon(owners)}
	sk := mostCommon(grants)
	star.Grants = copyGrants(sample[sk])
	if tables {
		// Tables without an entry of their own have no column grants:
		// said, so one granted later is drift.
		star.Columns = policy.ColumnGrants{}
	}
	out["*"] = star
	for n, o := range objs {
		e := &policy.Object{}
		if o.Owner != star.Owner {
			e.Owner = o.Owner
		}
		if k.key(o.Grants) != sk {
			e.Grants = copyGrants(o.Grants)
			if e.Grants == nil {
				e.Grants = policy.Grants{}
			}
		}
		if len(o.Columns) > 0 { // exceptions to "*"'s {}
			e.Columns = policy.ColumnGrants{}
			for c, g := range o.Columns {
				e.Columns[c] = copyGrants(g)
			}
		}
		if e.Owner != "" || e.Grants != nil || e.Columns != nil {
			out[n] = e
		}
	}
	return out
}

// mostCommon is the most counted key, the smallest on a tie (an export
// is deterministic).
func mostCommon(m map[string]int) string {
	best, n := "", -1
	for k, c := range m {
		if c > n || c == n && k < best {
			best, n = k, c
		}
	}
	return best
}

func copyGrants(g policy.Grants) policy.Grants {
	if g == nil {
		return nil
	}
	out := make(policy.Grants, len(g))
	for w, p := range g {
		out[w] = slices.Clone(p)
		if out[w] == nil {
			out[w] = []string{}
		}
	}
	return out
}

func copyObject(o *policy.Object) *policy.Object {
	c := &policy.Object{Owner: o.Owner, Grants: copyGrants(o.Grants)}
	if o.Columns != nil {
		c.Columns = policy.ColumnGrants{}
		for n, g := range o.Columns {
			c.Columns[n] = copyGrants(g)
		}
	}
	return c
}

func copyDefaults(d policy.DefaultPrivilegesByRole) policy.DefaultPrivilegesByRole {
	out := policy.DefaultPrivilegesByRole{}
	for r, dp := range d {
		out[r] = &policy.DefaultPrivileges{Tables: copyGrants(dp.Tables), Sequences: copyGrants(dp.Sequences),
			Functions: copyGrants(dp.Functions), Types: copyGrants(dp.Types), Schemas: copyGrants(dp.Schemas)}
	}
	return out
}

func copyPolicies(p policy.RowPolicies) policy.RowPolicies {
	if p == nil {
		return nil
	}
	out := policy.RowPolicies{}
	for n, rp := range p {
		c := *rp
		c.Roles = slices.Clone(rp.Roles)
		out[n] = &c
	}
	return out
}

// Expand reads a file the way the model says ("*" and exceptions, a
// named entry's nil fields falling back to "*", role attributes left out
// meaning CREATE ROLE's defaults) over the objects live has, and returns
// the per-object state it describes in Live's shape: every object named.
// Only what f's scope names is expanded; objects f names that live does
// not have are left out.
func Expand(f *policy.File, live *policy.Live) *policy.File {
	out := &policy.File{Version: f.Version, Mode: f.Mode, Roles: policy.Roles{}, Databases: map[string]*policy.Database{}}
	for n, r := range f.Roles {
		out.Roles[n] = expandRole(r)
	}
	for dn, d := range f.Databases {
		ld := live.File.Databases[dn]
		ed := &policy.Database{Owner: d.Owner, Grants: d.Grants, DefaultPrivileges: d.DefaultPrivileges, Schemas: map[string]*policy.Schema{}}
		out.Databases[dn] = ed
		for sn, s := range d.Schemas {
			es := &policy.Schema{Owner: s.Owner, Grants: s.Grants, DefaultPrivileges: s.DefaultPrivileges, RLS: s.RLS}
			ed.Schemas[sn] = es
			var ls *policy.Schema
			if ld != nil {
				ls = ld.Schemas[sn]
			}
			if ls == nil {
				continue
			}
			es.Tables, es.Sequences, es.Functions = expandObjects(s.Tables, ls.Tables), expandObjects(s.Sequences, ls.Sequences), expandObjects(s.Functions, ls.Functions)
		}
	}
	return out
}

func expandObjects(file, live policy.Objects) policy.Objects {
	if file == nil {
		return nil // not managed
	}
	out := policy.Objects{}
	star := file["*"]
	for n := range live {
		e, s := file[n], star
		if e == nil && s == nil {
			continue
		}
		if e == nil {
			e = &policy.Object{}
		}
		if s == nil || e == star {
			s = &policy.Object{}
		}
		o := &policy.Object{Owner: e.Owner, Grants: e.Grants, Columns: e.Columns}
		if o.Owner == "" {
			o.Owner = s.Owner
		}
		if o.Grants == nil {
			o.Grants = s.Grants
		}
		if o.Columns == nil {
			o.Columns = s.Columns
		}
		out[n] = o
	}
	return out
}

func expandRole(r *policy.Role) *policy.Role {
	e := *r
	def := func(p *bool, v bool) *bool {
		if p == nil {
			return ptr(v)
		}
		return p
	}
	e.Login, e.Superuser, e.CreateDB, e.CreateRole = def(r.Login, false), def(r.Superuser, false), def(r.CreateDB, false), def(r.CreateRole, false)
	e.Inherit, e.Replication, e.BypassRLS = def(r.Inherit, true), def(r.Replication, false), def(r.BypassRLS, false)
	if e.ConnectionLimit == nil {
		e.ConnectionLimit = ptr(-1)
	}
	return &e
}
