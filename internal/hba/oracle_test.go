package hba

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// The server is the oracle: pg_hba_file_rules and pg_ident_file_mappings
// re-read the files on every query, so each generated file is compared
// with what PostgreSQL itself makes of it, line by line.

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	stopMajorServers()
	os.Exit(code)
}

var (
	oracleDBs = []string{"all", "all", "sameuser", "samerole", "samegroup", "replication", `"all"`, `"replication"`,
		"app", "postgres", `"Weird DB"`, `"semi;colon"`, `"comma,db"`, `"hash#db"`, `"quote""db"`, "db-1", "dé", "a\"b\"c", "@dbs.txt", "@missing.txt", "/regex.*"}
	oracleUsers = []string{"all", "all", "+admins", `"+admins"`, "+", "alice", `"Bob Smith"`, "app_rw", `"all"`, "@users.txt", `"@users.txt"`, "user,", "sameuser"}
	oracleAddrs = []string{"127.0.0.1/32", "10.0.0.0/8", "0.0.0.0/0", "::1/128", "::/0", "fe80::/10", "2001:db8::/32",
		"192.168.1.0 255.255.255.0", "10.1 255.0.0.0", "0x7f.1/32", "010.0.0.1/32", "127.1/8", "::ffff:10.0.0.1/128",
		"::0102:0304/128", "2001:DB8:0:0:1:0:0:1/64", "10.0.0.0 255.0.255.0", "all", "samehost", "samenet",
		"db.example.com", ".example.com", `"all"`, "10.0.0.0/33", "1.2.3.4/x", "1.2.3.4/", "host.example/8", "300.1.1.1/8",
		"10.0.0.0", "10.0.0.0 ffff::", "::1 255.255.255.255", "1.2.3.4/+8", "1.2.3.4/08", "10.0.0.0,10.1.0.0/16", "12345/32", "08.0.0.1/32"}
	oracleMethods = []string{"trust", "reject", "md5", "password", "scram-sha-256", "scram-sha-256", "peer", "ident", "gss",
		"pam", "ldap", "radius", "cert", "sspi", "bsd", "trusst", "md5,trust"}
)

func oracleOptions(rng *rand.Rand, method string) string {
	pick := func(xs ...string) string { return xs[rng.Intn(len(xs))] }
	if rng.Intn(6) == 0 {
		return pick("unknownopt=1", "noequals", "map=", "clientcert=verify-ca", "clientcert=bogus", "include_realm=0", "pamservice=x", "clientname=CN")
	}
	switch method {
	case "ldap":
		return pick("ldapserver=ldap.example.com ldapprefix=cn= ldapsuffix=,dc=example",
			`ldapserver=ldap.example.com ldapbasedn="dc=example,dc=com" ldapport=636 ldaptls=1`,
			`ldapserver=ldap.example.com ldapbasedn="dc=example,dc=com" ldapsearchattribute=uid`,
			"ldapserver=ldap.example.com", `ldapserver=x ldapprefix=cn= ldapbasedn=dc=x`, "ldapserver=x ldapbasedn=y ldapport=0")
	case "radius":
		return pick("radiusservers=10.0.0.1 radiussecrets=s3cret", `radiusservers="10.0.0.1,10.0.0.2" radiussecrets=a,b radiusports=1812`,
			"radiusservers=10.0.0.1", "radiusservers=10.0.0.1 radiussecrets=x radiusports=abc")
	case "gss":
		return pick("", "include_realm=0", "krb_realm=EXAMPLE.COM map=krb", "include_realm=1 krb_realm=R")
	case "cert":
		return pick("", "map=certmap", "clientcert=verify-full", "clientname=DN")
	case "ident", "peer":
		return pick("", "map=sysmap")
	case "pam":
		return pick("", "pamservice=postgresql", "pam_use_hostname=1")
	case "scram-sha-256", "md5", "password", "trust":
		return pick("", "", "clientcert=verify-full", "clientcert=verify-ca")
	}
	return ""
}

func genHBALine(rng *rand.Rand) string {
	pick := func(xs []string) string { return xs[rng.Intn(len(xs))] }
	list := func(xs []string) string {
		n := 1 + rng.Intn(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = pick(xs)
		}
		return strings.Join(parts, ",")
	}
	switch rng.Intn(40) {
	case 0:
		return ""
	case 1:
		return "# a comment line"
	case 2:
		return "   \t "
	case 3:
		return "host all"
	case 4:
		return "local"
	case 5:
		return "hostx all all 127.0.0.1/32 trust"
	case 6:
		return "include dbs.txt" // a PostgreSQL 16 directive: an error for 15
	case 7:
		return "host /( all 127.0.0.1/32 trust" // a bad regex is only a name before 16
	}
	types := []string{"local", "host", "host", "hostssl", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc", "local,host"}
	typ := pick(types)
	sep := func() string { return []string{" ", "\t", "  ", " \t "}[rng.Intn(4)] }
	parts := []string{typ, list(oracleDBs), list(oracleUsers)}
	if typ != "local" || rng.Intn(10) == 0 {
		parts = append(parts, pick(oracleAddrs))
	}
	m := pick(oracleMethods)
	parts = append(parts, m)
	if o := oracleOptions(rng, m); o != "" {
		parts = append(parts, o)
	}
	line := strings.Join(parts, sep())
	switch rng.Intn(8) {
	case 0:
		line += " # trailing comment"
	case 1:
		// Split the record over two lines with a backslash continuation.
		if i := strings.IndexAny(line[1:], " \t"); i > 0 {
			line = line[:i+1] + " \\\n   " + line[i+1:]
		}
	case 2:
		line += "\r"
	}
	return line
}

func describe(typ string, dbs, users []string, addr, mask, method string, opts []string, warn bool) string {
	w := ""
	if warn {
		w = " WARN"
	}
	return fmt.Sprintf("%s db=%q user=%q addr=%q mask=%q method=%s opts=%q%s", typ, dbs, users, addr, mask, method, opts, w)
}

func describeRule(r *Rule) string {
	var dbs, users, opts []string
	for _, t := range r.Databases {
		dbs = append(dbs, t.Value)
	}
	for _, t := range r.Users {
		users = append(users, t.Value)
	}
	for _, o := range r.Options {
		switch o.Name {
		case "clientname", "pam_use_hostname", "ldapscheme":
			continue // kept by us, not shown by the server's view
		}
		opts = append(opts, o.Name+"="+o.Value)
	}
	if dbs == nil {
		dbs = []string{}
	}
	if users == nil {
		users = []string{}
	}
	if opts == nil {
		opts = []string{}
	}
	addr, mask := "", ""
	switch r.AddrKind {
	case AddrAll, AddrSameHost, AddrSameNet:
		addr = r.AddrKind
	case AddrHostname:
		addr = r.Address
	case AddrCIDR:
		addr, mask = FormatAddr(r.Addr), FormatAddr(r.Mask)
	}
	return describe(r.Type, dbs, users, addr, mask, r.Method, opts, strings.Contains(r.Warning, "record cannot match"))
}

func lineOf(content string, n int) string {
	ls := strings.Split(content, "\n")
	if n-1 < len(ls) && n >= 1 {
		end := n
		for end < len(ls) && strings.HasSuffix(ls[end-1], "\\") {
			end++
		}
		return strings.Join(ls[n-1:end], "\n")
	}
	return "?"
}

// pg_ident_file_mappings exists from 15 on; 13 and 14 have no view to
// compare with (their only account of a bad line is the server log at
// reload), so the oracle runs on 15+.
func TestIdentParserAgreesWithServer(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		if major < 15 {
			t.Skipf("PostgreSQL %d has no pg_ident_file_mappings view", major)
		}
		identOracle(t, major)
	})
}

func identOracle(t *testing.T, major int) {
	start := time.Now()
	srv := serverFor(t, major)
	ctx := pgtest.Ctx(t)
	conn := pgtest.Conn(t, srv, "postgres")
	path := filepath.Join(srv.DataDir, "pg_ident.conf")
	restoreFile(t, srv, path)
	writeFixtures(t, srv, includeFixtures(srv.DataDir))
	rng := rand.New(rand.NewSource(7 + int64(major)))
	names := []string{"sysmap", `"my map"`, "m1,m2", "krb", "@users.txt"}
	sys := []string{"alice", `"Bob Smith"`, `/^(.*)@EXAMPLE\.COM$`, "/^[a-z]+$", "/(", "root", `"/quoted"`, `/x{2`, `/\Z`, `/a{300}`}
	pgu := []string{"alice", "\\1", "postgres", `"Weird Role"`, "a,b", "all", "+grp"}
	if err := srv.WriteFile(filepath.Join(srv.DataDir, "users.txt"), "u1\n", 0o600); err != nil {
		t.Fatal(err)
	}
	files, lines, disagree := 40, 0, 0
	for i := 0; i < files; i++ {
		var sb strings.Builder
		for j := 0; j < 60; j++ {
			if rng.Intn(15) == 0 {
				sb.WriteString([]string{"include inc/ident.conf\n", "include missing.conf\n", "include_dir nodir\n", "include_if_exists none.conf\n"}[rng.Intn(4)])
				continue
			}
			parts := []string{names[rng.Intn(len(names))]}
			k := rng.Intn(5)
			if k > 0 {
				parts = append(parts, sys[rng.Intn(len(sys))])
			}
			if k > 1 {
				parts = append(parts, pgu[rng.Intn(len(pgu))])
			}
			if rng.Intn(6) == 0 {
				parts = append(parts, "# comment")
			}
			sb.WriteString(strings.Join(parts, " ") + "\n")
		}
		content := sb.String()
		if err := srv.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		fileCol := `'pg_ident.conf'`
		if major >= 16 {
			fileCol = "file_name"
		}
		rows, err := conn.Query(ctx, `SELECT line_number, coalesce(map_name,''), coalesce(sys_name,''), coalesce(pg_username,''), coalesce(error,''), `+
			fileCol+` FROM pg_ident_file_mappings() WITH ORDINALITY AS m ORDER BY ordinality`)
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for rows.Next() {
			var ln int
			var m, s, p, e, file string
			if err := rows.Scan(&ln, &m, &s, &p, &e, &file); err != nil {
				t.Fatal(err)
			}
			loc := relLoc(srv.DataDir, file, ln, major)
			if e != "" {
				want = append(want, loc+" ERROR")
			} else {
				want = append(want, fmt.Sprintf("%s %q %q %q", loc, m, s, p))
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		f := ParseIdent(path, []byte(content), Options{Version: major})
		// Maps and errors apart lose the order across include files:
		// merge them back by their position in the parse.
		for _, tl := range newTokenizer(Options{Version: major}).tokenizeFile(path, []byte(content), 0) {
			loc := relLoc(srv.DataDir, tl.file, tl.line, major)
			if tl.err != "" {
				got = append(got, loc+" ERROR")
				continue
			}
			if m, e := parseIdentLine(tl.file, tl); e != "" {
				got = append(got, loc+" ERROR")
			} else {
				got = append(got, fmt.Sprintf("%s %q %q %q", loc, m.Map, m.SystemUser, m.PGUser))
			}
		}
		if len(f.Maps)+len(f.Errors) != len(got) {
			t.Fatalf("ParseIdent gave %d lines, the tokenizer %d", len(f.Maps)+len(f.Errors), len(got))
		}
		lines += len(want)
		for k := 0; k < max(len(want), len(got)); k++ {
			var w, g string
			if k < len(want) {
				w = want[k]
			}
			if k < len(got) {
				g = got[k]
			}
			if w != g {
				disagree++
				if disagree < 6 {
					t.Errorf("ident file %d row %d\nserver: %s\nours:   %s", i, k, w, g)
				}
			}
		}
	}
	summary(t, "ident-parse", major, lines, disagree, start)
}
