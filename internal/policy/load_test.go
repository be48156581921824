package policy

import (
	"os"
	"strings"
	"testing"
)

const goodFile = `version: 1
mode: adopt
roles:
  app_owner: {}
  app:
    login: true
    connection_limit: 20
    password: none
    member_of: [app_rw, {role: app_ro, inherit: false}]
    settings: {pgaudit.log: "write, ddl"}
databases:
  appdb:
    owner: app_owner
    grants: {PUBLIC: [], app: [CONNECT, temp]}
    default_privileges:
      app_owner: {functions: {}, tables: {app: [ALL]}}
    schemas:
      public:
        grants: {app: [USAGE]}
        tables:
          "*": {grants: {app: [SELECT, INSERT WITH GRANT OPTION, maintain]}}
          t: {columns: {c: {app: [SELECT]}}}
        functions:
          "f(integer, text)": {grants: {app: [EXECUTE]}}
        rls:
          t:
            enabled: true
            policies:
              p: {roles: [app], using: "tenant = current_setting('app.t', true)::int"}
`

func TestParse(t *testing.T) {
	f, err := Parse("good.yaml", []byte(goodFile))
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode != Adopt || len(f.Roles["app"].MemberOf) != 2 || *f.Roles["app"].MemberOf[1].Inherit {
		t.Fatalf("parsed wrong: %+v", f)
	}
	secret := "hunter2-very-secret"
	cases := []struct{ name, in, want string }{
		{"unknown key", "version: 1\nrolez: {}\n", `p.yaml:2: unknown key "rolez" in the top level; did you mean "roles"?`},
		{"unknown role key", "version: 1\nroles:\n  a: {logn: true}\n", `p.yaml:3: unknown key "logn" in role "a"; did you mean "login"?`},
		{"unknown role key, typo", "version: 1\nroles:\n  app:\n    login: true\n    connection_limt: 3\n", `p.yaml:5: unknown key "connection_limt" in role "app"; did you mean "connection_limit"? (valid keys: login, superuser,`},
		{"unknown key, nothing near", "version: 1\nroles:\n  a: {zzzzzzzz: 1}\n", `p.yaml:3: unknown key "zzzzzzzz" in role "a"; valid keys: login,`},
		{"unknown membership key", "version: 1\nroles:\n  a:\n    member_of: [{role: b, admn: true}]\n", `p.yaml:4: unknown key "admn" in entry 1 of member_of of role "a"; did you mean "admin"?`},
		{"unknown table key", "version: 1\ndatabases:\n  d:\n    schemas:\n      s:\n        tables:\n          t: {grant: {}}\n", `p.yaml:7: unknown key "grant" in table "d.s.t"; did you mean "grants"?`},
		{"unknown schema key", "version: 1\ndatabases:\n  d:\n    schemas:\n      s: {owners: x}\n", `p.yaml:5: unknown key "owners" in schema "d.s"; did you mean "owner"?`},
		{"unknown policy key", "version: 1\ndatabases:\n  d:\n    schemas:\n      s:\n        rls:\n          t:\n            policies:\n              p: {usin: x}\n", `p.yaml:9: unknown key "usin" in policy "d.s.t.p"`},
		{"dedent to no key", "version: 1\nroles:\n  app:\n    login: true\n    member_of: [x]\n   createdb: true\n", "p.yaml:6: bad indentation (column 4"},
		{"indent under a value", "version: 1\nroles:\n  app:\n    login: true\n    member_of: [x]\n      createdb: true\n", "p.yaml:6: bad indentation (column 7"},
		{"bad indent deep", "version: 1\ndatabases:\n  d:\n    schemas:\n      public:\n        grants: {a: [USAGE]}\n       owner: x\n", "p.yaml:7: bad indentation"},
		{"unknown key through a merge", "version: 1\nbase: &b {logn: true}\n", `p.yaml:2: unknown key "base" in the top level`},
		{"unknown key in a merged mapping", "version: 1\nroles:\n  a: &b {login: true}\n  c:\n    <<: *b\n    creatdb: true\n", `p.yaml:6: unknown key "creatdb" in role "c"; did you mean "createdb"?`},
		{"md5 password", "version: 1\nroles:\n  a:\n    password: md5" + strings.Repeat("0a", 16) + "\n", "p.yaml:4: role a: password is an md5 hash (PostgreSQL 18 deprecates md5; give a SCRAM-SHA-256 verifier or none)"},
		{"version", "mode: adopt\nroles: {}\n", "p.yaml:1: version must be 1"},
		{"mode", "version: 1\nmode: yolo\n", "p.yaml:2: mode \"yolo\""},
		{"clear password", "version: 1\nroles:\n  a:\n    password: " + secret + "\n", "p.yaml:4: role a: password must be none or a SCRAM-SHA-256 verifier"},
		{"bad verifier", "version: 1\nroles:\n  a:\n    password: SCRAM-SHA-256$" + secret + "\n", "p.yaml:4: role a: password starts like"},
		{"db privilege", "version: 1\ndatabases:\n  d:\n    grants: {a: [SELECT]}\n", "p.yaml:4: a: \"SELECT\" is not a database privilege"},
		{"schema privilege", "version: 1\ndatabases:\n  d:\n    schemas:\n      s:\n        grants:\n          a: [USAGE, EXECUTE]\n", "p.yaml:7: a: \"EXECUTE\" is not a schema privilege"},
		{"column privilege", "version: 1\ndatabases:\n  d:\n    schemas:\n      s:\n        tables:\n          t: {columns: {c: {a: [DELETE]}}}\n", "p.yaml:7: a: \"DELETE\" is not a column privilege"},
		{"sequence privilege", "version: 1\ndatabases:\n  d:\n    schemas:\n      s:\n        sequences:\n          '*': {grants: {a: [INSERT]}}\n", "is not a sequence privilege"},
		{"function key", "version: 1\ndatabases:\n  d:\n    schemas:\n      s:\n        functions:\n          f: {}\n", "p.yaml:7: function key \"f\""},
		{"expression", "version: 1\ndatabases:\n  d:\n    schemas:\n      s:\n        rls:\n          t:\n            enabled: true\n            policies:\n              p: {using: \"true OR 1 = 1; DROP TABLE x\"}\n", "p.yaml:10: policy p: using: a semicolon"},
		{"system schema", "version: 1\ndatabases:\n  d:\n    schemas:\n      pg_catalog: {}\n", "p.yaml:5: schema pg_catalog is a system schema"},
		{"predefined role", "version: 1\nroles:\n  pg_monitor: {}\n", "p.yaml:3: role pg_monitor: predefined"},
		{"not a mapping", "- a\n- b\n", "p.yaml:1: a policy file is a mapping"},
		{"empty", "", "p.yaml: empty policy file"},
		{"schemas default privileges in schema", "version: 1\ndatabases:\n  d:\n    schemas:\n      s:\n        default_privileges:\n          r: {schemas: {a: [USAGE]}}\n", "only database-wide"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the password leaked into the error: %v", err)
			}
		})
	}
}

func TestParseLegacy(t *testing.T) {
	in := "database: shop\nschemas: [app]\ngrants:\n  app_rw: {tables: [SELECT, INSERT], sequences: [USAGE]}\nexclusive: true\n"
	f, err := Parse("old.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Databases["shop"].Schemas["app"]
	if f.Mode != Authoritative || len(s.Tables["*"].Grants["app_rw"]) != 2 || s.Sequences["*"].Grants[Public] == nil {
		t.Fatalf("converted wrong: %+v %+v", f, s)
	}
	f, err = Parse("old.yaml", []byte("schemas: [app]\ngrants: {r: {tables: [SELECT]}}\n"))
	if err != nil || f.Mode != Adopt || f.Databases[AllDatabases] == nil {
		t.Fatalf("non-exclusive legacy: %v %+v", err, f)
	}
	if _, err := Parse("old.yaml", []byte("schemas: [app]\nexclusiv: true\n")); err == nil || !strings.Contains(err.Error(), "old.yaml") {
		t.Fatalf("legacy unknown key: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte("schemas: [a]\ngrants: {r: {tables: [SELECT]}}\n"))
	f.Add([]byte("version: 1\nroles:\n  a:\n    member_of: [b, {role: c}]\n"))
	f.Add([]byte("version: 1\ndatabases: {d: {schemas: {s: {functions: {\"f(\\\"a(\\\" int)\": {}}}}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("fuzz.yaml", data)
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// TestDocsExample: the file docs/policy.md shows is one Parse accepts.
func TestDocsExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(b), "```yaml\n", 2)
	if len(parts) < 2 {
		t.Fatal("docs/policy.md has no yaml block")
	}
	block := parts[1][:strings.Index(parts[1], "```")]
	f, err := Parse("docs/policy.md", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	if f.Roles["app"].MemberOf[1].Grantor != "app_owner" || f.Databases["appdb"].Schemas["app"].RLS["orders"] == nil {
		t.Fatalf("parsed wrong: %+v", f)
	}
}

// A merge key is YAML, not an unknown key: its mapping's keys are
// checked as the type's own.
func TestParseMerge(t *testing.T) {
	f, err := Parse("p.yaml", []byte("version: 1\nroles:\n  a: &b {login: true}\n  c:\n    <<: *b\n    createdb: true\n"))
	if err != nil || f.Roles["c"].Login == nil || !*f.Roles["c"].Login || !*f.Roles["c"].CreateDB {
		t.Fatalf("%v %+v", err, f)
	}
}

// A role or table given twice is refused by the one-pass map decoding
// as yaml.v3's would; merge keys and aliases still go through yaml.v3.
func TestParseDuplicateAndMergeKeys(t *testing.T) {
	dup := "version: 1\nroles:\n  app: {}\n  app: {login: true}\n"
	if _, err := Parse("dup.yaml", []byte(dup)); err == nil || !strings.Contains(err.Error(), "dup.yaml") || !strings.Contains(err.Error(), "already defined") {
		t.Fatalf("duplicate role: %v", err)
	}
	dupT := "version: 1\ndatabases:\n  d:\n    schemas:\n      s:\n        tables:\n          t: {}\n          t: {}\n"
	if _, err := Parse("dupt.yaml", []byte(dupT)); err == nil || !strings.Contains(err.Error(), "already defined") {
		t.Fatalf("duplicate table: %v", err)
	}
	alias := "version: 1\nx: &r {login: true}\nroles:\n  a: *r\n  b: *r\n"
	if f, err := Parse("alias.yaml", []byte(alias)); err == nil {
		if r := f.Roles["b"]; r == nil || r.Login == nil || !*r.Login {
			t.Fatalf("alias: %+v", f.Roles)
		}
	}
}
