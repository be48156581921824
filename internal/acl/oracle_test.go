package acl

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// hostile role names: quoting, separators, unicode, connection-string bait.
var roleNames = []string{"alice", "Bob Smith", `we"ird`, "semi;colon", "x host=evil port=1", "ünïcödé", "UPPER",
	"has,comma", "has=eq", "has/slash", "has{brace}", "trailing ", "new\nline", "a*b", "it's", `\back`, "r_2"}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// grantable lists, per object kind, the privileges GRANT takes for it on
// a major, and the objects of that kind the test creates.
type kindSpec struct {
	on      string   // "TABLE", "SEQUENCE", ...
	privs   []string // SQL names
	objects []string // as GRANT names them
}

func kinds(major int, los []uint32) []kindSpec {
	table := []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
	if major >= 17 {
		table = append(table, "MAINTAIN")
	}
	var lo []string
	for _, o := range los {
		lo = append(lo, fmt.Sprint(o))
	}
	ks := []kindSpec{
		{"TABLE", table, []string{"t0", "t1", "t2", ident("odd t")}},
		{"COLUMN", []string{"SELECT", "INSERT", "UPDATE", "REFERENCES"}, []string{"t0", "t1", "t2"}},
		{"SEQUENCE", []string{"USAGE", "SELECT", "UPDATE"}, []string{"s0", "s1"}},
		{"SCHEMA", []string{"USAGE", "CREATE"}, []string{"n0", ident("n 1")}},
		{"FUNCTION", []string{"EXECUTE"}, []string{"f0()", "f1(int)"}},
		{"TYPE", []string{"USAGE"}, []string{"d0", "e0"}},
		{"LANGUAGE", []string{"USAGE"}, []string{"plpgsql"}},
		{"DATABASE", []string{"CREATE", "CONNECT", "TEMPORARY"}, []string{"db0", "postgres"}},
		{"TABLESPACE", []string{"CREATE"}, []string{"ts0"}},
		{"FOREIGN DATA WRAPPER", []string{"USAGE"}, []string{"fdw0"}},
		{"FOREIGN SERVER", []string{"USAGE"}, []string{"srv0"}},
		{"LARGE OBJECT", []string{"SELECT", "UPDATE"}, lo},
	}
	if major >= 15 {
		ks = append(ks, kindSpec{"PARAMETER", []string{"SET", "ALTER SYSTEM"}, []string{"work_mem", "log_statement", "myext.opt"}})
	}
	return ks
}

// genGrant draws one GRANT or REVOKE that the server takes.
func genGrant(rng *rand.Rand, ks []kindSpec) string {
	k := ks[rng.Intn(len(ks))]
	obj := k.objects[rng.Intn(len(k.objects))]
	var privs []string
	for _, p := range k.privs {
		if rng.Intn(3) == 0 {
			privs = append(privs, p)
		}
	}
	if len(privs) == 0 {
		privs = []string{k.privs[rng.Intn(len(k.privs))]}
	}
	list := strings.Join(privs, ", ")
	if rng.Intn(12) == 0 {
		list = "ALL PRIVILEGES"
	}
	on := k.on + " " + obj
	if k.on == "COLUMN" {
		cols := []string{"c1", "c2", ident("col \"x\"")}
		col := cols[rng.Intn(len(cols))]
		var ps []string
		for _, p := range privs {
			ps = append(ps, p+" ("+col+")")
		}
		list, on = strings.Join(ps, ", "), "TABLE "+obj
	}
	public := rng.Intn(6) == 0
	grantee := "PUBLIC"
	if !public {
		grantee = ident(roleNames[rng.Intn(len(roleNames))])
	}
	if rng.Intn(4) == 0 {
		opt := ""
		if !public && rng.Intn(2) == 0 {
			opt = "GRANT OPTION FOR "
		}
		return fmt.Sprintf("REVOKE %s%s ON %s FROM %s CASCADE", opt, list, on, grantee)
	}
	with := ""
	if !public && rng.Intn(3) == 0 {
		with = " WITH GRANT OPTION"
	}
	return fmt.Sprintf("GRANT %s ON %s TO %s%s", list, on, grantee, with)
}

// setup makes the roles and one or more objects of every kind, owned by
// the hostile roles so that grantors vary.
func setup(ctx context.Context, t *testing.T, srv *localpg.Server, conn *pgx.Conn, major int) []uint32 {
	t.Helper()
	for _, r := range roleNames {
		if _, err := conn.Exec(ctx, "CREATE ROLE "+ident(r)); err != nil {
			t.Fatal(err)
		}
	}
	tsDir := filepath.Join(srv.Dir, "ts0")
	if err := os.MkdirAll(tsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	srv.Chown(tsDir)
	own := func(i int) string { return ident(roleNames[i%len(roleNames)]) }
	stmts := []string{
		"CREATE TABLE t0 (c1 int, c2 text, \"col \"\"x\"\"\" int)", "CREATE TABLE t1 (c1 int, c2 text, \"col \"\"x\"\"\" int)",
		"CREATE TABLE t2 (c1 int, c2 text, \"col \"\"x\"\"\" int)", `CREATE TABLE "odd t" (a int)`,
		"CREATE SEQUENCE s0", "CREATE SEQUENCE s1", "CREATE SCHEMA n0", `CREATE SCHEMA "n 1"`,
		"CREATE FUNCTION f0() RETURNS int LANGUAGE sql AS 'SELECT 1'", "CREATE FUNCTION f1(int) RETURNS int LANGUAGE sql AS 'SELECT $1'",
		"CREATE DOMAIN d0 AS int", "CREATE TYPE e0 AS ENUM ('a')",
		"CREATE DATABASE db0", "CREATE TABLESPACE ts0 LOCATION '" + tsDir + "'",
		"CREATE FOREIGN DATA WRAPPER fdw0", "CREATE SERVER srv0 FOREIGN DATA WRAPPER fdw0",
		"ALTER TABLE t0 OWNER TO " + own(0), "ALTER TABLE t1 OWNER TO " + own(1), "ALTER TABLE t2 OWNER TO " + own(2),
		`ALTER TABLE "odd t" OWNER TO ` + own(3), "ALTER SEQUENCE s0 OWNER TO " + own(4), "ALTER SEQUENCE s1 OWNER TO " + own(5),
		"ALTER SCHEMA n0 OWNER TO " + own(6), `ALTER SCHEMA "n 1" OWNER TO ` + own(7), "ALTER FUNCTION f0() OWNER TO " + own(8),
		"ALTER FUNCTION f1(int) OWNER TO " + own(9), "ALTER DOMAIN d0 OWNER TO " + own(10), "ALTER TYPE e0 OWNER TO " + own(11),
		"ALTER DATABASE db0 OWNER TO " + own(12), "ALTER TABLESPACE ts0 OWNER TO " + own(13),
		"ALTER SERVER srv0 OWNER TO " + own(15), // a data wrapper belongs to a superuser
		"ALTER LANGUAGE plpgsql OWNER TO " + own(16),
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var los []uint32
	for i := 0; i < 3; i++ {
		var o uint32
		if err := conn.QueryRow(ctx, "SELECT lo_create(0)").Scan(&o); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER LARGE OBJECT %d OWNER TO %s", o, own(i+3))); err != nil {
			t.Fatal(err)
		}
		los = append(los, o)
	}
	if _, err := conn.Exec(ctx, `CREATE FUNCTION pg_temp.try_acl(t text[]) RETURNS TABLE(i int, res text, err text)
		LANGUAGE plpgsql AS $$
		BEGIN
			FOR k IN 1..coalesce(array_length(t, 1), 0) LOOP
				i := k;
				BEGIN
					res := t[k]::aclitem::text; err := NULL;
				EXCEPTION WHEN OTHERS THEN
					res := NULL; err := SQLERRM;
				END;
				RETURN NEXT;
			END LOOP;
		END $$`); err != nil {
		t.Fatal(err)
	}
	return los
}

// allACLs is every non-null ACL in the catalogs this database sees.
const allACLs = `SELECT relacl FROM pg_class WHERE relacl IS NOT NULL
	UNION ALL SELECT attacl FROM pg_attribute WHERE attacl IS NOT NULL
	UNION ALL SELECT nspacl FROM pg_namespace WHERE nspacl IS NOT NULL
	UNION ALL SELECT proacl FROM pg_proc WHERE proacl IS NOT NULL
	UNION ALL SELECT typacl FROM pg_type WHERE typacl IS NOT NULL
	UNION ALL SELECT lanacl FROM pg_language WHERE lanacl IS NOT NULL
	UNION ALL SELECT datacl FROM pg_database WHERE datacl IS NOT NULL
	UNION ALL SELECT spcacl FROM pg_tablespace WHERE spcacl IS NOT NULL
	UNION ALL SELECT fdwacl FROM pg_foreign_data_wrapper WHERE fdwacl IS NOT NULL
	UNION ALL SELECT srvacl FROM pg_foreign_server WHERE srvacl IS NOT NULL
	UNION ALL SELECT lomacl FROM pg_largeobject_metadata WHERE lomacl IS NOT NULL`

const explodeRow = `format('%s|%s|%s|%s', pg_get_userbyid(e.grantor),
	CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee) END, e.privilege_type, e.is_grantable)`

func exploded(it Item) []string {
	var out []string
	for _, e := range Explode([]Item{it}) {
		out = append(out, fmt.Sprintf("%s|%s|%s|%v", e.Grantor, e.Grantee, e.Privilege, map[bool]string{true: "t", false: "f"}[e.Grantable]))
	}
	sort.Strings(out)
	return out
}

// TestACLParserAgreesWithServer, on every major: the ACLs of real
// objects of every kind after generated GRANTs and REVOKEs, item by item
// against aclexplode() and array by array against the element list;
// generated aclitem literals against '...'::aclitem (which a major
// refuses, and how it prints the rest); acldefault() per kind and owner.
func TestACLParserAgreesWithServer(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		start := time.Now()
		srv := pgtest.StartMajor(t, major, localpg.Options{})
		ctx := pgtest.Ctx(t)
		conn := pgtest.Conn(t, srv, "postgres")
		los := setup(ctx, t, srv, conn, major)
		ks := kinds(major, los)
		if major >= 15 {
			// Parameters get an ACL row only once granted.
			if _, err := conn.Exec(ctx, "GRANT SET ON PARAMETER work_mem TO alice"); err != nil {
				t.Fatal(err)
			}
		}
		query := allACLs
		if major >= 15 {
			query += "\n\tUNION ALL SELECT paracl FROM pg_parameter_acl WHERE paracl IS NOT NULL"
		}
		rng := rand.New(rand.NewSource(int64(42 + major)))
		items, arrays, bad := 0, 0, 0
		fail := func(format string, args ...any) {
			bad++
			if bad <= 10 {
				t.Errorf("pg%d: "+format, append([]any{major}, args...)...)
			}
		}
		for round := 0; round < 6; round++ {
			var stmts []string
			for i := 0; i < 150; i++ {
				stmts = append(stmts, genGrant(rng, ks))
			}
			if _, err := conn.Exec(ctx, strings.Join(stmts, ";\n")); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			rows, err := conn.Query(ctx, `SELECT x::text, (SELECT array_agg(`+explodeRow+` ORDER BY 1) FROM aclexplode(ARRAY[x]) e)
				FROM (`+query+`) a(acl), unnest(a.acl) x`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var text string
				var want []string
				if err := rows.Scan(&text, &want); err != nil {
					t.Fatal(err)
				}
				items++
				it, err := ParseItem(text)
				strict, err2 := ParseInput(text, major)
				sort.Strings(want)
				if err != nil || err2 != nil || strings.Join(exploded(it), ";") != strings.Join(want, ";") ||
					it.String() != text || strict.String() != text {
					fail("aclitem %q: %v %v\nserver: %v\nours:   %v", text, err, err2, want, exploded(it))
				}
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
			rows, err = conn.Query(ctx, `SELECT acl::text, acl::text[] FROM (`+query+`) a(acl)`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var text string
				var elems []string
				if err := rows.Scan(&text, &elems); err != nil {
					t.Fatal(err)
				}
				arrays++
				got, err := ParseArrayText(text)
				want, err2 := ParseList(elems)
				if err != nil || err2 != nil || fmt.Sprint(got) != fmt.Sprint(want) {
					fail("array %s: %v %v\nparsed %v\nwant   %v", text, err, err2, got, want)
				}
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
		}
		t.Logf("ORACLE acl-parse pg%d: cases=%d disagreements=%d seconds=%.1f (%d arrays)", major, items+arrays, bad, time.Since(start).Seconds(), arrays)

		start, bad = time.Now(), 0
		lits := genLiterals(rng, 2500)
		roles := map[string]bool{"postgres": true}
		for _, r := range roleNames {
			roles[r] = true
		}
		rows, err := conn.Query(ctx, `SELECT i, res, err FROM pg_temp.try_acl($1)`, lits)
		if err != nil {
			t.Fatal(err)
		}
		n, refused := 0, 0
		for rows.Next() {
			var i int
			var res, msg *string
			if err := rows.Scan(&i, &res, &msg); err != nil {
				t.Fatal(err)
			}
			lit := lits[i-1]
			n++
			it, err := ParseInput(lit, major)
			if it.Grantor == "" {
				it.Grantor = "postgres" // the bootstrap superuser, the server's default grantor
			}
			if err == nil && (!roles[it.Grantor] || it.Grantee != Public && !roles[it.Grantee]) {
				err = fmt.Errorf("no such role") // the server looks the names up
			}
			switch {
			case res == nil:
				refused++
				if err == nil {
					fail("literal %q: the server refuses it (%s), we take it as %s", lit, *msg, it)
				}
			case err != nil:
				fail("literal %q: the server takes it as %s, we refuse it: %v", lit, *res, err)
			case it.String() != *res:
				fail("literal %q: server %s, ours %s", lit, *res, it)
			}
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		t.Logf("ORACLE acl-literal pg%d: cases=%d disagreements=%d seconds=%.1f (%d refused)", major, n, bad, time.Since(start).Seconds(), refused)

		start, bad = time.Now(), 0
		n = 0
		for _, k := range "crsdflLnptFSTxo" {
			for _, owner := range append([]string{"postgres"}, roleNames...) {
				n++
				var got []string
				var msg *string
				err := conn.QueryRow(ctx, `SELECT (SELECT acldefault($1::"char", (SELECT oid FROM pg_roles WHERE rolname = $2))::text[]), NULL::text`, string(k), owner).Scan(&got, &msg)
				ours, oerr := Default(byte(k), owner, major)
				if err != nil {
					if oerr == nil {
						fail("acldefault(%c, %q): server error %v, ours %v", k, owner, err, ours)
					}
					continue
				}
				if oerr != nil {
					fail("acldefault(%c, %q) = %v, ours: %v", k, owner, got, oerr)
					continue
				}
				var mine []string
				for _, it := range ours {
					mine = append(mine, it.String())
				}
				if strings.Join(mine, ",") != strings.Join(got, ",") {
					fail("acldefault(%c, %q) = %v, ours %v", k, owner, got, mine)
				}
			}
		}
		t.Logf("ORACLE acldefault pg%d: cases=%d disagreements=%d seconds=%.1f", major, n, bad, time.Since(start).Seconds())
	})
}

// genLiterals draws aclitem literals: well-formed ones with every letter
// (m and s/A too, which older majors refuse), and damaged ones.
func genLiterals(rng *rand.Rand, n int) []string {
	names := append([]string{"postgres"}, roleNames...)
	name := func() string {
		r := names[rng.Intn(len(names))]
		switch rng.Intn(8) {
		case 0:
			return r // unquoted, hostile or not
		case 1:
			return " " + QuoteName(r) + " "
		}
		return QuoteName(r)
	}
	var out []string
	for len(out) < n {
		var sb strings.Builder
		if rng.Intn(5) != 0 {
			sb.WriteString(name())
		}
		sb.WriteByte('=')
		for i := 0; i < len(privOrder); i++ {
			if rng.Intn(3) == 0 {
				sb.WriteByte(privOrder[i])
				if rng.Intn(3) == 0 {
					sb.WriteByte('*')
				}
			}
		}
		switch rng.Intn(14) {
		case 0: // no grantor: the bootstrap superuser, with a warning
		case 1:
			sb.WriteString("/")
		case 2:
			sb.WriteString("/" + name() + " junk")
		case 3:
			sb.WriteString("z/" + name())
		case 4:
			sb.WriteString("*r/" + name())
		case 5:
			sb.WriteString(" /" + name() + "\t")
		case 6:
			sb.WriteString("/" + `"` + strings.Repeat("x", 60+rng.Intn(8)) + `"`)
		case 7:
			sb.WriteString("/\"postgres")
		default:
			sb.WriteString("/" + name())
		}
		out = append(out, sb.String())
	}
	return out
}
