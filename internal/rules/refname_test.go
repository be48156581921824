package rules

import "testing"

func TestReferenceName(t *testing.T) {
	for _, c := range []struct {
		ref  Reference
		want string
	}{
		{Reference{srcCIS17, "5.2"}, "CIS PostgreSQL 17 Benchmark v1.0.0 §5.2"},
		{Reference{srcCIS16, "3.1.2"}, "CIS PostgreSQL 16 Benchmark v1.1.0 §3.1.2"},
		{Reference{srcSTIG, "V-233511"}, "DISA STIG V-233511 (Crunchy Data PostgreSQL STIG V3R1)"},
		{Reference{srcSeeds, "002: trust left on"}, "“Percona's guide to PostgreSQL security (Ibrar Ahmed)”: trust left on"},
		{Reference{srcSeeds, "001: no trust"}, "“How to Secure PostgreSQL for Production”: no trust"},
		{Reference{srcDevSec, "postgres-04"}, "dev-sec PostgreSQL baseline, control postgres-04"},
		{Reference{"PostgreSQL docs", "runtime-config-logging"}, "PostgreSQL docs runtime-config-logging"},
	} {
		if got := c.ref.Name(); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.ref, got, c.want)
		}
	}
	// Every reference of every rule has a readable name: no raw seed id.
	for _, r := range All() {
		for _, ref := range r.References {
			if n := ref.Name(); n == "" || (ref.Source == srcSeeds && n == ref.Source+" "+ref.ID) {
				t.Errorf("%s: reference %+v has no proper name", r.ID, ref)
			}
		}
	}
}
