package inspect

import (
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// genLive builds a random estate in Live's shape: a few owners and grant
// patterns shared by many objects (what compaction folds), exceptions,
// column grants, default privileges, RLS, hostile names.
func genLive(rng *rand.Rand) *policy.Live {
	major := 13 + rng.Intn(6)
	pick := func(xs []string) string { return xs[rng.Intn(len(xs))] }
	roles := []string{"app", "ro", "owner_r", `we"ird.r`, "x\ny", "PUBLIC"}
	names := roles[:5]
	privs := map[string][]string{
		"table": {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "SELECT WITH GRANT OPTION"},
		"seq":   {"USAGE", "SELECT", "UPDATE"},
		"func":  {"EXECUTE", "EXECUTE WITH GRANT OPTION"},
	}
	randGrants := func(kind string) policy.Grants {
		g := policy.Grants{}
		for i := rng.Intn(3); i > 0; i-- {
			var ps []string
			for _, p := range privs[kind] {
				if rng.Intn(3) == 0 {
					ps = append(ps, p)
				}
			}
			if ps == nil {
				ps = []string{}
			}
			g[pick(roles)] = ps
		}
		return g
	}
	f := &policy.File{Version: 1, Mode: policy.Authoritative, Roles: policy.Roles{}, Databases: map[string]*policy.Database{}}
	b := func() *bool { v := rng.Intn(4) == 0; return &v }
	for _, n := range names {
		inh := rng.Intn(4) != 0
		limit := -1
		if rng.Intn(3) == 0 {
			limit = rng.Intn(50)
		}
		r := &policy.Role{Login: b(), Superuser: b(), CreateDB: b(), CreateRole: b(), Inherit: &inh, Replication: b(), BypassRLS: b(), ConnectionLimit: &limit, MemberOf: policy.Memberships{}}
		if rng.Intn(3) == 0 {
			r.ValidUntil = "2031-01-02 03:04:05+00"
		}
		for i := rng.Intn(3); i > 0; i-- {
			m := policy.Membership{Role: pick(names)}
			if rng.Intn(2) == 0 {
				m.Admin = b()
			}
			if rng.Intn(3) == 0 {
				m.Grantor = pick(names)
			}
			r.MemberOf = append(r.MemberOf, m)
		}
		if rng.Intn(3) == 0 {
			r.Settings = policy.Settings{"search_path": "public"}
		}
		f.Roles[n] = r
	}
	for di := rng.Intn(3); di >= 0; di-- {
		d := &policy.Database{Owner: pick(names), Grants: randGrants("seq"), Schemas: map[string]*policy.Schema{}, DefaultPrivileges: policy.DefaultPrivilegesByRole{}}
		if rng.Intn(2) == 0 {
			d.DefaultPrivileges[pick(names)] = &policy.DefaultPrivileges{Tables: randGrants("table"), Functions: policy.Grants{}}
		}
		for si := rng.Intn(4); si >= 0; si-- {
			s := &policy.Schema{Owner: pick(names), Grants: randGrants("seq"), Tables: policy.Objects{}, Sequences: policy.Objects{}, Functions: policy.Objects{},
				DefaultPrivileges: policy.DefaultPrivilegesByRole{}, RLS: map[string]*policy.RLS{}}
			if rng.Intn(3) == 0 {
				s.DefaultPrivileges[pick(names)] = &policy.DefaultPrivileges{Sequences: randGrants("seq")}
			}
			for kind, objs := range map[string]policy.Objects{"table": s.Tables, "seq": s.Sequences, "func": s.Functions} {
				// A few shared patterns (as Read shares equal ACLs) and a
				// few owners, so that "*" and exceptions both occur.
				patterns := []policy.Grants{randGrants(kind), randGrants(kind), randGrants(kind)}
				owners := []string{pick(names), pick(names)}
				for i := rng.Intn(25); i > 0; i-- {
					n := fmt.Sprintf("o%d", i)
					switch rng.Intn(12) {
					case 0:
						n = "*" // a real object named like the pattern
					case 1:
						n = "t.\n\"" + n
					}
					if kind == "func" {
						n += "(integer)"
					}
					g := patterns[rng.Intn(len(patterns))]
					if rng.Intn(5) == 0 {
						g = randGrants(kind) // a fresh map that may equal a pattern
					}
					o := &policy.Object{Owner: owners[rng.Intn(len(owners))], Grants: g}
					if kind == "table" {
						o.Columns = policy.ColumnGrants{} // as Read gives every table
					}
					if kind == "table" && n != "*" && rng.Intn(5) == 0 { // a real "*" with column grants cannot be expressed: see compact
						o.Columns = policy.ColumnGrants{"c": {pick(names): {"SELECT"}}}
					}
					objs[n] = o
					if kind == "table" && rng.Intn(6) == 0 {
						s.RLS[n] = &policy.RLS{Enabled: true, Force: rng.Intn(2) == 0, Policies: policy.RowPolicies{"p": {Using: "(id > 0)", Roles: []string{pick(names)}}}}
					}
				}
			}
			d.Schemas[fmt.Sprintf("s%d.%s", si, pick([]string{"a", "b\"c"}))] = s
		}
		f.Databases[fmt.Sprintf("db%d", di)] = d
	}
	return &policy.Live{File: f, Major: major}
}

// normalize makes what an export leaves out where empty (rls, object
// kinds without objects) the same as empty.
func normalize(f *policy.File) *policy.File {
	for _, d := range f.Databases {
		for _, s := range d.Schemas {
			if len(s.RLS) == 0 {
				s.RLS = nil
			}
			for _, objs := range []*policy.Objects{&s.Tables, &s.Sequences, &s.Functions} {
				if len(*objs) == 0 {
					*objs = nil
				}
			}
		}
	}
	return f
}

func yamlText(t *testing.T, f *policy.File) string {
	t.Helper()
	b, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExportIsFaithful: over many generated estates, the export, written
// as YAML and read back, expands to exactly the live state.
func TestExportIsFaithful(t *testing.T) {
	start := time.Now()
	rng := rand.New(rand.NewSource(16))
	cases, bad, folded := 0, 0, 0
	perMajor := map[int][2]int{}
	for i := 0; i < 150; i++ {
		live := genLive(rng)
		want := normalize(live.File)
		ex := Export(live, ExportOptions{})
		text, err := Marshal(ex, []string{"generated"})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(text), "password") {
			t.Fatalf("case %d: an export names a password:\n%s", i, text)
		}
		var back policy.File
		if err := yaml.Unmarshal(text, &back); err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, text)
		}
		got := normalize(Expand(&back, live))
		cases++
		pm := perMajor[live.Major]
		pm[0]++
		if !reflect.DeepEqual(got, want) {
			bad++
			pm[1]++
			if bad < 3 {
				t.Errorf("case %d: export does not expand to the live state:\n%s\nexport:\n%s", i, lineDiff(yamlText(t, got), yamlText(t, want)), text)
			}
		}
		perMajor[live.Major] = pm
		if i%50 == 0 && len(text) < len(yamlText(t, want)) {
			folded++
		}
	}
	secs := time.Since(start).Seconds()
	for m := 13; m <= 18; m++ {
		t.Logf("ORACLE inspect-export pg%d: cases=%d disagreements=%d seconds=%.1f (generated estates)", m, perMajor[m][0], perMajor[m][1], secs)
	}
	t.Logf("%d cases, %d of %d sampled exports shorter than the live file", cases, folded, (cases+49)/50)
}

// lineDiff shows the lines of got and want that differ, with a little
// context (the files are long).
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var sb strings.Builder
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			for j := max(0, i-8); j < i; j++ {
				fmt.Fprintf(&sb, "  %s\n", w[j])
			}
			fmt.Fprintf(&sb, "- expanded %s\n+ live     %s\n", a, b)
			break
		}
	}
	return sb.String()
}
