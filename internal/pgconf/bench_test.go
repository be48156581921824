package pgconf

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse parses a 20,000-line configuration file.
func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&sb, "custom.setting_%d = 'value with ''quotes'' and \\t escapes %d'   # comment\nwork_mem = %dMB\n", i, i, i%512)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c := Parse("postgresql.conf", data)
		if len(c.Entries) != 40000 {
			b.Fatal(len(c.Entries))
		}
	}
}
