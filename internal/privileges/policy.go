package privileges

import (
	"bytes"
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Policy is a desired state for the grants in some schemas:
//
//	database: shop        # optional: default every database
//	schemas: [app]
//	grants:
//	  app_rw: {tables: [SELECT, INSERT, UPDATE, DELETE], sequences: [USAGE, SELECT]}
//	  app_ro: {tables: [SELECT]}
//	exclusive: true       # roles not listed may hold nothing (owners aside)
//
// Nothing is ever granted to PUBLIC under a policy.
type Policy struct {
	Database  string                `yaml:"database"`
	Schemas   []string              `yaml:"schemas"`
	Grants    map[string]PolicyRole `yaml:"grants"`
	Exclusive bool                  `yaml:"exclusive"`
}

// PolicyRole lists a role's privileges per object kind.
type PolicyRole struct {
	Tables    []string `yaml:"tables"`
	Sequences []string `yaml:"sequences"`
}

// LoadPolicy reads and validates a policy file.
func LoadPolicy(path string) (*Policy, error) {
	data, err := safefile.ReadFile(path, safefile.ConfigMax) // regular files only, capped
	if err != nil {
		return nil, err
	}
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(p.Schemas) == 0 {
		return nil, fmt.Errorf("%s: the policy names no schemas", path)
	}
	for role, g := range p.Grants {
		for _, list := range [][]string{g.Tables, g.Sequences} {
			for _, pr := range list {
				if _, err := ParsePrivilege(pr); err != nil {
					return nil, fmt.Errorf("%s: role %s: %v", path, role, err)
				}
			}
		}
	}
	return &p, nil
}

// PolicyDiff is one difference between the policy and the server.
type PolicyDiff struct {
	Database string `json:"database"`
	Object   string `json:"object"`
	Role     string `json:"role"`
	Missing  string `json:"missing,omitempty"`
	Extra    string `json:"extra,omitempty"`
}

// CheckPolicy compares the direct grants on the policy's schemas with the
// policy, and returns the differences and the SQL that closes them
// (collapsed to ALL TABLES IN SCHEMA where a whole schema needs the same).
func CheckPolicy(p *Policy, s *snapshot.Snapshot) ([]PolicyDiff, []string) {
	var diffs []PolicyDiff
	var sql []string
	in := map[string]bool{}
	for _, sc := range p.Schemas {
		in[sc] = true
	}
	for _, d := range s.Databases {
		if !d.Collected || (p.Database != "" && d.Name != p.Database) {
			continue
		}
		type agg struct {
			verb, privs, kind, schema, role string
		}
		counts := map[agg][]string{}
		totals := map[string]int{}
		for _, r := range d.Relations {
			if !in[r.Schema] {
				continue
			}
			kind, kindSQL := "tables", "TABLE"
			if r.Kind == "S" {
				kind, kindSQL = "sequences", "SEQUENCE"
			}
			totals[kind+"\x00"+r.Schema]++
			have := map[string]Bits{}
			for _, it := range r.ACL {
				if it.Grantee == r.Owner {
					continue
				}
				for _, g := range it.Grants {
					b, _ := ParsePrivilege(g.Privilege)
					have[it.Grantee] |= b
				}
			}
			want := map[string]Bits{}
			for role, g := range p.Grants {
				list := g.Tables
				if kind == "sequences" {
					list = g.Sequences
				}
				for _, pr := range list {
					b, _ := ParsePrivilege(pr)
					want[role] |= b
				}
			}
			roles := map[string]bool{}
			for k := range have {
				roles[k] = true
			}
			for k := range want {
				roles[k] = true
			}
			names := make([]string, 0, len(roles))
			for k := range roles {
				names = append(names, k)
			}
			sort.Strings(names)
			obj := r.Schema + "." + r.Name
			// The relation's own name, kept apart from obj: a schema may
			// hold a dot, and splitting "a.b.c" again would pick the wrong one.
			rel := r.Name
			for _, role := range names {
				_, listed := p.Grants[role]
				if role != acl.Public && !listed && !p.Exclusive {
					continue
				}
				missing := want[role] &^ have[role]
				extra := have[role] &^ want[role]
				if missing == 0 && extra == 0 {
					continue
				}
				diffs = append(diffs, PolicyDiff{Database: d.Name, Object: obj, Role: role, Missing: missing.String(), Extra: extra.String()})
				if missing != 0 {
					counts[agg{"GRANT", missing.String(), kindSQL, r.Schema, role}] = append(counts[agg{"GRANT", missing.String(), kindSQL, r.Schema, role}], rel)
				}
				if extra != 0 {
					counts[agg{"REVOKE", extra.String(), kindSQL, r.Schema, role}] = append(counts[agg{"REVOKE", extra.String(), kindSQL, r.Schema, role}], rel)
				}
			}
		}
		keys := make([]agg, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			objs := counts[k]
			to := map[string]string{"GRANT": "TO", "REVOKE": "FROM"}[k.verb]
			who := quote.Ident(k.role)
			if k.role == acl.Public {
				who = "PUBLIC"
			}
			kindPlural := map[string]string{"TABLE": "tables", "SEQUENCE": "sequences"}[k.kind]
			if len(objs) == totals[kindPlural+"\x00"+k.schema] && len(objs) > 1 {
				sql = append(sql, fmt.Sprintf("%s %s ON ALL %sS IN SCHEMA %s %s %s;    -- database %s", k.verb, k.privs, k.kind, quote.Ident(k.schema), to, who, quote.Ident(d.Name)))
				continue
			}
			for _, o := range objs {
				sql = append(sql, fmt.Sprintf("%s %s ON %s %s %s %s;    -- database %s", k.verb, k.privs, k.kind, quote.Qualified(k.schema, o), to, who, quote.Ident(d.Name)))
			}
		}
	}
	return diffs, sql
}
