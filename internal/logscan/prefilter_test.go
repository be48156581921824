package logscan

import (
	"strings"
	"testing"
)

// prefilterSeeds match a rule or hold a secret, in the spellings the
// prefilter must not miss; the ordinary statements after them match none.
var prefilterSeeds = []string{
	"copy t to program 'id'", "CoPy (select 1) TO PROGRAM 'x'",
	"select pg_read_file('/etc/passwd')", "SELECT LO_IMPORT('/x')", "select * from pg_authid", "table PG_SHADOW",
	"create role r superuser", "ALTER USER u BYPASSRLS", "grant pg_execute_server_program to u",
	"set log_statement = none", "SET pgaudit.log = 'none'", "alter database d set log_min_messages = panic",
	"alter system set x = 1", "drop group g", "revoke all on t from u", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO u",
	"create function f() returns int language plpython3u as $$ $$", "create function f() returns int security definer as $$ $$",
	"alter role a password 'x'", "CREATE SERVER s OPTIONS (client_secret 'x')", "select dblink('host=h conninfo')",
	"select 'postgresql://u:p@h/db'", "select U&'\\0050ASSWORD'", `{"message":"select 'postgresql:\/\/u:p@h'"}`, `\u0070assword`,
	"alter role ſuperuſer", "select 'ı'",
	"UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;",
	"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);",
	"SELECT abalance FROM pgbench_accounts WHERE aid = $1;", "BEGIN;", "END;",
}

func TestMayMatter(t *testing.T) {
	for _, s := range prefilterSeeds {
		want := strings.HasPrefix(s, "UPDATE pgbench") || strings.HasPrefix(s, "INSERT INTO pgbench") || strings.HasPrefix(s, "SELECT abalance") || s == "BEGIN;" || s == "END;"
		if mayMatter(s) == want || mayMatter([]byte(s)) == want {
			t.Errorf("mayMatter(%q) = %v", s, !want)
		}
	}
}

// FuzzMayMatter: a statement the prefilter drops matches no rule and
// holds no secret (the slow path, unfiltered, agrees).
func FuzzMayMatter(f *testing.F) {
	for _, s := range prefilterSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if mayMatter(s) {
			return
		}
		if _, secret := redact(s); secret {
			t.Fatalf("prefilter dropped a statement with a secret: %q", s)
		}
		up := strings.ToUpper(s)
		for _, sr := range statementRules {
			if sr.re.MatchString(up) {
				t.Fatalf("prefilter dropped a statement that matches %s: %q", sr.kind, s)
			}
		}
	})
}
