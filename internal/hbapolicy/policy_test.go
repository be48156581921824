package hbapolicy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func parse(t testing.TB, text string) []hba.Rule {
	t.Helper()
	f := hba.Parse("pg_hba.conf", []byte(text), hba.Options{SSL: true, Version: 16})
	if len(f.Errors) > 0 {
		t.Fatalf("%v", f.Errors)
	}
	return f.Rules
}

func snap() *snapshot.Snapshot {
	return &snapshot.Snapshot{Server: &snapshot.Server{VersionNum: 160004},
		Roles:       []snapshot.Role{{Name: "app"}, {Name: "admins"}, {Name: "alice"}, {Name: "postgres", Superuser: true}},
		Memberships: []snapshot.Membership{{Role: "admins", Member: "alice"}}}
}

func TestShadowed(t *testing.T) {
	cases := []struct {
		text string
		want string // "line<-by" pairs
	}{
		{"host all all 10.0.0.0/8 scram-sha-256\nhostssl app app 10.1.0.0/16 md5\n", "2<-1"},
		{"hostssl all all 10.0.0.0/8 reject\nhost app app 10.1.0.0/16 md5\n", ""}, // host also takes non-TLS
		{"host all all all reject\nlocal all all peer\n", ""},
		{"host all all 0.0.0.0/0 reject\nhost replication all 10.0.0.0/8 md5\n", ""}, // all does not match replication
		{"host all +admins 10.0.0.0/8 md5\nhost all alice 10.0.0.0/8 md5\n", ""},     // membership is not syntax
		{"host app,other all 10.0.0.0/8 md5\nhost app alice 10.2.0.0/16 trust\n", "2<-1"},
		{"host all \"all\" 10.0.0.0/8 md5\nhost all alice 10.0.0.0/8 md5\n", ""}, // quoted all is a role
		{"host all all 10.0.0.0/8 md5\nhost all all ::ffff:10.1.0.0/112 md5\n", "2<-1"},
		{"hostnogssenc all all all md5\nhostssl all all all trust\n", "2<-1"},
		// Several lines together.
		{"host all all 0.0.0.0/0 md5\nhost all all ::/0 md5\nhost all all all reject\n", "3<-1+2"},
		{"host all all 0.0.0.0/0 md5\nhost all all ::/0 md5\nhost app alice samenet reject\n", "3<-1+2"},
		{"host all all 0.0.0.0/0 md5\nhost all all ::/0 md5\nhost app alice db.example.com reject\n", "3<-1+2"},
		{"hostssl all all 10.0.0.0/8 md5\nhostnossl all all 10.0.0.0/8 md5\nhost app alice 10.1.0.0/16 reject\n", "3<-1+2"},
		{"hostgssenc all all all md5\nhostnogssenc all all all md5\nhost all all all reject\n", "3<-1+2"},
		{"host all all 0.0.0.0/1 md5\nhost all all 128.0.0.0/1 md5\nhost all all 10.0.0.0/8 md5\nhost all all 0.0.0.0/0 reject\n", "3<-1,4<-1+2"},
		{"host all u1 10.0.0.0/8 md5\nhost all u2 10.0.0.0/8 md5\nhost all u1,u2 10.0.0.0/8 reject\n", "3<-1+2"},
		{"host d1 all 10.0.0.0/8 md5\nhost d2 all 10.0.0.0/8 md5\nhost replication all 10.0.0.0/8 md5\nhost d1,d2,replication u 10.0.0.0/8 reject\n", "4<-1+2+3"},
		{"hostssl all all samenet md5\nhostnossl all all samenet md5\nhost all all samehost reject\n", "3<-1+2"},
		// A redundant earlier line is not named.
		{"host all all 0.0.0.0/1 md5\nhost all all 0.0.0.0/0 md5\nhost all all ::/0 md5\nhost all all all reject\n", "4<-2+3"},
		// Not quite covered.
		{"host all all 0.0.0.0/1 md5\nhost all all 128.0.0.0/2 md5\nhost all all 0.0.0.0/0 reject\n", ""},
		{"hostssl all all all md5\nhost all all all reject\n", ""},
		{"host all u1 10.0.0.0/8 md5\nhost all u2 10.0.0.0/8 md5\nhost all u1,u2,u3 10.0.0.0/8 reject\n", ""},
		{"host all all 0.0.0.0/0 md5\nhost all all all reject\n", ""},                                     // IPv6 clients
		{"host all all ::ffff:0.0.0.0/96 md5\nhost all all 10.0.0.0/8 reject\n", ""},                      // native IPv4 clients
		{"host all all 0.0.0.0/0 md5\nhost all all 2001:db8::/32 md5\nhost all all samenet reject\n", ""}, // interfaces unknown
		{"host all u1 all md5\nhost all all all reject\n", ""},
		{"host all +g all md5\nhost all u1 all md5\nhost all +g,u1 all reject\n", "3<-1+2"},
		{"host all +g all md5\nhost all \"+g\" all reject\n", ""}, // quoted: a role named +g
		{"host all /^u all md5\nhost all u1 all reject\n", ""},    // a regex covers only itself
		{"host all /^u all md5\nhost all \"/^u\" all reject\n", "2<-1"},
		{"host /^d all all md5\nhost d1 all all md5\nhost /^d,d1 all all reject\n", "3<-1+2"},
		{"host sameuser all all md5\nhost u1 u1 all reject\n", ""}, // conservative: not proven
		{"local all u1 peer\nlocal all u2 peer\nlocal all u1,u2 trust\n", "3<-1+2"},
	}
	for _, c := range cases {
		var got []string
		for _, s := range Shadowed(parse(t, c.text)) {
			var by []string
			for _, c := range s.Covers {
				by = append(by, fmt.Sprint(c.Line))
			}
			got = append(got, fmt.Sprintf("%d<-%s", s.Rule.Line, strings.Join(by, "+")))
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%q: %v, want %q", c.text, got, c.want)
		}
	}
}

func TestExplainAndGuard(t *testing.T) {
	rules := parse(t, "local all postgres peer\nhostssl all +admins 10.0.0.0/8 scram-sha-256\nhost all all 0.0.0.0/0 reject\n")
	env := EnvFromSnapshot(snap())
	alice := hba.Conn{User: "alice", Database: "app", Addr: netip.MustParseAddr("10.1.2.3"), SSL: true}
	if e := Explain(rules, alice, env); !e.Accepted || e.Line != 2 || e.Method != "scram-sha-256" {
		t.Errorf("alice: %+v", e)
	}
	if e := Explain(rules, hba.Conn{User: "app", Database: "app", Addr: netip.MustParseAddr("10.1.2.3"), SSL: true}, env); e.Accepted || e.Line != 3 {
		t.Errorf("app is rejected by line 3: %+v", e)
	}
	// Without role information, +admins is undecided, not guessed.
	if e := Explain(rules, alice, hba.Env{}); len(e.Depends) == 0 || e.Matched {
		t.Errorf("no membership info should be undecided: %+v", e)
	}
	if err := Guard(rules, alice, env); err != nil {
		t.Errorf("guard: %v", err)
	}
	locked := parse(t, "local all postgres peer\nhost all all 0.0.0.0/0 reject\n")
	if err := Guard(locked, alice, env); err == nil || !strings.Contains(err.Error(), "locked out") {
		t.Errorf("guard should refuse: %v", err)
	}
}

func TestDiff(t *testing.T) {
	old := parse(t, "hostssl app app 10.1.0.0/16 scram-sha-256\nhost all all 0.0.0.0/0 reject\n")
	widened := parse(t, "hostssl app app 10.0.0.0/8 scram-sha-256\nhost app app 0.0.0.0/0 md5\nhost all all 0.0.0.0/0 reject\n")
	changes := Diff(old, widened, hba.Env{}, nil, nil)
	widens := 0
	for _, c := range changes {
		if c.Widens {
			widens++
		}
		if c.Role != "app" || c.Database != "app" {
			t.Errorf("only app/app changes: %+v", c)
		}
	}
	if widens == 0 {
		t.Fatalf("no widening found: %+v", changes)
	}
	if d := Diff(old, old, hba.Env{}, nil, nil); len(d) != 0 {
		t.Errorf("identical files differ: %+v", d)
	}
	narrowed := Diff(widened, old, hba.Env{}, nil, nil)
	for _, c := range narrowed {
		if c.Widens {
			t.Errorf("going back must only narrow: %+v", c)
		}
	}
}

func TestMatrixAlarm(t *testing.T) {
	rules := parse(t, "local all all peer\nhost all all 0.0.0.0/0 md5\n")
	cells := Matrix(rules, EnvFromSnapshot(snap()), []RoleInfo{{Name: "postgres", Superuser: true}, {Name: "app"}}, []string{"app"})
	if cells[0].Alarm == "" || cells[0].Weakest != "md5" || cells[0].Network != "0.0.0.0/0" {
		t.Errorf("superuser by md5 from anywhere: %+v", cells[0])
	}
	if cells[1].Alarm != "" {
		t.Errorf("no alarm for an ordinary role: %+v", cells[1])
	}
}

func TestLatent(t *testing.T) {
	rules := parse(t, "host all all 10.0.0.0/8 md5\nhost all all 127.0.0.1/32 md5\n")
	if !Latent(&rules[0], []string{"localhost"}) || Latent(&rules[1], []string{"localhost"}) || Latent(&rules[0], []string{"*"}) {
		t.Error("latent classification")
	}
}

func bigFile(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "hostssl db_%d role_%d 10.%d.%d.0/24 scram-sha-256\n", i%100, i%1000, i%256, (i/256)%256)
	}
	b.WriteString("host all all 0.0.0.0/0 reject\n")
	return b.String()
}

// BenchmarkExplain: one connection against a 10,000-line file (parsed once).
func BenchmarkExplain(b *testing.B) {
	rules := parse(b, bigFile(10000))
	c := hba.Conn{User: "role_999", Database: "db_99", Addr: netip.MustParseAddr("10.231.38.7"), SSL: true}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Explain(rules, c, hba.Env{})
	}
}

// BenchmarkMatrix: 1,000 roles × 100 databases over a 60-line file.
func BenchmarkMatrix(b *testing.B) {
	var text strings.Builder
	text.WriteString("local all postgres peer\nlocal all all scram-sha-256\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&text, "hostssl db_%d +grp_%d 10.%d.0.0/16 scram-sha-256\n", i, i%10, i)
	}
	text.WriteString("hostssl all admin 192.168.0.0/16 cert\nhost all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n")
	rules := parse(b, text.String())
	s := &snapshot.Snapshot{Server: &snapshot.Server{VersionNum: 160000}}
	var roles []RoleInfo
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("role_%d", i)
		s.Roles = append(s.Roles, snapshot.Role{Name: name})
		s.Memberships = append(s.Memberships, snapshot.Membership{Role: fmt.Sprintf("grp_%d", i%10), Member: name})
		roles = append(roles, RoleInfo{Name: name})
	}
	for i := 0; i < 10; i++ {
		s.Roles = append(s.Roles, snapshot.Role{Name: fmt.Sprintf("grp_%d", i)})
	}
	var dbs []string
	for i := 0; i < 100; i++ {
		dbs = append(dbs, fmt.Sprintf("db_%d", i))
	}
	env := EnvFromSnapshot(s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(Matrix(rules, env, roles, dbs)) != 100000 {
			b.Fatal("cells")
		}
	}
}
