package template

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/policy"
)

func fresh(major int) *policy.Live {
	return &policy.Live{File: &policy.File{Version: 1, Roles: policy.Roles{}, Databases: map[string]*policy.Database{}}, Major: major, Databases: []string{"postgres"}}
}

// legacy is a database where a deployer holds CREATE on public and a
// legacy role owns a table: both create objects there.
func legacy() *policy.Live {
	l := fresh(15)
	l.Databases = append(l.Databases, "appdb")
	l.File.Roles["app"] = &policy.Role{Login: ptr(true), Settings: policy.Settings{"search_path": "app, public"}}
	l.File.Roles["deployer"] = &policy.Role{Login: ptr(true)}
	l.File.Roles["legacy"] = &policy.Role{Login: ptr(true)}
	l.HasPassword = map[string]bool{"app": true}
	l.File.Databases["appdb"] = &policy.Database{Owner: "postgres", Schemas: map[string]*policy.Schema{
		"public": {
			Owner:     "pg_database_owner",
			Grants:    policy.Grants{"PUBLIC": {"USAGE"}, "deployer": {"USAGE", "CREATE"}},
			Tables:    policy.Objects{"orders": {Owner: "legacy"}, "items": {Owner: "app", Grants: policy.Grants{"legacy": {"SELECT"}}}},
			Sequences: policy.Objects{"orders_id_seq": {Owner: "legacy"}},
		},
	}}
	return l
}

func TestInitLayout(t *testing.T) {
	f, notes, err := Init(Options{Database: "appdb", App: "app", ReadOnly: "report"}, fresh(15))
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode != policy.Adopt {
		t.Errorf("mode %q", f.Mode)
	}
	owner := f.Roles["appdb_owner"]
	if owner == nil || *owner.Login {
		t.Fatalf("owner role: %+v", owner)
	}
	app, ro := f.Roles["app"], f.Roles["report"]
	if !*app.Login || *app.ConnectionLimit != DefaultAppConnLimit || !*ro.Login || *ro.ConnectionLimit != DefaultReadOnlyConnLimit {
		t.Errorf("login roles: %+v %+v", app, ro)
	}
	if app.MemberOf != nil || app.Password != "" {
		t.Errorf("app memberships not managed, no password: %+v", app)
	}
	db := f.Databases["appdb"]
	if db.Owner != "appdb_owner" || !reflect.DeepEqual(db.Grants, policy.Grants{"PUBLIC": {}, "app": {"CONNECT"}, "report": {"CONNECT"}}) {
		t.Errorf("database: %+v", db)
	}
	s := db.Schemas["public"]
	if s.Owner != "appdb_owner" || !reflect.DeepEqual(s.Grants, policy.Grants{"PUBLIC": {}, "app": {"USAGE"}, "report": {"USAGE"}}) {
		t.Errorf("schema: %+v", s)
	}
	if got := s.Tables["*"].Grants; !reflect.DeepEqual(got, policy.Grants{"app": {"SELECT", "INSERT", "UPDATE", "DELETE"}, "report": {"SELECT"}}) {
		t.Errorf("tables: %v", got)
	}
	if got := s.Sequences["*"].Grants; !reflect.DeepEqual(got, policy.Grants{"app": {"USAGE", "SELECT"}}) {
		t.Errorf("sequences: %v", got)
	}
	if s.Functions != nil {
		t.Errorf("functions managed without --app-execute: %v", s.Functions)
	}
	if keys := mapKeys(s.DefaultPrivileges); !reflect.DeepEqual(keys, []string{"appdb_owner"}) {
		t.Errorf("default privileges for %v", keys)
	}
	if d := s.DefaultPrivileges["appdb_owner"]; !reflect.DeepEqual(d.Tables, s.Tables["*"].Grants) || !reflect.DeepEqual(d.Sequences, s.Sequences["*"].Grants) {
		t.Errorf("defaults differ from the grants: %+v", d)
	}
	if !hasNote(notes, "role app", `\password app`) || !hasNote(notes, "role report", "--readonly-password-file") {
		t.Errorf("notes: %+v", notes)
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "PUBLIC: []") || strings.Contains(string(out), "member_of") {
		t.Errorf("empty (managed) keys lost in YAML:\n%s", out)
	}
	back, err := policy.Parse("roles.yaml", out)
	if err != nil || !reflect.DeepEqual(back, f) {
		t.Errorf("the file does not load back as itself (%v):\n%s", err, out)
	}
}

func TestInitCreatorsFromLive(t *testing.T) {
	f, notes, err := Init(Options{Database: "appdb", App: "app", ReadOnly: "report", Owner: "app_owner", Migration: "migrator", AppExecute: true, AppAudit: "write,ddl"}, legacy())
	if err != nil {
		t.Fatal(err)
	}
	s := f.Databases["appdb"].Schemas["public"]
	// pg_database_owner (the live schema owner) is predefined: left out.
	if keys := mapKeys(s.DefaultPrivileges); !reflect.DeepEqual(keys, []string{"app", "app_owner", "deployer", "legacy", "migrator"}) {
		t.Errorf("default privileges for %v", keys)
	}
	if d := s.DefaultPrivileges["legacy"]; !reflect.DeepEqual(d.Functions, policy.Grants{"app": {"EXECUTE"}}) {
		t.Errorf("function defaults: %+v", d)
	}
	if !reflect.DeepEqual(s.Functions["*"].Grants, policy.Grants{"app": {"EXECUTE"}}) {
		t.Errorf("functions: %+v", s.Functions)
	}
	if got := f.Roles["app"].Settings; !reflect.DeepEqual(got, policy.Settings{"search_path": "app, public", "pgaudit.log": "write,ddl"}) {
		t.Errorf("app settings: %v", got)
	}
	if hasNote(notes, "role app", "no password") {
		t.Error("a password note for a role that has one")
	}
	if !hasNote(notes, "schema public", "app owns 1 objects") || !hasNote(notes, "pgaudit.log", "shared_preload_libraries") {
		t.Errorf("notes: %+v", notes)
	}
	if f.Databases["appdb"].Grants["migrator"] == nil {
		t.Error("migration role cannot connect")
	}
	// The deployer keeps its schema grants and gets CONNECT; legacy
	// holds a grant on a table, so it is only warned about.
	if g := f.Databases["appdb"].Grants["deployer"]; !slices.Equal(g, []string{"CONNECT"}) {
		t.Errorf("deployer's database grants: %v", g)
	}
	if g := s.Grants["deployer"]; !slices.Equal(g, []string{"USAGE", "CREATE"}) {
		t.Errorf("deployer's schema grants: %v", g)
	}
	if _, named := f.Databases["appdb"].Grants["legacy"]; named || !hasNote(notes, "role legacy", "needs its own") {
		t.Errorf("legacy: %v %+v", f.Databases["appdb"].Grants, notes)
	}
}

func TestInitMigrationMembership(t *testing.T) {
	for _, tc := range []struct {
		major       int
		roleInherit *bool
		m           policy.Membership
	}{
		{15, ptr(false), policy.Membership{Role: "o"}},
		{16, nil, policy.Membership{Role: "o", Inherit: ptr(false), Set: ptr(true)}},
		{17, nil, policy.Membership{Role: "o", Inherit: ptr(false), Set: ptr(true)}},
	} {
		f, _, err := Init(Options{Database: "d", Owner: "o", App: "a", ReadOnly: "r", Migration: "m", Monitoring: "mon"}, fresh(tc.major))
		if err != nil {
			t.Fatal(err)
		}
		m := f.Roles["m"]
		if !reflect.DeepEqual(m.Inherit, tc.roleInherit) || !reflect.DeepEqual(m.MemberOf, policy.Memberships{tc.m}) || *m.ConnectionLimit != DefaultMigrationConnLimit {
			t.Errorf("pg%d migration role: %+v %+v", tc.major, m, m.MemberOf)
		}
		mon := f.Roles["mon"]
		if !reflect.DeepEqual(mon.MemberOf, policy.Memberships{{Role: "pg_monitor"}}) || *mon.ConnectionLimit != DefaultMonitoringConnLimit || !slices.Equal(f.Databases["d"].Grants["mon"], []string{"CONNECT"}) {
			t.Errorf("pg%d monitoring role: %+v", tc.major, mon)
		}
	}
}

func TestInitTenant(t *testing.T) {
	var asked []string
	lookup := func(schema, table, column string) (string, error) {
		asked = append(asked, schema+"|"+table+"|"+column)
		if table == "missing" {
			return "", errors.New("no such table")
		}
		return "integer", nil
	}
	o := Options{Database: "d", App: `ap"p`, ReadOnly: "r", Schemas: []string{"public", `we.ird"s`},
		Tenant: &Tenant{Tables: []string{"orders", `we.ird"s.line items`}, Column: `Tenant "Id"`, ColumnType: lookup}}
	f, _, err := Init(o, fresh(15))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(asked, []string{`public|orders|Tenant "Id"`, `we.ird"s|line items|Tenant "Id"`}) {
		t.Errorf("lookups: %q", asked)
	}
	rls := f.Databases["d"].Schemas[`we.ird"s`].RLS["line items"]
	if rls == nil || !rls.Enabled || !rls.Force {
		t.Fatalf("rls: %+v", rls)
	}
	p := rls.Policies[PolicyName]
	want := `"Tenant ""Id""" = NULLIF(current_setting('app.tenant_id', true), '')::integer`
	if p.Using != want || p.Check != want || !slices.Equal(p.Roles, []string{`ap"p`}) || p.Command != "ALL" {
		t.Errorf("policy: %+v", p)
	}
	if rp := rls.Policies[ReadPolicyName]; rp == nil || rp.Using != want || rp.Check != "" || !slices.Equal(rp.Roles, []string{"r"}) || rp.Command != "SELECT" {
		t.Errorf("read-only policy: %+v", rp)
	}
	if len(rls.Tests) != 2 || rls.Tests[0].As != `ap"p` || rls.Tests[0].Set["app.tenant_id"] != "1" || rls.Tests[0].Sees != `"Tenant ""Id""" = '1'::integer` ||
		rls.Tests[1].As != "r" || rls.Tests[1].Sees != rls.Tests[0].Sees {
		t.Errorf("tests: %+v", rls.Tests)
	}

	o.Tenant.Deparse = func(schema, table, expr string) (string, error) { return "(" + expr + ")", nil }
	o.AppVerifier = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
	f, _, err = Init(o, fresh(15))
	if out, err := yaml.Marshal(f); err != nil {
		t.Fatal(err)
	} else if _, err := policy.Parse("tenant.yaml", out); err != nil {
		t.Errorf("the tenant file does not load: %v\n%s", err, out)
	}
	if err != nil || f.Databases["d"].Schemas["public"].RLS["orders"].Policies[PolicyName].Using != "("+want+")" {
		t.Errorf("deparsed expression not used: %v", err)
	}

	o.Tenant.Tables = []string{"missing"}
	if _, _, err := Init(o, fresh(15)); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("missing table: %v", err)
	}
}

func TestInitRejects(t *testing.T) {
	base := func() Options { return Options{Database: "d", App: "a", ReadOnly: "r"} }
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no database", func(o *Options) { o.Database = "" }, "--database"},
		{"no app", func(o *Options) { o.App = "" }, "--app"},
		{"same role twice", func(o *Options) { o.ReadOnly = "a" }, "same role"},
		{"owner is app", func(o *Options) { o.Owner = "a" }, "same role"},
		{"reserved prefix", func(o *Options) { o.Migration = "pg_mig" }, "reserved"},
		{"public", func(o *Options) { o.ReadOnly = "PUBLIC" }, "reserved"},
		{"too long", func(o *Options) { o.App = strings.Repeat("x", 64) }, "63 bytes"},
		{"nul", func(o *Options) { o.App = "a\x00b" }, "NUL"},
		{"system schema", func(o *Options) { o.Schemas = []string{"pg_catalog"} }, "system schema"},
		{"schema twice", func(o *Options) { o.Schemas = []string{"s", "s"} }, "twice"},
		{"bad limit", func(o *Options) { o.AppConnLimit = -2 }, "connection limit"},
		{"bad audit", func(o *Options) { o.AppAudit = "write,everything" }, `"everything"`},
		{"tenant without column", func(o *Options) { o.Tenant = &Tenant{Tables: []string{"t"}} }, "--tenant-column"},
		{"tenant bad setting", func(o *Options) {
			o.Tenant = &Tenant{Tables: []string{"t"}, Column: "c", Setting: "tenant'); DROP", ColumnType: func(string, string, string) (string, error) { return "int", nil }}
		}, "custom setting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.edit(&o)
			_, _, err := Init(o, fresh(15))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, _, err := Init(base(), nil); err == nil {
		t.Error("nil live accepted")
	}
}

func TestInitAuditAccepts(t *testing.T) {
	for _, v := range []string{"write,ddl", "all,-misc", "READ", "none", "misc_set, role"} {
		o := Options{Database: "d", App: "a", ReadOnly: "r", ReadOnlyAudit: v}
		if _, _, err := Init(o, fresh(15)); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
}

func mapKeys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func hasNote(notes []policy.Note, object, text string) bool {
	for _, n := range notes {
		if n.Object == object && strings.Contains(n.Text, text) {
			return true
		}
	}
	return false
}

// What init finds it keeps: a tenant table's other policies, the
// memberships of the roles it names; and it names every LOGIN role that
// loses CONNECT with PUBLIC's.
func TestInitKeepsLive(t *testing.T) {
	l := fresh(16)
	l.Databases = append(l.Databases, "appdb")
	other := &policy.RowPolicy{Command: "SELECT", Roles: []string{"auditor"}, Using: "true"}
	l.File.Roles["clerk"] = &policy.Role{Login: ptr(true), MemberOf: policy.Memberships{{Role: "devs"}}}
	l.File.Roles["devs"] = &policy.Role{}
	l.File.Roles["mig"] = &policy.Role{Login: ptr(true), MemberOf: policy.Memberships{{Role: "devs"}}}
	for _, r := range []string{"alice", "bob", "carol", "dave", "eve", "root", "nologin"} {
		l.File.Roles[r] = &policy.Role{Login: ptr(r != "nologin")}
	}
	l.File.Roles["root"].Superuser = ptr(true)
	l.File.Roles["connectors"] = &policy.Role{}
	l.File.Roles["bob"].MemberOf = policy.Memberships{{Role: "connectors"}}
	l.File.Roles["eve"].MemberOf = policy.Memberships{{Role: "connectors", Inherit: ptr(false)}}
	l.File.Roles["dave"].MemberOf = policy.Memberships{{Role: "dbowner"}}
	l.File.Roles["dbowner"] = &policy.Role{}
	l.File.Databases["appdb"] = &policy.Database{Owner: "dbowner",
		Grants: policy.Grants{"PUBLIC": {"CONNECT", "TEMPORARY"}, "carol": {"CONNECT"}, "connectors": {"CONNECT"}},
		Schemas: map[string]*policy.Schema{"public": {Owner: "pg_database_owner", Tables: policy.Objects{"orders": {Owner: "root"}},
			RLS: map[string]*policy.RLS{"orders": {Enabled: true, Policies: policy.RowPolicies{"audit_all": other}}}}}}
	o := Options{Database: "appdb", App: "clerk", ReadOnly: "report", Migration: "mig",
		Tenant: &Tenant{Tables: []string{"orders"}, Column: "tenant_id", ColumnType: func(string, string, string) (string, error) { return "integer", nil }}}
	f, notes, err := Init(o, l)
	if err != nil {
		t.Fatal(err)
	}
	rls := f.Databases["appdb"].Schemas["public"].RLS["orders"]
	if !reflect.DeepEqual(rls.Policies["audit_all"], other) || len(rls.Policies) != 3 || !hasNote(notes, "table public.orders", "keeps its existing policies audit_all") {
		t.Errorf("live policy not kept: %+v %+v", rls.Policies, notes)
	}
	if f.Roles["clerk"].MemberOf != nil || !hasNote(notes, "role clerk", "stays a member of devs") {
		t.Errorf("clerk's membership managed: %+v %+v", f.Roles["clerk"].MemberOf, notes)
	}
	if got := f.Roles["mig"].MemberOf; len(got) != 2 || got[0].Role != "appdb_owner" || got[1].Role != "devs" || !hasNote(notes, "role mig", "stays a member of devs") {
		t.Errorf("migration memberships: %+v", got)
	}
	// alice has only PUBLIC's; eve's membership does not inherit; dave
	// inherits the database owner, which the plan replaces. bob and carol
	// keep a CONNECT, root is a superuser, the layout's roles get one.
	if !hasNote(notes, "database appdb", "locks out 3 LOGIN role(s) that connect now: with PUBLIC's CONNECT revoked and the database owned by appdb_owner they have no CONNECT of their own or through a role they inherit from: alice, dave, eve;") {
		t.Errorf("connect losers: %+v", notes)
	}
	if !hasNote(notes, "table public.orders", "its owner root is a superuser or has BYPASSRLS, so row-level security never applies to it") ||
		!hasNote(notes, "table public.orders", "appdb_owner (and a migration role after SET ROLE) matches no policy either and sees no rows") {
		t.Errorf("owner note: %+v", notes)
	}
	for _, n := range notes {
		if strings.Contains(n.Text, "rotate") {
			t.Errorf("a note points to a rotate command: %+v", n)
		}
	}
	// PUBLIC's already revoked: only dave, who loses the owner.
	l.File.Databases["appdb"].Grants["PUBLIC"] = nil
	_, notes, _ = Init(o, l)
	if !hasNote(notes, "database appdb", "locks out 1 LOGIN role(s)") || !hasNote(notes, "database appdb", "inherit from: dave;") {
		t.Errorf("losers without PUBLIC's CONNECT: %+v", notes)
	}
}

func TestInitPasswordNotes(t *testing.T) {
	o := Options{Database: "d", App: "a", ReadOnly: "r", Migration: "m", Monitoring: "mon", MonitoringVerifier: "SCRAM-SHA-256$4096:x"}
	f, notes, err := Init(o, fresh(15))
	if err != nil {
		t.Fatal(err)
	}
	if !hasNote(notes, "role m", "--migration-password-file") || hasNote(notes, "role mon", "no password") || f.Roles["mon"].Password != o.MonitoringVerifier {
		t.Errorf("notes: %+v", notes)
	}
}
