package hostcheck

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/netns"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// firewall reads the live packet filter: nft's JSON listing first; also
// iptables-save and ip6tables-save, whose view of iptables-nft tables nft
// cannot print (they show there as opaque xt expressions), or which are
// the only view on a legacy-iptables host. Reading needs CAP_NET_ADMIN.
func firewall(o Options) *snapshot.Firewall {
	if !o.Commands {
		return nil
	}
	if o.Root != "" && o.NetNS == "" {
		return &snapshot.Firewall{Error: "the firewall is read with nft and iptables-save, which cannot look inside " + o.Root}
	}
	if os.Geteuid() != 0 {
		return &snapshot.Firewall{Error: "reading the firewall (nft list ruleset, iptables-save) needs root; run pgaegis as root on the database host"}
	}
	run := func(argv ...string) (string, error) {
		if _, err := exec.LookPath(argv[0]); err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := netns.Command(ctx, o.NetNS, argv...).Output()
		return string(out), err
	}
	fw := &snapshot.Firewall{}
	var why []string
	if out, err := run("nft", "-j", "list", "ruleset"); err == nil {
		fw.Source, fw.NFTJSON = "nft", out
	} else {
		why = append(why, "nft -j list ruleset: "+fwErrText(err))
	}
	if out, err := run("iptables-save"); err == nil {
		fw.IPTables = out
	} else {
		why = append(why, "iptables-save: "+fwErrText(err))
	}
	if out, err := run("ip6tables-save"); err == nil {
		fw.IP6Tables = out
	} else {
		why = append(why, "ip6tables-save: "+fwErrText(err))
	}
	switch {
	case fw.Source == "nft":
	case fw.IPTables != "" || fw.IP6Tables != "":
		fw.Source = "iptables"
	default:
		fw.Source = "none"
		fw.Error = strings.Join(why, "; ")
	}
	return fw
}

func fwErrText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return err.Error()
}
