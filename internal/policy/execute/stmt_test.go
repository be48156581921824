package execute

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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
