package rules

import (
	"os"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// NET-03 over snapshots whose firewall is a real `nft -j list ruleset`
// listing (testdata/firewall, made by loading the ruleset named in each
// case into a network namespace).
func TestFirewallRule(t *testing.T) {
	nft := func(name string) *snapshot.Firewall {
		b, err := os.ReadFile("testdata/firewall/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		return &snapshot.Firewall{Source: "nft", NFTJSON: string(b)}
	}
	ipt := &snapshot.Firewall{Source: "iptables", IPTables: "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.0/16 -p tcp -m tcp --dport 5432 -j ACCEPT\nCOMMIT\n"}
	const app = "local all all peer\nhost all all 10.0.0.0/24 scram-sha-256\n"
	cases := []struct {
		name, hba, listen string
		fw                *snapshot.Firewall
		noHost            bool
		want              []string // "status" then a piece of the evidence or reason
	}{
		{"allow-list matches pg_hba.conf", app, "*", nft("allow"), false, []string{"pass only from networks pg_hba.conf accepts"}},
		{"(a) port open to everyone", app, "*", nft("wide"), false, []string{"fail from 0.0.0.0-9.255.255.255; 10.0.1.0-126.255.255.255; 128.0.0.0/1; ::/128; ::2-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff by inet filter input handle 3"}},
		{"(a) a loopback line does not hide the rest", app + "host all all 127.0.0.1/32 scram-sha-256\n", "*", nft("wide"), false, []string{"fail from 0.0.0.0-9.255.255.255; 10.0.1.0-126.255.255.255; 128.0.0.0/1; ::/128; ::2-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff by"}},
		{"(b) hba accepts what the firewall drops", "host all all 10.0.0.0/16 md5\n", "*", nft("allow"), false, []string{"fail pg_hba.conf:1 accepts connections from 10.0.1.0-10.0.255.255, but the firewall drops them at inet filter input policy"}},
		{"(b) with iptables-save: hba /8, firewall /16", "host all all 10.0.0.0/8 md5\n", "10.0.0.5", ipt, false, []string{"fail accepts connections from 10.1.0.0-10.255.255.255, but the firewall drops them at ip filter INPUT policy"}},
		{"pgaegis's own iptables chain", app, "10.0.0.5", &snapshot.Firewall{Source: "iptables", IPTables: "*filter\n:INPUT ACCEPT [0:0]\n:PGAEGIS-PG - [0:0]\n-A INPUT -p tcp -m tcp --dport 5432 -j PGAEGIS-PG\n-A PGAEGIS-PG -s 10.0.0.0/24 -p tcp -m tcp --dport 5432 -j ACCEPT\n-A PGAEGIS-PG -p tcp -m tcp --dport 5432 -j DROP\nCOMMIT\n"}, false, []string{"pass only from networks pg_hba.conf accepts"}},
		{"(c) empty ruleset", app, "*", nft("empty"), false, []string{"fail no firewall rule or policy filters port 5432"}},
		{"(c) a counter only", app, "0.0.0.0", nft("open"), false, []string{"fail no firewall rule or policy filters"}},
		{"(c) no firewall tool", app, "*", &snapshot.Firewall{Source: "none", Error: "nft: not found"}, false, []string{"fail no firewall tool answered (nft: not found)"}},
		{"(d) latent line and what the firewall does", "host all all 10.0.0.0/8 trust\n", "localhost", nft("allow"), false, []string{"fail latent", "fail the firewall would accept port 5432 from 10.0.0.0/8 (inet filter input handle"}},
		{"loopback only, nothing latent", "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n", "localhost", nft("wide"), false, []string{"pass loopback only"}},
		{"(e) limit is not modelled", app, "*", nft("limit"), false, []string{"not_checked expression \"limit\""}},
		{"(e) the interface is not known", app, "10.0.0.5", &snapshot.Firewall{Source: "iptables", IPTables: "*filter\n:INPUT DROP [0:0]\n-A INPUT -i ens3 -p tcp -m tcp --dport 5432 -j ACCEPT\nCOMMIT\n"}, false, []string{"not_checked the interface the connection arrives on (iifname ens3)"}},
		{"not read", app, "*", &snapshot.Firewall{Error: "reading the firewall needs root"}, false, []string{"not_checked needs root"}},
		{"not on the host", app, "*", nil, true, []string{"not_checked host checks run only on the database host"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := hba.Parse("pg_hba.conf", []byte(tc.hba), hba.Options{SSL: true})
			s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion,
				HBA:      &snapshot.HBA{Source: "file", Path: "pg_hba.conf", Rules: f.Rules},
				Settings: map[string]snapshot.Setting{"listen_addresses": {Name: "listen_addresses", Value: tc.listen}, "port": {Name: "port", Value: "5432"}}}
			if !tc.noHost {
				s.Host = &snapshot.Host{Firewall: tc.fw}
			}
			var got []string
			for _, fd := range Run(s) {
				if fd.Rule == "NET-03" {
					got = append(got, string(fd.Status)+" "+fd.Object+" | "+fd.Evidence+" | "+fd.Reason)
					// The fix is a command: nothing to reload or restart
					// ("takes effect after a none" was the text).
					if fd.FixApply != "" || fd.Fix != "" && fd.FixKind != FixShell {
						t.Errorf("fix %q: kind %q, apply %q; want a shell command taking effect at once", fd.Fix, fd.FixKind, fd.FixApply)
					}
				}
			}
			all := strings.Join(got, "\n")
			for _, w := range tc.want {
				status, piece, _ := strings.Cut(w, " ")
				found := false
				for _, g := range got {
					if strings.HasPrefix(g, status+" ") && strings.Contains(g, piece) {
						found = true
					}
				}
				if !found {
					t.Errorf("want %s with %q; got:\n%s", status, piece, all)
				}
			}
			if strings.Contains(all, "pass") && strings.Contains(all, "fail") {
				t.Errorf("both pass and fail:\n%s", all)
			}
		})
	}
}

// With ssl = off no connection uses TLS: a hostssl line accepts nobody,
// as the plan (firewall.Derive, Input.NoTLS) judges it, so a firewall
// that opens nothing for it is right. hostgssenc lines are tried with a
// GSSAPI-encrypted connection, as the plan tries them.
func TestFirewallRuleSSL(t *testing.T) {
	b, err := os.ReadFile("testdata/firewall/allow.json")
	if err != nil {
		t.Fatal(err)
	}
	const hbaText = "local all all peer\nhost all all 10.0.0.0/24 scram-sha-256\nhostssl all all 192.0.2.64/26 scram-sha-256\nhostgssenc all all 198.51.100.0/24 gss\n"
	for _, tc := range []struct {
		ssl  string
		want []string
	}{
		{"off", []string{"pg_hba.conf:4 accepts connections from 198.51.100.0/24"}},
		{"on", []string{"pg_hba.conf:3 accepts connections from 192.0.2.64/26", "pg_hba.conf:4 accepts connections from 198.51.100.0/24"}},
	} {
		f := hba.Parse("pg_hba.conf", []byte(hbaText), hba.Options{SSL: tc.ssl == "on"})
		s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion,
			HBA: &snapshot.HBA{Source: "file", Path: "pg_hba.conf", Rules: f.Rules},
			Settings: map[string]snapshot.Setting{"listen_addresses": {Name: "listen_addresses", Value: "*"}, "port": {Name: "port", Value: "5432"},
				"ssl": {Name: "ssl", Value: tc.ssl}},
			Host: &snapshot.Host{Firewall: &snapshot.Firewall{Source: "nft", NFTJSON: string(b)}}}
		var got []string
		for _, fd := range Run(s) {
			if fd.Rule == "NET-03" && fd.Status == "fail" {
				got = append(got, fd.Evidence)
			}
		}
		all := strings.Join(got, "\n")
		if len(got) != len(tc.want) {
			t.Errorf("ssl = %s: want %d findings, got:\n%s", tc.ssl, len(tc.want), all)
		}
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("ssl = %s: want %q, got:\n%s", tc.ssl, w, all)
			}
		}
	}
}
