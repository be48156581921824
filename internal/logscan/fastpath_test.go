package logscan

import "testing"

// TestMayHoldSecret: the fast path lets through every spelling the
// redactor must see, and rejects ordinary statements.
func TestMayHoldSecret(t *testing.T) {
	for s, want := range map[string]bool{
		"ALTER ROLE a PASSWORD 'x'":                       true,
		"alter role a password 'x'":                       true,
		"alter role a PassWord 'x'":                       true,
		"alter role a pAsSwOrD 'x'":                       true,
		"CREATE SERVER s OPTIONS (sslpassword 'x')":       true,
		"SELECT dblink_connect('postgresql://u:p@h/db')":  true,
		"ALTER SYSTEM SET primary_conninfo = 'host=h'":    false, // no password in it
		"CREATE SERVER s OPTIONS (client_secret 'x')":     true,
		"CREATE SERVER s OPTIONS (CLIENT_SECRET 'x')":     true,
		"ALTER ROLE a PASSWORD U&'\\0041'":                true,
		"EXECUTE U&'\\0050ASSWORD'":                       true,
		"SELECT now(), w FROM t WHERE x & 1 = 0 AND y:=1": false,
		"SELECT 1": false,
		"pw":       false,
	} {
		if got := mayHoldSecret([]byte(s)); got != want {
			t.Errorf("mayHoldSecret(%q) = %v, want %v", s, got, want)
		}
	}
}
