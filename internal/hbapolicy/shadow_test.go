package hbapolicy

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// shadowedPairwise is the obvious quadratic definition Shadowed must agree with.
func shadowedPairwise(rules []hba.Rule) []Shadow {
	var out []Shadow
	for j := range rules {
		for i := 0; i < j; i++ {
			if covers(&rules[i], &rules[j]) {
				out = append(out, Shadow{Rule: &rules[j], By: &rules[i]})
				break
			}
		}
	}
	return out
}

func randomHBA(rng *rand.Rand, n int) string {
	pick := func(xs ...string) string { return xs[rng.Intn(len(xs))] }
	var b strings.Builder
	for i := 0; i < n; i++ {
		typ := pick("local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")
		db := pick("all", "replication", "d1", "d2", `"all"`, "d1,d2", "all,replication", `"replication"`, "sameuser")
		user := pick("all", "u1", "u2", "+g", `"all"`, "u1,u2", "u2,u1,u3")
		addr := pick("all", "samehost", "samenet", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "0.0.0.0/0",
			"::ffff:10.1.2.3/128", "::ffff:10.0.0.0/104", "::/0", "2001:db8::/32", "db.example.com", "10.0.0.0 255.0.255.0")
		if typ != "local" && rng.Intn(4) == 0 {
			user = pick("+g", "/^u", "samerole", "ghost")
		}
		if typ == "local" {
			addr = ""
		}
		fmt.Fprintf(&b, "%s %s %s %s %s\n", typ, db, user, addr, pick("md5", "trust", "reject", "scram-sha-256"))
	}
	return b.String()
}

func TestShadowedAgreesWithPairwise(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	for k := 0; k < 300; k++ {
		f := hba.Parse("pg_hba.conf", []byte(randomHBA(rng, 1+rng.Intn(60))), hba.Options{SSL: true})
		got, want := Shadowed(f.Rules), shadowedPairwise(f.Rules)
		// Every single-line coverer pairwise finds, Shadowed reports the
		// same; the others come from the union check (mostly several
		// lines; one for tokens covers() does not compare, such as
		// identical non-contiguous masks) and TestShadowedOracle checks them.
		k2 := 0
		for _, g := range got {
			if k2 < len(want) && g.Rule == want[k2].Rule {
				if g.By != want[k2].By || len(g.Covers) != 1 {
					t.Fatalf("file %d: line %d shadowed by %d, pairwise by %d", k, g.Rule.Line, g.By.Line, want[k2].By.Line)
				}
				k2++
				continue
			}
			if len(g.Covers) == 0 || g.By != g.Covers[0] {
				t.Fatalf("file %d: line %d: By %v is not the first of %v", k, g.Rule.Line, g.By, g.Covers)
			}
		}
		if k2 != len(want) {
			t.Fatalf("file %d: pairwise finds %d single-line shadows, Shadowed %d", k, len(want), k2)
		}
	}
}

// generatedHBA is a large file of distinct per-application lines (the
// shape of the 40k-line file of issue #10) ending with catch-alls.
func generatedHBA(n int) []hba.Rule {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "host db%d user%d 10.%d.%d.%d/32 scram-sha-256\n", i%500, i, (i>>16)&255, (i>>8)&255, i&255)
	}
	b.WriteString("host all all 10.0.0.0/8 reject\nhost db1 user1 10.0.0.1/32 md5\n")
	return hba.Parse("pg_hba.conf", []byte(b.String()), hba.Options{SSL: true}).Rules
}

// BenchmarkShadowed shows the scaling: time per line stays flat from 1k
// to 1M lines (run with -bench Shadowed -benchtime 1x).
func BenchmarkShadowed(b *testing.B) {
	for _, n := range []int{1000, 40000, 1000000} {
		rules := generatedHBA(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if len(Shadowed(rules)) != 1 {
					b.Fatal("want exactly the last line shadowed")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rules)), "ns/line")
		})
	}
}

// Reach matches each row against the lines that can apply to the user and
// database only; the rows must be those of matching against every line.
func TestReachAgreesWithMatchingEveryLine(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	env := hba.Env{RoleExists: func(r string) bool { return r != "ghost" }, IsMember: func(r, g string) bool { return r == "u1" && g == "g" }}
	for k := 0; k < 200; k++ {
		rules := hba.Parse("pg_hba.conf", []byte(randomHBA(rng, 1+rng.Intn(40))), hba.Options{SSL: true}).Rules
		for _, who := range []struct {
			user, db string
			repl     bool
		}{{"u1", "d1", false}, {"u2", "d2", false}, {"u3", "all", false}, {"u1", "", true}, {"ghost", "d1", false}} {
			got := Reach(rules, who.user, who.db, who.repl, env)
			var want []ReachRow
			for _, cl := range Classes {
				if cl.Local {
					want = append(want, reachRow(rules, hba.Conn{User: who.user, Database: who.db, Local: true, Replication: who.repl}, cl.Name, "socket", env))
					continue
				}
				for _, rg := range Regions(env, rules) {
					want = append(want, reachRow(rules, hba.Conn{User: who.user, Database: who.db, Addr: rg.Addr, SSL: cl.SSL, Replication: who.repl}, cl.Name, rg.Label, env))
				}
			}
			if fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
				t.Fatalf("file %d, %+v:\n got  %v\n want %v", k, who, got[:len(want)], want)
			}
		}
	}
}

// A large file where every later line needs the union check (each /31 is
// two earlier /32 lines): the address index keeps it near linear.
func TestShadowedUnionLargeFile(t *testing.T) {
	var b strings.Builder
	const n = 5000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "host all all 10.%d.%d.%d/32 trust\n", (i>>15)&255, (i>>7)&255, (i&127)*2)
		fmt.Fprintf(&b, "host all all 10.%d.%d.%d/32 trust\n", (i>>15)&255, (i>>7)&255, (i&127)*2+1)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "host all all 10.%d.%d.%d/31 trust\n", (i>>15)&255, (i>>7)&255, (i&127)*2)
	}
	rules := hba.Parse("pg_hba.conf", []byte(b.String()), hba.Options{}).Rules
	got := Shadowed(rules)
	if len(got) != n {
		t.Fatalf("%d shadowed lines, want %d", len(got), n)
	}
	for _, s := range got {
		if len(s.Covers) != 2 || s.Covers[1].Line != s.Covers[0].Line+1 {
			t.Fatalf("line %d covered by %v", s.Rule.Line, lines(s.Covers))
		}
	}
}
