package logscan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A log whose log_line_prefix changes part-way (a reload, or the audit's
// own LOG-23 fix) must still yield the attack after the change, and say
// that the prefix changed. Before, 3,000 lines of the old prefix made the
// scan read the 30 failures after it as nothing, with exit 0.
func TestScanFollowsAPrefixChange(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 3000; i++ {
		b.WriteString("2026-12-01 10:00:00.000 UTC [1] LOG:  statement: SELECT 1\n")
	}
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "2026-12-01 10:01:%02d.000 UTC [%d] app@shop 192.0.2.7(4000) psql FATAL:  password authentication failed for user \"app\"\n", i, 2000+i)
	}
	path := filepath.Join(t.TempDir(), "postgresql.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	an, st, err := Scan([]string{path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range an.Events() {
		if e.Kind == "brute-force" && e.Source == "192.0.2.7" && e.Count == 30 {
			found = true
			// The burst starts at its first failure, not where it crossed the threshold.
			if got := e.First.Format("15:04:05"); got != "10:01:00" {
				t.Errorf("brute-force first = %s, want 10:01:00", got)
			}
		}
	}
	if !found {
		t.Errorf("no brute-force event of 30 failures from 192.0.2.7 after the prefix change: %+v", an.Events())
	}
	if !strings.Contains(strings.Join(st.Errors, "\n"), "log_line_prefix changed") {
		t.Errorf("the prefix change is not reported: %v", st.Errors)
	}
}

// logs watch with no --prefix detects it, as scan does: on Debian's
// default prefix a fixed "%m [%p] " missed every per-source event.
func TestWatchDetectsThePrefix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "postgresql-15-main.log")
	line := func(i int) string {
		return fmt.Sprintf("2026-12-01 10:00:%02d.000 UTC [%d] app@shop FATAL:  password authentication failed for user \"app\"\n", i%60, 100+i)
	}
	os.WriteFile(path, []byte("2026-12-01 09:59:59.000 UTC [9] [unknown]@[unknown] LOG:  connection received: host=192.0.2.8 port=5000\n"), 0o600)
	an := NewAnalysis(DefaultThresholds())
	got := make(chan Event, 100)
	an.OnEvent = func(e Event) { got <- e }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { Watch(ctx, path, Options{}, an, 20*time.Millisecond); close(done) }()
	time.Sleep(200 * time.Millisecond)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	for i := 0; i < 30; i++ {
		f.WriteString(line(i))
	}
	f.Close()
	deadline := time.After(time.Minute)
	for {
		select {
		case e := <-got:
			if e.Kind == "brute-force" || e.Kind == "password-spray" {
				cancel()
				<-done
				return
			}
		case <-deadline:
			t.Fatal("watch with no --prefix reported no failed-login event on Debian's log_line_prefix")
		}
	}
}
