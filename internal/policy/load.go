package policy

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Load reads and validates a policy file.
func Load(file string) (*File, error) {
	data, err := safefile.ReadFile(file, safefile.ConfigMax) // regular files only, capped
	if err != nil {
		return nil, err
	}
	return Parse(file, data)
}

// Parse reads a policy file's content; name is used in errors, which
// always name it and, where one is known, the line. Unknown keys are
// refused. The legacy format of `access policy check` (top-level
// database/schemas/grants/exclusive) is read and converted.
func Parse(name string, data []byte) (f *File, err error) {
	defer func() {
		// yaml.v3 panics on a few pathological inputs; bad input gets an
		// error, never a crash.
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%s: not a policy file (%v)", name, r)
		}
	}()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlSyntaxErr(name, data, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty policy file", name)
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: a policy file is a mapping (version: 1, roles:, databases:)", name, doc.Line)
	}
	if isLegacy(doc) {
		return parseLegacy(name, data)
	}
	uses := map[string]int{}
	if err := checkKeys(name, doc, reflect.TypeFor[File](), "the top level", uses); err != nil {
		return nil, err
	}
	// Decoded from the tree already parsed (not the text again):
	// checkKeys above refused unknown keys, as KnownFields would.
	f = &File{}
	if err := doc.Decode(f); err != nil {
		return nil, yamlErr(name, err)
	}
	v := &validator{name: name, doc: doc}
	if err := v.file(f, doc); err != nil {
		return nil, err
	}
	rememberUses(f, uses)
	return f, nil
}

// yamlErr turns yaml's "yaml: line 3: ..." into "name:3: ...", on one line.
func yamlErr(name string, err error) error {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = strings.ReplaceAll(s, "unmarshal errors:\n  ", "")
	s = oneLineText(strings.ReplaceAll(s, "\n  ", "; "))
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if _, err := strconv.Atoi(rest[:i]); err == nil {
				return fmt.Errorf("%s:%s: %s", name, rest[:i], rest[i+2:])
			}
		}
	}
	return fmt.Errorf("%s: %s", name, s)
}

// yamlSyntaxErr places a syntax error at the line it is about: yaml.v3
// names, one line early, the mapping that encloses a bad indentation.
func yamlSyntaxErr(name string, data []byte, err error) error {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		if n, msg, ok := strings.Cut(rest, ": "); ok && strings.HasPrefix(msg, "did not find expected") {
			if at, _ := strconv.Atoi(n); at >= 0 {
				if line, col := badIndent(data, at+1); line > 0 {
					return fmt.Errorf("%s:%d: bad indentation (column %d matches no enclosing key; the block starts at line %d)", name, line, col, at+1)
				}
				return fmt.Errorf("%s:%d: %s (in the block that starts here; check the indentation below it)", name, at+1, oneLineText(msg))
			}
		}
	}
	return yamlErr(name, err)
}

func isLegacy(doc *yaml.Node) bool {
	newKeys, oldKeys := false, false
	for i := 0; i+1 < len(doc.Content); i += 2 {
		switch doc.Content[i].Value {
		case "version", "mode", "roles", "databases", "ignore_roles":
			newKeys = true
		case "database", "schemas", "grants", "exclusive":
			oldKeys = true
		}
	}
	return oldKeys && !newKeys
}

// validator checks a decoded file and places its errors with the
// node positions, recorded per key path ("roles\x00app\x00password").
type validator struct {
	name string
	doc  *yaml.Node
	// lines maps key paths to lines, built from doc on the first error
	// only: at 140k tables the walk costs more than the checks.
	lines map[string]int
}

func (v *validator) walk(n *yaml.Node, p string) {
	if n == nil {
		return
	}
	if _, ok := v.lines[p]; !ok {
		v.lines[p] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := p + "\x00" + n.Content[i].Value
			v.lines[k] = n.Content[i].Line
			v.walk(n.Content[i+1], k)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			v.walk(c, p+"\x00"+strconv.Itoa(i))
		}
	case yaml.DocumentNode, yaml.AliasNode:
		for _, c := range n.Content {
			v.walk(c, p)
		}
	}
}

// errf places an error at the deepest known key of the path.
func (v *validator) errf(at []string, format string, args ...any) error {
	if v.lines == nil {
		v.lines = map[string]int{}
		v.walk(v.doc, "")
	}
	line := 0
	for i := len(at); i > 0 && line == 0; i-- {
		line = v.lines["\x00"+strings.Join(at[:i], "\x00")]
	}
	if line == 0 {
		line = v.lines[""]
	}
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		return fmt.Errorf("%s:%d: %s", v.name, line, msg)
	}
	return fmt.Errorf("%s: %s", v.name, msg)
}

func (v *validator) file(f *File, doc *yaml.Node) error {
	if f.Version != FormatVersion {
		return v.errf([]string{"version"}, "version must be %d (got %d)", FormatVersion, f.Version)
	}
	switch f.Mode {
	case "", Authoritative, Adopt, Additive:
	default:
		return v.errf([]string{"mode"}, "mode %q: want authoritative, adopt or additive", oneLineText(f.Mode))
	}
	for i, p := range f.IgnoreRoles {
		if _, err := path.Match(p, ""); err != nil {
			return v.errf([]string{"ignore_roles", strconv.Itoa(i)}, "ignore_roles %q: %v", oneLineText(p), err)
		}
	}
	for _, rn := range sortedKeys(f.Roles) {
		if err := v.role(rn, f.Roles[rn], doc); err != nil {
			return err
		}
	}
	for _, dn := range sortedKeys(f.Databases) {
		if err := v.database(dn, f.Databases[dn]); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) role(name string, r *Role, doc *yaml.Node) error {
	at := []string{"roles", name}
	if name == "" || strings.EqualFold(name, Public) {
		return v.errf(at, "role %q: not a role name", oneLineText(name))
	}
	if strings.HasPrefix(name, "pg_") {
		return v.errf(at, "role %s: predefined pg_* roles are never managed", oneLineText(name))
	}
	if r == nil {
		return nil
	}
	if err := CheckPassword(r.Password); err != nil {
		return v.errf(append(at, "password"), "role %s: %v", oneLineText(name), err)
	}
	if r.ConnectionLimit != nil && *r.ConnectionLimit < -1 {
		return v.errf(append(at, "connection_limit"), "role %s: connection_limit must be -1 (none) or more", oneLineText(name))
	}
	for i, m := range r.MemberOf {
		mat := append(at, "member_of", strconv.Itoa(i))
		if m.Role == "" {
			return v.errf(mat, "role %s: member_of entry %d names no role", oneLineText(name), i+1)
		}
		if m.Role == name {
			return v.errf(mat, "role %s: cannot be a member of itself", oneLineText(name))
		}
	}
	check := func(s Settings, at []string) error {
		for k := range s {
			if !settingNameOK(k) {
				return v.errf(append(at, k), "role %s: setting name %q: want letters, digits, _ and dots", oneLineText(name), oneLineText(k))
			}
		}
		return nil
	}
	if err := check(r.Settings, append(at, "settings")); err != nil {
		return err
	}
	for db, s := range r.DatabaseSettings {
		if err := check(s, append(at, "database_settings", db)); err != nil {
			return err
		}
	}
	return nil
}

func settingNameOK(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' || strings.Contains(k, "..") {
		return false
	}
	for _, c := range k {
		if !(c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// isMD5: "md5" and 32 hex digits, the form pg_authid stores.
func isMD5(pw string) bool {
	if len(pw) != 35 || !strings.HasPrefix(pw, "md5") {
		return false
	}
	for _, c := range pw[3:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// CheckPassword accepts what a policy file may hold as a password: "",
// "none" or a SCRAM-SHA-256 verifier. Anything else is taken for a clear
// text, refused, and never shown.
func CheckPassword(pw string) error {
	if pw == "" || pw == "none" {
		return nil
	}
	if isMD5(pw) {
		return errors.New("password is an md5 hash (PostgreSQL 18 deprecates md5; give a SCRAM-SHA-256 verifier or none); its value is not shown")
	}
	if !strings.HasPrefix(pw, verifierPrefix) {
		return errors.New("password must be none or a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>); a clear-text password is refused, and its value is not shown")
	}
	rest := pw[len(verifierPrefix):]
	parts := strings.Split(rest, "$")
	ok := len(parts) == 2
	if ok {
		a, b := strings.Split(parts[0], ":"), strings.Split(parts[1], ":")
		ok = len(a) == 2 && len(b) == 2 && a[1] != "" && b[0] != "" && b[1] != ""
		if ok {
			n, err := strconv.Atoi(a[0])
			ok = err == nil && n > 0
		}
		for _, s := range append(a[1:], b...) {
			for _, c := range s {
				if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
					ok = false
				}
			}
		}
	}
	if !ok {
		return errors.New("password starts like a SCRAM-SHA-256 verifier but is not one (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>); its value is not shown")
	}
	return nil
}

func (v *validator) grants(kind string, g Grants, at ...string) error {
	for _, who := range sortedKeys(g) {
		if who == "" {
			return v.errf(at, "a grantee with no name")
		}
		for i, p := range g[who] {
			if _, _, err := parsePriv(kind, p); err != nil {
				return v.errf(append(at, who, strconv.Itoa(i)), "%s: %v", oneLineText(who), err)
			}
		}
	}
	return nil
}

func (v *validator) database(name string, d *Database) error {
	at := []string{"databases", name}
	if name == "" {
		return v.errf(at, "a database with no name")
	}
	if d == nil {
		return nil
	}
	if err := v.grants(kindDatabase, d.Grants, append(at, "grants")...); err != nil {
		return err
	}
	if err := v.defaults(d.DefaultPrivileges, true, append(at, "default_privileges")); err != nil {
		return err
	}
	for _, sn := range sortedKeys(d.Schemas) {
		s := d.Schemas[sn]
		sat := append(append([]string{}, at...), "schemas", sn)
		if sn == "" {
			return v.errf(sat, "a schema with no name")
		}
		if systemSchema(sn) {
			return v.errf(sat, "schema %s is a system schema, never managed", oneLineText(sn))
		}
		if s == nil {
			continue
		}
		if err := v.grants(kindSchema, s.Grants, append(sat, "grants")...); err != nil {
			return err
		}
		for _, k := range []struct {
			key, kind string
			objs      Objects
		}{{"tables", kindTable, s.Tables}, {"sequences", kindSequence, s.Sequences}, {"functions", kindFunction, s.Functions}} {
			for _, on := range sortedKeys(k.objs) {
				o := k.objs[on]
				oat := append(append([]string{}, sat...), k.key, on)
				if on == "" {
					return v.errf(oat, "%s with no name", k.key)
				}
				if k.kind == kindFunction && on != "*" {
					if _, err := objectName(kindFunction, sn, on); err != nil {
						return v.errf(oat, "%v", err)
					}
				}
				if o == nil {
					continue
				}
				if err := v.grants(k.kind, o.Grants, append(oat, "grants")...); err != nil {
					return err
				}
				if o.Columns != nil && k.kind != kindTable {
					return v.errf(append(oat, "columns"), "columns: only tables have column privileges")
				}
				for _, c := range sortedKeys(o.Columns) {
					if err := v.grants(kindColumn, o.Columns[c], append(oat, "columns", c)...); err != nil {
						return err
					}
				}
			}
		}
		if err := v.defaults(s.DefaultPrivileges, false, append(sat, "default_privileges")); err != nil {
			return err
		}
		for _, t := range sortedKeys(s.RLS) {
			if err := v.rls(s.RLS[t], append(append([]string{}, sat...), "rls", t)); err != nil {
				return err
			}
		}
	}
	return nil
}

func systemSchema(s string) bool {
	return s == "pg_catalog" || s == "information_schema" || strings.HasPrefix(s, "pg_toast") || strings.HasPrefix(s, "pg_temp")
}

func (v *validator) defaults(dp DefaultPrivilegesByRole, global bool, at []string) error {
	for _, c := range sortedKeys(dp) {
		p := dp[c]
		if p == nil {
			continue
		}
		cat := append(append([]string{}, at...), c)
		for _, k := range defaultKinds {
			g := k.get(p)
			if k.kind == kindSchema && !global && g != nil {
				return v.errf(append(cat, "schemas"), "default privileges on schemas exist only database-wide")
			}
			if err := v.grants(k.kind, g, append(cat, k.field)...); err != nil {
				return err
			}
		}
	}
	return nil
}

var policyCommands = map[string]bool{"": true, "ALL": true, "SELECT": true, "INSERT": true, "UPDATE": true, "DELETE": true}

func (v *validator) rls(r *RLS, at []string) error {
	if r == nil {
		return nil
	}
	for _, pn := range sortedKeys(r.Policies) {
		p := r.Policies[pn]
		pat := append(append([]string{}, at...), "policies", pn)
		if pn == "" {
			return v.errf(pat, "a policy with no name")
		}
		if p == nil {
			continue
		}
		if !policyCommands[strings.ToUpper(p.Command)] {
			return v.errf(append(pat, "command"), "policy %s: command %q: want ALL, SELECT, INSERT, UPDATE or DELETE", oneLineText(pn), oneLineText(p.Command))
		}
		for _, e := range []struct{ key, expr string }{{"using", p.Using}, {"check", p.Check}} {
			if err := checkExpr(e.expr); err != nil {
				return v.errf(append(pat, e.key), "policy %s: %s: %v", oneLineText(pn), e.key, err)
			}
		}
		if strings.EqualFold(p.Command, "INSERT") && p.Using != "" {
			return v.errf(append(pat, "using"), "policy %s: an INSERT policy has only a check", oneLineText(pn))
		}
		if (strings.EqualFold(p.Command, "SELECT") || strings.EqualFold(p.Command, "DELETE")) && p.Check != "" {
			return v.errf(append(pat, "check"), "policy %s: a %s policy has no check", oneLineText(pn), strings.ToUpper(p.Command))
		}
	}
	for i, t := range r.Tests {
		tat := append(append([]string{}, at...), "tests", strconv.Itoa(i))
		if t.As == "" {
			return v.errf(tat, "test %d: as: names the role to run as", i+1)
		}
		for _, ws := range [][]WriteTest{t.Insert, t.Update, t.Delete} {
			for _, w := range ws {
				if w.Expect != "allowed" && w.Expect != "denied" {
					return v.errf(tat, "test %d: expect %q: want allowed or denied", i+1, oneLineText(w.Expect))
				}
			}
		}
	}
	return nil
}

// checkExpr refuses a policy expression that could end the statement it
// is written into: a semicolon, a comment, unbalanced parentheses, a
// dollar quote or a backslash (which makes quote boundaries depend on
// the string syntax) outside a plain quoted string.
func checkExpr(e string) error {
	if e == "" {
		return nil
	}
	depth := 0
	var q byte
	for i := 0; i < len(e); i++ {
		c := e[i]
		if c == '\\' {
			return errors.New("a backslash is not accepted in a policy expression")
		}
		if q != 0 {
			if c == q {
				q = 0
			}
			continue
		}
		switch {
		case c == '\'' || c == '"':
			q = c
		case c == ';':
			return errors.New("a semicolon outside a string: one expression, not statements")
		case c == '$':
			return errors.New("dollar quotes and parameters are not accepted in a policy expression")
		case c == '-' && i+1 < len(e) && e[i+1] == '-', c == '/' && i+1 < len(e) && e[i+1] == '*':
			return errors.New("comments are not accepted in a policy expression")
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return errors.New("unbalanced parentheses")
			}
		}
	}
	if q != 0 {
		return errors.New("an unterminated quoted string")
	}
	if depth != 0 {
		return errors.New("unbalanced parentheses")
	}
	return nil
}

// legacyPolicy is the format `access policy check` read before policy
// files: privileges per role on every table and sequence of the schemas.
type legacyPolicy struct {
	Database  string                 `yaml:"database"`
	Schemas   []string               `yaml:"schemas"`
	Grants    map[string]legacyGrant `yaml:"grants"`
	Exclusive bool                   `yaml:"exclusive"`
}

type legacyGrant struct {
	Tables    []string `yaml:"tables"`
	Sequences []string `yaml:"sequences"`
}

// AllDatabases is the database key of a legacy file that named no
// database: Diff applies it to every database it read.
const AllDatabases = "*"

// parseLegacy converts the old format: exclusive is authoritative on
// the schemas' tables and sequences, otherwise adopt; PUBLIC holds
// nothing there, as the old check wanted.
func parseLegacy(name string, data []byte) (*File, error) {
	var p legacyPolicy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, yamlErr(name, err)
	}
	if len(p.Schemas) == 0 {
		return nil, fmt.Errorf("%s: the policy names no schemas", name)
	}
	f := &File{Version: FormatVersion, Mode: Adopt}
	if p.Exclusive {
		f.Mode = Authoritative
	}
	tables, seqs := Grants{Public: {}}, Grants{Public: {}}
	for _, role := range sortedKeys(p.Grants) {
		g := p.Grants[role]
		for _, k := range []struct {
			kind string
			list []string
			into Grants
		}{{kindTable, g.Tables, tables}, {kindSequence, g.Sequences, seqs}} {
			for _, pr := range k.list {
				if _, _, err := parsePriv(k.kind, pr); err != nil {
					return nil, fmt.Errorf("%s: role %s: %v", name, oneLineText(role), err)
				}
			}
			k.into[role] = append([]string{}, k.list...)
		}
	}
	db := &Database{Schemas: map[string]*Schema{}}
	for _, s := range p.Schemas {
		db.Schemas[s] = &Schema{Tables: Objects{"*": {Grants: tables}}, Sequences: Objects{"*": {Grants: seqs}}}
	}
	dn := p.Database
	if dn == "" {
		dn = AllDatabases
	}
	f.Databases = map[string]*Database{dn: db}
	return f, nil
}
