package fwapply

import (
	"strings"
	"testing"
)

var keep = []int{22}

func TestGuardNFT(t *testing.T) {
	if err := GuardNFT([]byte(nftAllow), keep); err != nil {
		t.Fatalf("pgaegis's own shape refused: %v", err)
	}
	oneLine := "add table inet pgaegis\nadd chain inet pgaegis input { type filter hook input priority 0; policy accept; }\n" +
		"add rule inet pgaegis input ct state { established, related } accept\nadd rule inet pgaegis input tcp dport { 5432, 6432 } ip saddr != 192.0.2.0/24 drop\n"
	if err := GuardNFT([]byte(oneLine), keep); err != nil {
		t.Fatalf("add-rule form refused: %v", err)
	}
	for _, c := range []struct{ name, from, to, want string }{
		{"ssh in a set", "tcp dport 5432 drop", "tcp dport { 22, 5432 } drop", "line 9: this drop covers port 22"},
		{"ssh by name", "tcp dport 5432 drop", "tcp dport ssh reject", "port ssh"},
		{"ssh in a range", "tcp dport 5432 drop", "tcp dport 1-1024 drop", "port 1-1024"},
		{"no port", "tcp dport 5432 drop", "ip saddr 198.51.100.0/24 drop", "not confined"},
		{"negated port", "tcp dport 5432 drop", "tcp dport != 5432 drop", "cannot tell"},
		{"named set", "tcp dport 5432 drop", "tcp dport @ports drop", "cannot tell"},
		{"unknown service", "tcp dport 5432 drop", "tcp dport http drop", "which port"},
		{"udp", "tcp dport 5432 drop", "udp dport 5432 drop", "not confined"},
		{"policy drop", "policy accept;", "policy drop;", "line 5: policy drop"},
		{"verdict map", "tcp dport 5432 drop", "tcp dport vmap { 5432 : drop }", "verdict map"},
		{"no established", "tcp dport 5432 ct state established,related accept", "", "before any 'ct state established"},
		{"negated established", "ct state established", "ct state != established", "before any"},
		{"other table", "table inet pgaegis {", "table ip filter {", "line 3"},
		{"flush ruleset", "table inet pgaegis\n", "flush ruleset\n", "flush ruleset"},
		{"include", "table inet pgaegis\n", "include \"/etc/nftables.conf\"\n", "only table inet pgaegis"},
		{"second table on one line", "\n}\n", "\n} table ip filter { chain c { tcp dport 5432 drop; } }\n", "table ip filter"},
		{"two tables on one line", "table inet pgaegis {", "table inet pgaegis { } table ip filter { chain c { tcp dport 5432 drop; } }\ntable inet pgaegis {", "only table inet pgaegis"},
		{"command after a block", "\n}\n", "\n} add rule ip filter c tcp dport 5432 drop\n", "only table inet pgaegis"},
		{"output chain without its own accept", "\n}\n", "\n\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n\t\ttcp dport 5432 drop\n\t}\n}\n", "in chain output"},
		{"add to another table", "table inet pgaegis\n", "add rule ip filter INPUT drop\n", "only table inet pgaegis"},
	} {
		s := strings.Replace(nftAllow, c.from, c.to, 1)
		err := GuardNFT([]byte(s), keep)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A comment or a quoted string saying drop is not a drop.
	s := strings.Replace(nftAllow, "tcp dport 5432 drop", "tcp dport 5432 drop comment \"do not drop 22\" # drop 22", 1)
	if err := GuardNFT([]byte(s), keep); err != nil {
		t.Errorf("comment: %v", err)
	}
	// SSH on another port (SSH_CONNECTION, KeepPorts) is kept too.
	s = strings.Replace(nftAllow, "tcp dport 5432 drop", "tcp dport 2000-3000 drop", 1)
	if err := GuardNFT([]byte(s), []int{22, 2222}); err == nil || !strings.Contains(err.Error(), "22, 2222") {
		t.Errorf("kept port 2222: %v", err)
	}
}

func TestGuardIPTables(t *testing.T) {
	ok := "*filter\n:PGAEGIS-PG - [0:0]\n-A PGAEGIS-PG -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A PGAEGIS-PG -s 192.0.2.10/32 -j ACCEPT\n-A PGAEGIS-PG -j DROP\nCOMMIT\n"
	if err := GuardIPTables([]byte(ok), pgJump, keep); err != nil {
		t.Fatalf("pgaegis's own shape refused: %v", err)
	}
	// Without confining jumps every drop must confine itself.
	if err := GuardIPTables([]byte(ok), nil, keep); err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("unconfined drop without jumps: %v", err)
	}
	self := strings.Replace(ok, "-A PGAEGIS-PG -j DROP", "-A PGAEGIS-PG -p tcp -m multiport --dports 5432,6432 -j DROP", 1)
	if err := GuardIPTables([]byte(self), nil, keep); err != nil {
		t.Errorf("self-confined drop: %v", err)
	}
	for _, c := range []struct {
		name, from, to string
		jumps          [][]string
		want           string
	}{
		{"input policy", ":PGAEGIS-PG - [0:0]", ":INPUT DROP [0:0]", pgJump, "chain INPUT"},
		{"rule in INPUT", "-A PGAEGIS-PG -j DROP", "-A INPUT -j DROP", pgJump, "only chain PGAEGIS-PG"},
		{"policy command", "-A PGAEGIS-PG -j DROP", "-P INPUT DROP", pgJump, "may only add rules"},
		{"flush all", "-A PGAEGIS-PG -j DROP", "-F", pgJump, "only chain"},
		{"raw table", "*filter", "*raw", pgJump, "table raw"},
		{"no established", "-A PGAEGIS-PG -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", "", pgJump, "before any RELATED,ESTABLISHED"},
		{"jump with ssh", "", "", [][]string{{"-p", "tcp", "--dport", "22", "-j", "PGAEGIS-PG"}}, "sends SSH"},
		{"jump elsewhere", "", "", [][]string{{"-p", "tcp", "--dport", "5432", "-j", "DROP"}}, "must go to"},
		{"negated self", "-A PGAEGIS-PG -j DROP", "-A PGAEGIS-PG -p tcp ! --dport 5432 -j DROP", nil, "negated"},
	} {
		s := ok
		if c.from != "" {
			s = strings.Replace(ok, c.from, c.to, 1)
		}
		err := GuardIPTables([]byte(s), c.jumps, keep)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// An unconfined jump (no port) leaves each drop to confine itself.
	wide := [][]string{{"-s", "198.51.100.0/24", "-j", "PGAEGIS-PG"}}
	if err := GuardIPTables([]byte(ok), wide, keep); err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("wide jump: %v", err)
	}
}

// FuzzGuard: any script gets an answer, never a panic.
func FuzzGuard(f *testing.F) {
	f.Add([]byte(nftAllow))
	f.Add([]byte("*filter\n:PGAEGIS-PG - [0:0]\n-A PGAEGIS-PG -j DROP\nCOMMIT\n"))
	f.Add([]byte("table inet pgaegis { chain c { tcp dport { 1-, :5, ssh } drop } }"))
	f.Fuzz(func(t *testing.T, b []byte) {
		GuardNFT(b, keep)
		GuardIPTables(b, pgJump, keep)
		GuardIPTables(b, nil, keep)
	})
}

func TestDescribe(t *testing.T) {
	t.Setenv("SSH_CONNECTION", "198.51.100.10 50000 192.0.2.1 2222")
	d := Describe(Options{Backend: "iptables", NetNS: "ns1", Jumps: pgJump, JournalDir: "/var/lib/pgaegis/journal"})
	for _, want := range []string{"network namespace ns1", "chain PGAEGIS-PG", "never TCP 22, 2222", "/var/lib/pgaegis/journal",
		"iptables-restore --test --noflush", "-p tcp --dport 5432 -j PGAEGIS-PG", "wait 30s", "NEW session"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe lacks %q:\n%s", want, d)
		}
	}
}
