package fwapply

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/netns"
	"github.com/pgaegis/pgaegis/internal/netnstest"
)

// The test binary doubles as a helper, chosen by FWAPPLY_HELPER: an apply
// run as a process of its own that the test can SIGKILL mid-window.
func TestMain(m *testing.M) {
	switch os.Getenv("FWAPPLY_HELPER") {
	case "apply":
		helperApply()
		return
	}
	os.Exit(m.Run())
}

// helperApply runs Apply from the JSON options in FWAPPLY_OPTIONS and
// says "loaded ID" once the ruleset is in force.
func helperApply() {
	var o Options
	if err := json.Unmarshal([]byte(os.Getenv("FWAPPLY_OPTIONS")), &o); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	o.OnLoaded = func(id string) { fmt.Println("loaded", id) }
	_, err := Apply(context.Background(), o)
	fmt.Println("returned:", err)
}

// setup makes a namespace pair with listeners on 5432 and 22 on the
// server side.
func setup(t *testing.T, tools ...string) *netnstest.Pair {
	t.Helper()
	netnstest.Need(t, append(tools, "sh", "flock", "sleep")...)
	p := netnstest.New(t)
	p.Serve(t, p.Server, 5432, 22)
	return p
}

var (
	allowed = netip.MustParseAddr("192.0.2.10")
	denied  = netip.MustParseAddr("192.0.2.77")
	pgAddr  = netip.MustParseAddrPort("192.0.2.1:5432")
	sshAddr = netip.MustParseAddrPort("192.0.2.1:22")
	allow6  = netip.MustParseAddr("2001:db8:1::10")
	deny6   = netip.MustParseAddr("2001:db8:1::8000:10")
	pg6     = netip.MustParseAddrPort("[2001:db8:1::1]:5432")
	ssh6    = netip.MustParseAddrPort("[2001:db8:1::1]:22")
)

// expect tries each connection (in parallel: a dropped SYN waits its
// timeout) and reports the ones whose outcome is not the wanted one.
func expect(t *testing.T, p *netnstest.Pair, what string, cases ...any) {
	t.Helper()
	type c struct {
		src  netip.Addr
		dst  netip.AddrPort
		want netnstest.Outcome
	}
	var cs []c
	for i := 0; i+2 < len(cases)+1; i += 3 {
		cs = append(cs, c{cases[i].(netip.Addr), cases[i+1].(netip.AddrPort), cases[i+2].(netnstest.Outcome)})
	}
	got := make([]string, len(cs))
	done := make(chan int)
	for i, x := range cs {
		go func() {
			// A generous timeout: a busy machine must not turn an
			// accepted connection into a drop.
			o, err := p.Connect(context.Background(), x.src, x.dst, 4*time.Second)
			if err != nil {
				got[i] = err.Error()
			} else {
				got[i] = string(o)
			}
			done <- i
		}()
	}
	for range cs {
		<-done
	}
	for i, x := range cs {
		if got[i] != string(x.want) {
			t.Errorf("%s: %s -> %s: %s, want %s", what, x.src, x.dst, got[i], x.want)
		}
	}
}

func run(t *testing.T, ns string, argv ...string) string {
	t.Helper()
	out, err := netns.Command(context.Background(), ns, argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

var (
	generated      = regexp.MustCompile(`(?m)^#.*\n`)
	policyCounters = regexp.MustCompile(`\[[0-9]+:[0-9]+\]`)
)

// ruleset is the whole firewall of ns as text: nft list ruleset, or
// iptables-save without its dated comment lines.
func ruleset(t *testing.T, ns, backend string) string {
	t.Helper()
	if backend == "nft" {
		return run(t, ns, "nft", "list", "ruleset")
	}
	// The chains' packet counters count the test's own probes.
	return policyCounters.ReplaceAllString(generated.ReplaceAllString(run(t, ns, backend+"-save"), ""), "[0:0]")
}

// eventually polls cond for up to two minutes (a busy machine may be slow
// to run the watchdog); it asserts nothing about how long it took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("still not the case after two minutes: %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startChild runs Apply in a process of its own and returns it once the
// ruleset is loaded, with the apply's id.
func startChild(t *testing.T, o Options) (*exec.Cmd, string) {
	t.Helper()
	oj, _ := json.Marshal(o)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FWAPPLY_HELPER=apply", "FWAPPLY_OPTIONS="+string(oj))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "loaded ")
	if !ok {
		t.Fatalf("apply child: %q", line)
	}
	return cmd, id
}
