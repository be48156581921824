package inspect

import (
	"runtime"
	"testing"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// BenchmarkParse reads back, through policy.Parse as plan and apply do,
// the 140,000-table estate written with every table named (no "*"): the
// shape of an export of an estate whose grants vary table by table.
func BenchmarkParse(b *testing.B) {
	data, err := Marshal(bigLive(140000, 20000).File, []string{"bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d bytes of YAML", len(data))
	runtime.GC()
	c0 := cpuTime()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := policy.Parse("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-c0).Milliseconds())/float64(b.N), "cpu-ms/op")
}
