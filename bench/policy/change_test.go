package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// estate is a small export-like file: roles r0..r<n-1> in chains, groups
// g0 and g1, one database whose schema s0 is owned by r0 with a "*" entry,
// a named table and one that falls back to "*".
func estate(n int, groups bool) *policy.File {
	yes := true
	f := &policy.File{Version: 1, Mode: policy.Authoritative, Roles: policy.Roles{"postgres": {Login: &yes}}}
	if groups {
		f.Roles["g0"], f.Roles["g1"] = &policy.Role{}, &policy.Role{}
	}
	for i := 0; i < n; i++ {
		r := &policy.Role{Login: &yes}
		if i > 0 {
			r.MemberOf = policy.Memberships{{Role: fmt.Sprintf("r%d", i-1)}}
		}
		f.Roles[fmt.Sprintf("r%d", i)] = r
	}
	f.Databases = map[string]*policy.Database{"bench0": {Owner: "postgres", Grants: policy.Grants{"r5": {"CONNECT"}},
		Schemas: map[string]*policy.Schema{"s0": {Owner: "r0", Grants: policy.Grants{"r5": {"USAGE"}},
			Tables: policy.Objects{
				"*":     {Owner: "r0", Grants: policy.Grants{"r5": {"SELECT"}, "r3": {"SELECT"}}},
				"t1":    {Grants: policy.Grants{"r5": {"SELECT", "INSERT"}}, Columns: map[string]policy.Grants{"v": {"r5": {"UPDATE"}}}},
				"t2":    {Owner: "r2"},
				"t3":    {Grants: policy.Grants{"r1": {"SELECT"}}},
				"other": {Grants: policy.Grants{}},
			},
			DefaultPrivileges: policy.DefaultPrivilegesByRole{"r0": {Tables: policy.Grants{"r5": {"SELECT"}}}}}}}}
	return f
}

func TestChangeFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       *policy.File
		wantErr string
	}{
		{name: "estate", f: estate(300, true)},
		{name: "no roles", f: &policy.File{Version: 1}, wantErr: "no roles"},
		{name: "too few roles", f: estate(100, true), wantErr: "at least"},
		{name: "no groups", f: estate(300, false), wantErr: "no group roles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.f.Roles)
			s, err := changeFile(tc.f)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// r0 and r2 own objects, r1 is the first that owns nothing;
			// r5 holds the most grants.
			if s.reader != "r1" || s.removed != "r5" {
				t.Fatalf("reader %s, removed %s; want r1, r5", s.reader, s.removed)
			}
			tables := tc.f.Databases["bench0"].Schemas["s0"].Tables
			for _, n := range []string{"*", "t1", "t3", "other"} {
				if !slices.Contains(tables[n].Grants["r1"], "SELECT") {
					t.Errorf("%s: no SELECT for r1: %v", n, tables[n].Grants)
				}
			}
			if tables["t2"].Grants != nil {
				t.Errorf("t2 falls back to *, got grants %v", tables["t2"].Grants)
			}
			if s.readerObjects != 4 || s.readerSchemas != 1 {
				t.Errorf("reader objects %d schemas %d, want 4, 1", s.readerObjects, s.readerSchemas)
			}
			if left := grantCounts(tc.f)["r5"]; left != 0 || s.removedGrants != 6 {
				t.Errorf("r5 still in %d grants, %d removed; want 0, 6", left, s.removedGrants)
			}
			if got := len(tc.f.Roles) - before; got != newRoles || s.added != newRoles {
				t.Errorf("%d roles added, want %d", got, newRoles)
			}
			if s.members != changedMembers {
				t.Errorf("%d memberships changed, want %d", s.members, changedMembers)
			}
			// r7 lost its chain membership for a group.
			if m := tc.f.Roles["r7"].MemberOf; len(m) != 1 || !strings.HasPrefix(m[0].Role, "g") {
				t.Errorf("r7's memberships: %v", m)
			}
		})
	}
}
