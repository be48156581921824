// Command pgaegis audits and hardens PostgreSQL servers.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/pgaegis/pgaegis/internal/cli"
)

func main() {
	stop := profile()
	code := cli.Main(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// profile starts a CPU profile when PGAEGIS_CPUPROFILE names a file and
// arranges a heap profile (allocations since start) when
// PGAEGIS_MEMPROFILE does: for bench/audit and for profiling a run as a
// user makes it, with no flag in the user interface.
func profile() (stop func()) {
	var stops []func()
	if p := os.Getenv("PGAEGIS_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgaegis: PGAEGIS_CPUPROFILE:", err)
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if p := os.Getenv("PGAEGIS_MEMPROFILE"); p != "" {
		stops = append(stops, func() {
			f, err := os.Create(p)
			if err == nil {
				runtime.GC()
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "pgaegis: PGAEGIS_MEMPROFILE:", err)
			}
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
