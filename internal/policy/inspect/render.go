package inspect

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// Marshal writes a policy file as YAML after a comment header (one "# "
// line per entry, control characters shown escaped so a hostile name
// cannot end the comment). The document is the one yaml.v3 would write
// for the File (its field order and omitempty rules, map keys in its
// sort order, grants in flow style "app: [SELECT, INSERT]", {} and [] for
// empty managed values), written directly: yaml.v3 managed about 1 MB
// per CPU second, too slow for a 140,000-table export. A scalar is plain
// only when it is provably read back as the same string (see plainOK);
// otherwise it is double-quoted with JSON-style escapes, or !!binary when
// it is not UTF-8. The same state gives the same bytes. Role.Password is
// never written (Read never fills it).
func Marshal(f *policy.File, header []string) ([]byte, error) {
	if f == nil {
		return nil, fmt.Errorf("policy: nothing to write")
	}
	w := &writer{b: make([]byte, 0, 4096)}
	for _, h := range header {
		w.b = append(w.b, "# "...)
		w.b = append(w.b, commentSafe(h)...)
		w.b = append(w.b, '\n')
	}
	w.file(f)
	return w.b, nil
}

// commentSafe escapes what would end a comment line or what YAML does
// not allow in one: line breaks, control characters, invalid UTF-8.
func commentSafe(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&sb, `\x%02x`, s[i])
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case !printable(r):
			fmt.Fprintf(&sb, `\u%04x`, r) // U+2028 is not \x28
		default:
			sb.WriteRune(r)
		}
		i += n
	}
	return sb.String()
}

// writer appends block-style YAML. Indentation is two spaces per level,
// block sequences indented under their key, as yaml.v3 with SetIndent(2).
type writer struct {
	b []byte
	// inItem: the next key continues a "- " line (the first key of a
	// mapping that is a sequence item).
	inItem bool
}

func (w *writer) indent(n int) {
	if w.inItem {
		w.inItem = false
		return
	}
	for ; n > 0; n-- {
		w.b = append(w.b, ' ')
	}
}

// longKey is where a key is written in the explicit form ("? key" then
// ": value"): YAML limits an implicit key to 1024 characters.
const longKey = 1000

// key writes "key:" at indent n; the caller writes the value next (" x",
// " {}", or a newline and the nested block at n+2).
func (w *writer) key(n int, k string) {
	w.indent(n)
	at := len(w.b)
	w.scalar(k, false)
	if len(w.b)-at > longKey {
		enc := string(w.b[at:])
		w.b = append(w.b[:at], "? "...)
		w.b = append(w.b, enc...)
		w.b = append(w.b, '\n')
		for i := 0; i < n; i++ {
			w.b = append(w.b, ' ')
		}
	}
	w.b = append(w.b, ':')
}

// item starts a sequence item at indent n.
func (w *writer) item(n int) {
	w.indent(n)
	w.b = append(w.b, "- "...)
}

func (w *writer) str(n int, k, v string) {
	w.key(n, k)
	w.b = append(w.b, ' ')
	w.scalar(v, false)
	w.b = append(w.b, '\n')
}

func (w *writer) boolean(n int, k string, v bool) {
	w.key(n, k)
	w.b = append(w.b, ' ')
	w.b = strconv.AppendBool(w.b, v)
	w.b = append(w.b, '\n')
}

func (w *writer) boolPtr(n int, k string, v *bool) {
	if v != nil {
		w.boolean(n, k, *v)
	}
}

// open ends a key line whose value is a block mapping or sequence:
// emptyText ({} or []) when empty, else a newline, and then the caller
// writes the content (open says whether).
func (w *writer) open(empty bool, emptyText string) bool {
	if empty {
		w.b = append(w.b, ' ')
		w.b = append(w.b, emptyText...)
		w.b = append(w.b, '\n')
		return false
	}
	w.b = append(w.b, '\n')
	return true
}

func (w *writer) null() { w.b = append(w.b, " null\n"...) }

func (w *writer) file(f *policy.File) {
	w.key(0, "version")
	w.b = append(w.b, ' ')
	w.b = strconv.AppendInt(w.b, int64(f.Version), 10)
	w.b = append(w.b, '\n')
	if f.Mode != "" {
		w.str(0, "mode", f.Mode)
	}
	if len(f.IgnoreRoles) > 0 {
		w.key(0, "ignore_roles")
		w.strings(2, f.IgnoreRoles)
	}
	if f.Roles != nil {
		w.key(0, "roles")
		if w.open(len(f.Roles) == 0, "{}") {
			for _, n := range yamlSorted(f.Roles) {
				w.key(2, n)
				w.role(4, f.Roles[n])
			}
		}
	}
	if len(f.Databases) > 0 {
		w.key(0, "databases")
		w.open(false, "")
		for _, n := range yamlSorted(f.Databases) {
			w.key(2, n)
			w.database(4, f.Databases[n])
		}
	}
}

// strings writes a block sequence of strings after its key.
func (w *writer) strings(n int, list []string) {
	w.b = append(w.b, '\n')
	for _, s := range list {
		w.item(n)
		w.scalar(s, false)
		w.b = append(w.b, '\n')
	}
}

func (w *writer) role(n int, r *policy.Role) {
	if r == nil {
		w.null()
		return
	}
	empty := r.Login == nil && r.Superuser == nil && r.CreateDB == nil && r.CreateRole == nil && r.Inherit == nil &&
		r.Replication == nil && r.BypassRLS == nil && r.ConnectionLimit == nil && r.ValidUntil == "" &&
		r.MemberOf == nil && r.Settings == nil && len(r.DatabaseSettings) == 0
	if !w.open(empty, "{}") {
		return
	}
	w.boolPtr(n, "login", r.Login)
	w.boolPtr(n, "superuser", r.Superuser)
	w.boolPtr(n, "createdb", r.CreateDB)
	w.boolPtr(n, "createrole", r.CreateRole)
	w.boolPtr(n, "inherit", r.Inherit)
	w.boolPtr(n, "replication", r.Replication)
	w.boolPtr(n, "bypassrls", r.BypassRLS)
	if r.ConnectionLimit != nil {
		w.key(n, "connection_limit")
		w.b = append(w.b, ' ')
		w.b = strconv.AppendInt(w.b, int64(*r.ConnectionLimit), 10)
		w.b = append(w.b, '\n')
	}
	if r.ValidUntil != "" {
		w.str(n, "valid_until", r.ValidUntil)
	}
	// Password: never written.
	if r.MemberOf != nil {
		w.key(n, "member_of")
		if w.open(len(r.MemberOf) == 0, "[]") {
			for _, m := range r.MemberOf {
				w.membership(n+2, m)
			}
		}
	}
	if r.Settings != nil {
		w.key(n, "settings")
		w.stringMap(n+2, r.Settings)
	}
	if len(r.DatabaseSettings) > 0 {
		w.key(n, "database_settings")
		w.open(false, "")
		for _, d := range yamlSorted(r.DatabaseSettings) {
			w.key(n+2, d)
			w.stringMap(n+4, r.DatabaseSettings[d]) // a nil map is {} as in yaml.v3
		}
	}
}

// membership is a plain role name when it has no options (as
// Membership.MarshalYAML writes it), otherwise a mapping.
func (w *writer) membership(n int, m policy.Membership) {
	w.item(n)
	if m.Admin == nil && m.Inherit == nil && m.Set == nil && m.Grantor == "" {
		w.scalar(m.Role, false)
		w.b = append(w.b, '\n')
		return
	}
	w.inItem = true
	w.str(n+2, "role", m.Role)
	w.boolPtr(n+2, "admin", m.Admin)
	w.boolPtr(n+2, "inherit", m.Inherit)
	w.boolPtr(n+2, "set", m.Set)
	if m.Grantor != "" {
		w.str(n+2, "grantor", m.Grantor)
	}
}

// stringMap writes a map of strings after its key ({} when empty).
func (w *writer) stringMap(n int, m map[string]string) {
	if !w.open(len(m) == 0, "{}") {
		return
	}
	for _, k := range yamlSorted(m) {
		w.str(n, k, m[k])
	}
}

// grants writes a grants map after its key: grantees sorted by name (as
// Grants.MarshalYAML does), each list in flow style.
func (w *writer) grants(n int, g policy.Grants) {
	if !w.open(len(g) == 0, "{}") {
		return
	}
	var buf [4]string // most objects have a grantee or two: no allocation
	who := buf[:0]
	for k := range g {
		who = append(who, k)
	}
	slices.Sort(who)
	for _, k := range who {
		w.key(n, k)
		w.b = append(w.b, " ["...)
		for i, p := range g[k] {
			if i > 0 {
				w.b = append(w.b, ", "...)
			}
			w.scalar(p, true)
		}
		w.b = append(w.b, "]\n"...)
	}
}

func (w *writer) grantsField(n int, k string, g policy.Grants) {
	if g != nil {
		w.key(n, k)
		w.grants(n+2, g)
	}
}

func (w *writer) database(n int, d *policy.Database) {
	if d == nil {
		w.null()
		return
	}
	if !w.open(d.Owner == "" && d.Grants == nil && len(d.Schemas) == 0 && d.DefaultPrivileges == nil, "{}") {
		return
	}
	if d.Owner != "" {
		w.str(n, "owner", d.Owner)
	}
	w.grantsField(n, "grants", d.Grants)
	if len(d.Schemas) > 0 {
		w.key(n, "schemas")
		w.open(false, "")
		for _, sn := range yamlSorted(d.Schemas) {
			w.key(n+2, sn)
			w.schema(n+4, d.Schemas[sn])
		}
	}
	w.defaults(n, d.DefaultPrivileges)
}

func (w *writer) schema(n int, s *policy.Schema) {
	if s == nil {
		w.null()
		return
	}
	if !w.open(s.Owner == "" && s.Grants == nil && s.Tables == nil && s.Sequences == nil && s.Functions == nil &&
		s.DefaultPrivileges == nil && len(s.RLS) == 0, "{}") {
		return
	}
	if s.Owner != "" {
		w.str(n, "owner", s.Owner)
	}
	w.grantsField(n, "grants", s.Grants)
	w.objects(n, "tables", s.Tables)
	w.objects(n, "sequences", s.Sequences)
	w.objects(n, "functions", s.Functions)
	w.defaults(n, s.DefaultPrivileges)
	if len(s.RLS) > 0 {
		w.key(n, "rls")
		w.open(false, "")
		for _, t := range yamlSorted(s.RLS) {
			w.key(n+2, t)
			w.rls(n+4, s.RLS[t])
		}
	}
}

func (w *writer) objects(n int, k string, objs policy.Objects) {
	if objs == nil {
		return
	}
	w.key(n, k)
	if !w.open(len(objs) == 0, "{}") {
		return
	}
	for _, on := range yamlSorted(objs) {
		o := objs[on]
		w.key(n+2, on)
		if o == nil {
			w.null()
			continue
		}
		if !w.open(o.Owner == "" && o.Grants == nil && o.Columns == nil, "{}") {
			continue
		}
		if o.Owner != "" {
			w.str(n+4, "owner", o.Owner)
		}
		w.grantsField(n+4, "grants", o.Grants)
		if o.Columns != nil {
			w.key(n+4, "columns")
			if !w.open(len(o.Columns) == 0, "{}") {
				continue
			}
			for _, c := range yamlSorted(o.Columns) {
				w.key(n+6, c)
				w.grants(n+8, o.Columns[c]) // nil is {} as Grants.MarshalYAML writes it
			}
		}
	}
}

func (w *writer) defaults(n int, d policy.DefaultPrivilegesByRole) {
	if d == nil {
		return
	}
	w.key(n, "default_privileges")
	if !w.open(len(d) == 0, "{}") {
		return
	}
	for _, r := range yamlSorted(d) {
		p := d[r]
		w.key(n+2, r)
		if p == nil {
			w.null()
			continue
		}
		if !w.open(p.Tables == nil && p.Sequences == nil && p.Functions == nil && p.Types == nil && p.Schemas == nil, "{}") {
			continue
		}
		w.grantsField(n+4, "tables", p.Tables)
		w.grantsField(n+4, "sequences", p.Sequences)
		w.grantsField(n+4, "functions", p.Functions)
		w.grantsField(n+4, "types", p.Types)
		w.grantsField(n+4, "schemas", p.Schemas)
	}
}

func (w *writer) rls(n int, r *policy.RLS) {
	if r == nil {
		w.null()
		return
	}
	w.open(false, "") // enabled is always written
	w.boolean(n, "enabled", r.Enabled)
	if r.Force {
		w.boolean(n, "force", true)
	}
	if r.Policies != nil {
		w.key(n, "policies")
		if w.open(len(r.Policies) == 0, "{}") {
			for _, pn := range yamlSorted(r.Policies) {
				w.key(n+2, pn)
				w.rowPolicy(n+4, r.Policies[pn])
			}
		}
	}
	if len(r.Tests) > 0 {
		w.key(n, "tests")
		w.b = append(w.b, '\n')
		for _, t := range r.Tests {
			w.item(n + 2)
			w.inItem = true
			w.rlsTest(n+4, t)
		}
	}
}

func (w *writer) rowPolicy(n int, p *policy.RowPolicy) {
	if p == nil {
		w.null()
		return
	}
	if !w.open(p.Command == "" && !p.Restrictive && len(p.Roles) == 0 && p.Using == "" && p.Check == "", "{}") {
		return
	}
	if p.Command != "" {
		w.str(n, "command", p.Command)
	}
	if p.Restrictive {
		w.boolean(n, "restrictive", true)
	}
	if len(p.Roles) > 0 {
		w.key(n, "roles")
		w.strings(n+2, p.Roles)
	}
	if p.Using != "" {
		w.str(n, "using", p.Using)
	}
	if p.Check != "" {
		w.str(n, "check", p.Check)
	}
}

func (w *writer) rlsTest(n int, t policy.RLSTest) {
	if t.Name != "" {
		w.str(n, "name", t.Name)
	}
	w.str(n, "as", t.As)
	if len(t.Set) > 0 {
		w.key(n, "set")
		w.stringMap(n+2, t.Set)
	}
	if t.Sees != "" {
		w.str(n, "sees", t.Sees)
	}
	for _, k := range []struct {
		key  string
		list []policy.WriteTest
	}{{"insert", t.Insert}, {"update", t.Update}, {"delete", t.Delete}} {
		if len(k.list) == 0 {
			continue
		}
		w.key(n, k.key)
		w.b = append(w.b, '\n')
		for _, wt := range k.list {
			w.item(n + 2)
			w.inItem = true
			if len(wt.Values) > 0 {
				w.key(n+4, "values")
				w.stringMap(n+6, wt.Values)
			}
			if wt.Where != "" {
				w.str(n+4, "where", wt.Where)
			}
			w.str(n+4, "expect", wt.Expect)
		}
	}
}

// scalar writes s plain when plainOK, else double-quoted (or !!binary
// when s is not UTF-8, as yaml.v3 does: no escape stands for a byte).
func (w *writer) scalar(s string, flow bool) {
	if plainOK(s, flow) {
		w.b = append(w.b, s...)
		return
	}
	if !utf8.ValidString(s) {
		w.b = append(w.b, `!!binary "`...)
		w.b = base64.StdEncoding.AppendEncode(w.b, []byte(s))
		w.b = append(w.b, '"')
		return
	}
	w.b = append(w.b, '"')
	for _, r := range s {
		switch r {
		case '"':
			w.b = append(w.b, `\"`...)
		case '\\':
			w.b = append(w.b, `\\`...)
		case '\n':
			w.b = append(w.b, `\n`...)
		case '\r':
			w.b = append(w.b, `\r`...)
		case '\t':
			w.b = append(w.b, `\t`...)
		default:
			if printable(r) {
				w.b = utf8.AppendRune(w.b, r)
			} else {
				w.b = fmt.Appendf(w.b, `\u%04x`, r)
			}
		}
	}
	w.b = append(w.b, '"')
}

// printable: what YAML allows unescaped inside a double-quoted scalar
// and reads back as itself: no control characters, no line or
// paragraph separators (YAML 1.1 line breaks, folded into a space), no
// byte order mark, no non-characters.
func printable(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return false
	case r < 0x80:
		return true
	case r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xfeff, r == 0xfffe, r == 0xffff:
		return false
	}
	return r <= unicode.MaxRune
}

// specialWords are read by some YAML version as something other than a
// string (compared case-insensitively).
var specialWords = map[string]bool{"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true}

// plainOK says s can be written unquoted and reads back as the same
// string in any YAML 1.1 or 1.2 reader: a conservative allow-list, not
// YAML's own rules. ASCII letters, digits and _ ( ) / . - $ + < > = and
// inner spaces; a letter, digit, _ or ( first; not a word YAML reads as a
// boolean or null, nor anything that could be a number, date or time;
// "," only outside flow collections.
func plainOK(s string, flow bool) bool {
	if s == "" || len(s) > 200 || s[len(s)-1] == ' ' {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '(') {
		return false
	}
	numeric := true // only characters a number, date or time could hold
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			if !strings.ContainsRune("abcdefABCDEFxXoObBiInNtT", rune(c)) {
				numeric = false
			}
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == '_':
		case c == '(' || c == ')' || c == '/' || c == '$' || c == '<' || c == '>' || c == '=':
			numeric = false // never first (checked above): not indicators inside
		case c == ' ':
			// inner spaces: the first character is not one, the last is
			// checked above, and no '#' or ':' can follow.
		case c == ',' && !flow:
			numeric = false
		default:
			return false
		}
	}
	if c >= '0' && c <= '9' && numeric {
		return false
	}
	if len(s) <= 5 && specialWords[strings.ToLower(s)] {
		return false
	}
	return true
}

// yamlSorted is a map's keys in the order yaml.v3 writes them (runesLess),
// so the files keep the order earlier releases wrote. The keys are sorted
// bytewise first so that the result does not depend on map order; each
// is decoded into runes once, not at every comparison.
func yamlSorted[V any](m map[string]V) []string {
	type key struct {
		s string
		r []rune
	}
	ks := make([]key, 0, len(m))
	for k := range m {
		ks = append(ks, key{k, []rune(k)})
	}
	slices.SortFunc(ks, func(a, b key) int { return strings.Compare(a.s, b.s) })
	slices.SortStableFunc(ks, func(a, b key) int {
		if runesLess(a.r, b.r) {
			return -1
		}
		if runesLess(b.r, a.r) {
			return 1
		}
		return 0
	})
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.s
	}
	return out
}

// runesLess is yaml.v3's order of string map keys, a "natural" order
// (t2 before t10): at the first rune where a and b differ, two letters
// compare as runes; a letter and a non-letter put the letter first when
// the runes before were digits, last otherwise; two non-letters compare
// as the numbers their digit runs spell (a run continued from equal
// digits before it when one of them is '0' and those digits are not all
// zeros), then by the runs' lengths, then as runes. A prefix sorts
// first. Invalid UTF-8 compares as U+FFFD, as in yaml.v3.
func runesLess(ar, br []rune) bool {
	afterDigit := false
	for i := 0; i < len(ar) && i < len(br); i++ {
		x, y := ar[i], br[i]
		if x == y {
			afterDigit = unicode.IsDigit(x)
			continue
		}
		xl, yl := unicode.IsLetter(x), unicode.IsLetter(y)
		switch {
		case xl && yl:
			return x < y
		case xl || yl:
			if afterDigit {
				return xl
			}
			return yl
		}
		var an, bn int64
		if x == '0' || y == '0' {
			for j := i - 1; j >= 0 && unicode.IsDigit(ar[j]); j-- {
				if ar[j] != '0' {
					an, bn = 1, 1
					break
				}
			}
		}
		ae, be := i, i
		for ; ae < len(ar) && unicode.IsDigit(ar[ae]); ae++ {
			an = an*10 + int64(ar[ae]-'0')
		}
		for ; be < len(br) && unicode.IsDigit(br[be]); be++ {
			bn = bn*10 + int64(br[be]-'0')
		}
		if an != bn {
			return an < bn
		}
		if ae != be {
			return ae < be
		}
		return x < y
	}
	return len(ar) < len(br)
}
