package rules

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// fixture builds a live-looking snapshot from pg_hba.conf text and a few
// roles; settings are PostgreSQL 15 defaults unless overridden.
func fixture(hbaText string, settings map[string]string) *snapshot.Snapshot {
	s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, CollectedAt: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		Server: &snapshot.Server{Version: "15.18", VersionNum: 150018, CurrentUser: "postgres", Superuser: true}}
	base := map[string]string{"ssl": "on", "listen_addresses": "localhost", "password_encryption": "scram-sha-256"}
	for k, v := range settings {
		base[k] = v
	}
	for k, v := range base {
		s.SetSetting(snapshot.Setting{Name: k, Value: v, Origin: snapshot.FromServer, Source: "configuration file", File: "/etc/pg/postgresql.conf", Line: 7})
	}
	f := hba.Parse("/etc/pg/pg_hba.conf", []byte(hbaText), hba.Options{SSL: true})
	s.HBA = &snapshot.HBA{Source: "file", Path: f.Path, Rules: f.Rules, Errors: f.Errors}
	s.Roles = []snapshot.Role{
		{OID: 10, Name: "postgres", Superuser: true, CanLogin: true, Password: snapshot.PasswordSCRAM},
		{OID: 20000, Name: "app", CanLogin: true, Password: snapshot.PasswordMD5},
		{OID: 20001, Name: "ops", Superuser: true, CanLogin: true},
		{OID: 20002, Name: "admins"},
	}
	s.Memberships = []snapshot.Membership{{Role: "ops", Member: "admins", Inherit: true, Set: true}, {Role: "admins", Member: "app", Inherit: true, Set: true}}
	return s
}

func failures(fs []Finding, rule string) []string {
	var out []string
	for _, f := range fs {
		if f.Rule == rule && f.Status == Fail {
			out = append(out, fmt.Sprintf("%s %s", f.Severity, f.Location))
		}
	}
	sort.Strings(out)
	return out
}

func TestHBARules(t *testing.T) {
	const p = "/etc/pg/pg_hba.conf"
	cases := []struct {
		name, hba, rule string
		want            []string
	}{
		{"host trust", "host all all 10.0.0.0/8 trust\n", "AUTH-01", []string{"critical " + p + ":1"}},
		{"hostssl trust", "local all all peer\nhostssl all all 10.0.0.0/8 trust\n", "AUTH-01", []string{"critical " + p + ":2"}},
		{"local trust is AUTH-04", "local all all trust\n", "AUTH-01", nil},
		{"local trust all users", "local all all trust\n", "AUTH-04", []string{"high " + p + ":1"}},
		{"local trust one user", "local all postgres trust\n", "AUTH-04", []string{"medium " + p + ":1"}},
		{"md5 and password", "hostssl all all 10.0.0.0/8 md5\nhost all all 10.0.0.0/8 password\n", "AUTH-02", []string{"critical " + p + ":2", "high " + p + ":1"}},
		{"ident tcp", "hostssl all all 10.0.0.0/8 ident\nlocal all all ident\n", "AUTH-03", []string{"high " + p + ":1"}},
		{"plain host", "host all all 10.0.0.0/8 scram-sha-256\nhostnossl all all 10.0.0.0/8 reject\nhost all all 127.0.0.1/32 scram-sha-256\n", "AUTH-05", []string{"high " + p + ":1", "low " + p + ":3"}},
		{"wide", "hostssl all all 0.0.0.0/0 scram-sha-256\nhostssl all all 10.0.0.0/8 scram-sha-256\nhostssl all all 10.1.2.0/24 scram-sha-256\nhostssl all all all cert\nhostssl all all 0.0.0.0/0 reject\n", "AUTH-06",
			[]string{"high " + p + ":1", "high " + p + ":4", "medium " + p + ":2"}},
		{"final reject missing v6", "hostssl all all 10.0.0.0/8 scram-sha-256\nhost all all 0.0.0.0/0 reject\n", "AUTH-07.final-reject", []string{"medium " + p}},
		{"final reject ok", "hostssl all all 10.0.0.0/8 scram-sha-256\nhost all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n", "AUTH-07.final-reject", nil},
		{"final reject via all", "hostssl all all 10.0.0.0/8 scram-sha-256\nhost all all all reject\nlocal all all peer\n", "AUTH-07.final-reject", nil},
		{"superuser over network", "hostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all 10.0.0.0/8 scram-sha-256\n", "AUTH-08", []string{"high " + p + ":2", "high " + p + ":2"}},
		{"superuser rejected first", "host all postgres,ops 0.0.0.0/0 reject\nhostssl all all 10.0.0.0/8 scram-sha-256\n", "AUTH-08", nil},
		{"superuser via group rule", "hostssl all +ops 10.0.0.0/8 scram-sha-256\n", "AUTH-08", []string{"high " + p + ":1"}},
		{"group rule without superusers", "hostssl all +admins 10.0.0.0/8 scram-sha-256\n", "AUTH-08", nil},
		{"quoted all is a role", "hostssl all \"all\" 10.0.0.0/8 scram-sha-256\n", "AUTH-08", nil},
		{"replication wide", "hostssl replication all 0.0.0.0/0 scram-sha-256\nhostssl replication replicator 10.0.0.5/32 scram-sha-256\nlocal replication all peer\n", "REPL-04", []string{"high " + p + ":1"}},
		{"replication loopback", "host replication all 127.0.0.1/32 scram-sha-256\n", "REPL-04", []string{"medium " + p + ":1"}},
		{"parse errors", "host all all 10.0.0.0/33 trust\nhost all\n", "AUTH-18", []string{"medium " + p + ":1", "medium " + p + ":2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := failures(Run(fixture(c.hba, nil)), c.rule)
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("%s on %q:\n got  %v\n want %v", c.rule, c.hba, got, c.want)
			}
		})
	}
}

func TestRoleRules(t *testing.T) {
	fs := Run(fixture("local all all peer\n", nil))
	if got := failures(fs, "PRIV-02"); len(got) != 1 {
		t.Errorf("PRIV-02: %v, want app → admins → ops", got)
	}
	for _, f := range fs {
		if f.Rule == "PRIV-02" && f.Status == Fail && !strings.Contains(f.Evidence, "app → admins → ops") {
			t.Errorf("PRIV-02 evidence %q lacks the path", f.Evidence)
		}
		if f.Rule == "PRIV-02" && f.Status == Fail && f.Fix != "REVOKE admins FROM app;" {
			t.Errorf("PRIV-02 fix %q", f.Fix)
		}
	}
	if got := failures(fs, "PRIV-01"); strings.Join(got, "|") != "high " {
		t.Errorf("PRIV-01: %v (ops is the extra superuser)", got)
	}
	if got := failures(fs, "AUTH-11.verifiers"); len(got) != 1 {
		t.Errorf("AUTH-11.verifiers: %v (app has md5)", got)
	}
}

func TestUnknownInputsAreNotChecked(t *testing.T) {
	s := fixture("local all all peer\n", nil)
	s.HBA = nil
	s.AddGap(snapshot.GapHBA, "pg_hba_file_rules is readable only by superusers")
	s.AddGap(snapshot.GapPasswords, "pg_authid is readable only by superusers")
	s.Databases = []snapshot.Database{{Name: "app", AllowConn: true, Gap: "no CONNECT"}}
	for _, f := range Run(s) {
		switch f.Rule {
		case "AUTH-01", "AUTH-02", "AUTH-05", "AUTH-08", "AUTH-11.verifiers", "PRIV-09":
			if f.Status != NotChecked || f.Reason == "" {
				t.Errorf("%s: %s (%q), want not_checked with a reason", f.Rule, f.Status, f.Reason)
			}
		}
	}
}

func TestPublicCreateOnSchema(t *testing.T) {
	s := fixture("local all all peer\n", nil)
	pub, _ := acl.ParseItem("=UC/postgres")
	s.Databases = []snapshot.Database{{Name: "shop", AllowConn: true, Collected: true,
		Schemas: []snapshot.Schema{{Name: "public", Owner: "postgres", ACL: []acl.Item{pub}}, {Name: "app", Owner: "postgres"}}}}
	fs := Run(s)
	got := failures(fs, "PRIV-09")
	if len(got) != 1 {
		t.Fatalf("PRIV-09: %v", got)
	}
}

func TestWeakCiphers(t *testing.T) {
	cases := map[string]string{
		"HIGH:MEDIUM:+3DES:!aNULL":      "MEDIUM",
		"HIGH:!aNULL:!MD5":              "",
		"ALL:!ADH":                      "ALL",
		"ECDHE+AESGCM:RC4-SHA":          "",
		"ECDHE+AESGCM:RC4":              "RC4",
		"DEFAULT":                       "DEFAULT",
		"HIGH:+3DES":                    "",
		"HIGH:-MEDIUM:!LOW:!EXP:!eNULL": "",
	}
	for spec, want := range cases {
		if got := strings.Join(weakCipherTokens(spec), ","); got != want {
			t.Errorf("weakCipherTokens(%q) = %q, want %q", spec, got, want)
		}
	}
}

func TestEndOfLife(t *testing.T) {
	defer func() { Now = time.Now }()
	s := fixture("local all all peer\n", nil)
	s.Server.VersionNum = 140012
	Now = func() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }
	if len(failures(Run(s), "INST-06")) != 1 {
		t.Error("PostgreSQL 14 is end of life on 2026-11-22")
	}
	Now = func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }
	if len(failures(Run(s), "INST-06")) != 0 {
		t.Error("PostgreSQL 14 is still supported on 2026-11-01")
	}
}

// REPL-05 sees the masked value the snapshot keeps: a password written as
// a URI's userinfo must fail as password= does (it passed before).
func TestPrimaryConninfoPassword(t *testing.T) {
	for _, c := range []struct {
		value string
		fail  bool
	}{
		{"host=primary user=replicator password=xxxxx", true},
		{"host=primary user=replicator sslpassword='xxxxx'", true},
		{"postgresql://replicator:xxxxx@primary:5432/postgres", true},
		{"postgres://replicator@primary/postgres?password=xxxxx", true},
		{"host=primary user=replicator passfile=/var/lib/postgresql/.pgpass sslmode=verify-full", false},
		{"postgresql://replicator@primary/postgres?sslmode=verify-full", false},
	} {
		s := fixture("local all all peer\n", map[string]string{"primary_conninfo": c.value})
		got := len(failures(Run(s), "REPL-05")) > 0
		if got != c.fail {
			t.Errorf("primary_conninfo %q: REPL-05 failed=%v, want %v", c.value, got, c.fail)
		}
	}
}

// A dead line's fix moves it above a line that really takes its
// connections, not above one that is itself dead.
func TestShadowFixSkipsDeadCoverers(t *testing.T) {
	const hba = "hostssl all all 0.0.0.0/0 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\nhost all all 10.0.0.0/8 scram-sha-256\nhost all all ::ffff:10.0.0.0/104 scram-sha-256\n"
	fixes := map[string]string{}
	for _, f := range Run(fixture(hba, nil)) {
		if f.Rule == "AUTH-18.shadowed" && f.Status == Fail {
			fixes[f.Location] = f.Fix
		}
	}
	for line, want := range map[string]string{"/etc/pg/pg_hba.conf:3": ":3 above /etc/pg/pg_hba.conf:1,", "/etc/pg/pg_hba.conf:4": ":4 above /etc/pg/pg_hba.conf:1,"} {
		if !strings.Contains(fixes[line], want) {
			t.Errorf("%s: fix %q, want it to contain %q (all fixes: %v)", line, fixes[line], want, fixes)
		}
	}
}
