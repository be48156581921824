package privileges

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Object is one securable thing of a snapshot, compiled for checks.
type Object struct {
	Database string `json:"database,omitempty"`
	Kind     Kind   `json:"kind"`
	Schema   string `json:"schema,omitempty"`
	Name     string `json:"name"`
	Owner    string `json:"owner"`
	RLS      bool   `json:"rls,omitempty"`
	acl      ACL
	columns  []columnACL
}

type columnACL struct {
	name string
	acl  ACL
}

// QualifiedName renders schema.name (or the name).
func (o Object) QualifiedName() string {
	if o.Schema != "" {
		return o.Schema + "." + o.Name
	}
	return o.Name
}

// Objects compiles every securable object of a snapshot (databases first,
// then each collected database's schemas, relations, routines, languages,
// large objects and foreign servers; parameters with grants).
func (m *Model) Objects(s *snapshot.Snapshot) []Object {
	var out []Object
	for _, d := range s.Databases {
		out = append(out, Object{Kind: Database, Name: d.Name, Owner: d.Owner, acl: m.Compile(Database, d.Owner, d.ACL, d.ACLDefault)})
	}
	for _, p := range s.ParamACLs {
		out = append(out, Object{Kind: Parameter, Name: p.Name, Owner: "", acl: m.Compile(Parameter, "", p.ACL, false)})
	}
	for _, d := range s.Databases {
		if !d.Collected {
			continue
		}
		for _, sc := range d.Schemas {
			if strings.HasPrefix(sc.Name, "pg_toast") || strings.HasPrefix(sc.Name, "pg_temp") {
				continue
			}
			out = append(out, Object{Database: d.Name, Kind: Schema, Name: sc.Name, Owner: sc.Owner, acl: m.Compile(Schema, sc.Owner, sc.ACL, sc.ACLDefault)})
		}
		for _, r := range d.Relations {
			k := Table
			if r.Kind == "S" {
				k = Sequence
			}
			o := Object{Database: d.Name, Kind: k, Schema: r.Schema, Name: r.Name, Owner: r.Owner, RLS: r.RLS, acl: m.Compile(k, r.Owner, r.ACL, r.ACLDefault)}
			for _, c := range r.Columns {
				o.columns = append(o.columns, columnACL{c.Name, m.Compile(ColumnKind, r.Owner, c.ACL, false)})
			}
			out = append(out, o)
		}
		for _, f := range d.Routines {
			out = append(out, Object{Database: d.Name, Kind: Function, Schema: f.Schema, Name: f.Name + "(" + f.Args + ")", Owner: f.Owner, acl: m.Compile(Function, f.Owner, f.ACL, f.ACLDefault)})
		}
		for _, l := range d.Languages {
			if !l.PL {
				continue
			}
			out = append(out, Object{Database: d.Name, Kind: Language, Name: l.Name, Owner: l.Owner, acl: m.Compile(Language, l.Owner, l.ACL, l.ACLDefault)})
		}
		for _, lo := range d.LargeObjects {
			out = append(out, Object{Database: d.Name, Kind: LargeObj, Name: fmt.Sprint(lo.OID), Owner: lo.Owner, acl: m.Compile(LargeObj, lo.Owner, lo.ACL, lo.ACLDefault)})
		}
		for _, fs := range d.ForeignServers {
			out = append(out, Object{Database: d.Name, Kind: FDWServer, Name: fs.Name, Owner: fs.Owner, acl: m.Compile(FDWServer, fs.Owner, fs.ACL, len(fs.ACL) == 0)})
		}
	}
	return out
}

// Grant is one privilege a role holds on an object, and how.
type Grant struct {
	Privilege string   `json:"privilege"`
	Via       Via      `json:"via"`
	Grantee   string   `json:"grantee,omitempty"`
	Path      []string `json:"path,omitempty"`
	Column    string   `json:"column,omitempty"`
	RLS       string   `json:"rls,omitempty"` // "policies apply", "bypassed"
}

// Holding is what a role holds on one object.
type Holding struct {
	Object Object  `json:"object"`
	Grants []Grant `json:"grants"`
}

// RoleAccess lists everything role can do, object by object.
func (m *Model) RoleAccess(role int, objs []Object, bypassRLS bool) []Holding {
	var out []Holding
	for _, o := range objs {
		var gs []Grant
		for _, p := range Applicable(o.Kind).split() {
			if p == Maintain && m.Version < 17 {
				continue
			}
			r := m.InDatabase(o.Database).Check(role, o.Kind, o.acl, p, false)
			if r.Allowed {
				g := Grant{Privilege: p.String(), Via: r.Via, Grantee: r.Grantee, Path: r.Path}
				if o.RLS && (p == Select || p == Update || p == Delete || p == Insert) {
					g.RLS = "policies apply"
					if bypassRLS || r.Via == ViaSuperuser || (o.Owner == m.Roles[role].Name) {
						g.RLS = "bypassed"
					}
				}
				gs = append(gs, g)
				continue
			}
			if o.Kind == Table && p&(Select|Insert|Update|References) != 0 {
				for _, c := range o.columns {
					if cr := m.InDatabase(o.Database).Check(role, ColumnKind, c.acl, p, false); cr.Allowed {
						gs = append(gs, Grant{Privilege: p.String(), Via: ViaColumn, Grantee: cr.Grantee, Path: cr.Path, Column: c.name})
					}
				}
			}
		}
		if len(gs) > 0 {
			out = append(out, Holding{Object: o, Grants: gs})
		}
	}
	return out
}

// split lists the single privileges in b.
func (b Bits) split() []Bits {
	var out []Bits
	for i := range bitNames {
		if b&(1<<i) != 0 {
			out = append(out, 1<<i)
		}
	}
	return out
}

// Summary aggregates holdings: one line per database, kind, schema,
// privilege set and way, with a count and an example.
type Summary struct {
	Database   string `json:"database,omitempty"`
	Kind       Kind   `json:"kind"`
	Schema     string `json:"schema,omitempty"`
	Privileges string `json:"privileges"`
	Via        string `json:"via"`
	Count      int    `json:"count"`
	Example    string `json:"example"`
}

// Summarize groups holdings so a catalog of 100k tables stays readable.
func Summarize(hs []Holding) []Summary {
	type key struct {
		db, schema, privs, via string
		kind                   Kind
	}
	idx := map[key]int{}
	var out []Summary
	for _, h := range hs {
		byVia := map[string][]string{}
		for _, g := range h.Grants {
			via := string(g.Via)
			if g.Via == ViaMembership || g.Via == ViaPredefined {
				via += " " + strings.Join(g.Path, " → ")
			}
			if g.Column != "" {
				via += " (column " + g.Column + ")"
			}
			byVia[via] = append(byVia[via], g.Privilege)
		}
		for via, privs := range byVia {
			sort.Strings(privs)
			k := key{h.Object.Database, h.Object.Schema, strings.Join(privs, ", "), via, h.Object.Kind}
			if i, ok := idx[k]; ok {
				out[i].Count++
				continue
			}
			idx[k] = len(out)
			out = append(out, Summary{Database: k.db, Kind: k.kind, Schema: k.schema, Privileges: k.privs, Via: via, Count: 1, Example: h.Object.QualifiedName()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Database != b.Database {
			return a.Database < b.Database
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Schema != b.Schema {
			return a.Schema < b.Schema
		}
		return a.Privileges < b.Privileges
	})
	return out
}

// Who lists every role holding privileges on one object, and how.
func (m *Model) Who(o Object, only Bits, bypass map[string]bool) []RoleHolding {
	var out []RoleHolding
	m = m.InDatabase(o.Database) // pg_database_owner's grants reach the database's owner
	for i, r := range m.Roles {
		if r.Predefined {
			continue
		}
		var gs []Grant
		for _, p := range Applicable(o.Kind).split() {
			if only != 0 && p&only == 0 {
				continue
			}
			if p == Maintain && m.Version < 17 {
				continue
			}
			if res := m.Check(i, o.Kind, o.acl, p, false); res.Allowed {
				g := Grant{Privilege: p.String(), Via: res.Via, Grantee: res.Grantee, Path: res.Path}
				if o.RLS && p&(Select|Insert|Update|Delete) != 0 {
					g.RLS = "policies apply"
					if bypass[r.Name] || res.Via == ViaSuperuser || o.Owner == r.Name {
						g.RLS = "bypassed"
					}
				}
				gs = append(gs, g)
				continue
			}
			for _, c := range o.columns {
				if p&(Select|Insert|Update|References) == 0 {
					continue
				}
				if cr := m.Check(i, ColumnKind, c.acl, p, false); cr.Allowed {
					gs = append(gs, Grant{Privilege: p.String(), Via: ViaColumn, Grantee: cr.Grantee, Path: cr.Path, Column: c.name})
				}
			}
		}
		if len(gs) > 0 {
			out = append(out, RoleHolding{Role: r.Name, Login: r.Login, Superuser: r.Super, Grants: gs})
		}
	}
	return out
}

// RoleHolding is one role's privileges on an object.
type RoleHolding struct {
	Role      string  `json:"role"`
	Login     bool    `json:"login"`
	Superuser bool    `json:"superuser"`
	Grants    []Grant `json:"grants"`
}

// Find locates an object by name: "schema.table", "schema.func(args)", a
// schema, a database; kind narrows it when given.
func Find(objs []Object, name, database string, kind Kind) (Object, error) {
	var hits []Object
	for _, o := range objs {
		if database != "" && o.Database != "" && o.Database != database {
			continue
		}
		if kind != "" && o.Kind != kind {
			continue
		}
		if o.QualifiedName() == name || (o.Kind == Function && (strings.HasPrefix(o.QualifiedName(), name+"(") || sameSignature(o.QualifiedName(), name))) ||
			(o.Schema == "" && o.Name == name) {
			hits = append(hits, o)
		}
	}
	switch len(hits) {
	case 0:
		return Object{}, fmt.Errorf("no object %q (give schema.name, and --database / --kind to narrow)", name)
	case 1:
		return hits[0], nil
	}
	var where []string
	for _, h := range hits {
		where = append(where, fmt.Sprintf("%s %s in %s", h.Kind, h.QualifiedName(), h.Database))
	}
	return Object{}, fmt.Errorf("%q is ambiguous: %s (use --database or --kind)", name, strings.Join(where, "; "))
}

// sameSignature: a function given as has_function_privilege takes it
// ("s.f(text, int)") is the one whose identity arguments name the same
// types ("s.f(q text, n integer)"): argument names, spacing, modes,
// pg_catalog qualification and the common type aliases do not count.
func sameSignature(have, given string) bool {
	hn, hargs, ok1 := splitSignature(have)
	gn, gargs, ok2 := splitSignature(given)
	if !ok1 || !ok2 || hn != gn || len(hargs) != len(gargs) {
		return false
	}
	for i := range hargs {
		h, g := normalArg(hargs[i]), normalType(normalArg(gargs[i]))
		if h != g && !(strings.Contains(h, " ") && normalType(h[strings.IndexByte(h, ' ')+1:]) == g) && normalType(h) != g {
			return false
		}
	}
	return true
}

func splitSignature(s string) (string, []string, bool) {
	i := strings.IndexByte(s, '(')
	if i < 0 || !strings.HasSuffix(s, ")") {
		return "", nil, false
	}
	inner := strings.TrimSpace(s[i+1 : len(s)-1])
	if inner == "" {
		return s[:i], nil, true
	}
	return s[:i], strings.Split(inner, ","), true
}

// normalArg collapses spaces and drops an argument mode.
func normalArg(a string) string {
	f := strings.Fields(a)
	if len(f) > 1 {
		switch strings.ToLower(f[0]) {
		case "in", "inout", "variadic":
			f = f[1:]
		}
	}
	return strings.Join(f, " ")
}

// typeAliases maps the names SQL accepts to format_type's.
var typeAliases = map[string]string{
	"int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint", "float4": "real",
	"float8": "double precision", "float": "double precision", "bool": "boolean", "varchar": "character varying",
	"char": "character", "decimal": "numeric", "timestamptz": "timestamp with time zone",
	"timestamp": "timestamp without time zone", "timetz": "time with time zone", "time": "time without time zone",
}

func normalType(t string) string {
	t = strings.TrimPrefix(strings.TrimPrefix(t, "pg_catalog."), "public.")
	base, arr := t, ""
	for strings.HasSuffix(base, "[]") {
		base, arr = base[:len(base)-2], arr+"[]"
	}
	if !strings.Contains(base, `"`) {
		base = strings.ToLower(base)
	}
	if a, ok := typeAliases[base]; ok {
		base = a
	}
	return base + arr
}

// Column returns the compiled ACL of a column, if it has one.
func (o Object) Column(name string) (ACL, bool) {
	for _, c := range o.columns {
		if c.name == name {
			return c.acl, true
		}
	}
	return ACL{}, false
}

// ACL returns the object's compiled ACL.
func (o Object) ACL() ACL { return o.acl }
