package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/plan"
)

func bp(b bool) *bool { return &b }
func ip(i int) *int   { return &i }

// baseLive is a small server: owner, app, an extra role, one database
// with one schema holding two tables, a sequence and a function.
func baseLive() *Live {
	return &Live{
		Major: 16, CurrentUser: "postgres", Superuser: true, Bootstrap: "postgres",
		HasPassword: map[string]bool{},
		Databases:   []string{"postgres", "appdb"},
		File: &File{Version: 1, Roles: Roles{
			"postgres":  {Superuser: bp(true), Login: bp(true), CreateDB: bp(true), CreateRole: bp(true), Replication: bp(true), BypassRLS: bp(true)},
			"app_owner": {},
			"app":       {Login: bp(true)},
			"stray":     {},
		}, Databases: map[string]*Database{
			"appdb": {Owner: "app_owner", Grants: Grants{Public: {"CONNECT", "TEMPORARY"}}, Schemas: map[string]*Schema{
				"public": {Owner: "app_owner", Grants: Grants{Public: {"USAGE"}},
					Tables: Objects{
						"a": {Owner: "app_owner", Grants: Grants{}},
						"b": {Owner: "app_owner", Grants: Grants{"stray": {"SELECT"}}},
					},
					Sequences: Objects{"a_id_seq": {Owner: "app_owner", Grants: Grants{}}},
					Functions: Objects{"f(integer)": {Owner: "app_owner", Grants: Grants{Public: {"EXECUTE"}}}},
				},
			}},
		}},
	}
}

func run(t *testing.T, f *File, l *Live, o Options) (*plan.Plan, []Note, string) {
	t.Helper()
	p, notes, err := Diff(f, l, o)
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	var b strings.Builder
	for _, s := range p.Steps {
		b.WriteString("-- step " + s.Summary + " @" + s.Database + "\n")
		for _, q := range s.SQL {
			b.WriteString(q + "\n")
		}
	}
	return p, notes, b.String()
}

func TestDiffRules(t *testing.T) {
	cases := []struct {
		name    string
		file    func() *File
		live    func(*Live)
		opts    Options
		want    []string // statements that must appear, in this order
		notWant []string
		notes   []string
	}{
		{
			name: "batched grants and ON ALL TABLES",
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"*": {Grants: Grants{"app": {"SELECT", "INSERT"}}}},
				}}}}}
			},
			want:    []string{`GRANT INSERT, SELECT ON ALL TABLES IN SCHEMA public TO app`},
			notWant: []string{"stray"},
		},
		{
			name: "authoritative revokes unnamed grantees, grants before revokes",
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"*": {Grants: Grants{"app": {"SELECT"}}}, "b": {Grants: Grants{"app": {"SELECT"}, "stray": {}}}},
				}}}}}
			},
			want: []string{`GRANT SELECT ON ALL TABLES IN SCHEMA public TO app`, `REVOKE SELECT ON TABLE public.b FROM stray`},
		},
		{
			name: "adopt leaves unnamed grantees",
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"*": {Grants: Grants{"app": {"SELECT"}}}},
				}}}}}
			},
			notWant: []string{"REVOKE"},
		},
		{
			name: "adopt PUBLIC: [] revokes PUBLIC",
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Databases: map[string]*Database{"appdb": {Grants: Grants{Public: {}, "app": {"CONNECT"}}}}}
			},
			want: []string{`GRANT CONNECT ON DATABASE appdb TO app`, `REVOKE TEMPORARY, CONNECT ON DATABASE appdb FROM PUBLIC`},
		},
		{
			name: "additive never revokes",
			file: func() *File {
				return &File{Version: 1, Mode: Additive, Databases: map[string]*Database{"appdb": {Grants: Grants{Public: {}}, Schemas: map[string]*Schema{"public": {
					Functions: Objects{"*": {Grants: Grants{}}},
				}}}}}
			},
			notWant: []string{"REVOKE"},
		},
		{
			name: "function revoke and grant option",
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Functions: Objects{"f(integer)": {Grants: Grants{"app": {"EXECUTE WITH GRANT OPTION"}}}},
				}}}}}
			},
			want: []string{`GRANT EXECUTE ON ROUTINE public.f(integer) TO app WITH GRANT OPTION`, `REVOKE EXECUTE ON ROUTINE public.f(integer) FROM PUBLIC`},
		},
		{
			name: "ownership",
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Owner: "app", Schemas: map[string]*Schema{"public": {
					Owner: "app", Sequences: Objects{"*": {Owner: "app"}},
				}}}}}
			},
			want: []string{`ALTER DATABASE appdb OWNER TO app`, `ALTER SCHEMA public OWNER TO app`, `ALTER SEQUENCE public.a_id_seq OWNER TO app`},
		},
		{
			name: "create role with options, membership with 16 options, settings",
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Roles: Roles{
					"new": {Login: bp(true), ConnectionLimit: ip(5), Password: "none",
						MemberOf: Memberships{{Role: "app", Inherit: bp(false), Admin: bp(true)}}, Settings: Settings{"pgaudit.log": "write, ddl", "search_path": "a, b"}},
				}}
			},
			want: []string{`CREATE ROLE new WITH LOGIN CONNECTION LIMIT 5`, `GRANT app TO new WITH ADMIN TRUE, INHERIT FALSE`,
				`ALTER ROLE new SET pgaudit.log = 'write, ddl'`, `ALTER ROLE new SET search_path = 'a', 'b'`},
			notWant: []string{"PASSWORD"},
		},
		{
			name: "membership option change without revoke",
			live: func(l *Live) { l.File.Roles["app"].MemberOf = Memberships{{Role: "app_owner"}} },
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Roles: Roles{"app": {Login: bp(true), MemberOf: Memberships{{Role: "app_owner", Set: bp(false), Admin: bp(true)}}}}}
			},
			want:    []string{`GRANT app_owner TO app WITH ADMIN TRUE`, `REVOKE SET OPTION FOR app_owner FROM app`},
			notWant: []string{"REVOKE app_owner FROM app"},
		},
		{
			name: "pre-16 membership only ADMIN",
			live: func(l *Live) { l.Major = 15 },
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Roles: Roles{"app": {Login: bp(true), MemberOf: Memberships{{Role: "app_owner", Set: bp(true), Inherit: bp(true), Admin: bp(true)}}}}}
			},
			want: []string{`GRANT app_owner TO app WITH ADMIN OPTION`},
		},
		{
			name: "attributes raised and lowered, verifier masked",
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Roles: Roles{"app": {CreateDB: bp(true), Password: "SCRAM-SHA-256$4096:abc$def:ghi"}}}
			},
			want: []string{`ALTER ROLE app WITH CREATEDB`, `ALTER ROLE app PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi'`, `ALTER ROLE app WITH NOLOGIN`},
		},
		{
			name: "authoritative drops unnamed role holding privileges: guarded DROP OWNED",
			live: func(l *Live) {
				l.Dependents = map[string]map[string]Dependents{"stray": {"appdb": {Privileges: 1}, "": {Privileges: 1}}}
				l.Sessions = map[string]int{"stray": 2}
			},
			file: func() *File {
				return &File{Version: 1, Roles: Roles{"postgres": {Superuser: bp(true), Login: bp(true), CreateDB: bp(true), CreateRole: bp(true), Replication: bp(true), BypassRLS: bp(true)}, "app_owner": {}, "app": {Login: bp(true)}}}
			},
			want:    []string{"-- step database appdb: revoke (DROP OWNED)", "RAISE EXCEPTION", "''stray''", "DROP OWNED BY stray\n", "DROP ROLE stray"},
			notWant: []string{"REASSIGN"},
			notes:   []string{"live session"},
		},
		{
			name: "authoritative holds an unnamed role that owns, naming only what it owns",
			live: func(l *Live) {
				l.Dependents = map[string]map[string]Dependents{"stray": {"appdb": {Owned: 2, Privileges: 1}}}
			},
			file: func() *File {
				return &File{Version: 1, Roles: Roles{"postgres": {Superuser: bp(true), Login: bp(true), CreateDB: bp(true), CreateRole: bp(true), Replication: bp(true), BypassRLS: bp(true)}, "app_owner": {}, "app": {Login: bp(true)}}}
			},
			notWant: []string{"DROP ROLE", "DROP OWNED"},
			notes:   []string{"appdb: owns 2 object(s); give --reassign-owned-to"},
		},
		{
			name: "drop with reassign and drop owned",
			live: func(l *Live) {
				l.Dependents = map[string]map[string]Dependents{"stray": {"appdb": {Owned: 1, Privileges: 1}}}
			},
			opts: Options{ReassignOwnedTo: "app_owner", DropOwned: true},
			file: func() *File {
				return &File{Version: 1, Roles: Roles{"postgres": {Superuser: bp(true), Login: bp(true), CreateDB: bp(true), CreateRole: bp(true), Replication: bp(true), BypassRLS: bp(true)}, "app_owner": {}, "app": {Login: bp(true)}}}
			},
			want: []string{"REASSIGN OWNED BY stray TO app_owner", "DROP OWNED BY stray", "DROP ROLE stray"},
		},
		{
			name: "guards: executing role never demoted or dropped",
			live: func(l *Live) { l.CurrentUser = "app"; l.File.Roles["app"].CreateRole = bp(true) },
			file: func() *File {
				return &File{Version: 1, Roles: Roles{"app_owner": {}}}
			},
			notWant: []string{"DROP ROLE app\n", "NOCREATEROLE", "DROP ROLE postgres"},
			notes:   []string{"pgaegis runs as this role"},
		},
		{
			name: "16+: a CREATEROLE role's automatic ADMIN-only membership is kept without a hold",
			live: func(l *Live) {
				l.CurrentUser, l.Superuser = "app", false
				l.File.Roles["app"].CreateRole = bp(true)
				l.File.Roles["app"].MemberOf = Memberships{{Role: "app_owner", Admin: bp(true), Inherit: bp(false), Set: bp(false)}}
			},
			file: func() *File {
				f := &File{Version: 1, Mode: Adopt, Roles: Roles{"app": {Login: bp(true), CreateRole: bp(true), MemberOf: Memberships{}}}}
				return f
			},
			notWant: []string{"REVOKE app_owner FROM app"},
			notes:   []string{"info role app: membership in app_owner (ADMIN only"},
		},
		{
			name: "database created with owner",
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"newdb": {Owner: "app_owner", Grants: Grants{Public: {}, "app": {"CONNECT"}}}}}
			},
			want: []string{`CREATE DATABASE newdb OWNER app_owner`, `GRANT CONNECT ON DATABASE newdb TO app`, `REVOKE TEMPORARY, CONNECT ON DATABASE newdb FROM PUBLIC`},
		},
		{
			name: "default privileges: database-wide functions replace the built-in",
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {DefaultPrivileges: DefaultPrivilegesByRole{
					"app_owner": {Functions: Grants{}, Tables: Grants{"app": {"SELECT"}}},
				}, Schemas: map[string]*Schema{"public": {DefaultPrivileges: DefaultPrivilegesByRole{"app_owner": {Sequences: Grants{"app": {"USAGE"}}}}}}}}}
			},
			want: []string{`ALTER DEFAULT PRIVILEGES FOR ROLE app_owner GRANT SELECT ON TABLES TO app`,
				`ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT USAGE ON SEQUENCES TO app`,
				`ALTER DEFAULT PRIVILEGES FOR ROLE app_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC`},
			notWant: []string{"TYPES"},
		},
		{
			name: "missing objects are notes",
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"nope": {}, "public": {Tables: Objects{"zzz": {Grants: Grants{}}}}}}}}
			},
			notes: []string{"schema appdb.nope", "table appdb.public.zzz"},
		},
		{
			name: "unreadable database: nothing planned for it",
			live: func(l *Live) {
				l.Unreadable = map[string]string{"appdb": "permission denied"}
				delete(l.File.Databases, "appdb")
			},
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Owner: "app_owner", Grants: Grants{Public: {}, "app": {"CONNECT"}}}}}
			},
			notWant: []string{"REVOKE", "GRANT", "ALTER DATABASE"},
			notes:   []string{"could not be read (permission denied): nothing is planned for it"},
		},
		{
			name: "RLS and the missing_ok lint",
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {RLS: map[string]*RLS{
					"a": {Enabled: true, Force: true, Policies: RowPolicies{"tenant": {Roles: []string{"app"}, Using: "tenant_id = current_setting('app.tenant')::int"}}},
				}}}}}}
			},
			want: []string{`ALTER TABLE public.a ENABLE ROW LEVEL SECURITY`, `ALTER TABLE public.a FORCE ROW LEVEL SECURITY`,
				`CREATE POLICY tenant ON public.a FOR ALL TO app USING (tenant_id = current_setting('app.tenant')::int)`},
			notes: []string{"missing_ok"},
		},
		{
			name: "hostile names are quoted",
			live: func(l *Live) {
				l.File.Databases["appdb"].Schemas["public"].Tables["we\"ird.na\nme"] = &Object{Owner: "app_owner", Grants: Grants{}}
				l.File.Roles["ro\"le"] = &Role{}
			},
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"we\"ird.na\nme": {Grants: Grants{"ro\"le": {"SELECT"}}}},
				}}}}}
			},
			want: []string{`GRANT SELECT ON TABLE public.U&"we""ird.na\000Ame" TO "ro""le"`},
		},
		{
			name: "settings reset and IN DATABASE",
			live: func(l *Live) {
				l.File.Roles["app"].Settings = Settings{"work_mem": "4MB", "search_path": "a, b"}
			},
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Roles: Roles{"app": {Login: bp(true), Settings: Settings{"search_path": "a,b"},
					DatabaseSettings: map[string]Settings{"appdb": {"statement_timeout": "5s"}}}}}
			},
			want:    []string{`ALTER ROLE app IN DATABASE appdb SET statement_timeout = '5s'`, `ALTER ROLE app RESET work_mem`},
			notWant: []string{"SET search_path"},
		},
		{
			name: "column grants and grant option revoked alone",
			live: func(l *Live) {
				l.File.Databases["appdb"].Schemas["public"].Tables["a"].Grants = Grants{"app": {"SELECT WITH GRANT OPTION"}}
				l.File.Databases["appdb"].Schemas["public"].Tables["a"].Columns = map[string]Grants{"x": {"app": {"UPDATE"}}}
			},
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"a": {Grants: Grants{"app": {"SELECT"}}, Columns: map[string]Grants{"tenant": {"app": {"SELECT", "UPDATE"}}}}},
				}}}}}
			},
			want: []string{`REVOKE UPDATE (x) ON TABLE public.a FROM app`, `REVOKE GRANT OPTION FOR SELECT ON TABLE public.a FROM app`, `GRANT SELECT (tenant), UPDATE (tenant) ON TABLE public.a TO app`}, // column grants after the table's revokes
		},
		{
			name: "columns: {} inherited from * is exact, one statement per table",
			live: func(l *Live) {
				l.File.Databases["appdb"].Schemas["public"].Tables["a"].Columns = ColumnGrants{"x": {"app": {"UPDATE"}, "stray": {"SELECT"}}, "y": {"app": {"SELECT", "UPDATE"}}}
				l.File.Databases["appdb"].Schemas["public"].Tables["b"].Columns = ColumnGrants{"x": {"app": {"SELECT"}}}
			},
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"*": {Columns: ColumnGrants{}}, "b": {Columns: ColumnGrants{"x": {"app": {"SELECT"}}, "z": {"app": {"INSERT"}, "stray": {"INSERT"}}}}},
				}}}}}
			},
			want: []string{`REVOKE SELECT (x) ON TABLE public.a FROM stray`, `REVOKE UPDATE (x, y), SELECT (y) ON TABLE public.a FROM app`, `GRANT INSERT (z) ON TABLE public.b TO app, stray`},
		},
		{
			name: "columns: {} in adopt spares roles the file does not name",
			live: func(l *Live) {
				l.File.Databases["appdb"].Schemas["public"].Tables["a"].Columns = ColumnGrants{"x": {"app": {"UPDATE"}, "stray": {"SELECT"}}}
			},
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Roles: Roles{"app": {Login: bp(true)}}, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"a": {Columns: ColumnGrants{}}},
				}}}}}
			},
			want:    []string{`REVOKE UPDATE (x) ON TABLE public.a FROM app`},
			notWant: []string{"stray"},
		},
		{
			name: "columns: {} in additive revokes nothing",
			live: func(l *Live) {
				l.File.Databases["appdb"].Schemas["public"].Tables["a"].Columns = ColumnGrants{"x": {"app": {"UPDATE"}}}
			},
			file: func() *File {
				return &File{Version: 1, Mode: Additive, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"*": {Columns: ColumnGrants{}}},
				}}}}}
			},
			notWant: []string{"REVOKE"},
		},
		{
			name: "MAINTAIN before 17 is an error, ALL leaves it out",
			live: func(l *Live) { l.Major = 16 },
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"*": {Grants: Grants{"app": {"ALL"}}}},
				}}}}}
			},
			want:    []string{`GRANT INSERT, SELECT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public TO app`},
			notWant: []string{"MAINTAIN"},
		},
		{
			name: "MAINTAIN on 17",
			live: func(l *Live) { l.Major = 17 },
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Tables: Objects{"*": {Grants: Grants{"app": {"MAINTAIN"}}}},
				}}}}}
			},
			want: []string{`GRANT MAINTAIN ON ALL TABLES IN SCHEMA public TO app`},
		},
		{
			name: "creator the map does not name goes back to the built-in default",
			live: func(l *Live) {
				l.File.Databases["appdb"].DefaultPrivileges = DefaultPrivilegesByRole{"app": {Functions: Grants{}, Tables: Grants{"stray": {"SELECT"}}}}
			},
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {DefaultPrivileges: DefaultPrivilegesByRole{}}}}
			},
			want: []string{`ALTER DEFAULT PRIVILEGES FOR ROLE app GRANT EXECUTE ON FUNCTIONS TO PUBLIC`, `ALTER DEFAULT PRIVILEGES FOR ROLE app REVOKE SELECT ON TABLES FROM stray`},
		},
		{
			name: "policy altered in place, or dropped and created when its command changes",
			live: func(l *Live) {
				l.File.Databases["appdb"].Schemas["public"].RLS = map[string]*RLS{"a": {Enabled: true, Policies: RowPolicies{
					"p1": {Roles: []string{"app"}, Using: "(id > 0)"}, "p2": {Command: "SELECT", Using: "true"}, "p3": {Using: "true"}}}}
			},
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {RLS: map[string]*RLS{
					"a": {Enabled: true, Policies: RowPolicies{"p1": {Roles: []string{"app", "stray"}, Using: "id > 0"}, "p2": {Command: "DELETE", Using: "true"}}},
				}}}}}}
			},
			want:    []string{`ALTER POLICY p1 ON public.a TO app, stray`, `DROP POLICY p2 ON public.a`, `CREATE POLICY p2 ON public.a FOR DELETE TO PUBLIC USING (true)`, `DROP POLICY p3 ON public.a`},
			notWant: []string{"USING (id > 0)"},
		},
		{
			name: "additive only raises",
			live: func(l *Live) { l.File.Roles["app"].ConnectionLimit = ip(5); l.File.Roles["app"].CreateDB = bp(true) },
			file: func() *File {
				return &File{Version: 1, Mode: Additive, Roles: Roles{"app": {ConnectionLimit: ip(2), Replication: bp(true), MemberOf: Memberships{}}}}
			},
			want:    []string{`ALTER ROLE app WITH REPLICATION`},
			notWant: []string{"NOCREATEDB", "CONNECTION LIMIT", "NOLOGIN"},
		},
		{
			name: "ignore_roles are never revoked from or dropped",
			file: func() *File {
				return &File{Version: 1, IgnoreRoles: []string{"str*"}, Roles: Roles{"postgres": {Superuser: bp(true), Login: bp(true), CreateDB: bp(true), CreateRole: bp(true), Replication: bp(true), BypassRLS: bp(true)}, "app_owner": {}, "app": {Login: bp(true)}},
					Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {Tables: Objects{"*": {Grants: Grants{}}}}}}}}
			},
			notWant: []string{"stray"},
		},
		{
			name: "legacy file without a database applies to every database read",
			file: func() *File {
				f, err := Parse("old.yaml", []byte("schemas: [public]\ngrants: {app: {tables: [SELECT]}}\n"))
				if err != nil {
					panic(err)
				}
				return f
			},
			want:    []string{`GRANT SELECT ON ALL TABLES IN SCHEMA public TO app`},
			notWant: []string{"stray"},
		},
		{
			name: "settings in a database the plan creates wait for it",
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Roles: Roles{"app": {Login: bp(true), DatabaseSettings: map[string]Settings{"newdb": {"work_mem": "8MB"}}}},
					Databases: map[string]*Database{"newdb": {}}}
			},
			want: []string{"CREATE DATABASE newdb", `ALTER ROLE app IN DATABASE newdb SET work_mem = '8MB'`},
		},
		{
			name: "a non-superuser never revokes the CONNECT it applies with",
			live: func(l *Live) { l.CurrentUser, l.Superuser = "app", false },
			file: func() *File {
				return &File{Version: 1, Mode: Adopt, Databases: map[string]*Database{"appdb": {Grants: Grants{Public: {}}}}}
			},
			want:    []string{`REVOKE TEMPORARY ON DATABASE appdb FROM PUBLIC`},
			notWant: []string{"CONNECT ON"},
			notes:   []string{"CONNECT is not revoked from PUBLIC"},
		},
		{
			name: "owner listed: its own privileges managed",
			file: func() *File {
				return &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {
					Sequences: Objects{"*": {Grants: Grants{"app_owner": {"SELECT"}}}},
				}}}}}
			},
			want: []string{`REVOKE UPDATE, USAGE ON SEQUENCE public.a_id_seq FROM app_owner`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := baseLive()
			if c.live != nil {
				c.live(l)
			}
			p, notes, sql := run(t, c.file(), l, c.opts)
			pos := 0
			for _, w := range c.want {
				i := strings.Index(sql[pos:], w)
				if i < 0 {
					t.Errorf("missing (or out of order) %q in\n%s", w, sql)
					continue
				}
				pos += i + len(w)
			}
			for _, w := range c.notWant {
				if strings.Contains(sql, w) {
					t.Errorf("unexpected %q in\n%s", w, sql)
				}
			}
			var nt strings.Builder
			for _, n := range notes {
				nt.WriteString(n.Level + " " + n.Object + ": " + n.Text + "\n")
			}
			for _, w := range c.notes {
				if !strings.Contains(nt.String(), w) {
					t.Errorf("no note %q in\n%s", w, nt.String())
				}
			}
			for _, s := range MaskVerifiers(p).Steps {
				for _, q := range s.SQL {
					if strings.Contains(q, "SCRAM-SHA-256$") {
						t.Errorf("verifier not masked: %s", q)
					}
				}
			}
		})
	}
}

func TestDiffErrors(t *testing.T) {
	cases := []struct {
		name string
		file *File
		o    Options
		want string
	}{
		{"membership in an unknown role", &File{Version: 1, Roles: Roles{"app": {MemberOf: Memberships{{Role: "ghost"}}}}}, Options{}, `member_of "ghost": no such role`},
		{"grant to an unknown role", &File{Version: 1, Databases: map[string]*Database{"appdb": {Grants: Grants{"ghost": {"CONNECT"}}}}}, Options{}, `grantee "ghost" is neither`},
		{"MAINTAIN before 17", &File{Version: 1, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {Tables: Objects{"a": {Grants: Grants{"app": {"MAINTAIN"}}}}}}}}}, Options{}, "MAINTAIN needs PostgreSQL 17"},
		{"bad mode", &File{Version: 1}, Options{Mode: "yolo"}, `unknown mode "yolo"`},
		{"predefined role managed", &File{Version: 1, Roles: Roles{"pg_monitor": {}}}, Options{}, "predefined roles"},
		{"unknown reassign target", &File{Version: 1}, Options{ReassignOwnedTo: "ghost"}, "--reassign-owned-to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Diff(c.file, baseLive(), c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// TestDiffBefore16: a membership option a server before 16 cannot give
// is an error naming the role, the membership and what 15 can do; never
// a plain (wider) GRANT, never "matches" for one that exists.
func TestDiffBefore16(t *testing.T) {
	cases := []struct {
		name     string
		existing bool
		role     *Role
		want     string
	}{
		{"inherit false, new", false, &Role{MemberOf: Memberships{{Role: "app_owner", Inherit: bp(false)}}}, `role app: member_of app_owner: inherit: false needs PostgreSQL 16 (the server is 15); there a membership inherits as its member's attribute says: give role app inherit: false (NOINHERIT`},
		{"inherit false, existing", true, &Role{MemberOf: Memberships{{Role: "app_owner", Inherit: bp(false)}}}, "inherit: false needs PostgreSQL 16"},
		{"inherit true on a NOINHERIT member", true, &Role{Inherit: bp(false), MemberOf: Memberships{{Role: "app_owner", Inherit: bp(true)}}}, "inherit: true needs PostgreSQL 16"},
		{"set false, new", false, &Role{MemberOf: Memberships{{Role: "app_owner", Set: bp(false)}}}, "role app: member_of app_owner: set: false needs PostgreSQL 16"},
		{"set false, existing", true, &Role{MemberOf: Memberships{{Role: "app_owner", Set: bp(false)}}}, "set: false needs PostgreSQL 16"},
		{"NOINHERIT member, inherit false: fine", false, &Role{Inherit: bp(false), MemberOf: Memberships{{Role: "app_owner", Inherit: bp(false), Set: bp(true)}}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := baseLive()
			l.Major = 15
			if c.existing {
				l.File.Roles["app"].MemberOf = Memberships{{Role: "app_owner"}}
			}
			c.role.Login = bp(true)
			_, _, err := Diff(&File{Version: 1, Mode: Adopt, Roles: Roles{"app": c.role}}, l, Options{})
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// TestDiffBatching: 2,500 tables, some with a different grant, take a
// handful of statements (names in chunks of a thousand), not thousands.
func TestDiffBatching(t *testing.T) {
	l := baseLive()
	tables := Objects{}
	for i := 0; i < 2500; i++ {
		tables[fmt.Sprintf("t%04d", i)] = &Object{Owner: "app_owner", Grants: Grants{}}
	}
	l.File.Databases["appdb"].Schemas["public"].Tables = tables
	want := Objects{"*": {Grants: Grants{"app": {"SELECT"}}}}
	for i := 0; i < 2500; i += 2 {
		want[fmt.Sprintf("t%04d", i)] = &Object{Grants: Grants{"app": {"SELECT"}, "stray": {"SELECT"}}}
	}
	f := &File{Version: 1, Mode: Adopt, Databases: map[string]*Database{"appdb": {Schemas: map[string]*Schema{"public": {Tables: want}}}}}
	_, _, sql := run(t, f, l, Options{})
	if n := strings.Count(sql, "\nGRANT "); n != 4 {
		t.Fatalf("%d GRANT statements, want 4 (2 x 1250 names in chunks of 1000):\n%.2000s", n, sql)
	}
	if !strings.Contains(sql, "GRANT SELECT ON TABLE public.t0000, public.t0002") || !strings.Contains(sql, "TO app, stray") {
		t.Fatalf("not batched by grantee set:\n%.2000s", sql)
	}
}

// TestDiffErrorLines: a role the file names that neither it nor the
// server has is reported at the line the file first uses it.
func TestDiffErrorLines(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"table grantee", "version: 1\nmode: adopt\ndatabases:\n  appdb:\n    schemas:\n      public:\n        tables:\n          a:\n            grants: {ghost: [SELECT]}\n", `line 9: table appdb.public.a: grantee "ghost" is neither`},
		{"database grantee", "version: 1\nmode: adopt\ndatabases:\n  appdb:\n    grants:\n      app: [CONNECT]\n      ghost: [CONNECT]\n", `line 7: database appdb: grantee "ghost"`},
		{"owner", "version: 1\nmode: adopt\ndatabases:\n  appdb:\n    owner: ghost\n", `line 5: database appdb owner: role "ghost"`},
		{"membership", "version: 1\nmode: adopt\nroles:\n  app:\n    login: true\n    member_of:\n      - app_owner\n      - ghost\n", `line 8: role app: member_of "ghost"`},
		{"default privileges grantee", "version: 1\nmode: adopt\ndatabases:\n  appdb:\n    default_privileges:\n      app_owner:\n        tables: {ghost: [SELECT]}\n", `line 7: default privileges of app_owner on tables in appdb: grantee "ghost"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse("p.yaml", []byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = Diff(f, baseLive(), Options{})
			var le *LineError
			if err == nil || !errors.As(err, &le) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
