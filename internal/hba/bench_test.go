package hba

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse parses a 10,000-line pg_hba.conf (a large fleet file).
func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "hostssl app_%d,\"Other DB\" +grp_%d,alice 10.%d.%d.0/24 scram-sha-256 clientcert=verify-full # rule %d\n", i, i%50, i%256, i/256, i)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f := Parse("pg_hba.conf", data, Options{SSL: true})
		if len(f.Rules) != 10000 {
			b.Fatal(len(f.Rules), f.Errors[:1])
		}
	}
}
