package privileges

import (
	"testing"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// PostgreSQL 16 moved INHERIT and SET to each grant: a small fixed case
// here; TestAgreesWithHasPrivilege checks generated graphs on 16-18.
func TestVersion16GrantOptions(t *testing.T) {
	s := &snapshot.Snapshot{Server: &snapshot.Server{VersionNum: 160002},
		Roles: []snapshot.Role{{Name: "alice", Inherit: true, CanLogin: true}, {Name: "readers"}, {Name: "admins"}, {Name: "owner"}},
		Memberships: []snapshot.Membership{
			{Role: "readers", Member: "alice", Inherit: true, Set: false}, // privileges, no SET ROLE
			{Role: "admins", Member: "alice", Inherit: false, Set: true},  // SET ROLE only
		}}
	m := Build(s)
	alice, _ := m.RoleIndex("alice")
	readers, _ := m.RoleIndex("readers")
	admins, _ := m.RoleIndex("admins")
	if !m.HasPrivsOfRole(alice, readers) || m.CanSetRole(alice, readers) {
		t.Error("readers: inherit yes, set no")
	}
	if m.HasPrivsOfRole(alice, admins) || !m.CanSetRole(alice, admins) || !m.IsMemberOfRole(alice, admins) {
		t.Error("admins: inherit no, set yes, member yes")
	}
	item, _ := acl.ParseItem("admins=r/owner")
	a := m.Compile(Table, "owner", []acl.Item{item}, false)
	if m.Check(alice, Table, a, Select, false).Allowed {
		t.Error("no inherited SELECT through a NOINHERIT grant")
	}
}

func TestBefore16NoInheritStopsTheChain(t *testing.T) {
	s := &snapshot.Snapshot{Server: &snapshot.Server{VersionNum: 150018},
		Roles:       []snapshot.Role{{Name: "u", Inherit: true}, {Name: "mid", Inherit: false}, {Name: "top", Inherit: true}},
		Memberships: []snapshot.Membership{{Role: "mid", Member: "u", Inherit: true, Set: true}, {Role: "top", Member: "mid", Inherit: false, Set: true}}}
	m := Build(s)
	u, _ := m.RoleIndex("u")
	mid, _ := m.RoleIndex("mid")
	top, _ := m.RoleIndex("top")
	if !m.HasPrivsOfRole(u, mid) || m.HasPrivsOfRole(u, top) || !m.IsMemberOfRole(u, top) {
		t.Error("u inherits mid, not top (mid is NOINHERIT), yet is a member of both")
	}
	if p := m.PrivPath(u, mid); len(p) != 2 {
		t.Errorf("path %v", p)
	}
}
