package hbapolicy

import (
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// unionHBA draws small files whose lines often cover each other only
// together: split networks, complementary connection types, name lists.
func unionHBA(rng *rand.Rand, n int) string {
	pick := func(xs ...string) string { return xs[rng.Intn(len(xs))] }
	var b strings.Builder
	for i := 0; i < n; i++ {
		typ := pick("local", "host", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")
		db := pick("all", "all", "d1", "d2", "d1,d2", "replication", "all,replication", `"all"`, "sameuser", "samerole", "/^d", `"/^d"`)
		user := pick("all", "all", "u1", "u2", "u1,u2", "+g", `"+g"`, "/^u", "u1,+g", `"all"`)
		addr := pick("all", "0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "128.0.0.0/2", "10.0.0.0/8", "10.0.0.0/9",
			"10.128.0.0/9", "::/1", "8000::/1", "::ffff:0.0.0.0/96", "::ffff:10.0.0.0/104", "samehost", "samenet",
			"127.0.0.0/8", "::1/128", "db.example.com", "10.0.0.0 255.0.255.0")
		if typ == "local" {
			addr = ""
		}
		fmt.Fprintf(&b, "%s %s %s %s %s\n", typ, db, user, addr, pick("trust", "reject", "md5"))
		// Often follow with the other half of what the line covers.
		if other, ok := halves[typ]; ok && rng.Intn(2) == 0 {
			typ = other
		} else if other, ok := halves[addr]; ok {
			addr = other
		} else if other, ok := halves[user]; ok {
			user = other
		} else {
			continue
		}
		fmt.Fprintf(&b, "%s %s %s %s %s\n", typ, db, user, addr, pick("trust", "reject", "md5"))
		i++
	}
	return b.String()
}

var halves = map[string]string{"hostssl": "hostnossl", "hostnossl": "hostssl", "hostgssenc": "hostnogssenc", "hostnogssenc": "hostgssenc",
	"0.0.0.0/0": "::/0", "::/0": "0.0.0.0/0", "0.0.0.0/1": "128.0.0.0/1", "128.0.0.0/1": "0.0.0.0/1", "::/1": "8000::/1", "8000::/1": "::/1",
	"10.0.0.0/9": "10.128.0.0/9", "10.128.0.0/9": "10.0.0.0/9", "u1": "u2", "u2": "u1"}

var oracleAddrs = func() []netip.Addr {
	var out []netip.Addr
	for _, s := range []string{"0.0.0.0", "10.0.0.1", "10.127.255.255", "10.128.0.0", "10.255.255.255", "127.0.0.1", "127.255.0.3",
		"63.1.2.3", "127.255.255.255", "128.0.0.0", "191.255.255.255", "192.0.0.0", "192.168.1.7", "255.255.255.255",
		"::", "::1", "::2", "::ffff:10.0.0.1", "::ffff:10.200.0.1", "::ffff:192.168.1.7", "::ffff:127.0.0.1", "2001:db8::1",
		"7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "8000::", "fe80::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "10.1.0.1", "10.0.1.0"} {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}()

// TestShadowedOracle checks every claimed-unreachable line with the
// simulator: each sampled connection the line would take is taken by an
// earlier line, and by one of the named covering lines, whatever the
// roles' memberships and the host's interfaces.
func TestShadowedOracle(t *testing.T) {
	start := time.Now()
	rng := rand.New(rand.NewSource(15))
	member := func(r, g string) bool { return r == "u1" && g == "g" || r == "g" && g == "g" }
	envs := []hba.Env{
		{Version: 16, IsMember: member, RoleExists: func(string) bool { return true },
			HostAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.168.1.5/24")}},
		{Version: 15, IsMember: func(r, g string) bool { return r == g }, RoleExists: func(r string) bool { return r != "ghost" },
			HostAddrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.7/9"), netip.MustParsePrefix("fe80::3/64")}},
	}
	users := []string{"u1", "u2", "u3", "g", "ghost", "all", "+g", "/^u", "d1"}
	dbs := []string{"d1", "d2", "d3", "all", "replication", "sameuser", "u1", "g", "/^d"}
	cases, multi, claims, disagreements := 0, 0, 0, 0
	for k := 0; k < 800; k++ {
		rules := hba.Parse("pg_hba.conf", []byte(unionHBA(rng, 4+rng.Intn(14))), hba.Options{SSL: true}).Rules
		for _, sh := range Shadowed(rules) {
			claims++
			if len(sh.Covers) > 1 {
				multi++
			}
			j := 0
			for j < len(rules) && &rules[j] != sh.Rule {
				j++
			}
			covers := make([]hba.Rule, len(sh.Covers))
			for i, c := range sh.Covers {
				covers[i] = *c
			}
			for _, env := range envs {
				for n, hit := 0, 0; n < 3000 && hit < 100; n++ {
					c := hba.Conn{User: users[rng.Intn(len(users))], Database: dbs[rng.Intn(len(dbs))], Replication: rng.Intn(4) == 0}
					switch rng.Intn(4) {
					case 0:
						c.Local = true
					case 1:
						c.SSL = true
					case 2:
						c.GSS = true
					}
					if !c.Local {
						c.Addr = oracleAddrs[rng.Intn(len(oracleAddrs))]
					}
					if !hba.Match([]hba.Rule{*sh.Rule}, c, env).Matched {
						continue
					}
					cases++
					hit++
					if !hba.Match(rules[:j], c, env).Matched && !anyMatches(rules[:j], c, env) || !anyMatches(covers, c, env) {
						disagreements++
						t.Errorf("line %q claimed covered by %v, but %s reaches it", sh.Rule.Text, lines(sh.Covers), c)
					}
				}
			}
		}
	}
	t.Logf("ORACLE hba-shadow-union sim: cases=%d disagreements=%d seconds=%.1f (claims=%d, by several lines=%d)",
		cases, disagreements, time.Since(start).Seconds(), claims, multi)
	if multi < 20 || cases < 1000 {
		t.Fatalf("too few claims checked: %d connections, %d multi-line claims", cases, multi)
	}
}

// anyMatches: some line matches c for certain (undecided lines, such as
// host names, do not count).
func anyMatches(rules []hba.Rule, c hba.Conn, env hba.Env) bool {
	for i := range rules {
		if hba.Match(rules[i:i+1], c, env).Matched {
			return true
		}
	}
	return false
}

func lines(rs []*hba.Rule) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.Line)
	}
	return out
}
