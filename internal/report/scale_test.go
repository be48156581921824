package report_test

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// TestScalePhases times the audit's phases after collection on a large
// snapshot (PGAEGIS_SCALE_SNAPSHOT=snap.json, written by `pgaegis collect`
// of the bench/access catalog): it prints per-phase CPU-bound times and
// the findings per rule, and asserts nothing about time (the machine may
// be busy). Skipped without the variable: the snapshot is too big to keep
// in the repository.
//
//	PGAEGIS_SCALE_SNAPSHOT=/tmp/snap.json go test -run TestScalePhases -v ./internal/report
func TestScalePhases(t *testing.T) {
	path := os.Getenv("PGAEGIS_SCALE_SNAPSHOT")
	if path == "" {
		t.Skip("set PGAEGIS_SCALE_SNAPSHOT to a large snapshot file")
	}
	snap, err := snapshot.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	// CPU time (user+sys of the process, GC included) as well as wall
	// time: on a shared machine the wall clock says little.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	phase := func(name string, f func()) {
		t0, c0 := time.Now(), cpu()
		f()
		t.Logf("%-20s cpu %7.3f s   wall %7.3f s", name, (cpu() - c0).Seconds(), time.Since(t0).Seconds())
	}
	var findings []rules.Finding
	phase("rules.RunProfile", func() {
		findings, err = rules.RunProfile(snap, "all")
	})
	if err != nil {
		t.Fatal(err)
	}
	var res *fix.Result
	phase("fix.Build", func() { res = fix.Build(snap, findings, fix.Options{Target: snap.Target.Description}) })
	phase("Annotate", func() { res.Annotate(findings) })
	var rep *report.Report
	phase("report.Build", func() { rep = report.Build(snap, findings, rules.Low) })
	phase("WriteJSON", func() { must(t, report.WriteJSON(io.Discard, rep)) })
	phase("WriteText", func() { must(t, report.WriteText(io.Discard, rep, report.TextOptions{})) })
	phase("WriteText --all", func() { must(t, report.WriteText(io.Discard, rep, report.TextOptions{All: true})) })
	phase("WriteSARIF", func() { must(t, report.WriteSARIF(io.Discard, rep, report.SARIFOptions{})) })
	phase("WriteHTML", func() { must(t, report.WriteHTML(io.Discard, rep)) })
	phase("WriteMarkdown", func() { must(t, report.WriteMarkdown(io.Discard, rep)) })
	phase("WriteJUnit", func() { must(t, report.WriteJUnit(io.Discard, rep)) })
	per := map[string]int{}
	objects := 0
	for _, f := range rep.Findings {
		if f.Status == rules.Fail {
			per[f.Rule]++
			objects += max(f.Count, 1)
		}
	}
	t.Logf("%d failing findings covering %d objects; by rule: %v", rep.Summary.Fail, objects, fmt.Sprint(per))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
