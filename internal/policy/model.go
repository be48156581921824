// Package policy is roles and privileges as code: the policy file (the
// desired state of roles, memberships, ownership, grants, default
// privileges and row-level security), and the diff that turns a desired
// state and the live one into a plan (internal/plan steps, one SQL
// transaction per database). The live state is read by policy/inspect in
// the same shape, so an export is a File too; policy/execute applies a
// plan, policy/rlstest proves RLS by behaviour, policy/template builds the
// guides' layouts.
package policy

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// FormatVersion of the policy file.
const FormatVersion = 1

// Modes: how much of the server the file decides.
const (
	// Authoritative: what the file's scope holds is exactly the file:
	// privileges and memberships it does not name are revoked, roles it
	// does not name are dropped (after the removal preflight).
	Authoritative = "authoritative"
	// Adopt: exact for the roles the file names; roles it does not name
	// are left as they are (neither dropped nor revoked from), so an
	// estate moves to policy-as-code one role at a time.
	Adopt = "adopt"
	// Additive: only grants and creates; never revokes or drops.
	Additive = "additive"
)

// File is a policy file. The scope is what it names: databases not listed
// are not touched, schemas not listed inside a listed database are not
// touched; system schemas (pg_catalog, information_schema, pg_toast) and
// predefined roles (pg_*) are never managed.
//
//	version: 1
//	mode: authoritative
//	roles:
//	  app_owner: {}
//	  app: {login: true, connection_limit: 20, member_of: [app_rw]}
//	databases:
//	  appdb:
//	    owner: app_owner
//	    grants: {app: [CONNECT]}
//	    schemas:
//	      public:
//	        owner: app_owner
//	        grants: {app: [USAGE]}
//	        tables:
//	          "*": {grants: {app: [SELECT, INSERT, UPDATE, DELETE]}}
//	        default_privileges:
//	          app_owner: {tables: {app: [SELECT, INSERT, UPDATE, DELETE]}}
type File struct {
	Version int    `yaml:"version"`
	Mode    string `yaml:"mode,omitempty"`
	// IgnoreRoles are name patterns (path.Match syntax) of roles the
	// file never manages, whatever the mode (a cloud provider's roles).
	IgnoreRoles []string             `yaml:"ignore_roles,omitempty"`
	Roles       Roles                `yaml:"roles,omitempty"`
	Databases   map[string]*Database `yaml:"databases,omitempty"`
}

// A key left out of a policy file is not managed; a key given, even
// empty ({} or []), is exact (authoritative, adopt) or the minimum
// (additive). Role attributes are the exception: they always have a
// value, see Role. The named map and slice types below keep that
// difference through YAML: nil is left out, empty is written as {} or [].

// Roles by name.
type Roles map[string]*Role

// IsZero keeps an empty (managed) map in the YAML.
func (r Roles) IsZero() bool { return r == nil }

// Objects by name, "*" for the rest of the kind.
type Objects map[string]*Object

// IsZero keeps an empty (managed) map in the YAML.
func (o Objects) IsZero() bool { return o == nil }

// Memberships of one role.
type Memberships []Membership

// IsZero keeps an empty (managed) list in the YAML.
func (m Memberships) IsZero() bool { return m == nil }

// Settings are name = value.
type Settings map[string]string

// IsZero keeps an empty (managed) map in the YAML.
func (s Settings) IsZero() bool { return s == nil }

// RowPolicies by policy name.
type RowPolicies map[string]*RowPolicy

// IsZero keeps an empty (managed) map in the YAML.
func (p RowPolicies) IsZero() bool { return p == nil }

// DefaultPrivilegesByRole keys ALTER DEFAULT PRIVILEGES by the creating
// role (FOR ROLE).
type DefaultPrivilegesByRole map[string]*DefaultPrivileges

// IsZero keeps an empty (managed) map in the YAML.
func (d DefaultPrivilegesByRole) IsZero() bool { return d == nil }

// Role is one role's attributes, memberships and settings. In
// authoritative and adopt modes an attribute left out means the CREATE
// ROLE default (NOLOGIN, INHERIT, no limit, ...); in additive mode it
// means "leave as it is".
type Role struct {
	Login       *bool `yaml:"login,omitempty"`
	Superuser   *bool `yaml:"superuser,omitempty"`
	CreateDB    *bool `yaml:"createdb,omitempty"`
	CreateRole  *bool `yaml:"createrole,omitempty"`
	Inherit     *bool `yaml:"inherit,omitempty"`
	Replication *bool `yaml:"replication,omitempty"`
	BypassRLS   *bool `yaml:"bypassrls,omitempty"`
	// ConnectionLimit: -1 for none.
	ConnectionLimit *int `yaml:"connection_limit,omitempty"`
	// ValidUntil: "infinity" or a timestamp the server accepts.
	ValidUntil string `yaml:"valid_until,omitempty"`
	// Password is never clear text: "" leaves it as it is, "none" removes
	// it, or a SCRAM-SHA-256 verifier computed on the client
	// ("SCRAM-SHA-256$4096:...").
	Password string      `yaml:"password,omitempty"`
	MemberOf Memberships `yaml:"member_of,omitempty"`
	// Settings are ALTER ROLE ... SET (pgaudit.log, search_path, ...);
	// DatabaseSettings the same IN DATABASE.
	Settings         Settings            `yaml:"settings,omitempty"`
	DatabaseSettings map[string]Settings `yaml:"database_settings,omitempty"`
}

// Membership is a grant of Role to the member whose entry holds it. In
// YAML either a role name or a mapping. Nil options mean the server's
// defaults (INHERIT from the member's attribute, SET TRUE, no ADMIN).
type Membership struct {
	Role    string `yaml:"role"`
	Admin   *bool  `yaml:"admin,omitempty"`
	Inherit *bool  `yaml:"inherit,omitempty"` // PostgreSQL 16+
	Set     *bool  `yaml:"set,omitempty"`     // PostgreSQL 16+
	// Grantor is the role recorded as granting it (16+: GRANTED BY).
	Grantor string `yaml:"grantor,omitempty"`
}

// Grants maps a grantee (a role, or PUBLIC) to its privileges on one
// object: SQL names ("SELECT", "USAGE", "ALL"), each optionally followed
// by " WITH GRANT OPTION". An empty list says the grantee holds nothing,
// which matters for PUBLIC (whose defaults a file may want revoked). The
// owner's own privileges are implicit and not listed.
type Grants map[string][]string

// IsZero keeps an empty (managed: nothing granted) map in the YAML.
func (g Grants) IsZero() bool { return g == nil }

// Database is one database's owner, grants, schemas and global default
// privileges.
type Database struct {
	Owner   string             `yaml:"owner,omitempty"`
	Grants  Grants             `yaml:"grants,omitempty"` // CONNECT, CREATE, TEMPORARY
	Schemas map[string]*Schema `yaml:"schemas,omitempty"`
	// DefaultPrivileges without IN SCHEMA: what objects the keyed role
	// creates anywhere in the database start with. An entry replaces the
	// built-in default for that object kind (functions' EXECUTE for
	// PUBLIC included), so {functions: {}} revokes it.
	DefaultPrivileges DefaultPrivilegesByRole `yaml:"default_privileges,omitempty"`
}

// Schema is one schema and the objects in it. Object maps are keyed by
// name ("*" is every object of the kind the file does not name itself;
// a named entry replaces "*" for that object). Functions are keyed by
// name and identity arguments: "audit(integer, text)".
type Schema struct {
	Owner     string  `yaml:"owner,omitempty"`
	Grants    Grants  `yaml:"grants,omitempty"` // USAGE, CREATE
	Tables    Objects `yaml:"tables,omitempty"` // tables, views, materialized views, foreign tables
	Sequences Objects `yaml:"sequences,omitempty"`
	Functions Objects `yaml:"functions,omitempty"` // functions, procedures, aggregates
	// DefaultPrivileges IN SCHEMA, keyed by the creating role (FOR ROLE):
	// added to the database-wide defaults, never subtracted from them.
	DefaultPrivileges DefaultPrivilegesByRole `yaml:"default_privileges,omitempty"`
	// RLS by table name.
	RLS map[string]*RLS `yaml:"rls,omitempty"`
}

// Object is a table, sequence or function. Nil fields are not managed.
type Object struct {
	Owner  string `yaml:"owner,omitempty"`
	Grants Grants `yaml:"grants,omitempty"`
	// Columns: column privileges (tables only), by column name. Nil is
	// not managed; empty ({}) says no column has a privilege of its own.
	Columns ColumnGrants `yaml:"columns,omitempty"`
}

// ColumnGrants are a table's column privileges by column name.
type ColumnGrants map[string]Grants

// IsZero keeps an empty (managed: no column grants) map in the YAML.
func (c ColumnGrants) IsZero() bool { return c == nil }

// DefaultPrivileges are ALTER DEFAULT PRIVILEGES for one creating role,
// by object kind.
type DefaultPrivileges struct {
	Tables    Grants `yaml:"tables,omitempty"`
	Sequences Grants `yaml:"sequences,omitempty"`
	Functions Grants `yaml:"functions,omitempty"`
	Types     Grants `yaml:"types,omitempty"`
	Schemas   Grants `yaml:"schemas,omitempty"` // database-wide entries only
}

// RLS is a table's row-level security: the switches, the policies and
// the behaviour the file expects from them.
type RLS struct {
	Enabled  bool        `yaml:"enabled"`
	Force    bool        `yaml:"force,omitempty"`
	Policies RowPolicies `yaml:"policies,omitempty"`
	// Tests are run by `policy test`, never by plan or apply.
	Tests []RLSTest `yaml:"tests,omitempty"`
}

// RowPolicy is one CREATE POLICY.
type RowPolicy struct {
	Command     string   `yaml:"command,omitempty"`     // ALL (default), SELECT, INSERT, UPDATE, DELETE
	Restrictive bool     `yaml:"restrictive,omitempty"` // AS RESTRICTIVE; permissive otherwise
	Roles       []string `yaml:"roles,omitempty"`       // default PUBLIC
	Using       string   `yaml:"using,omitempty"`
	Check       string   `yaml:"check,omitempty"` // WITH CHECK
}

// RLSTest is one behaviour a table's policies must have: as role As,
// with the session settings Set (SET LOCAL), the rows visible are exactly
// those matching Sees (a boolean SQL expression over the table's columns,
// evaluated without RLS), and each write succeeds or fails as stated.
// Everything runs in a transaction that is rolled back.
type RLSTest struct {
	Name string            `yaml:"name,omitempty"`
	As   string            `yaml:"as"`
	Set  map[string]string `yaml:"set,omitempty"`
	Sees string            `yaml:"sees,omitempty"`
	// Writes the role tries, each expected to be allowed or denied.
	Insert []WriteTest `yaml:"insert,omitempty"`
	Update []WriteTest `yaml:"update,omitempty"`
	Delete []WriteTest `yaml:"delete,omitempty"`
}

// WriteTest is one write attempt. Insert uses Values; Update uses Values
// (the SET list) and Where; Delete uses Where. Expect is "allowed" or
// "denied"; for UPDATE and DELETE "denied" also holds when the rows
// matched by Where are invisible to the role (nothing changes).
type WriteTest struct {
	Values map[string]string `yaml:"values,omitempty"` // column: SQL expression
	Where  string            `yaml:"where,omitempty"`
	Expect string            `yaml:"expect"`
}

// UnmarshalYAML reads a membership as a role name or a mapping.
func (m *Membership) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&m.Role)
	}
	type plain Membership // without this method
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*m = Membership(p)
	return nil
}

// MarshalYAML writes a membership with no options as its role name.
func (m Membership) MarshalYAML() (any, error) {
	if m.Admin == nil && m.Inherit == nil && m.Set == nil && m.Grantor == "" {
		return m.Role, nil
	}
	type plain Membership
	return plain(m), nil
}

// MarshalYAML writes each grantee's privileges on one line
// ("app: [SELECT, INSERT]"): an export of many objects stays readable.
func (g Grants) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, p := range g[k] {
			seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p})
		}
		// A !!str tag makes the encoder quote a name YAML would misread
		// ("on", "1", "*"), without an encoder per key.
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, seq)
	}
	return n, nil
}

// UnmarshalYAML reads the roles one by one: yaml.v3's own map decoding
// compares every key with every other to find duplicates, which at
// 20,000 roles is most of the time a plan takes to read its file.
func (r *Roles) UnmarshalYAML(n *yaml.Node) error {
	return decodeMap(n, (*map[string]*Role)(r))
}

// UnmarshalYAML reads the objects one by one (see Roles.UnmarshalYAML):
// a schema may hold tens of thousands.
func (o *Objects) UnmarshalYAML(n *yaml.Node) error {
	return decodeMap(n, (*map[string]*Object)(o))
}

// decodeMap decodes a mapping node into *m in one pass, refusing a key
// given twice as yaml.v3 does. Anything unusual (an alias, a merge key,
// a non-string key) goes through yaml.v3's own decoding.
func decodeMap[V any](n *yaml.Node, m *map[string]V) error {
	if n.Kind != yaml.MappingNode {
		return n.Decode(m)
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "") || k.Value == "<<" {
			return n.Decode(m)
		}
	}
	out := make(map[string]V, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, vn := n.Content[i], n.Content[i+1]
		if _, dup := out[k.Value]; dup {
			return fmt.Errorf("yaml: line %d: mapping key %q already defined", k.Line, k.Value)
		}
		var v V
		if err := vn.Decode(&v); err != nil {
			return err
		}
		out[k.Value] = v
	}
	*m = out
	return nil
}
