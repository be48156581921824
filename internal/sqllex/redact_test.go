package sqllex

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// secretForms are the ways of writing a password in SQL that issue #10
// (defect 3) found leaking, and the ones around them. %s is the secret.
var secretForms = []struct{ name, sql, want string }{
	{"plain", `ALTER ROLE a PASSWORD '%s'`, `ALTER ROLE a PASSWORD '*****'`},
	{"encrypted", `CREATE ROLE a LOGIN ENCRYPTED PASSWORD '%s' VALID UNTIL 'infinity'`, `CREATE ROLE a LOGIN ENCRYPTED PASSWORD '*****' VALID UNTIL 'infinity'`},
	{"lower case", `alter user a with password '%s'`, `alter user a with password '*****'`},
	{"no space", `ALTER ROLE a PASSWORD'%s'`, `ALTER ROLE a PASSWORD'*****'`},
	{"doubled quote", `ALTER ROLE a PASSWORD 'it''s %s'`, `ALTER ROLE a PASSWORD '*****'`},
	{"dollar", `ALTER ROLE a PASSWORD $$%s$$`, `ALTER ROLE a PASSWORD $$*****$$`},
	{"dollar tag", `ALTER ROLE a PASSWORD $pw$%s$pw$`, `ALTER ROLE a PASSWORD $pw$*****$pw$`},
	{"dollar no space", `ALTER ROLE a PASSWORD$$%s$$`, `ALTER ROLE a PASSWORD*****`},
	{"E string", `ALTER ROLE a PASSWORD E'x\'%s'`, `ALTER ROLE a PASSWORD E'*****'`},
	{"E string backslash", `ALTER ROLE a PASSWORD e'\\%s\\'`, `ALTER ROLE a PASSWORD e'*****'`},
	{"U& string", `ALTER ROLE a PASSWORD U&'\0041%s'`, `ALTER ROLE a PASSWORD U&'*****'`},
	{"U& UESCAPE", `ALTER ROLE a PASSWORD U&'!0041%s' UESCAPE '!'`, `ALTER ROLE a PASSWORD U&'*****' UESCAPE '!'`},
	{"block comment", `ALTER ROLE a PASSWORD /* c */ '%s'`, `ALTER ROLE a PASSWORD /* c */ '*****'`},
	{"nested comment", `ALTER ROLE a PASSWORD /* a /* b */ c */ '%s'`, `ALTER ROLE a PASSWORD /* a /* b */ c */ '*****'`},
	{"line comment", "ALTER ROLE a PASSWORD -- c\n '%s'", "ALTER ROLE a PASSWORD -- c\n '*****'"},
	{"continuation", "ALTER ROLE a PASSWORD 'ab'\n  '%s'", "ALTER ROLE a PASSWORD '*****'"},
	{"backslash, scs off", `ALTER ROLE a PASSWORD 'x\' %s'`, `ALTER ROLE a PASSWORD '*****'`},
	{"unterminated", `ALTER ROLE a PASSWORD 'x %s`, `ALTER ROLE a PASSWORD '*****`},
	{"unterminated dollar", `ALTER ROLE a PASSWORD $q$ %s`, `ALTER ROLE a PASSWORD $q$*****`},
	{"number", `ALTER ROLE a PASSWORD 1234%s`, `ALTER ROLE a PASSWORD *****`},
	{"double quoted", `ALTER ROLE a PASSWORD "%s"`, `ALTER ROLE a PASSWORD "*****"`},
	{"DO execute", `DO $$ BEGIN EXECUTE 'ALTER ROLE a PASSWORD ''%s'''; END $$`, `DO $$ BEGIN EXECUTE 'ALTER ROLE a PASSWORD ''*****'''; END $$`},
	{"function body", `CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ALTER ROLE a PASSWORD '%s'; END $f$`, `CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ALTER ROLE a PASSWORD '*****'; END $f$`},
	{"primary_conninfo quoted", `ALTER SYSTEM SET primary_conninfo = 'host=p user=r password=''a b %s'''`, `ALTER SYSTEM SET primary_conninfo = 'host=p user=r password=*****'`},
	{"primary_conninfo escaped space", `ALTER SYSTEM SET primary_conninfo = 'host=p password=a\ %s user=r'`, `ALTER SYSTEM SET primary_conninfo = 'host=p password=***** user=r'`},
	{"primary_conninfo URI", `ALTER SYSTEM SET primary_conninfo TO 'postgresql://r:%s@p/db'`, `ALTER SYSTEM SET primary_conninfo TO 'postgresql://r:*****@p/db'`},
	{"URI raw @", `SELECT dblink_connect('postgresql://r:Le@%s@p/db')`, `SELECT dblink_connect('postgresql://r:*****@p/db')`},
	{"user mapping", `CREATE USER MAPPING FOR a SERVER s OPTIONS (user 'a', password '%s')`, `CREATE USER MAPPING FOR a SERVER s OPTIONS (user 'a', password '*****')`},
	{"user mapping set", `ALTER USER MAPPING FOR a SERVER s OPTIONS (SET password '%s')`, `ALTER USER MAPPING FOR a SERVER s OPTIONS (SET password '*****')`},
	{"server options", `CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'h', "password" '%s')`, `CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'h', "password" '*****')`},
	{"sslpassword", `CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (sslpassword '%s')`, `CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (sslpassword '*****')`},
	{"dblink", `SELECT dblink_connect('c', 'host=h dbname=d password=%s')`, `SELECT dblink_connect('c', 'host=h dbname=d password=*****')`},
	{"dblink E", `SELECT dblink_connect(E'host=h password=\'x %s\'')`, `SELECT dblink_connect(E'host=h password=*****')`},
	{"psql \\password", `ALTER USER "a" PASSWORD 'SCRAM-SHA-256$4096:%s'`, `ALTER USER "a" PASSWORD '*****'`},
	{"custom setting", `SET myapp.password = '%s'`, `SET myapp.password = '*****'`},
	{"pgaudit line", `SESSION,1,1,ROLE,ALTER ROLE,,,"ALTER ROLE a PASSWORD '%s'",<not logged>`, `SESSION,1,1,ROLE,ALTER ROLE,,,"ALTER ROLE a PASSWORD '*****'",<not logged>`},
	{"nested DO", `DO $a$ BEGIN EXECUTE $b$ DO $c$ BEGIN EXECUTE 'ALTER ROLE a PASSWORD ''%s'''; END $c$ $b$; END $a$`, `DO $a$ BEGIN EXECUTE $b$ DO $c$ BEGIN EXECUTE 'ALTER ROLE a PASSWORD ''*****'''; END $c$ $b$; END $a$`},
}

func TestRedactForms(t *testing.T) {
	const secret = "Hunter2Secret"
	for _, f := range secretForms {
		t.Run(f.name, func(t *testing.T) {
			in := strings.ReplaceAll(f.sql, "%s", secret)
			got, found := Redact(in)
			if strings.Contains(got, "Hunter") || strings.Contains(got, "Secret") {
				t.Errorf("the secret survives: %q", got)
			}
			want := strings.ReplaceAll(f.want, "%s", secret)
			if got != want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", in, got, want)
			}
			if !found {
				t.Error("not reported as a secret")
			}
		})
	}
}

// TestRedactLeavesOrdinarySQL: no secret, no change.
func TestRedactLeavesOrdinarySQL(t *testing.T) {
	for _, s := range []string{
		`SET password_encryption = 'scram-sha-256'`,
		`SELECT password FROM users WHERE id = 1`,
		`SELECT 'password' AS label, 'x'`,
		`CREATE TABLE t (password text, secret_hint text)`,
		`COMMENT ON ROLE a IS 'rotate the password yearly'`,
	} {
		if got, found := Redact(s); got != s || found {
			t.Errorf("Redact(%q) = %q, %v", s, got, found)
		}
	}
}

// quoteAs writes v as a SQL string literal of the given form.
func quoteAs(v string, form uint8) string {
	switch form % 6 {
	case 0:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case 1:
		return "E'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(v) + "'"
	case 2:
		tag := "q"
		for strings.Contains(v, "$"+tag+"$") || strings.HasSuffix(v, "$"+tag) {
			tag += "q"
		}
		return "$" + tag + "$" + v + "$" + tag + "$"
	case 3:
		var b strings.Builder
		b.WriteString("U&'")
		for _, r := range v {
			switch {
			case r == '\'':
				b.WriteString("''")
			case r == '\\' || r >= 0x80 || r < 0x20:
				fmt.Fprintf(&b, "\\+%06X", r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteString("'")
		return b.String()
	case 4: // split across a continuation
		h := len(v) / 2
		for h > 0 && !utf8.RuneStart(v[h]) {
			h--
		}
		return quoteAs(v[:h], 0) + "\n -- continued\n" + quoteAs(v[h:], 0)
	default:
		return "$$" + v + "$$"
	}
}

// FuzzRedact: a random secret written in a random literal form, in a
// random statement (nested in dynamic SQL, a function body or a
// connection string), never survives redaction.
func FuzzRedact(f *testing.F) {
	f.Add("Hunter2Secret", uint8(0), uint8(0))
	f.Add("it's a $$ secret \\", uint8(1), uint8(3))
	f.Add("p@ss w\\ord'", uint8(3), uint8(5))
	f.Fuzz(func(t *testing.T, secret string, form, wrap uint8) {
		Redact("ALTER ROLE a PASSWORD " + secret) // any bytes: no panic
		if len(secret) < 6 || !utf8.ValidString(secret) || strings.ContainsRune(secret, 0) || strings.Contains(secret, "*") {
			return
		}
		lit := quoteAs(secret, form)
		if form%6 == 2 || form%6 == 5 {
			if strings.Contains(secret, "$") {
				return // a $ in a dollar quote's body may close it; covered by the tag search in form 2
			}
		}
		var sql string
		switch wrap % 7 {
		case 0:
			sql = "ALTER ROLE app PASSWORD " + lit
		case 1:
			sql = "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'app', password " + lit + ")"
		case 2:
			sql = "DO $body$ BEGIN EXECUTE " + quoteAs("ALTER ROLE app PASSWORD "+lit, 0) + "; END $body$"
		case 3:
			sql = "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS " + quoteAs("BEGIN ALTER ROLE app PASSWORD "+lit+"; END", 0)
		case 4:
			cv := "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(secret) + "'"
			sql = "ALTER SYSTEM SET primary_conninfo = " + quoteAs("host=p user=rep password="+cv, form)
		case 5:
			sql = "ALTER ROLE app PASSWORD /* note */ -- line\n " + lit + " VALID UNTIL 'infinity'"
		default:
			sql = "SELECT dblink_connect(" + quoteAs("host=h dbname=d password="+lit, 0) + ")"
		}
		got, _ := Redact(sql)
		if strings.Contains(got, secret) || strings.Contains(got, lit) {
			t.Fatalf("Redact(%q) = %q keeps the secret", sql, got)
		}
	})
}
