package execute

import (
	"path"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pgaegis/pgaegis/internal/plan"
)

func TestRoleStatement(t *testing.T) {
	for _, tc := range []struct {
		sql           string
		dropped, pass []string
		ok            bool
	}{
		{"DROP ROLE a", []string{"a"}, nil, true},
		{"drop role if exists A, \"B c\", \"d\"\"e\"", []string{"a", "B c", `d"e`}, nil, true},
		{"DROP USER x /* c */ ;", []string{"x"}, nil, true},
		{"ALTER ROLE app PASSWORD 'SCRAM-SHA-256$4096:x'", nil, []string{"app"}, true},
		{"ALTER ROLE \"App\" WITH LOGIN PASSWORD NULL", nil, []string{"App"}, true},
		{"ALTER ROLE app SET search_path = 'password'", nil, nil, true}, // a literal, not the keyword
		{"ALTER ROLE app NOLOGIN", nil, nil, true},
		{`ALTER ROLE U&"\0061" PASSWORD NULL`, nil, nil, false},
		{`DROP ROLE U&"\0061"`, nil, nil, false},
		{"GRANT a TO b", nil, nil, true},
		{"CREATE ROLE a PASSWORD NULL", nil, nil, true},
		{"", nil, nil, true},
	} {
		d, p, ok := roleStatement(tc.sql)
		if !slices.Equal(d, tc.dropped) || !slices.Equal(p, tc.pass) || ok != tc.ok {
			t.Errorf("roleStatement(%q) = %q, %q, %v; want %q, %q, %v", tc.sql, d, p, ok, tc.dropped, tc.pass, tc.ok)
		}
	}
}

func TestStatementKinds(t *testing.T) {
	for _, tc := range []struct {
		sql   string
		drop  bool
		owned string
		db    string
	}{
		{"DROP ROLE x", true, "", ""},
		{"DROP OWNED BY x", false, "drop", ""},
		{"REASSIGN OWNED BY x TO y", false, "reassign", ""},
		{`CREATE DATABASE "App db" OWNER o`, false, "", "App db"},
		{"create database appdb", false, "", "appdb"},
		{"DROP TABLE x", false, "", ""},
	} {
		db, _ := createdDatabase(tc.sql)
		if isDropRole(tc.sql) != tc.drop || ownedStatement(tc.sql) != tc.owned || db != tc.db {
			t.Errorf("%q: drop %v owned %q db %q", tc.sql, isDropRole(tc.sql), ownedStatement(tc.sql), db)
		}
	}
}

// An error names a statement by its first line, a password literal masked.
func TestFirstLineMasksSecrets(t *testing.T) {
	for _, tc := range []struct{ in, want, never string }{
		{"ALTER ROLE a PASSWORD 'SCRAM-SHA-256$4096:abc'", "ALTER ROLE a PASSWORD '*****'", "abc"},
		{"GRANT SELECT\nON t TO a", "GRANT SELECT …", ""},
		{strings.Repeat("é", 300), "", ""},
	} {
		got := firstLine(tc.in)
		if tc.want != "" && got != tc.want {
			t.Errorf("firstLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.never != "" && strings.Contains(got, tc.never) {
			t.Errorf("firstLine(%q) = %q leaks %q", tc.in, got, tc.never)
		}
		if !utf8.ValidString(got) {
			t.Errorf("firstLine(%q) = %q is not valid UTF-8", tc.in, got)
		}
	}
}

func TestCreatedRoleAndMatchLiteral(t *testing.T) {
	for _, tc := range []struct {
		sql, role string
		ok        bool
	}{
		{"CREATE ROLE app_rw", "app_rw", true},
		{`CREATE ROLE "We*ird?[x]" WITH LOGIN`, "We*ird?[x]", true},
		{`CREATE ROLE U&"\0061"`, "", false},
		{"CREATE TABLE x (id int)", "", false},
	} {
		r, ok := createdRole(tc.sql)
		if r != tc.role || ok != tc.ok {
			t.Errorf("createdRole(%q) = %q, %v", tc.sql, r, ok)
		}
		if tc.ok {
			if m, err := path.Match(matchLiteral(r), r); !m || err != nil {
				t.Errorf("matchLiteral(%q) = %q does not match it: %v", r, matchLiteral(r), err)
			}
			if m, _ := path.Match(matchLiteral(r), r+"x"); m {
				t.Errorf("matchLiteral(%q) matches more", r)
			}
		}
	}
}

// What a restore cannot bring back is said: what DROP OWNED removed, and
// databases the plan created.
func TestLost(t *testing.T) {
	p := newPlan(
		plan.Step{ID: "1", Kind: plan.KindSQL, Database: "postgres", Autocommit: true, SQL: []string{`CREATE DATABASE "new db" OWNER x`}},
		sqlStep("2", "db1", true, "REASSIGN OWNED BY old TO x", "DROP OWNED BY old"),
		sqlStep("3", "postgres", true, "DROP ROLE old"),
	)
	if l := lost(p, map[string]bool{}); len(l) != 1 || strings.Contains(l[0], "new db") {
		t.Fatalf("a database that does not exist is said to be left in place: %q", l)
	}
	l := lost(p, map[string]bool{"new db": true})
	if len(l) != 2 || !strings.Contains(l[0], `database "new db" was created by the plan`) || !strings.Contains(l[1], "database db1: DROP OWNED BY old removed") {
		t.Fatalf("lost %q", l)
	}
	if !passwordsTouched(p) || passwordsTouched(newPlan(sqlStep("1", "db1", false, "GRANT SELECT ON t TO x"))) {
		t.Fatal("passwordsTouched")
	}
}
