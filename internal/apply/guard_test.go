package apply

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// The guard's decisions that need no server: each path against a
// candidate file, with verifiers and ident maps as the server would report.
func TestGuardDecisions(t *testing.T) {
	op := Path{Role: "admin", Database: "postgres", Address: "127.0.0.1"}
	cur := hba.Parse("cur", []byte("host all all 127.0.0.1/32 scram-sha-256\n"), hba.Options{}).Rules
	idents := hba.ParseIdent("ident", []byte("ops root postgres\nops /^(.*)-dba$ \\1\n"), hba.Options{}).Maps
	g := &guard{
		cur: cur, op: op, identMaps: idents,
		verifiers: map[string]verifier{
			"admin": {kind: "scram"}, "old": {kind: "md5"}, "plain": {kind: "plain"}, "gone": {kind: "scram", expired: true}, "none": {kind: "none"},
		},
	}
	g.env.RoleExists = func(string) bool { return true }
	g.env.IsMember = func(role, group string) bool { return role == "admin" && group == "dbas" }
	cases := []struct {
		name    string
		path    Path
		file    string
		sslOff  bool
		noPW    bool
		needTLS bool
		want    string // "" = stays open
	}{
		{"unchanged line", op, "host all all 127.0.0.1/32 scram-sha-256\n", false, false, false, ""},
		{"group line", op, "host all +dbas 127.0.0.1/32 scram-sha-256\n", false, false, false, ""},
		{"group it is not in", Path{Role: "old", Database: "x", Address: "127.0.0.1"}, "host all +dbas 127.0.0.1/32 trust\n", false, false, false, "no line"},
		{"md5 method, md5 verifier", Path{Role: "old", Database: "x", Address: "127.0.0.1"}, "host all all 127.0.0.1/32 md5\n", false, false, false, ""},
		{"scram method, plain password", Path{Role: "plain", Database: "x", Address: "127.0.0.1"}, "host all all 127.0.0.1/32 scram-sha-256\n", false, false, false, ""},
		{"expired password", Path{Role: "gone", Database: "x", Address: "127.0.0.1"}, "host all all 127.0.0.1/32 scram-sha-256\n", false, false, false, "expired"},
		{"no password", Path{Role: "none", Database: "x", Address: "127.0.0.1"}, "host all all 127.0.0.1/32 md5\n", false, false, false, "has none"},
		{"operator without a password", op, "host all all 127.0.0.1/32 md5\n", false, true, false, "pgaegis has none to give"},
		{"cert without a client certificate", Path{Role: "admin", Database: "x", Address: "127.0.0.1", SSL: true}, "hostssl all all 127.0.0.1/32 cert\n", false, false, false, "needs a client certificate"},
		{"cert with one", Path{Role: "admin", Database: "x", Address: "127.0.0.1", SSL: true, ClientCert: true}, "hostssl all all 127.0.0.1/32 cert\n", false, false, false, ""},
		{"hostssl for a plain path", Path{Role: "admin", Database: "x", Address: "127.0.0.1"}, "hostssl all all 127.0.0.1/32 trust\n", false, false, false, "no line"},
		{"ssl turned off under hostssl", Path{Role: "admin", Database: "x", Address: "127.0.0.1", SSL: true}, "hostssl all all 127.0.0.1/32 trust\n", true, false, false, "no line"},
		{"ssl off, operator requires TLS", Path{Role: "admin", Database: "postgres", Address: "127.0.0.1", SSL: true}, "host all all 127.0.0.1/32 trust\n", true, false, true, "TLS required"},
		{"peer, same name", Path{Role: "postgres", Database: "x", Local: true, OSUser: "postgres"}, "local all all peer\n", false, false, false, ""},
		{"peer, other name", Path{Role: "postgres", Database: "x", Local: true, OSUser: "root"}, "local all all peer\n", false, false, false, `OS user "root" is not role "postgres"`},
		{"peer, mapped", Path{Role: "postgres", Database: "x", Local: true, OSUser: "root"}, "local all all peer map=ops\n", false, false, false, ""},
		{"peer, regex map", Path{Role: "jane", Database: "x", Local: true, OSUser: "jane-dba"}, "local all all peer map=ops\n", false, false, false, ""},
		{"peer, map without the user", Path{Role: "jane", Database: "x", Local: true, OSUser: "mallory"}, "local all all peer map=ops\n", false, false, false, "does not map"},
		{"ldap cannot be proven", Path{Role: "admin", Database: "x", Address: "127.0.0.1"}, "host all all 127.0.0.1/32 ldap ldapserver=ldap.example.com ldapprefix=\"cn=\" ldapsuffix=\",dc=example\"\n", false, false, false, "cannot prove"},
		{"replication line", Path{Role: "admin", Database: "replication", Address: "127.0.0.1"}, "host replication all 127.0.0.1/32 scram-sha-256\n", false, false, false, ""},
		{"replication needs its own line", Path{Role: "admin", Database: "replication", Address: "127.0.0.1"}, "host all all 127.0.0.1/32 scram-sha-256\n", false, false, false, "no line"},
		{"samehost undecided", Path{Role: "admin", Database: "x", Address: "10.0.0.9"}, "host all all samehost reject\nhost all all 0.0.0.0/0 trust\n", false, false, false, "cannot prove"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := hba.Parse("new", []byte(c.file), hba.Options{SSL: true})
			if len(f.Errors) > 0 {
				t.Fatalf("test file: %v", f.Errors)
			}
			g.opNoPassword, g.opNeedsTLS = c.noPW, c.needTLS
			gg := *g
			if c.path.Role == "admin" && c.path.Database == "postgres" {
				gg.op = c.path
			}
			got := gg.check(c.path, f.Rules, "7", !c.sslOff)
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
