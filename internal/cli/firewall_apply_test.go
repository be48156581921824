package cli

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/netnstest"
)

// ORACLE: the kernel. 'firewall plan --apply' loads the plan into a
// namespace of the test's own: not confirmed, the ruleset is back as it
// was and the denied source connects again; confirmed from a "second
// session" (firewall confirm), it stays, drops the denied source, and
// 'firewall rollback' takes it away again.
func TestFirewallPlanApplyCLI(t *testing.T) {
	netnstest.Need(t, "nft")
	p := netnstest.New(t)
	ctx := context.Background()
	p.Serve(t, p.Server, 5432)
	dir := t.TempDir()
	hbaPath, conf := filepath.Join(dir, "pg_hba.conf"), filepath.Join(dir, "postgresql.conf")
	os.WriteFile(hbaPath, []byte("local all all peer\nhost all all 192.0.2.10/32 scram-sha-256\n"), 0o600)
	os.WriteFile(conf, []byte("listen_addresses = '*'\nport = 5432\n"), 0o600)
	journal := filepath.Join(dir, "journal")
	base := []string{"firewall", "plan", "--hba-file", hbaPath, "--config-file", conf, "--apply", "--netns", p.Server, "--journal-dir", journal}
	ruleset := func() string {
		out, err := p.Run(ctx, p.Server, "nft", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	dst := netip.MustParseAddrPort("192.0.2.1:5432")
	denied := netip.MustParseAddr("198.51.100.10")
	reach := func(src netip.Addr) netnstest.Outcome {
		o, err := p.Connect(ctx, src, dst, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	before := ruleset()

	// Not confirmed: reverted, exit 2, the ruleset as before.
	code, _, errs := runCLI(t, append(base, "--confirm-within", "2s")...)
	if code != ExitError || !strings.Contains(errs, "not confirmed") || !strings.Contains(errs, "pgaegis will load a nft ruleset") {
		t.Fatalf("unconfirmed apply: exit %d\n%s", code, errs)
	}
	if got := ruleset(); got != before {
		t.Fatalf("after the revert the ruleset is\n%s\nnot\n%s", got, before)
	}
	if o := reach(denied); o != netnstest.Connected {
		t.Fatalf("after the revert %s gets %s", denied, o)
	}

	// Confirmed from another session: it stays.
	known := map[string]bool{}
	ents, _ := os.ReadDir(journal)
	for _, e := range ents {
		known[e.Name()] = true
	}
	confirmed := make(chan string, 1)
	go func() {
		defer close(confirmed)
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			ents, _ := os.ReadDir(journal)
			for _, e := range ents {
				if known[e.Name()] || !strings.Contains(ruleset(), "table inet pgaegis") {
					continue
				}
				var out, errb strings.Builder
				if Main([]string{"firewall", "confirm", e.Name(), "--journal-dir", journal}, &out, &errb) == ExitOK {
					confirmed <- e.Name()
					return
				}
			}
		}
	}()
	code, _, errs = runCLI(t, append(base, "--confirm-within", "60s")...)
	id := <-confirmed
	if code != ExitOK || id == "" || !strings.Contains(errs, "kept") {
		t.Fatalf("confirmed apply: exit %d, id %q\n%s", code, id, errs)
	}
	if o := reach(denied); o != netnstest.TimedOut {
		t.Errorf("the kept ruleset lets %s through: %s", denied, o)
	}
	if o := reach(netip.MustParseAddr("192.0.2.10")); o != netnstest.Connected {
		t.Errorf("the kept ruleset blocks the allowed source: %s", o)
	}
	code, out, errs := runCLI(t, "firewall", "rollback", id, "--journal-dir", journal)
	if code != ExitOK || !strings.Contains(out, "rolled back") {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errs)
	}
	if got := ruleset(); got != before {
		t.Errorf("after the rollback the ruleset is\n%s", got)
	}
	if code, out, _ := runCLI(t, "firewall", "rollback", id, "--journal-dir", journal); code != ExitOK || !strings.Contains(out, "nothing to roll back") {
		t.Errorf("second rollback: exit %d %s", code, out)
	}
	// The iptables renderings pass the guard and revert the same way.
	for _, tool := range []string{"iptables", "ip6tables"} {
		save := func() string {
			out, err := p.Run(ctx, p.Server, tool+"-save", "-t", "filter")
			if err != nil {
				t.Fatal(err)
			}
			return stripSaveNoise(out)
		}
		was := save()
		code, _, errs := runCLI(t, append(base, "--output", tool, "--confirm-within", "2s")...)
		if code != ExitError || !strings.Contains(errs, "not confirmed") {
			t.Errorf("%s: exit %d\n%s", tool, code, errs)
		}
		if got := save(); got != was {
			t.Errorf("%s after the revert:\n%s\nnot\n%s", tool, got, was)
		}
	}
	// firewalld has its own apply; a bad window is a usage error.
	for _, bad := range [][]string{append(base, "--output", "firewalld"), append(base, "--confirm-within", "0s")} {
		if code, _, _ := runCLI(t, bad...); code != ExitError {
			t.Errorf("%q: exit %d", bad, code)
		}
	}
}

// stripSaveNoise drops iptables-save's comment lines (dates) and counters.
func stripSaveNoise(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, ":") {
			if i := strings.LastIndex(l, " ["); i > 0 {
				l = l[:i]
			}
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}
