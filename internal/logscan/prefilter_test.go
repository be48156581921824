package logscan

import (
	"fmt"
	"hash/maphash"
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

// TestVerdictsRemember: the remembered answer is the function's, also
// when texts share a slot or differ only in length.
func TestVerdictsRemember(t *testing.T) {
	v := &verdicts{seed: maphash.MakeSeed()}
	texts := append([]string{}, prefilterSeeds...)
	for i := 0; i < 3*verdictSlots; i++ {
		texts = append(texts, fmt.Sprintf("UPDATE t%d SET x = 1", i), fmt.Sprintf("GRANT r%d TO u", i))
	}
	texts = append(texts, strings.Repeat("x", verdictMax+1)+" grant")
	for round := 0; round < 2; round++ {
		for _, s := range texts {
			b := []byte(s)
			if got, want := v.check(verdictStatement, b, statementOfInterest), statementOfInterest(b); got != want {
				t.Fatalf("check(statement, %.40q) = %v, want %v", s, got, want)
			}
			if got, want := v.check(verdictAudit, b, mayMatter[[]byte]), mayMatter(b); got != want {
				t.Fatalf("check(audit, %.40q) = %v, want %v", s, got, want)
			}
			line := "SESSION,12,1,WRITE,UPDATE,,," + s + ",<not logged>"
			if got, want := v.auditInteresting([]byte(line)), mayMatter(line); got != want {
				t.Fatalf("auditInteresting(%.60q) = %v, want %v", line, got, want)
			}
		}
	}
}

// TestSeverityEnd: the word-at-a-time search agrees with bytes.Index.
func TestSeverityEnd(t *testing.T) {
	base := "2026-12-02 02:39:48.240 UTC [12296] a@b from 127.0.0.1 LOG:  execute P_1: x:  y"
	for cut := 0; cut <= len(base); cut++ {
		for _, l := range []string{base[:cut], base[cut:], ":" + base[cut:], strings.Repeat(":", cut%9) + " " + base[cut:], "\xba:\x00:  " + base[:cut]} {
			if got, want := severityEnd([]byte(l)), strings.Index(l, ":  "); got != want {
				t.Fatalf("severityEnd(%q) = %d, want %d", l, got, want)
			}
		}
	}
}

func FuzzSeverityEnd(f *testing.F) {
	f.Add("2026-12-02 02:39:48.240 UTC [12296] a@b from 127.0.0.1 LOG:  x")
	f.Add("::  :")
	f.Fuzz(func(t *testing.T, l string) {
		if got, want := severityEnd([]byte(l)), strings.Index(l, ":  "); got != want {
			t.Fatalf("severityEnd(%q) = %d, want %d", l, got, want)
		}
	})
}
