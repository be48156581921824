package drift

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/store"
)

func rec(id int64, s *snapshot.Snapshot, fs ...rules.Finding) *store.ScanRecord {
	return &store.ScanRecord{Scan: store.Scan{ID: id, Server: "db1", StartedAt: time.Unix(id*3600, 0).UTC(), Status: store.OK}, Snapshot: s, Findings: fs}
}

func snap(hbaText string, roles []snapshot.Role, settings map[string]snapshot.Setting, cert *snapshot.Certificate, dbACL []acl.Item) *snapshot.Snapshot {
	f := hba.Parse("/data/pg_hba.conf", []byte(hbaText), hba.Options{})
	return &snapshot.Snapshot{HBA: &snapshot.HBA{Source: "file", Rules: f.Rules}, Roles: roles, Settings: settings, ServerCert: cert,
		Databases: []snapshot.Database{{Name: "app", ACL: dbACL}}}
}

func TestCompare(t *testing.T) {
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	a := snap("local all all peer\nhost all all 10.0.0.0/8 scram-sha-256\n",
		[]snapshot.Role{{Name: "app", CanLogin: true, Inherit: true, ConnLimit: -1}, {Name: "old", Inherit: true, ConnLimit: -1}},
		map[string]snapshot.Setting{"ssl": {Name: "ssl", Value: "on", File: "/data/postgresql.conf", Line: 12}, "gone": {Name: "gone", Value: "1"}},
		&snapshot.Certificate{Subject: "CN=db1", NotAfter: exp}, nil)
	b := snap("host all all 127.0.0.1/32 trust\nlocal   all   all   peer\nhost all all 10.0.0.0/8 scram-sha-256\n",
		[]snapshot.Role{{Name: "app", CanLogin: true, Superuser: true, Inherit: true, ConnLimit: -1}, {Name: "new", CanLogin: true, Inherit: true, ConnLimit: -1}},
		map[string]snapshot.Setting{"ssl": {Name: "ssl", Value: "off", Source: "configuration file", File: "/data/postgresql.auto.conf", Line: 3}},
		&snapshot.Certificate{Subject: "CN=db1", NotAfter: exp.AddDate(1, 0, 0)},
		[]acl.Item{{Grantee: "PUBLIC", Grants: []acl.Grant{{Privilege: "CREATE"}}}})
	fail := func(rule, obj string) rules.Finding {
		return rules.Finding{Rule: rule, Object: obj, Status: rules.Fail, Severity: rules.High}
	}
	d := Compare(rec(1, a, fail("TLS-01", "ssl"), fail("LOG-19", "log_connections")),
		rec(2, b, fail("TLS-01", "ssl"), fail("AUTH-01", "hba rule"), rules.Finding{Rule: "LOG-19", Object: "log_connections", Status: rules.Pass}))
	if len(d.New) != 1 || d.New[0].Rule != "AUTH-01" || len(d.Fixed) != 1 || d.Fixed[0].Rule != "LOG-19" {
		t.Errorf("findings: new %+v fixed %+v", d.New, d.Fixed)
	}
	// Re-indenting "local all all peer" is no change; the trust line is.
	if want := []HBALine{{File: "/data/pg_hba.conf", Line: 1, Text: "host all all 127.0.0.1/32 trust"}}; !reflect.DeepEqual(d.HBAAdded, want) || d.HBARemoved != nil {
		t.Errorf("hba: added %+v removed %+v", d.HBAAdded, d.HBARemoved)
	}
	wantSet := []SettingChange{{Name: "gone", Old: "1", OldSet: true},
		{Name: "ssl", Old: "on", New: "off", OldSet: true, NewSet: true, OldSource: "/data/postgresql.conf:12", NewSource: "/data/postgresql.auto.conf:3"}}
	if !reflect.DeepEqual(d.Settings, wantSet) {
		t.Errorf("settings: %+v", d.Settings)
	}
	if !reflect.DeepEqual(d.RoleChanges, []RoleChange{{Role: "app", Attribute: "superuser", Old: "false", New: "true"}}) ||
		len(d.RolesAdded) != 1 || d.RolesAdded[0].Name != "new" || !reflect.DeepEqual(d.RolesAdded[0].Attributes, []string{"login"}) ||
		len(d.RolesRemoved) != 1 || d.RolesRemoved[0].Name != "old" {
		t.Errorf("roles: added %+v removed %+v changes %+v", d.RolesAdded, d.RolesRemoved, d.RoleChanges)
	}
	if !reflect.DeepEqual(d.GrantsAdded, []string{"CREATE ON DATABASE app TO PUBLIC"}) || d.GrantsRemoved != nil {
		t.Errorf("grants: %+v / %+v", d.GrantsAdded, d.GrantsRemoved)
	}
	if len(d.Certificates) != 1 || d.Certificates[0].Field != "not_after" {
		t.Errorf("certificate: %+v", d.Certificates)
	}
	// JSON-stable: two encodings of the same comparison are byte-equal.
	j1, _ := json.Marshal(d)
	j2, _ := json.Marshal(Compare(rec(1, a, fail("TLS-01", "ssl"), fail("LOG-19", "log_connections")),
		rec(2, b, fail("TLS-01", "ssl"), fail("AUTH-01", "hba rule"), rules.Finding{Rule: "LOG-19", Object: "log_connections", Status: rules.Pass})))
	if string(j1) != string(j2) {
		t.Errorf("JSON differs between runs")
	}
}

func TestCompareUnknownParts(t *testing.T) {
	d := Compare(rec(1, nil), rec(2, &snapshot.Snapshot{}))
	if !reflect.DeepEqual(d.Unknown, []string{"snapshot"}) || !d.Empty() {
		t.Errorf("unknown %v, empty %v", d.Unknown, d.Empty())
	}
	d = Compare(rec(1, &snapshot.Snapshot{}), rec(2, &snapshot.Snapshot{}))
	if !reflect.DeepEqual(d.Unknown, []string{"roles", "pg_hba.conf"}) {
		t.Errorf("unknown %v", d.Unknown)
	}
}
