package netfilter

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pkt(src, dst string, port uint16) Packet {
	return Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), DPort: port, IIf: "eth0"}
}

// The fixtures were loaded into a namespace by nft -f / iptables-restore
// and listed back (testdata/mixed.nft is the source of mixed.json); the
// expectations are traced by hand through the rules, and the oracle test
// checks the same semantics against the kernel.
func TestEvalNFT(t *testing.T) {
	r, err := ParseNFT(load(t, "mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p     Packet
		kind  Kind
		where string
	}{
		{pkt("192.0.2.10", "192.0.2.1", 5432), Accept, "ip t2 c handle 3"},             // accepted by inet, then by t2's ct state new
		{pkt("192.0.2.200", "192.0.2.1", 5432), Reject, "inet f sub handle 16"},        // jump sub, reject
		{pkt("2001:db8:1::10", "2001:db8:1::1", 5432), Reject, "inet f sub handle 16"}, // != /64 is false; jump
		{pkt("2001:db8:2::10", "2001:db8:1::1", 5432), Drop, "inet f in handle 9"},     // outside the /64
		{pkt("192.0.2.200", "192.0.2.1", 80), Reject, "inet f sub handle 16"},          // goto sub
		{pkt("192.0.2.50", "192.0.2.1", 80), Reject, "inet f in handle 10"},            // range
		{pkt("2001:db8:1::10", "2001:db8:1::1", 80), Accept, "inet f in policy"},       // t2 is ip only
		{Packet{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.1"), DPort: 5432, IIf: "lo"}, Accept, "ip t2 c handle 3"},
		{pkt("198.51.100.7", "192.0.2.1", 6005), Accept, "ip t2 c handle 2"}, // named sets: range and interval
		{pkt("10.1.2.3", "192.0.2.1", 5432), Accept, "ip t2 c handle 3"},     // sub returns for 10/8, then goto sub returns: policy accept
	} {
		v := r.Eval(c.p)
		if v.Kind != c.kind || v.Where != c.where {
			t.Errorf("%v: got %s at %q (%s), want %s at %q", c.p, v.Kind, v.Where, v.Why, c.kind, c.where)
		}
	}
	var bs []string
	for _, p := range r.Boundaries() {
		bs = append(bs, p.String())
	}
	if got := strings.Join(bs, " "); !strings.Contains(got, "192.0.2.0/25") || !strings.Contains(got, "2001:db8:1::/64") || !strings.Contains(got, "10.0.0.0/8") {
		t.Errorf("boundaries: %s", got)
	}
}

func TestEvalIPTables(t *testing.T) {
	ipt, err := ParseIPTables("iptables-save", load(t, "filter.iptables"), false)
	if err != nil {
		t.Fatal(err)
	}
	nft, err := ParseNFT(load(t, "iptables-nft.json"))
	if err != nil {
		t.Fatal(err)
	}
	// nft shows iptables-nft's matches as opaque xt expressions.
	if v := nft.Eval(pkt("192.0.2.10", "192.0.2.1", 5432)); v.Kind != Unknown {
		t.Errorf("nft view of an iptables-nft ruleset: %v", v)
	}
	for _, r := range []*Ruleset{ipt, Combine(nft, ipt, nil)} {
		for _, c := range []struct {
			p     Packet
			kind  Kind
			where string
		}{
			{pkt("192.0.2.7", "192.0.2.1", 5432), Reject, "iptables-save:11"},
			{pkt("192.0.2.10", "192.0.2.1", 22), Drop, "ip filter INPUT policy"},
			{pkt("198.51.100.10", "192.0.2.1", 5432), Reject, "iptables-save:11"},
			{Packet{Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"), DPort: 22, IIf: "lo"}, Accept, "iptables-save:8"},
			{pkt("2001:db8:1::10", "2001:db8:1::1", 22), Accept, ""}, // no IPv6 rules
		} {
			v := r.Eval(c.p)
			if v.Kind != c.kind || v.Where != c.where {
				t.Errorf("%s %v: got %s at %q (%s), want %s at %q", r.Source, c.p, v.Kind, v.Where, v.Why, c.kind, c.where)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s nothost -j DROP\nCOMMIT\n", "x:3: -s"},
		{"*filter\n-A INPUT -j DROP\nCOMMIT\n", "x:2: chain \"INPUT\" is not declared"},
		{"*filter\n:INPUT ACCEPT [0:0]\n", "table filter has no COMMIT"},
		{"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j nochain\nCOMMIT\n", "x:3: jump to chain"},
		{"hello\n", "x:1: not an iptables-save line"},
	} {
		_, err := ParseIPTables("x", []byte(c.in), false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
	_, err := ParseNFT([]byte("{\"nftables\": [\n{\"chain\": 5}]}"))
	if err == nil || !strings.Contains(err.Error(), "object 0") {
		t.Errorf("nft: %v", err)
	}
	_, err = ParseNFT([]byte("{\"nftables\": [\n{]}"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("nft: %v", err)
	}
}

func FuzzParseNFT(f *testing.F) {
	// Small seeds: the fuzzer minimises every new input it keeps, which
	// on a 5 KB ruleset takes longer than CI's 5 s.
	f.Add([]byte(`{"nftables":[{"table":{"family":"inet","name":"f"}},{"set":{"family":"inet","table":"f","name":"s","type":"ipv4_addr","elem":[{"prefix":{"addr":"192.0.2.0","len":25}},{"range":["198.51.100.5","198.51.100.9"]}]}},{"chain":{"family":"inet","table":"f","name":"in","type":"filter","hook":"input","prio":-5,"policy":"drop"}},{"chain":{"family":"inet","table":"f","name":"sub"}},{"rule":{"family":"inet","table":"f","chain":"in","handle":3,"expr":[{"match":{"op":"!=","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":"@s"}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[22,{"range":[5432,5440]}]}}},{"jump":{"target":"sub"}}]}},{"rule":{"family":"inet","table":"f","chain":"sub","handle":4,"expr":[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","new"]}},{"reject":null}]}}]}`))
	f.Add(load(f, "iptables-nft.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseNFT(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "nft JSON") {
				t.Errorf("error does not name the input: %v", err)
			}
			return
		}
		r.Eval(pkt("192.0.2.10", "192.0.2.1", 5432))
		r.Eval(pkt("2001:db8::1", "2001:db8::2", 22))
		r.Boundaries()
	})
}

func FuzzParseIPTables(f *testing.F) {
	b, _ := os.ReadFile("testdata/filter.iptables")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseIPTables("in", b, false)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "in:") {
				t.Errorf("error does not name the line: %v", err)
			}
			return
		}
		r.Eval(pkt("192.0.2.10", "192.0.2.1", 5432))
		r.Boundaries()
	})
}

// An interface the caller does not know decides nothing but loopback.
func TestUnknownInterface(t *testing.T) {
	r, err := ParseIPTables("x", []byte("*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT ! -i lo -s 10.0.0.0/8 -j ACCEPT\n-A INPUT -i ens3 -j ACCEPT\nCOMMIT\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	p := Packet{Src: netip.MustParseAddr("10.1.1.1"), Dst: netip.MustParseAddr("10.0.0.5"), DPort: 5432}
	if v := r.Eval(p); v.Kind != Accept || v.Where != "x:4" {
		t.Errorf("10.1.1.1: %+v", v)
	}
	p.Src = netip.MustParseAddr("192.0.2.1")
	if v := r.Eval(p); v.Kind != Unknown || v.Where != "x:5" || !strings.Contains(v.Why, "ens3") {
		t.Errorf("192.0.2.1: %+v", v)
	}
}

// A -j to a declared chain is a jump whatever the chain's case: pgaegis's
// own PGAEGIS-PG, Docker's DOCKER-USER. (iptables-save's listing of the
// plan's chain after the documented jump was added.)
func TestIPTablesUppercaseChain(t *testing.T) {
	in := `*filter
:INPUT DROP [0:0]
:DOCKER-USER - [0:0]
:PGAEGIS-PG - [0:0]
-A INPUT -j DOCKER-USER
-A INPUT -p tcp -m tcp --dport 5432 -j PGAEGIS-PG
-A DOCKER-USER -j RETURN
-A PGAEGIS-PG -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A PGAEGIS-PG -i lo -m comment --comment "loopback is never blocked" -j ACCEPT
-A PGAEGIS-PG -s 192.0.2.0/25 -p tcp -m tcp --dport 5432 -m comment --comment "opened by pg_hba.conf:4" -j ACCEPT
-A PGAEGIS-PG -p tcp -m tcp --dport 5432 -m comment --comment "pg_hba.conf accepts nobody else" -j DROP
-A INPUT -j MARK --set-mark 1
COMMIT
`
	r, err := ParseIPTables("x", []byte(in), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src   string
		kind  Kind
		where string
	}{
		{"192.0.2.10", Accept, "x:10"},
		{"198.51.100.1", Drop, "x:11"},
	} {
		if v := r.Eval(pkt(c.src, "192.0.2.1", 5432)); v.Kind != c.kind || v.Where != c.where {
			t.Errorf("%s: got %s at %q (%s), want %s at %q", c.src, v.Kind, v.Where, v.Why, c.kind, c.where)
		}
	}
	// An undeclared upper-case name is still a target extension.
	if v := r.Eval(pkt("192.0.2.10", "192.0.2.1", 22)); v.Kind != Unknown || !strings.Contains(v.Why, "target MARK") {
		t.Errorf("port 22: %+v", v)
	}
}
