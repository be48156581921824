package acl

import "testing"

// FuzzParseItem: parsing never panics, and what parses prints back to a
// form that parses to the same item.
func FuzzParseItem(f *testing.F) {
	for _, s := range []string{"=Tc/postgres", `"we""ird"=r*w/"x y"`, "alice=arwdDxtm/bob", "=/", `"=r/x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		it, err := ParseItem(s)
		shared, err2 := NewInterner().ParseItem(s)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || it.String() != shared.String() {
			t.Fatalf("%q: plain %v (%v), interned %v (%v)", s, it, err, shared, err2)
		}
		if err != nil {
			return
		}
		again, err := ParseItem(it.String())
		if err != nil {
			t.Fatalf("%q parsed, but its printed form %q does not: %v", s, it.String(), err)
		}
		if again.String() != it.String() {
			t.Fatalf("round trip changed %q: %q -> %q", s, it.String(), again.String())
		}
	})
}

// FuzzParseInput: the literal reader never panics, and what it takes
// prints to a form it takes again. Not always unchanged: it reads a
// doubled quote outside quotes as a quote, as the server's getid is
// written to (not yet checked on a server), so a role named " prints as
// """" and reads back as "" (seed 0093b221b6ddeb69).
func FuzzParseInput(f *testing.F) {
	for _, s := range []string{"=Tc/postgres", ` "we""ird" =r*w/"x y" `, "alice=arwdDxtm/bob", "=r", `a=r/"open`, "ünï=r/x"} {
		f.Add(s, 17)
	}
	f.Fuzz(func(t *testing.T, s string, major int) {
		it, err := ParseInput(s, major)
		if err != nil {
			return
		}
		if it.Grantor == "" {
			it.Grantor = "postgres"
		}
		if _, err := ParseInput(it.String(), major); err != nil {
			t.Fatalf("%q -> %q, which does not parse: %v", s, it.String(), err)
		}
	})
}
