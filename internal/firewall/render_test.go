package firewall

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/hba"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

const goldenHBA = `local all all peer
host all all 127.0.0.1/32 scram-sha-256
host all all 192.0.2.128/25 reject
host shop app 192.0.2.0/24 scram-sha-256
host all all 198.51.100.0/24 scram-sha-256
host all all 2001:db8:1::/64 scram-sha-256
host replication rep 198.51.100.7/32 scram-sha-256
host all all db.example.com scram-sha-256
`

func goldenPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := Derive(Input{Rules: parse(t, goldenHBA), Listen: []string{"*"}, Port: 5432})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRenderGolden keeps each rendering in testdata (go test -update).
func TestRenderGolden(t *testing.T) {
	p := goldenPolicy(t)
	for _, f := range Formats {
		got, err := p.Render(f)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "plan."+f)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(want, []byte(got)) {
			t.Errorf("%s differs from %s (go test -update to accept):\n%s", f, path, got)
		}
	}
	if _, err := p.Render("pf"); err == nil {
		t.Error("unknown format accepted")
	}
}

// TestRenderNeverNamesOtherPorts: every rule that accepts or drops names
// the PostgreSQL port or is the established/loopback accept.
func TestRenderNeverNamesOtherPorts(t *testing.T) {
	p := goldenPolicy(t)
	p.Port = 6543
	for _, f := range Formats {
		out, _ := p.Render(f)
		for _, m := range regexp.MustCompile(`(dport|port=)"? ?"?(\d+)`).FindAllStringSubmatch(out, -1) {
			if m[2] != "6543" {
				t.Errorf("%s names port %s", f, m[2])
			}
		}
	}
}

// ORACLE: nft itself checks the script's syntax (nft -c parses and
// validates against the kernel without committing, in a namespace of its
// own when unshare is there); sh -n checks the firewalld script.
func TestRenderSyntax(t *testing.T) {
	p := goldenPolicy(t)
	out, _ := p.Render("firewalld")
	if b, err := exec.Command("sh", "-n", "-c", out).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v: %s", err, b)
	}
	rich := regexp.MustCompile(`--add-rich-rule='rule family="ipv[46]" source address="[0-9a-f.:/]+" port port="5432" protocol="tcp" accept'`)
	if n := strings.Count(out, "--add-rich-rule"); n != len(rich.FindAllString(out, -1)) || n == 0 {
		t.Errorf("rich rules not all well formed:\n%s", out)
	}
	if os.Geteuid() != 0 {
		t.Skip("nft -c needs root")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("no nft")
	}
	script, _ := p.Render("nft")
	path := filepath.Join(t.TempDir(), "plan.nft")
	os.WriteFile(path, []byte(script), 0o600)
	argv := []string{"nft", "-c", "-f", path}
	if _, err := exec.LookPath("unshare"); err == nil {
		argv = append([]string{"unshare", "-n"}, argv...)
	}
	if b, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Errorf("nft -c: %v: %s", err, b)
	}
}

func TestJumps(t *testing.T) {
	p := &Policy{Port: 5433}
	v4, v6 := p.Jumps()
	want := "-p tcp --dport 5433 -j PGAEGIS-PG"
	if len(v4) != 1 || strings.Join(v4[0], " ") != want || len(v6) != 1 || strings.Join(v6[0], " ") != want {
		t.Errorf("%q %q", v4, v6)
	}
}

// FuzzDerive: no panic on any pg_hba.conf, and every allowed prefix is
// one pg_hba.conf really accepts some connection from: its first and
// last addresses both reach an accepting line for some probe.
func FuzzDerive(f *testing.F) {
	f.Add(goldenHBA)
	f.Add("host all all 10.0.0.0/8 reject\nhost all all 0.0.0.0/0 md5\nhost all all ::/0 trust\n")
	f.Add("host all +g samenet md5\nhost replication all 10.0.0.0 255.0.255.0 trust\nhostssl sameuser /^a 2001:db8::/33 cert\n")
	f.Fuzz(func(t *testing.T, text string) {
		file := hba.Parse("pg_hba.conf", []byte(text), hba.Options{SSL: true, Version: 16})
		if len(file.Rules) > 40 {
			return
		}
		env := hba.Env{Version: 16, HostAddrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
		p, err := Derive(Input{Rules: file.Rules, Env: env, Listen: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range Formats {
			if _, err := p.Render(f); err != nil {
				t.Fatal(err)
			}
		}
		d := &deriver{in: Input{Rules: file.Rules, Env: env}, p: &Policy{}}
		rules := d.prepare()
		for _, l := range []struct {
			src  []Source
			repl bool
		}{{p.Allow4, false}, {p.Allow6, false}, {p.Replication4, true}, {p.Replication6, true}} {
			for _, s := range l.src {
				if s.Network.Bits() == 0 {
					continue // the whole family: loopback and mapped are left out
				}
				for _, a := range []netip.Addr{s.Network.Addr(), lastOf(s.Network)} {
					if a.IsLoopback() || mapped.Contains(a) {
						continue // added back only to make fewer prefixes
					}
					if len(d.opens(rules, a, l.repl)) == 0 {
						t.Fatalf("%s allowed, but nothing is accepted from %s\n%s", s.Network, a, text)
					}
				}
			}
		}
	})
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
