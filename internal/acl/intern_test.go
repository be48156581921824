package acl

import (
	"reflect"
	"testing"
)

// The interner gives the same items as a plain parse, shares what
// repeats, and never lets an append through one item reach another.
func TestInternerAgreesAndShares(t *testing.T) {
	in := NewInterner()
	arrays := []string{
		`{alice=arwdDxt/alice,bob=r/alice,=r/alice}`,
		`{bob=r/alice,"\"we\"\"ird\"=r*w/\"x y\"",carol=arwdDxt/alice}`,
		`{"has,comma=r/alice",alice=arwdDxt/alice}`,
		`{}`, ``,
	}
	var all [][]Item
	for _, a := range arrays {
		plain, err1 := ParseArrayText(a)
		shared, err2 := in.ParseArrayText(a)
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(plain, shared) {
			t.Fatalf("%q: plain %v (%v), interned %v (%v)", a, plain, err1, shared, err2)
		}
		if err2 != nil && a != "" && a != "{}" {
			t.Fatalf("%q: %v", a, err2)
		}
		all = append(all, shared)
	}
	for _, bad := range []string{`{alice=rq/bob}`, `{alice=r}`, `{"alice=r/bob}`, `{alice=r/bob x}`, `{=r/}`} {
		_, err1 := ParseArrayText(bad)
		_, err2 := in.ParseArrayText(bad)
		if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
			t.Errorf("%q: plain error %v, interned error %v", bad, err1, err2)
		}
	}
	a, b := all[0][1], all[1][0] // bob=r/alice twice
	if &a.Grants[0] != &b.Grants[0] {
		t.Error("the privilege list of bob=r/alice is not shared")
	}
	if cap(a.Grants) != len(a.Grants) {
		t.Error("a shared privilege list has room to append into")
	}
	a.Grants = append(a.Grants, Grant{Privilege: "INSERT"})
	if len(b.Grants) != 1 || b.Grants[0].Privilege != "SELECT" || len(all[1][0].Grants) != 1 {
		t.Error("an append to one item changed another")
	}
}
