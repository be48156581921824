package guc

import "testing"

// The parameters pgaegis's version rules branch on, with the majors the
// release notes give for them (held here so a regenerated catalogue that
// lost one fails).
func TestLifetimeOfTheRulesParameters(t *testing.T) {
	for _, c := range []struct {
		name         string
		since, until int
	}{
		{"allow_alter_system", 17, Newest},
		{"md5_password_warnings", 18, Newest},
		{"oauth_validator_libraries", 18, Newest},
		{"ssl_tls13_ciphers", 18, Newest},
		{"ssl_groups", 18, Newest},
		{"ssl_ecdh_curve", Oldest, 17}, // renamed ssl_groups in 18
		{"createrole_self_grant", 16, Newest},
		{"event_triggers", 17, Newest},
		{"db_user_namespace", Oldest, 16},
		{"password_encryption", Oldest, Newest},
		{"log_connections", Oldest, Newest},
	} {
		s, u, ok := Lifetime(c.name)
		if !ok || s != c.since || u != c.until {
			t.Errorf("Lifetime(%s) = %d..%d %v, want %d..%d", c.name, s, u, ok, c.since, c.until)
		}
		for m := Oldest; m <= Newest; m++ {
			if Exists(c.name, m) != (m >= c.since && m <= c.until) {
				t.Errorf("Exists(%s, %d) = %v", c.name, m, Exists(c.name, m))
			}
		}
	}
	// log_connections became a list in 18.
	if p, _ := Lookup("log_connections", 17); p.VarType != "bool" {
		t.Errorf("log_connections on 17: %+v", p)
	}
	if p, _ := Lookup("LOG_CONNECTIONS", 18); p.VarType != "string" {
		t.Errorf("log_connections on 18: %+v", p)
	}
}

func TestParseNumberUnits(t *testing.T) {
	wm, _ := Lookup("work_mem", 17)
	at, _ := Lookup("authentication_timeout", 17)
	rpc, _ := Lookup("random_page_cost", 17)
	for _, c := range []struct {
		p    Param
		in   string
		want float64
		ok   bool
	}{
		{wm, "4MB", 4096, true}, {wm, " 64 kB ", 64, true}, {wm, "1GB", 1 << 20, true}, {wm, "0x10", 16, true},
		{wm, "010", 8, true}, {wm, "1.5MB", 1536, true}, {wm, "4 mb", 0, false}, {wm, "4MB x", 0, false},
		{wm, "abc", 0, false}, {at, "1min", 60, true}, {at, "1500ms", 2, true}, {at, "2h", 7200, true},
		{at, "1MB", 0, false}, {rpc, "1.5", 1.5, true}, {rpc, "1.5e1", 15, true}, {rpc, "4.", 4, true}, {rpc, ".5", 0.5, true},
	} {
		got, err := ParseNumber(c.p, c.in)
		if (err == nil) != c.ok || c.ok && got != c.want {
			t.Errorf("ParseNumber(%s, %q) = %v, %v; want %v ok=%v", c.p.Name, c.in, got, err, c.want, c.ok)
		}
	}
}
