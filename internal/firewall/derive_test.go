package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/hba"
)

func parse(t testing.TB, text string) []hba.Rule {
	t.Helper()
	f := hba.Parse("pg_hba.conf", []byte(text), hba.Options{SSL: true, Version: 16})
	if len(f.Errors) > 0 {
		t.Fatalf("%v", f.Errors)
	}
	return f.Rules
}

// summary renders the allow sets compactly: "allow4 ... | allow6 ... |
// repl4 ... | repl6 ...", each source as network=lines.
func summary(p *Policy) string {
	var parts []string
	for _, l := range []struct {
		name string
		src  []Source
	}{{"allow4", p.Allow4}, {"allow6", p.Allow6}, {"repl4", p.Replication4}, {"repl6", p.Replication6}} {
		var s []string
		for _, src := range l.src {
			var ls []string
			for _, x := range src.Lines {
				ls = append(ls, strings.TrimPrefix(x, "pg_hba.conf:"))
			}
			s = append(s, src.Network.String()+"="+strings.Join(ls, ","))
		}
		parts = append(parts, l.name+" "+strings.Join(s, " "))
	}
	return strings.Join(parts, " | ")
}

func TestDerive(t *testing.T) {
	star := []string{"*"}
	host := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("127.0.0.1/8")}
	cases := []struct {
		name   string
		hba    string
		listen []string
		env    hba.Env
		roles  []string
		want   string
		note   string // a substring one note must have
	}{
		{name: "one network", hba: "local all all peer\nhost all all 10.1.0.0/16 scram-sha-256\n", listen: star,
			want: "allow4 10.1.0.0/16=2 | allow6  | repl4  | repl6 "},
		{name: "nearly all", hba: "host all all 10.0.0.0/8 reject\nhost all all 0.0.0.0/0 md5\n", listen: star,
			want: "allow4 0.0.0.0/5=2 8.0.0.0/7=2 11.0.0.0/8=2 12.0.0.0/6=2 16.0.0.0/4=2 32.0.0.0/3=2 64.0.0.0/2=2 128.0.0.0/1=2 | allow6  | repl4  | repl6 ", note: "more than half"},
		{name: "replication open to all", hba: "host replication all ::/0 md5\n", listen: star,
			want: "allow4  | allow6  | repl4  | repl6 ::/0=1", note: "replication connections from every IPv6"},
		{name: "reject first", hba: "host all all 10.1.2.0/24 reject\nhost all all 10.1.0.0/16 md5\n", listen: star,
			want: "allow4 10.1.0.0/23=2 10.1.3.0/24=2 10.1.4.0/22=2 10.1.8.0/21=2 10.1.16.0/20=2 10.1.32.0/19=2 10.1.64.0/18=2 10.1.128.0/17=2 | allow6  | repl4  | repl6 "},
		{name: "shadowed by earlier reject for all", hba: "host all all 10.0.0.0/8 reject\nhost app app 10.1.0.0/16 md5\n", listen: star,
			want: "allow4  | allow6  | repl4  | repl6 "},
		{name: "reject for one user does not close the network", hba: "host all alice 10.0.0.0/8 reject\nhost all all 10.1.0.0/16 md5\n", listen: star,
			want: "allow4 10.1.0.0/16=2 | allow6  | repl4  | repl6 "},
		{name: "reject tls only leaves plaintext", hba: "hostssl all all 10.0.0.0/8 reject\nhost all all 10.0.0.0/8 md5\n", listen: star,
			want: "allow4 10.0.0.0/8=2 | allow6  | repl4  | repl6 "},
		{name: "adjacent merge", hba: "host all all 10.0.0.0/9 md5\nhost all all 10.128.0.0/9 md5\n", listen: star,
			want: "allow4 10.0.0.0/8=1,2 | allow6  | repl4  | repl6 "},
		{name: "replication separately", hba: "host replication rep 10.9.0.0/24 scram-sha-256\nhost all all 0.0.0.0/0 reject\n", listen: star,
			want: "allow4  | allow6  | repl4 10.9.0.0/24=1 | repl6 "},
		{name: "all does not take replication", hba: "host all all 10.0.0.0/8 md5\n", listen: star,
			want: "allow4 10.0.0.0/8=1 | allow6  | repl4  | repl6 "},
		{name: "ipv6", hba: "host all all 2001:db8:1::/64 scram-sha-256\nhost all all 2001:db8::/32 reject\nhost all all 2001:db8:2::/48 md5\n", listen: star,
			want: "allow4  | allow6 2001:db8:1::/64=1 | repl4  | repl6 "},
		{name: "v4-mapped opens nothing", hba: "host all all ::ffff:10.0.0.0/104 md5\n", listen: star,
			want: "allow4  | allow6  | repl4  | repl6 ", note: "IPV6_V6ONLY"},
		{name: "samenet from the host", hba: "host all all samenet md5\n", listen: star, env: hba.Env{HostAddrs: host},
			want: "allow4 192.0.2.0/24=1 | allow6  | repl4  | repl6 ", note: "samenet is the host's subnets"},
		{name: "samenet unknown", hba: "host all all samenet md5\n", listen: star,
			want: "allow4  | allow6  | repl4  | repl6 ", note: "not known here"},
		{name: "hostname", hba: "host all all db.example.com md5\nhost all all 10.0.0.0/8 md5\n", listen: star,
			want: "allow4 10.0.0.0/8=2 | allow6  | repl4  | repl6 ", note: "cannot follow DNS"},
		{name: "loopback only listen", hba: "host all all 10.0.0.0/8 md5\n", listen: []string{"localhost", "127.0.0.1"},
			want: "allow4  | allow6  | repl4  | repl6 ", note: "nothing needs to be opened"},
		{name: "loopback lines are not in the sets", hba: "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n", listen: star,
			want: "allow4  | allow6  | repl4  | repl6 "},
		{name: "open to all", hba: "host all all 0.0.0.0/0 md5\n", listen: star,
			want: "allow4 0.0.0.0/0=1 | allow6  | repl4  | repl6 ", note: "WARNING"},
		{name: "all keyword", hba: "host all all all md5\n", listen: []string{"0.0.0.0"},
			want: "allow4 0.0.0.0/0=1 | allow6  | repl4  | repl6 ", note: "does not listen on IPv6"},
		{name: "ipv4 listener only ignores ipv6 lines", hba: "host all all 2001:db8::/32 md5\n", listen: []string{"192.0.2.1"},
			want: "allow4  | allow6  | repl4  | repl6 "},
		{name: "group unknown opens", hba: "host all +admins 10.0.0.0/8 md5\n", listen: star,
			want: "allow4 10.0.0.0/8=1 | allow6  | repl4  | repl6 ", note: "undecided"},
		{name: "group known and empty", hba: "host all +admins 10.0.0.0/8 md5\n", listen: star, roles: []string{"admins", "bob"},
			env:  hba.Env{IsMember: func(r, g string) bool { return r == g }, RoleExists: func(r string) bool { return r == "admins" || r == "bob" }},
			want: "allow4 10.0.0.0/8=1 | allow6  | repl4  | repl6 "}, // admins is a member of itself
		{name: "regex opens unless caught", hba: "host all all 10.0.0.0/8 reject\nhost all /^app 10.1.0.0/16 md5\nhost all /^x 10.2.0.0/16 md5\nhost all all 10.2.0.0/16 reject\n", listen: star,
			want: "allow4  | allow6  | repl4  | repl6 "},
		{name: "regex", hba: "host all /^app 10.1.0.0/16 md5\n", listen: star,
			want: "allow4 10.1.0.0/16=1 | allow6  | repl4  | repl6 ", note: "regular expression"},
		{name: "noncontiguous mask", hba: "host all all 10.0.0.0 255.0.255.0 md5\n", listen: star,
			want: "allow4 10.0.0.0/8=1 | allow6  | repl4  | repl6 ", note: "not contiguous"},
		{name: "sameuser", hba: "host sameuser all 10.0.0.0/8 md5\n", listen: star,
			want: "allow4 10.0.0.0/8=1 | allow6  | repl4  | repl6 "},
		{name: "earlier narrower accept", hba: "host app app 10.1.0.0/16 md5\nhost all all 10.0.0.0/8 reject\n", listen: star,
			want: "allow4 10.1.0.0/16=1 | allow6  | repl4  | repl6 "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Derive(Input{Rules: parse(t, c.hba), Env: c.env, Roles: c.roles, Listen: c.listen, Port: 5432})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(p); got != c.want {
				t.Errorf("got  %s\nwant %s\nnotes %q", got, c.want, p.Notes)
			}
			if c.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), c.note) {
				t.Errorf("no note with %q: %q", c.note, p.Notes)
			}
		})
	}
}

// A server without TLS takes every connection as plaintext: a hostnossl
// reject closes the network that a later line would open over TLS.
func TestDeriveNoTLS(t *testing.T) {
	rules := parse(t, "hostnossl all all 10.0.0.0/8 reject\nhost all all 10.0.0.0/8 md5\n")
	for _, noTLS := range []bool{false, true} {
		p, _ := Derive(Input{Rules: rules, Listen: []string{"*"}, NoTLS: noTLS, NoGSS: true})
		if got := len(p.Allow4) == 1; got == noTLS {
			t.Errorf("NoTLS=%v: %s", noTLS, summary(p))
		}
	}
}

func TestDeriveSession(t *testing.T) {
	p, err := Derive(Input{Rules: parse(t, "host all all 10.0.0.0/8 md5\n"), Listen: []string{"*"}, Session: netip.MustParseAddr("192.0.2.9")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), "own session comes from 192.0.2.9") {
		t.Errorf("notes %q", p.Notes)
	}
	if _, err := Derive(Input{Port: 70000}); err == nil {
		t.Error("port 70000 accepted")
	}
}
