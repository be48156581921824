package hba

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func noIncludes(string) ([]byte, error) { return nil, errors.New("no includes while fuzzing") }

// FuzzParse: any input gives rules or errors that name a line of the input,
// never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n",
		"hostssl \"my db\",app +admins 10.0.0.0 255.0.0.0 cert map=m clientcert=verify-full\n",
		"host all all ::ffff:1.2.3.4/128 ldap ldapurl=\"ldap://h/dc=x?uid?sub\"\n",
		"host all all 0x7f.1/32 radius radiusservers=\"a,b\" radiussecrets=s\n",
		"local \\\n all all trust # c\\\n",
		"host @x all all reject\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		file := Parse("pg_hba.conf", []byte(s), Options{ReadFile: noIncludes})
		lines := strings.Count(s, "\n") + 1
		for _, e := range file.Errors {
			if e.Line < 1 || e.Line > lines || e.File != "pg_hba.conf" || e.Msg == "" {
				t.Fatalf("bad error %+v for %q", e, s)
			}
		}
		for _, r := range file.Rules {
			if r.Line < 1 || r.Line > lines || r.Method == "" || r.Type == "" {
				t.Fatalf("bad rule %+v for %q", r, s)
			}
			if r.AddrKind == AddrCIDR && !r.Addr.IsValid() {
				t.Fatalf("cidr rule without address: %+v", r)
			}
		}
		ParseIdent("pg_ident.conf", []byte(s), Options{ReadFile: noIncludes})
	})
}

// FuzzMatch: any file, any connection: Match decides without panicking,
// and a match is always a rule of the file.
func FuzzMatch(f *testing.F) {
	f.Add("host all all 10.0.0.0/8 md5\nlocal all +g peer\n", "alice", "db", "10.1.2.3", true)
	f.Add("hostssl sameuser,samerole /^a.*$ ::ffff:10.0.0.0/104 scram-sha-256\n", "a", "a", "::ffff:10.0.0.1", false)
	f.Fuzz(func(t *testing.T, text, user, db, addr string, ssl bool) {
		file := Parse("pg_hba.conf", []byte(text), Options{ReadFile: noIncludes})
		c := Conn{User: user, Database: db, SSL: ssl}
		if a, err := netip.ParseAddr(addr); err == nil {
			c.Addr = a
		} else {
			c.Local = true
		}
		for _, env := range []Env{{}, {IsMember: func(r, g string) bool { return r == g }, RoleExists: func(string) bool { return true }, Version: 15}} {
			res := Match(file.Rules, c, env)
			if res.Matched && (res.Rule == nil || res.Rule.Line < 1) {
				t.Fatalf("matched without a rule: %+v", res)
			}
		}
	})
}
