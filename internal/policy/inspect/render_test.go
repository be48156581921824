package inspect

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// hostile are strings a YAML writer can get wrong: special words of YAML
// 1.1 and 1.2, numbers, dates, indicators, quotes, comments, line breaks
// of every kind, control and invisible characters, long keys.
var hostile = []string{
	"y", "Y", "n", "yes", "No", "ON", "off", "True", "FALSE", "null", "Null", "NULL", "~", "",
	" lead", "trail ", "two  spaces", "a: b", "a:b", "a:", ":a", "#x", "a #b", "a#b", "-", "- x", "-x", "---", "...", "?", "? x", "?x",
	"*", "*a", "&a", "!x", "!!str", "%x", "@x", "`x", "|", ">", "'q'", `"dq"`, `a"b`, "a'b",
	"1", "-1", "+1", "0x1F", "0o17", "0b101", "1e5", "1E+5", "1.5", ".5", "5.", ".inf", "-.inf", ".NaN", "1_000", "12:30", "1:2:3",
	"2001-12-14", "2001-12-14 21:59:43.10 -5", "2031-01-02 03:04:05+00", "0", "00", "007", "1st", "8MB", "NaN", "Infinity", "inf",
	"t1", "t10", "t2", "t01", "t1a", "t1_", "a\nb", "a\r\nb", "\n", "\t", "a\tb", "x\u2028y", "x\u2029", "\u0085", "\u00a0", "é", "日本",
	"\u200b", "\ufeff", "\x7f", "\x01", "\x1b[31m", "a,b", "[x]", "{x}", "a]", "a}", "\\", `\n`, "<<", "=", "a=b",
	"INSERT WITH GRANT OPTION", "(a)", "g()", "a b(c, d)", "$1", "a$b", "a/b", "a.b", "\xff\xfe", "ok\x80", strings.Repeat("k", 1500),
	strings.Repeat("é", 600), "٣", "a٣", "ǅ", "\U0001F600",
}

// gen draws the generated files; tame keeps to names yaml.v3's own
// writer gets right (see TestMarshalRoundTrips).
type gen struct {
	*rand.Rand
	tame bool
}

func newGen(seed int64, tame bool) *gen { return &gen{rand.New(rand.NewSource(seed)), tame} }

// genString is a hostile string or a random one over an alphabet of
// the characters that matter.
func genString(rng *gen) string {
	if rng.tame {
		const alpha = "abcxyzABC0123456789_ .-:#'\"(),"
		var sb strings.Builder
		sb.WriteByte("abcxyz"[rng.Intn(6)])
		for i := rng.Intn(10); i > 0; i-- {
			sb.WriteByte(alpha[rng.Intn(len(alpha))])
		}
		return strings.TrimRight(sb.String(), " ")
	}
	if rng.Intn(3) == 0 {
		return hostile[rng.Intn(len(hostile))]
	}
	const alpha = "aZ_09 .-:#'\"\\\n\t,[]{}*&!|>%@`?~=()/$+"
	var sb strings.Builder
	for i := rng.Intn(10); i >= 0; i-- {
		switch rng.Intn(12) {
		case 0:
			sb.WriteString([]string{"é", "\u2028", "\u0085", "\x02", "\u00ad", "日", "\U0001F600", "\ufeff"}[rng.Intn(8)])
		case 1, 2, 3, 4:
			sb.WriteByte("abcxyzABC"[rng.Intn(9)])
		case 5, 6:
			sb.WriteByte("0123456789"[rng.Intn(10)])
		default:
			sb.WriteByte(alpha[rng.Intn(len(alpha))])
		}
	}
	return sb.String()
}

// genName is a string Parse accepts as a name: not empty (and for roles
// not PUBLIC nor pg_*).
func genName(rng *gen, role bool) string {
	for {
		s := genString(rng)
		if s == "" || role && (strings.EqualFold(s, policy.Public) || strings.HasPrefix(s, "pg_")) {
			continue
		}
		return s
	}
}

var privsOf = map[string][]string{
	"database": {"CREATE", "TEMPORARY", "TEMP", "CONNECT", "ALL", "connect"},
	"schema":   {"USAGE", "CREATE", "ALL PRIVILEGES", "USAGE WITH GRANT OPTION"},
	"table":    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "SELECT WITH GRANT OPTION", "ALL", "select"},
	"column":   {"SELECT", "INSERT", "UPDATE", "REFERENCES"},
	"sequence": {"USAGE", "SELECT", "UPDATE"},
	"function": {"EXECUTE", "EXECUTE WITH GRANT OPTION"},
	"type":     {"USAGE"},
}

func genGrants(rng *gen, kind string) policy.Grants {
	g := policy.Grants{}
	for i := rng.Intn(4); i > 0; i-- {
		ps := []string{}
		for _, p := range privsOf[kind] {
			if rng.Intn(3) == 0 {
				ps = append(ps, p)
			}
		}
		who := genName(rng, false)
		if rng.Intn(3) == 0 {
			who = policy.Public
		}
		g[who] = ps
	}
	return g
}

func maybeGrants(rng *gen, kind string) policy.Grants {
	if rng.Intn(3) == 0 {
		return nil
	}
	return genGrants(rng, kind)
}

func genSettings(rng *gen) policy.Settings {
	s := policy.Settings{}
	for i := rng.Intn(3); i > 0; i-- {
		s[[]string{"search_path", "work_mem", "pgaudit.log", "app.tenant_id", "x.y_1"}[rng.Intn(5)]] = genString(rng)
	}
	return s
}

// genExpr is an expression checkExpr accepts: a quoted random text.
func genExpr(rng *gen) string {
	s := strings.NewReplacer("'", "", "\\", "", "\"", "").Replace(genString(rng))
	return fmt.Sprintf([]string{"(tenant = '%s')", "('%s' <> '')"}[rng.Intn(2)], s)
}

func genRLS(rng *gen) *policy.RLS {
	r := &policy.RLS{Enabled: rng.Intn(3) != 0, Force: rng.Intn(3) == 0}
	if rng.Intn(4) != 0 {
		r.Policies = policy.RowPolicies{}
		for i := rng.Intn(3); i > 0; i-- {
			p := &policy.RowPolicy{Command: []string{"", "ALL", "SELECT", "INSERT", "UPDATE", "DELETE", "select"}[rng.Intn(7)], Restrictive: rng.Intn(3) == 0}
			for j := rng.Intn(3); j > 0; j-- {
				p.Roles = append(p.Roles, genName(rng, false))
			}
			cmd := strings.ToUpper(p.Command)
			if cmd != "INSERT" && rng.Intn(4) != 0 {
				p.Using = genExpr(rng)
			}
			if cmd != "SELECT" && cmd != "DELETE" && rng.Intn(2) == 0 {
				p.Check = genExpr(rng)
			}
			if rng.Intn(8) == 0 {
				p = nil
			}
			r.Policies[genName(rng, false)] = p
		}
	}
	for i := rng.Intn(3) - 1; i > 0; i-- {
		t := policy.RLSTest{As: genName(rng, true), Sees: genString(rng)}
		if rng.Intn(2) == 0 {
			t.Name = genString(rng)
		}
		if rng.Intn(2) == 0 {
			t.Set = map[string]string{genString(rng): genString(rng)}
		}
		for _, into := range []*[]policy.WriteTest{&t.Insert, &t.Update, &t.Delete} {
			for j := rng.Intn(3) - 1; j > 0; j-- {
				wt := policy.WriteTest{Expect: []string{"allowed", "denied"}[rng.Intn(2)], Where: genString(rng)}
				if rng.Intn(2) == 0 {
					wt.Values = map[string]string{genString(rng): genString(rng)}
				}
				*into = append(*into, wt)
			}
		}
		r.Tests = append(r.Tests, t)
	}
	return r
}

func genObjects(rng *gen, kind string) policy.Objects {
	if rng.Intn(4) == 0 {
		return nil
	}
	objs := policy.Objects{}
	for i := rng.Intn(6); i > 0; i-- {
		n := genName(rng, false)
		if kind == "function" {
			n += []string{"()", "(integer)", "(integer, text)"}[rng.Intn(3)]
		}
		if rng.Intn(10) == 0 {
			n = "*"
		}
		var o *policy.Object
		if rng.Intn(10) != 0 {
			o = &policy.Object{Grants: maybeGrants(rng, kind)}
			if rng.Intn(2) == 0 {
				o.Owner = genName(rng, true)
			}
			if kind == "table" && rng.Intn(3) == 0 {
				o.Columns = policy.ColumnGrants{}
				for j := rng.Intn(3); j > 0; j-- {
					o.Columns[genString(rng)] = maybeGrants(rng, "column")
				}
			}
		}
		objs[n] = o
	}
	return objs
}

func genDefaults(rng *gen, global bool) policy.DefaultPrivilegesByRole {
	if rng.Intn(4) == 0 {
		return nil
	}
	d := policy.DefaultPrivilegesByRole{}
	for i := rng.Intn(3); i > 0; i-- {
		p := &policy.DefaultPrivileges{Tables: maybeGrants(rng, "table"), Sequences: maybeGrants(rng, "sequence"),
			Functions: maybeGrants(rng, "function"), Types: maybeGrants(rng, "type")}
		if global {
			p.Schemas = maybeGrants(rng, "schema")
		}
		if rng.Intn(10) == 0 {
			p = nil
		}
		d[genName(rng, true)] = p
	}
	return d
}

func bptr(rng *gen) *bool {
	if rng.Intn(2) == 0 {
		return nil
	}
	return ptr(rng.Intn(2) == 0)
}

// genFile is a random policy file that Parse accepts, every field used,
// names hostile.
func genFile(rng *gen) *policy.File {
	f := &policy.File{Version: 1, Mode: []string{"", policy.Authoritative, policy.Adopt, policy.Additive}[rng.Intn(4)]}
	for i := rng.Intn(3); i > 0; i-- {
		if p := genString(rng); p != "" {
			if _, err := path.Match(p, ""); err == nil {
				f.IgnoreRoles = append(f.IgnoreRoles, p)
			}
		}
	}
	if rng.Intn(6) != 0 {
		f.Roles = policy.Roles{}
		for i := rng.Intn(6); i > 0; i-- {
			name := genName(rng, true)
			if rng.Intn(12) == 0 {
				f.Roles[name] = nil
				continue
			}
			r := &policy.Role{Login: bptr(rng), Superuser: bptr(rng), CreateDB: bptr(rng), CreateRole: bptr(rng), Inherit: bptr(rng),
				Replication: bptr(rng), BypassRLS: bptr(rng), Password: []string{"", "none"}[rng.Intn(2)]}
			if rng.Intn(3) == 0 {
				r.ConnectionLimit = ptr(rng.Intn(30) - 1)
			}
			if rng.Intn(3) == 0 {
				r.ValidUntil = genString(rng)
			}
			if rng.Intn(4) != 0 {
				r.MemberOf = policy.Memberships{}
				for j := rng.Intn(3); j > 0; j-- {
					m := policy.Membership{Role: genName(rng, false), Admin: bptr(rng)}
					if m.Role == name {
						continue
					}
					if rng.Intn(3) == 0 {
						m.Inherit, m.Set = bptr(rng), bptr(rng)
					}
					if rng.Intn(3) == 0 {
						m.Grantor = genString(rng)
					}
					r.MemberOf = append(r.MemberOf, m)
				}
			}
			if rng.Intn(3) == 0 {
				r.Settings = genSettings(rng)
			}
			if rng.Intn(4) == 0 {
				r.DatabaseSettings = map[string]policy.Settings{genString(rng): genSettings(rng)}
			}
			f.Roles[name] = r
		}
	}
	if rng.Intn(6) != 0 {
		f.Databases = map[string]*policy.Database{}
		for i := rng.Intn(3); i > 0; i-- {
			if rng.Intn(12) == 0 {
				f.Databases[genName(rng, false)] = nil
				continue
			}
			d := &policy.Database{Grants: maybeGrants(rng, "database"), DefaultPrivileges: genDefaults(rng, true)}
			if rng.Intn(2) == 0 {
				d.Owner = genName(rng, true)
			}
			if rng.Intn(5) != 0 {
				d.Schemas = map[string]*policy.Schema{}
				for j := rng.Intn(4); j > 0; j-- {
					sn := genName(rng, false)
					if sn == "pg_catalog" || sn == "information_schema" || strings.HasPrefix(sn, "pg_toast") || strings.HasPrefix(sn, "pg_temp") {
						continue
					}
					if rng.Intn(12) == 0 {
						d.Schemas[sn] = nil
						continue
					}
					s := &policy.Schema{Grants: maybeGrants(rng, "schema"), Tables: genObjects(rng, "table"), Sequences: genObjects(rng, "sequence"),
						Functions: genObjects(rng, "function"), DefaultPrivileges: genDefaults(rng, false)}
					if rng.Intn(2) == 0 {
						s.Owner = genName(rng, true)
					}
					if rng.Intn(2) == 0 {
						s.RLS = map[string]*policy.RLS{}
						for k := rng.Intn(3); k > 0; k-- {
							if rng.Intn(10) == 0 {
								s.RLS[genName(rng, false)] = nil
							} else {
								s.RLS[genName(rng, false)] = genRLS(rng)
							}
						}
					}
					d.Schemas[sn] = s
				}
			}
			f.Databases[genName(rng, false)] = d
		}
	}
	return f
}

// canon is f as any YAML of it reads back: no password; what yaml.v3's
// omitempty leaves out when empty is nil; a nil map or list YAML writes
// as {} or [] is empty.
func canon(f *policy.File) *policy.File {
	c := *f
	f = &c
	if len(f.IgnoreRoles) == 0 {
		f.IgnoreRoles = nil
	}
	if len(f.Databases) == 0 {
		f.Databases = nil
	}
	grants := func(g policy.Grants) policy.Grants {
		if g == nil {
			return nil
		}
		out := policy.Grants{}
		for k, v := range g {
			if v == nil {
				v = []string{}
			}
			out[k] = v
		}
		return out
	}
	if f.Roles != nil {
		roles := policy.Roles{}
		for n, r := range f.Roles {
			if r != nil {
				c := *r
				c.Password = ""
				if len(c.DatabaseSettings) == 0 {
					c.DatabaseSettings = nil
				} else {
					ds := map[string]policy.Settings{}
					for k, v := range c.DatabaseSettings {
						if v == nil {
							v = policy.Settings{}
						}
						ds[k] = v
					}
					c.DatabaseSettings = ds
				}
				r = &c
			}
			roles[n] = r
		}
		f.Roles = roles
	}
	dbs := map[string]*policy.Database{}
	for dn, d := range f.Databases {
		if d != nil {
			c := *d
			d = &c
			d.Grants = grants(d.Grants)
			if len(d.Schemas) == 0 {
				d.Schemas = nil
			}
			d.DefaultPrivileges = canonDefaults(d.DefaultPrivileges, grants)
			schemas := map[string]*policy.Schema{}
			for sn, s := range d.Schemas {
				if s != nil {
					c := *s
					s = &c
					s.Grants = grants(s.Grants)
					s.Tables, s.Sequences, s.Functions = canonObjects(s.Tables, grants), canonObjects(s.Sequences, grants), canonObjects(s.Functions, grants)
					s.DefaultPrivileges = canonDefaults(s.DefaultPrivileges, grants)
					if len(s.RLS) == 0 {
						s.RLS = nil
					}
					rls := map[string]*policy.RLS{}
					for t, r := range s.RLS {
						if r != nil {
							c := *r
							r = &c
							if len(r.Tests) == 0 {
								r.Tests = nil
							}
							for i := range r.Tests {
								t := &r.Tests[i]
								if len(t.Set) == 0 {
									t.Set = nil
								}
								for _, l := range []*[]policy.WriteTest{&t.Insert, &t.Update, &t.Delete} {
									if len(*l) == 0 {
										*l = nil
									}
									for j := range *l {
										if len((*l)[j].Values) == 0 {
											(*l)[j].Values = nil
										}
									}
								}
							}
							for _, p := range r.Policies {
								if p != nil && len(p.Roles) == 0 {
									p.Roles = nil
								}
							}
						}
						rls[t] = r
					}
					if s.RLS != nil {
						s.RLS = rls
					}
				}
				schemas[sn] = s
			}
			if d.Schemas != nil {
				d.Schemas = schemas
			}
		}
		dbs[dn] = d
	}
	if f.Databases != nil {
		f.Databases = dbs
	}
	return f
}

func canonObjects(objs policy.Objects, grants func(policy.Grants) policy.Grants) policy.Objects {
	if objs == nil {
		return nil
	}
	out := policy.Objects{}
	for n, o := range objs {
		if o != nil {
			c := *o
			o = &c
			o.Grants = grants(o.Grants)
			if o.Columns != nil { // empty is managed: kept, as {}
				cols := policy.ColumnGrants{}
				for k, g := range o.Columns {
					if g = grants(g); g == nil {
						g = policy.Grants{}
					}
					cols[k] = g
				}
				o.Columns = cols
			}
		}
		out[n] = o
	}
	return out
}

func canonDefaults(d policy.DefaultPrivilegesByRole, grants func(policy.Grants) policy.Grants) policy.DefaultPrivilegesByRole {
	if d == nil {
		return nil
	}
	out := policy.DefaultPrivilegesByRole{}
	for r, p := range d {
		if p != nil {
			p = &policy.DefaultPrivileges{Tables: grants(p.Tables), Sequences: grants(p.Sequences), Functions: grants(p.Functions),
				Types: grants(p.Types), Schemas: grants(p.Schemas)}
		}
		out[r] = p
	}
	return out
}

// sameTree compares two YAML documents as trees: kinds, tags, values
// (a !!binary value by its bytes) and the order of mapping keys, not
// the styles.
func sameTree(a, b *yaml.Node, at string) error {
	tag := func(n *yaml.Node) string {
		if t := n.ShortTag(); t != "!!merge" {
			return t
		}
		return "!!str" // yaml.v3 writes "<<" plain: a merge key that reads back as the string
	}
	if a.Kind != b.Kind || tag(a) != tag(b) || len(a.Content) != len(b.Content) {
		return fmt.Errorf("%s: kind/tag/length %v %s %d vs %v %s %d", at, a.Kind, a.ShortTag(), len(a.Content), b.Kind, b.ShortTag(), len(b.Content))
	}
	av, bv := a.Value, b.Value
	if a.ShortTag() == "!!binary" {
		x, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(av), ""))
		y, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(bv), ""))
		av, bv = string(x), string(y)
	}
	if av != bv {
		return fmt.Errorf("%s: value %q vs %q", at, av, bv)
	}
	for i := range a.Content {
		if err := sameTree(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d(%.20q)", at, i, a.Content[i].Value)); err != nil {
			return err
		}
	}
	return nil
}

// roundTrip checks one file: Marshal's output parses (policy.Parse and
// plain yaml.v3) to the file; where the yaml.v3 writer's output also
// reads back as the file (oldOK), both documents are the same tree, keys
// in the same order.
func roundTrip(f *policy.File) (oldOK bool, err error) {
	want := canon(f)
	out, err := Marshal(f, []string{"generated", "a\nb\u2028c"})
	if err != nil {
		return false, err
	}
	if !utf8.Valid(out) {
		return false, fmt.Errorf("output is not UTF-8")
	}
	if bytes.Contains(out, []byte("password")) {
		return false, fmt.Errorf("output names a password")
	}
	parsed, err := policy.Parse("generated", out)
	if err != nil {
		return false, fmt.Errorf("Parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(parsed, want) {
		return false, fmt.Errorf("Parse reads back a different file:\n%s\nwant:\n%s\noutput:\n%s", dump(parsed), dump(want), out)
	}
	var plain policy.File
	if err := yaml.Unmarshal(out, &plain); err != nil {
		return false, fmt.Errorf("yaml.v3: %v", err)
	}
	if !reflect.DeepEqual(&plain, want) {
		return false, fmt.Errorf("yaml.v3 reads back a different file:\n%s", out)
	}
	old, err := marshalYAMLv3(f, []string{"generated"})
	if err != nil {
		return false, nil
	}
	var viaOld policy.File
	if err := yaml.Unmarshal(old, &viaOld); err != nil || !reflect.DeepEqual(&viaOld, want) {
		return false, nil
	}
	var na, nb yaml.Node
	if err := yaml.Unmarshal(out, &na); err != nil {
		return true, err
	}
	if err := yaml.Unmarshal(old, &nb); err != nil {
		return true, err
	}
	if err := sameTree(&na, &nb, ""); err != nil {
		return true, fmt.Errorf("documents differ: %v\nnew:\n%s\nold:\n%s", err, out, old)
	}
	return true, nil
}

func dump(f *policy.File) string {
	b, _ := yaml.Marshal(f)
	return string(b)
}

// TestMarshalRoundTrips: over many generated files, Marshal's YAML
// reads back (policy.Parse, yaml.v3) as the same file, and as the same
// document the yaml.v3 writer made wherever that one reads back right.
// With tame names (letters, digits, quotes, colons, '#', commas) it must
// always; with hostile ones yaml.v3's writer is itself wrong now and
// then ("<<" written plain reads as a merge key, U+2028 in a
// single-quoted scalar, a leading space in a literal block): those are
// counted, not compared.
func TestMarshalRoundTrips(t *testing.T) {
	for _, tame := range []bool{true, false} {
		start := time.Now()
		rng := newGen(1602, tame)
		cases, bad, oldWrong := 0, 0, 0
		for i := 0; i < 1000; i++ {
			cases++
			oldOK, err := roundTrip(genFile(rng))
			if !oldOK {
				oldWrong++
			}
			if tame && !oldOK && err == nil {
				err = fmt.Errorf("the yaml.v3 writer's output does not read back as the file")
			}
			if err != nil {
				bad++
				if bad <= 2 {
					t.Errorf("case %d (tame %v): %v", i, tame, err)
				}
			}
		}
		name := map[bool]string{true: "tame", false: "hostile"}[tame]
		t.Logf("ORACLE inspect-marshal-%s pgany: cases=%d disagreements=%d seconds=%.1f (generated files, no server; yaml.v3's writer wrong in %d)",
			name, cases, bad, time.Since(start).Seconds(), oldWrong)
	}
}

// TestMarshalKeyOrder: map keys come in yaml.v3's order. Each key's
// value is its index, so yaml.v3's order is read from the values (its
// writer mangles some hostile keys).
func TestMarshalKeyOrder(t *testing.T) {
	rng := newGen(7, false)
	compared, unreadable := 0, 0
	for i := 0; i < 2000; i++ {
		m := map[string]int{}
		var keys []string
		for j := rng.Intn(30); j >= 0; j-- {
			k := genString(rng)
			if _, ok := m[k]; !ok {
				m[k] = len(keys)
				keys = append(keys, k)
			}
		}
		data, err := yaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			unreadable++ // yaml.v3 cannot read what it wrote: no order to compare
			continue
		}
		compared++
		var theirs []string
		for k := 1; k < len(n.Content[0].Content); k += 2 {
			var idx int
			if err := n.Content[0].Content[k].Decode(&idx); err != nil {
				t.Fatal(err)
			}
			theirs = append(theirs, keys[idx])
		}
		if ours := yamlSorted(m); !reflect.DeepEqual(ours, theirs) {
			t.Fatalf("key order:\nours    %q\nyaml.v3 %q", ours, theirs)
		}
	}
	t.Logf("%d key sets in yaml.v3's order; %d it wrote and could not read back", compared, unreadable)
	if compared < 1500 {
		t.Fatalf("only %d key sets compared", compared)
	}
}

func TestPlainOK(t *testing.T) {
	for _, tc := range []struct {
		s     string
		flow  bool
		plain bool
	}{
		{"app", false, true}, {"t10", false, true}, {"INSERT WITH GRANT OPTION", true, true}, {"g()", false, true},
		{"audit(integer, text)", false, true}, {"audit(integer, text)", true, false}, {"8MB", false, true},
		{"yes", false, false}, {"Off", false, false}, {"NULL", false, false}, {"1", false, false}, {"1e5", false, false},
		{"0x1F", false, false}, {"2001-12-14", false, false}, {"a b ", false, false}, {" a", false, false}, {"a: b", false, false},
		{"a#b", false, false}, {"*", false, false}, {"-x", false, false}, {".inf", false, false}, {"é", false, false}, {"", false, false},
		{"(id > 0)", true, true}, {"<<", false, false}, {"=", false, false}, {">x", false, false}, {"a=b", false, true},
		{"a.b", false, true}, {"pg_read_all_settings", false, true}, {"1st", false, true},
	} {
		if got := plainOK(tc.s, tc.flow); got != tc.plain {
			t.Errorf("plainOK(%q, flow %v) = %v, want %v", tc.s, tc.flow, got, tc.plain)
		}
	}
}

// FuzzMarshal builds a file from the fuzzer's strings (names, values,
// grantees) and checks that Marshal never panics and round-trips.
func FuzzMarshal(f *testing.F) {
	f.Add("app", "t1", "SELECT", "(id > 0)", int64(1))
	f.Add("we\"ird\n", "* ", "yes", "a: #b", int64(2))
	f.Add("\u2028", "\xff", "0x1F", "~", int64(3))
	f.Fuzz(func(t *testing.T, a, b, c, d string, seed int64) {
		file := genFile(&gen{Rand: rand.New(rand.NewSource(seed))})
		if file.Roles == nil {
			file.Roles = policy.Roles{}
		}
		// Parse refuses some names (empty, PUBLIC, pg_*) and values;
		// yaml.v3 round-trips them all: checked with yaml.v3 only.
		file.Roles[a] = &policy.Role{ValidUntil: b, Settings: policy.Settings{"x": c}, MemberOf: policy.Memberships{{Role: d, Grantor: a}}}
		file.Databases = map[string]*policy.Database{b: {Owner: c, Grants: policy.Grants{d: {a, c}}, Schemas: map[string]*policy.Schema{
			c: {Tables: policy.Objects{d: {Owner: a, Columns: map[string]policy.Grants{b: {c: {d}}}}}, RLS: map[string]*policy.RLS{a: {Enabled: true,
				Policies: policy.RowPolicies{b: {Using: c, Check: d, Roles: []string{a}}}, Tests: []policy.RLSTest{{As: a, Sees: b, Set: map[string]string{c: d},
					Insert: []policy.WriteTest{{Values: map[string]string{a: b}, Where: c, Expect: d}}}}}}},
		}}}
		out, err := Marshal(file, []string{a, b})
		if err != nil {
			t.Fatal(err)
		}
		var back policy.File
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if want := canon(file); !reflect.DeepEqual(&back, want) {
			t.Fatalf("reads back a different file:\n%s\nwant:\n%s\noutput:\n%s", dump(&back), dump(want), out)
		}
		if strings.Count(string(out[:bytes.Index(out, []byte("version: "))]), "\n") != 2 {
			t.Fatalf("the header is not two comment lines:\n%s", out)
		}
	})
}
