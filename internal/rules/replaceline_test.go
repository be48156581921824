package rules

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// TestReplaceLineReplacesTheMethodField: a role or database named like a
// method must not be what the fix rewrites (the first " md5" used to be
// replaced, turning the user field into the new method and widening the
// line to every user named scram-sha-256... or breaking it).
func TestReplaceLineReplacesTheMethodField(t *testing.T) {
	for _, tc := range []struct{ text, typ, method, want string }{
		{"host all md5 10.0.0.0/8 md5", "hostssl", "scram-sha-256", "hostssl all md5 10.0.0.0/8 scram-sha-256"},
		{"host md5 all 10.0.0.0/8 md5", "hostssl", "scram-sha-256", "hostssl md5 all 10.0.0.0/8 scram-sha-256"},
		{"local trust trust trust", "local", "peer", "local trust trust peer"},
		// map belongs to ident: the server refuses it on a scram-sha-256 line.
		{"host all ident 10.0.0.0 255.0.0.0 ident map=x", "hostssl", "scram-sha-256", "hostssl all ident 10.0.0.0 255.0.0.0 scram-sha-256"},
		{"host all all 10.0.0.0/8 md5 clientcert=verify-ca", "hostssl", "scram-sha-256", "hostssl all all 10.0.0.0/8 scram-sha-256 clientcert=verify-ca"},
		{"local all all ident map=m", "local", "peer", "local all all peer map=m"},
	} {
		fields := strings.Fields(tc.text)
		r := &hba.Rule{Text: tc.text, Type: fields[0], Method: fields[len(fields)-1], File: "pg_hba.conf", Line: 1}
		if strings.Contains(fields[len(fields)-1], "=") {
			r.Method = fields[len(fields)-2]
		}
		got := replaceLine(r, tc.typ, tc.method).Fix
		if line, _, _ := strings.Cut(got, "    #"); line != tc.want {
			t.Errorf("replaceLine(%q) = %q, want %q", tc.text, line, tc.want)
		}
	}
}
