package hostcheck

import (
	"context"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/netns"
	"github.com/pgaegis/pgaegis/internal/netnstest"
)

// ORACLE: the firewall is read back from a namespace with a ruleset the
// test loaded; nft's JSON and iptables-save both carry it.
func TestFirewallFromNamespace(t *testing.T) {
	p := netnstest.New(t)
	netnstest.Need(t, "nft", "iptables-save")
	cmd := netns.Command(context.Background(), p.Server, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader("table inet f {\n chain in {\n  type filter hook input priority 0; policy drop;\n  tcp dport 5432 ip saddr 192.0.2.0/24 accept\n }\n}\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	fw := firewall(Options{Commands: true, NetNS: p.Server})
	if fw == nil || fw.Source != "nft" || !strings.Contains(fw.NFTJSON, `"192.0.2.0"`) {
		t.Fatalf("firewall: %+v", fw)
	}
	if fw := firewall(Options{}); fw != nil {
		t.Errorf("commands off: %+v, want nil (not read)", fw)
	}
	if fw := firewall(Options{Commands: true, Root: t.TempDir()}); fw == nil || fw.Source != "" || fw.Error == "" {
		t.Errorf("fake root: %+v, want an unknown with the reason", fw)
	}
}
