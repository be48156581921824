package inspect

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// bigLive builds in memory the estate BenchmarkRead plants on a server
// (groups of 100 roles, tables in 50 schemas, one in ten granted to a
// role of its own, one in a hundred with a column grant), in Read's
// shape: equal ACLs share one map.
func bigLive(tables, roles int) *policy.Live {
	f := &policy.File{Version: 1, Mode: policy.Authoritative, Roles: policy.Roles{}, Databases: map[string]*policy.Database{}}
	role := func(login bool, member ...string) *policy.Role {
		r := &policy.Role{Login: ptr(login), Superuser: ptr(false), CreateDB: ptr(false), CreateRole: ptr(false), Inherit: ptr(true),
			Replication: ptr(false), BypassRLS: ptr(false), ConnectionLimit: ptr(-1), MemberOf: policy.Memberships{}}
		for _, m := range member {
			r.MemberOf = append(r.MemberOf, policy.Membership{Role: m})
		}
		return r
	}
	f.Roles["postgres"] = role(true)
	groups := roles / 100
	for i := 0; i < groups; i++ {
		f.Roles[fmt.Sprintf("g%d", i)] = role(false)
	}
	users := roles - groups
	for i := 0; i < users; i++ {
		f.Roles[fmt.Sprintf("r%d", i)] = role(true, fmt.Sprintf("g%d", i/100))
	}
	d := &policy.Database{Owner: "postgres", Grants: policy.Grants{"PUBLIC": {"TEMPORARY", "CONNECT"}}, Schemas: map[string]*policy.Schema{}, DefaultPrivileges: policy.DefaultPrivilegesByRole{}}
	f.Databases["big"] = d
	for s := 0; s < 50; s++ {
		d.Schemas[fmt.Sprintf("s%d", s)] = &policy.Schema{Owner: "postgres", Grants: policy.Grants{"g0": {"USAGE"}},
			Tables: policy.Objects{}, Sequences: policy.Objects{}, Functions: policy.Objects{}, DefaultPrivileges: policy.DefaultPrivilegesByRole{}, RLS: map[string]*policy.RLS{}}
	}
	shared := map[string]policy.Grants{}
	share := func(who string, privs ...string) policy.Grants {
		k := fmt.Sprint(who, privs)
		if g, ok := shared[k]; ok {
			return g
		}
		g := policy.Grants{who: privs}
		shared[k] = g
		return g
	}
	colGrant := policy.Grants{"g1": {"UPDATE"}}
	for i := 0; i < tables; i++ {
		o := &policy.Object{Owner: "postgres"}
		if i%10 == 0 {
			o.Grants = share(fmt.Sprintf("r%d", i%users), "SELECT", "UPDATE")
		} else {
			o.Grants = share(fmt.Sprintf("g%d", i%3), "SELECT")
		}
		if i%100 == 0 {
			o.Columns = map[string]policy.Grants{"v": colGrant}
		}
		d.Schemas[fmt.Sprintf("s%d", i%50)].Tables[fmt.Sprintf("t%d", i)] = o
	}
	return &policy.Live{File: f, Major: 15}
}

// BenchmarkMarshal measures the YAML writer alone on the exported
// 140,000-table, 20,000-role estate (PGAEGIS_POLICY_SCALE=TABLES,ROLES
// changes the size); no server. cpu-ms is the process's CPU time per
// round (GC included), steadier than wall time on a shared machine; the
// yaml.v3 sub-benchmark is the writer Marshal replaced.
func BenchmarkMarshal(b *testing.B) {
	tables, roles := 140000, 20000
	if s := os.Getenv("PGAEGIS_POLICY_SCALE"); s != "" {
		if _, err := fmt.Sscanf(s, "%d,%d", &tables, &roles); err != nil || roles < 100 {
			b.Fatalf("PGAEGIS_POLICY_SCALE=%q: want TABLES,ROLES", s)
		}
	}
	t0 := time.Now()
	f := Export(bigLive(tables, roles), ExportOptions{})
	built := time.Since(t0).Round(time.Millisecond)
	for _, m := range []struct {
		name string
		fn   func(*policy.File, []string) ([]byte, error)
	}{{"direct", Marshal}, {"yaml.v3", marshalYAMLv3}} {
		b.Run(m.name, func(b *testing.B) {
			b.Logf("tables=%d roles=%d: estate built and exported in %s", tables, roles, built)
			runtime.GC()
			c0 := cpuTime()
			b.ResetTimer()
			var size int
			for i := 0; i < b.N; i++ {
				data, err := m.fn(f, []string{"bench"})
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-c0).Milliseconds())/float64(b.N), "cpu-ms/op")
			b.SetBytes(int64(size))
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
