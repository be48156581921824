package fwapply

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/netnstest"
	"github.com/pgaegis/pgaegis/internal/plan"
)

// nftAllow is the shape internal/firewall renders: replace only table
// inet pgaegis, keep established traffic, let 192.0.2.10 (and
// 2001:db8:1::10) reach 5432, drop the rest of 5432.
const nftAllow = `table inet pgaegis
delete table inet pgaegis
table inet pgaegis {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 5432 ct state established,related accept
		tcp dport 5432 ip saddr 192.0.2.10 accept
		tcp dport 5432 ip6 saddr 2001:db8:1::10 accept
		tcp dport 5432 drop
	}
}
`

// nftOpen is a pgaegis table already there before the apply.
const nftOpen = `table inet pgaegis {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 5432 counter accept
	}
}
`

const iptAllow = `*filter
:PGAEGIS-PG - [0:0]
-A PGAEGIS-PG -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A PGAEGIS-PG -s %s -j ACCEPT
-A PGAEGIS-PG -j DROP
COMMIT
`

var pgJump = [][]string{{"-p", "tcp", "--dport", "5432", "-j", "PGAEGIS-PG"}}

func journalRoot(t *testing.T) string { return filepath.Join(t.TempDir(), "journal") }

// ORACLE: the kernel in a namespace pair: not confirmed, the allow-list is
// in force during the window (denied source dropped, allowed source and
// SSH through), and afterwards the namespace's whole ruleset is byte for
// byte what it was and the denied source connects again.
func TestNFTRevertsWithoutConfirmation(t *testing.T) {
	t.Parallel()
	p := setup(t, "nft")
	before := ruleset(t, p.Server, "nft")
	expect(t, p, "before", denied, pgAddr, netnstest.Connected)
	var during bool
	res, err := Apply(context.Background(), Options{
		Backend: "nft", NetNS: p.Server, Script: []byte(nftAllow), JournalDir: journalRoot(t),
		ConfirmWithin: 15 * time.Second,
		OnLoaded: func(string) {
			during = true
			expect(t, p, "during the window", denied, pgAddr, netnstest.TimedOut, allowed, pgAddr, netnstest.Connected,
				denied, sshAddr, netnstest.Connected, deny6, pg6, netnstest.TimedOut, allow6, pg6, netnstest.Connected)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Either reverter is right: the watchdog stands in for a pgaegis
	// that a busy machine left behind.
	if !during || !res.Reverted || !res.Verified || res.RevertedBy == "" || res.Kept {
		t.Fatalf("result %+v", res)
	}
	if after := ruleset(t, p.Server, "nft"); after != before {
		t.Fatalf("ruleset after the revert:\n%s\nbefore:\n%s", after, before)
	}
	expect(t, p, "after the revert", denied, pgAddr, netnstest.Connected)
	j, _ := plan.OpenJournal(filepath.Dir(res.Journal), res.ID)
	st, _ := j.State()
	if st.State != plan.StateRolledBack || !strings.Contains(st.Problem, "not confirmed") {
		t.Errorf("journal state %+v", st)
	}
	for _, f := range []string{fileRevert, fileWatchdog, fileSaved, fileScript} {
		if fi, err := os.Stat(filepath.Join(res.Journal, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
}

// ORACLE: confirmed from another session (Confirm in another goroutine),
// the ruleset is kept past the window and the watchdog's time; Rollback
// then restores the pgaegis table that was there before, byte for byte,
// and a second Rollback has nothing to do.
func TestNFTConfirmThenRollback(t *testing.T) {
	t.Parallel()
	p := setup(t, "nft")
	f := filepath.Join(t.TempDir(), "open.nft")
	os.WriteFile(f, []byte(nftOpen), 0o600)
	run(t, p.Server, "nft", "-f", f)
	before := ruleset(t, p.Server, "nft")
	root := journalRoot(t)
	confirmed := make(chan error, 1)
	res, err := Apply(context.Background(), Options{
		Backend: "nft", NetNS: p.Server, Script: []byte(nftAllow), JournalDir: root,
		ConfirmWithin: 3 * time.Second,
		// No terminal: the prompt's input ends at once, which must leave
		// the window open for the other session.
		Prompt:   strings.NewReader(""),
		OnLoaded: func(id string) { go func() { confirmed <- Confirm(root, id) }() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-confirmed; err != nil {
		t.Fatal(err)
	}
	if !res.Kept || res.Reverted {
		t.Fatalf("result %+v", res)
	}
	// Past the window and the watchdog's grace: still in force.
	time.Sleep(3*time.Second + watchdogGrace + time.Second)
	if exists(res.Journal, fileReverted) {
		t.Fatal("reverted although confirmed")
	}
	expect(t, p, "kept", denied, pgAddr, netnstest.TimedOut, allowed, pgAddr, netnstest.Connected)

	rb, err := Rollback(context.Background(), root, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !rb.Reverted || !rb.Verified {
		t.Fatalf("rollback %+v", rb)
	}
	if after := ruleset(t, p.Server, "nft"); after != before {
		t.Fatalf("ruleset after the rollback:\n%s\nbefore:\n%s", after, before)
	}
	expect(t, p, "rolled back", denied, pgAddr, netnstest.Connected)
	rb, err = Rollback(context.Background(), root, res.ID)
	if err != nil || !rb.Nothing || rb.Reverted {
		t.Fatalf("second rollback: %+v %v", rb, err)
	}
}

// ORACLE: the pgaegis process is SIGKILLed during the window; the
// detached watchdog still puts the namespace's ruleset back.
func TestWatchdogRevertsWhenPgaegisDies(t *testing.T) {
	t.Parallel()
	p := setup(t, "nft")
	before := ruleset(t, p.Server, "nft")
	root := journalRoot(t)
	cmd, id := startChild(t, Options{Backend: "nft", NetNS: p.Server, Script: []byte(nftAllow), JournalDir: root, ConfirmWithin: 4 * time.Second})
	dir := filepath.Join(root, id)
	// Listed before the marker is looked at: the marker is written after
	// the revert, so a missing table with no marker means no load.
	if loaded := strings.Contains(ruleset(t, p.Server, "nft"), "table inet pgaegis"); !loaded && !exists(dir, fileReverted) {
		t.Fatal("the child's ruleset is not loaded")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	eventually(t, "the watchdog reverted", func() bool { return exists(dir, fileReverted) })
	if by := readMarker(dir, fileReverted); by != "watchdog" {
		t.Errorf("reverted by %q", by)
	}
	if after := ruleset(t, p.Server, "nft"); after != before {
		t.Fatalf("ruleset after the watchdog:\n%s\nbefore:\n%s", after, before)
	}
	expect(t, p, "after the watchdog", denied, pgAddr, netnstest.Connected)
	if err := Confirm(root, id); err == nil || !strings.Contains(err.Error(), "too late") {
		t.Errorf("a confirmation after the watchdog's revert: %v", err)
	}
	if j, err := plan.OpenJournal(root, id); err == nil {
		if st, _ := j.State(); st.State != plan.StateRolledBack {
			t.Errorf("the journal says %q after the watchdog's revert", st.State)
		}
	}
	rb, err := Rollback(context.Background(), root, id)
	if err != nil || !rb.Nothing {
		t.Errorf("rollback after the watchdog: %+v %v", rb, err)
	}
}

// ORACLE: pgaegis dies, but the apply is confirmed from another session:
// the watchdog wakes, sees the confirmation and leaves the ruleset.
func TestWatchdogKeepsConfirmed(t *testing.T) {
	t.Parallel()
	p := setup(t, "nft")
	root := journalRoot(t)
	cmd, id := startChild(t, Options{Backend: "nft", NetNS: p.Server, Script: []byte(nftAllow), JournalDir: root, ConfirmWithin: 15 * time.Second})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// While its watchdog waits, a second apply is refused: it would save
	// the first one's ruleset as "before", and the first revert would
	// undo it.
	if res, err := Apply(context.Background(), Options{Backend: "nft", NetNS: p.Server, Script: []byte(nftAllow), JournalDir: root}); err == nil || !res.Refused || !strings.Contains(err.Error(), id) {
		t.Fatalf("second apply in the window: %+v %v", res, err)
	}
	if err := Confirm(root, id); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, id)
	pid := strings.TrimSpace(readMarker(dir, fileWDPid))
	eventually(t, "the watchdog ended", func() bool {
		_, err := os.Stat("/proc/" + pid)
		return err != nil
	})
	if exists(dir, fileReverted) {
		t.Fatal("the watchdog reverted a confirmed apply")
	}
	expect(t, p, "kept", denied, pgAddr, netnstest.TimedOut, allowed, pgAddr, netnstest.Connected)
}

// ORACLE: a table someone else (fail2ban, docker) adds during the window
// survives the revert: only table inet pgaegis is put back.
func TestRevertLeavesOtherTables(t *testing.T) {
	t.Parallel()
	p := setup(t, "nft")
	before := ruleset(t, p.Server, "nft")
	other := filepath.Join(t.TempDir(), "other.nft")
	os.WriteFile(other, []byte("table ip f2b {\n\tchain input {\n\t\ttype filter hook input priority 10; policy accept;\n\t\tip saddr 198.51.100.130 drop\n\t}\n}\n"), 0o600)
	res, err := Apply(context.Background(), Options{
		Backend: "nft", NetNS: p.Server, Script: []byte(nftAllow), JournalDir: journalRoot(t),
		ConfirmWithin: 2 * time.Second,
		OnLoaded:      func(string) { run(t, p.Server, "nft", "-f", other) },
	})
	if err != nil || !res.Reverted || !res.Verified {
		t.Fatalf("%+v %v", res, err)
	}
	now := ruleset(t, p.Server, "nft")
	if !strings.Contains(now, "table ip f2b") || strings.Contains(now, "pgaegis") {
		t.Fatalf("after the revert:\n%s", now)
	}
	expect(t, p, "after the revert", denied, pgAddr, netnstest.Connected,
		netip.MustParseAddr("198.51.100.130"), pgAddr, netnstest.TimedOut)
	run(t, p.Server, "nft", "delete", "table", "ip", "f2b")
	if now := ruleset(t, p.Server, "nft"); now != before {
		t.Fatalf("ruleset:\n%s\nbefore:\n%s", now, before)
	}
}

// ORACLE: a script that would drop SSH, and one nft rejects, are refused
// before anything is loaded: the ruleset is unchanged and SSH connects.
func TestNFTRefusals(t *testing.T) { // not parallel: it sets SSH_CONNECTION
	p := setup(t, "nft")
	before := ruleset(t, p.Server, "nft")
	root := journalRoot(t)
	dropSSH := strings.Replace(nftAllow, "tcp dport 5432 drop", "tcp dport { 22, 5432 } drop", 1)
	res, err := Apply(context.Background(), Options{Backend: "nft", NetNS: p.Server, Script: []byte(dropSSH), JournalDir: root})
	if err == nil || !res.Refused || !strings.Contains(err.Error(), "line 9") || !strings.Contains(err.Error(), "SSH") {
		t.Fatalf("drop of 22: %+v %v", res, err)
	}
	t.Setenv("SSH_CONNECTION", "198.51.100.10 50000 192.0.2.1 2222")
	dropAll := strings.Replace(nftAllow, "tcp dport 5432 drop", "tcp dport 2000-3000 drop", 1)
	if _, err := Apply(context.Background(), Options{Backend: "nft", NetNS: p.Server, Script: []byte(dropAll), JournalDir: root}); err == nil || !strings.Contains(err.Error(), "2222") {
		t.Fatalf("drop of SSH_CONNECTION's port: %v", err)
	}
	bad := strings.Replace(nftAllow, "tcp dport 5432 drop", "tcp dport 5432 frobnicate drop", 1)
	res, err = Apply(context.Background(), Options{Backend: "nft", NetNS: p.Server, Script: []byte(bad), JournalDir: root})
	if err == nil || !res.Refused || !strings.Contains(err.Error(), filepath.Join(res.Journal, fileScript)+":9:") {
		t.Fatalf("invalid script: %+v %v", res, err)
	}
	// A journal that cannot be trusted (writable by others) is a refusal
	// before anything is loaded.
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if res, err := Apply(context.Background(), Options{Backend: "nft", NetNS: p.Server, Script: []byte(nftAllow), JournalDir: open}); err == nil || !res.Refused {
		t.Fatalf("open journal: %+v %v", res, err)
	}
	j, _ := plan.OpenJournal(root, res.ID)
	if st, _ := j.State(); st.State != plan.StateRefused {
		t.Errorf("journal state %+v", st)
	}
	if exists(res.Journal, fileWDPid) {
		t.Error("a watchdog was armed for a refused script")
	}
	if now := ruleset(t, p.Server, "nft"); now != before {
		t.Fatalf("ruleset changed:\n%s", now)
	}
	expect(t, p, "after the refusals", denied, sshAddr, netnstest.Connected, denied, pgAddr, netnstest.Connected)
}

// ORACLE: iptables and ip6tables: the chain and the INPUT jump are in
// force during the window, and afterwards the whole filter table is what
// it was (the chain and the jump gone again).
func TestIPTablesRevertsWithoutConfirmation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		backend     string
		src         string
		allow, deny netip.Addr
		pg, ssh     netip.AddrPort
	}{
		{"iptables", "192.0.2.10/32", allowed, denied, pgAddr, sshAddr},
		{"ip6tables", "2001:db8:1::10/128", allow6, deny6, pg6, ssh6},
	} {
		t.Run(c.backend, func(t *testing.T) {
			t.Parallel()
			p := setup(t, c.backend, c.backend+"-save", c.backend+"-restore")
			run(t, p.Server, c.backend, "-P", "INPUT", "ACCEPT") // the table exists before
			before := ruleset(t, p.Server, c.backend)
			res, err := Apply(context.Background(), Options{
				Backend: c.backend, NetNS: p.Server, Script: []byte(fmt.Sprintf(iptAllow, c.src)), Jumps: pgJump,
				JournalDir: journalRoot(t), ConfirmWithin: 15 * time.Second,
				OnLoaded: func(string) {
					expect(t, p, "during the window", c.deny, c.pg, netnstest.TimedOut, c.allow, c.pg, netnstest.Connected, c.deny, c.ssh, netnstest.Connected)
				},
			})
			if err != nil || !res.Reverted || !res.Verified {
				t.Fatalf("%+v %v", res, err)
			}
			if after := ruleset(t, p.Server, c.backend); after != before {
				t.Fatalf("after the revert:\n%s\nbefore:\n%s", after, before)
			}
			expect(t, p, "after the revert", c.deny, c.pg, netnstest.Connected)
		})
	}
}

// ORACLE: iptables, confirmed at the prompt: kept; Rollback restores the
// chain that was there before (with its rules) and leaves the jump that
// was there before.
func TestIPTablesPromptThenRollback(t *testing.T) {
	t.Parallel()
	p := setup(t, "iptables", "iptables-save", "iptables-restore")
	f := filepath.Join(t.TempDir(), "open.rules")
	os.WriteFile(f, []byte("*filter\n:PGAEGIS-PG - [0:0]\n-A PGAEGIS-PG -j ACCEPT\nCOMMIT\n"), 0o600)
	run(t, p.Server, "iptables-restore", "--noflush", f)
	run(t, p.Server, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "5432", "-j", "PGAEGIS-PG")
	before := ruleset(t, p.Server, "iptables")
	root := journalRoot(t)
	var out strings.Builder
	res, err := Apply(context.Background(), Options{
		Backend: "iptables", NetNS: p.Server, Script: []byte(fmt.Sprintf(iptAllow, "192.0.2.10/32")), Jumps: pgJump,
		JournalDir: root, ConfirmWithin: 30 * time.Second, Prompt: strings.NewReader("yes\n"), Out: &out,
	})
	if err != nil || !res.Kept {
		t.Fatalf("%+v %v", res, err)
	}
	if !strings.Contains(out.String(), "type yes within 30s") {
		t.Errorf("prompt: %q", out.String())
	}
	expect(t, p, "kept", denied, pgAddr, netnstest.TimedOut, allowed, pgAddr, netnstest.Connected)
	rb, err := Rollback(context.Background(), root, res.ID)
	if err != nil || !rb.Verified {
		t.Fatalf("%+v %v", rb, err)
	}
	if after := ruleset(t, p.Server, "iptables"); after != before {
		t.Fatalf("after the rollback:\n%s\nbefore:\n%s", after, before)
	}
	expect(t, p, "rolled back", denied, pgAddr, netnstest.Connected)
	if rb, err := Rollback(context.Background(), root, res.ID); err != nil || !rb.Nothing {
		t.Fatalf("second rollback: %+v %v", rb, err)
	}
}

// ORACLE: iptables-restore --test (and ip6tables-restore's) rejects a
// bad line: refused with the tool's line, nothing loaded.
func TestIPTablesInvalidRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ backend, src string }{{"iptables", "192.0.2.10/32"}, {"ip6tables", "2001:db8:1::10/128"}} {
		t.Run(c.backend, func(t *testing.T) {
			t.Parallel()
			p := setup(t, c.backend, c.backend+"-save", c.backend+"-restore")
			run(t, p.Server, c.backend, "-P", "INPUT", "ACCEPT")
			before := ruleset(t, p.Server, c.backend)
			bad := strings.Replace(fmt.Sprintf(iptAllow, c.src), "-s "+c.src, "-s "+c.src+" --frobnicate", 1)
			res, err := Apply(context.Background(), Options{Backend: c.backend, NetNS: p.Server, Script: []byte(bad), Jumps: pgJump, JournalDir: journalRoot(t)})
			if err == nil || !res.Refused || !strings.Contains(err.Error(), filepath.Join(res.Journal, fileScript)) || !strings.Contains(err.Error(), "line: 4") {
				t.Fatalf("%+v %v", res, err)
			}
			if after := ruleset(t, p.Server, c.backend); after != before {
				t.Fatalf("changed:\n%s", after)
			}
		})
	}
}

// ORACLE: a load that fails half way (the script loads, the jump does
// not: iptables has no match "nosuchmatch") is reverted at once: the
// chain the script created is gone again.
func TestIPTablesFailedLoadReverts(t *testing.T) {
	t.Parallel()
	p := setup(t, "iptables", "iptables-save", "iptables-restore")
	run(t, p.Server, "iptables", "-P", "INPUT", "ACCEPT")
	before := ruleset(t, p.Server, "iptables")
	root := journalRoot(t)
	jump := [][]string{{"-p", "tcp", "--dport", "5432", "-m", "nosuchmatch", "-j", "PGAEGIS-PG"}}
	res, err := Apply(context.Background(), Options{Backend: "iptables", NetNS: p.Server, Script: []byte(fmt.Sprintf(iptAllow, "192.0.2.10/32")), Jumps: jump, JournalDir: root})
	if err == nil || res.Refused || !res.Reverted || !res.Verified || !strings.Contains(err.Error(), "load failed") {
		t.Fatalf("%+v %v", res, err)
	}
	if after := ruleset(t, p.Server, "iptables"); after != before {
		t.Fatalf("after the failed load:\n%s\nbefore:\n%s", after, before)
	}
	j, _ := plan.OpenJournal(root, res.ID)
	if st, _ := j.State(); st.State != plan.StateFailed {
		t.Errorf("journal state %+v", st)
	}
}

// ORACLE: a jump already in the firewall that sends everything from a
// network into the chain makes the script's unconfined DROP a drop of
// SSH: refused, nothing loaded, SSH from that network still connects.
func TestIPTablesExistingWideJumpRefused(t *testing.T) {
	t.Parallel()
	p := setup(t, "iptables", "iptables-save", "iptables-restore")
	run(t, p.Server, "iptables", "-N", "PGAEGIS-PG")
	run(t, p.Server, "iptables", "-A", "INPUT", "-s", "192.0.2.0/24", "-j", "PGAEGIS-PG")
	before := ruleset(t, p.Server, "iptables")
	res, err := Apply(context.Background(), Options{Backend: "iptables", NetNS: p.Server, Script: []byte(fmt.Sprintf(iptAllow, "192.0.2.10/32")), Jumps: pgJump, JournalDir: journalRoot(t)})
	if err == nil || !res.Refused || !strings.Contains(err.Error(), "-A INPUT -s 192.0.2.0/24 -j PGAEGIS-PG") {
		t.Fatalf("%+v %v", res, err)
	}
	if after := ruleset(t, p.Server, "iptables"); after != before {
		t.Fatalf("changed:\n%s", after)
	}
	expect(t, p, "after the refusal", denied, sshAddr, netnstest.Connected)
}
