package hba

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// Files the generated pg_hba.conf lines include or @-name, written into
// each server's data directory. ABS stands for the data directory, for
// absolute paths. They cover 16+'s include directives: nesting, relative
// paths (relative to the including file), missing files and directories,
// a directory where a file is expected, recursion past the depth limit.
func includeFixtures(dataDir string) map[string]string {
	m := map[string]string{
		"dbs.txt":    "appdb \"Other DB\"\n# comment\nthird,fourth\n",
		"users.txt":  "carol, +staff\n\"all\" all\n@nested.txt\n",
		"nested.txt": "dave\n",
		"inc/extra.conf": "# included\nhost extra all 10.0.0.0/8 scram-sha-256\nhost bad all 10.0.0.0/33 trust\n" +
			"include leaf.conf\ninclude_if_exists nothere.conf\nhost @../dbs.txt all 10.0.0.0/8 md5\n\n" +
			"local /^inc_.*$ all peer\n",
		"inc/leaf.conf":       "hostssl leaf +admins 10.1.0.0/16 cert\nlocal \"/^leaf_\" all peer\n",
		"inc/self.conf":       "host self all 10.0.0.0/8 md5\ninclude self.conf\n",
		"inc/bad.conf":        "include\ninclude_dir missingdir\nhost bad2 all 10.0.0.0/8 bogus\ninclude_if_exists\n",
		"inc/withdir.conf":    "include_dir ../conf.d\nhost withdir all ::1/128 trust\n",
		"inc/abs.conf":        "include " + dataDir + "/inc/leaf.conf\n",
		"conf.d/10-a.conf":    "hostssl a all 10.3.0.0/16 scram-sha-256\nhost a2 all 10.3.0.0/16 md5 clientcert=verify-full\n",
		"conf.d/20-b.conf":    "hostssl b all 10.2.0.0/16 scram-sha-256\ninclude ../inc/leaf.conf\n",
		"conf.d/.hidden.conf": "host hidden all 0.0.0.0/0 trust\n",
		"conf.d/notes.txt":    "host notes all 0.0.0.0/0 trust\n",
		"conf.d/.conf":        "host dotconf all 0.0.0.0/0 trust\n",
		"conf.d/x.conf~":      "host tilde all 0.0.0.0/0 trust\n",
		"emptydir/.keep":      "",
		"with space/in.conf":  "host spaced all 10.0.0.0/8 md5\n",
		"inc/ident.conf":      "imap /^inc_(.*)$ \\1\nbadline\ninclude leaf-ident.conf\n",
		"inc/leaf-ident.conf": "imap2 root postgres\n",
	}
	// A chain deeper than the server's nesting limit.
	for i := 1; i <= 12; i++ {
		m[fmt.Sprintf("inc/chain%d.conf", i)] = fmt.Sprintf("host chain%d all 10.0.0.0/8 md5\ninclude chain%d.conf\n", i, i+1)
	}
	return m
}

func writeFixtures(t *testing.T, srv *localpg.Server, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(srv.DataDir, name)
		for d := filepath.Dir(p); d != srv.DataDir; d = filepath.Dir(d) {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := srv.Chown(d); err != nil {
				t.Fatal(err)
			}
		}
		if err := srv.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A directory named like a file.
	d := filepath.Join(srv.DataDir, "conf.d", "30-dir.conf")
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	srv.Chown(d)
}

var includeLines = []string{
	"include inc/extra.conf", "include_if_exists inc/extra.conf", "include_if_exists missing.conf", "include missing.conf",
	"include_dir conf.d", "include_dir nodir", "include_dir emptydir", "include inc/self.conf", "include inc/chain1.conf",
	"include inc/chain4.conf", "include conf.d", "include_dir inc/leaf.conf", "include ABS/inc/leaf.conf", `include "inc/extra.conf"`,
	"include inc/leaf.conf,inc/abs.conf", "include_if_exists", "include a b", "INCLUDE inc/leaf.conf", "include @dbs.txt",
	"include inc/bad.conf", "include inc/withdir.conf", "include_dir ABS/conf.d", `include "with space/in.conf"`,
	"include inc/abs.conf", "include_if_exists conf.d", "include_dir", "include_dir conf.d # trailing", "include\tinc/leaf.conf",
	`"include" inc/leaf.conf`, "include_dir inc", "include inc/../inc/leaf.conf",
}

// Regular expressions for database and role fields: 16+ compiles an
// unquoted leading slash; before 16 it is a plain name.
var regexTokens = []string{`/^app_.*$`, `"/^app_.*$"`, `"/("`, `"/a,b"`, `/^(alice|bob)$`, `/(`, `/[[:alpha:]]+`, `/\d+`, `/a{2,1}`, `/[z-a]`,
	`/^$`, `/`, `/.*`, `/a|b`, `/x{3}`, `/(?i)abc`, `/[^/]+`,
	`/x{300}`, `/x{a}`, `/a{,3}`, `/^x{2}$`, `/[{]`, `/\{`, `/(?=a)b`, `/\Z`}

func oauthOptions(rng *rand.Rand) string {
	pick := func(xs ...string) string { return xs[rng.Intn(len(xs))] }
	base := pick(`issuer=https://id.example.com scope="openid postgres"`, `issuer=https://id.example.com scope=openid`,
		`scope=openid`, `issuer=https://id.example.com`, ``, `issuer= scope=x`, `issuer=https://id.example.com scope=`)
	extra := pick("", "", "validator=v1", "validator=v2", "validator=nope", "map=omap", "delegate_ident_mapping=1",
		"delegate_ident_mapping=0", "delegate_ident_mapping=1 map=omap", "validator=v1 delegate_ident_mapping=true", "clientcert=verify-full", "unknownopt=1")
	return strings.TrimSpace(base + " " + extra)
}

func genHBALineFor(rng *rand.Rand, major int) string {
	switch rng.Intn(30) {
	case 0, 1:
		return includeLines[rng.Intn(len(includeLines))]
	case 2:
		typ := []string{"host", "local", "hostssl"}[rng.Intn(3)]
		addr := " 10.0.0.0/8"
		if typ == "local" {
			addr = ""
		}
		return fmt.Sprintf("%s %s %s%s trust", typ, regexTokens[rng.Intn(len(regexTokens))], regexTokens[rng.Intn(len(regexTokens))], addr)
	case 3:
		typ := []string{"host", "local", "hostssl", "hostnossl"}[rng.Intn(4)]
		addr := " 127.0.0.1/32"
		if typ == "local" {
			addr = ""
		}
		return fmt.Sprintf("%s all all%s oauth %s", typ, addr, oauthOptions(rng))
	case 4:
		// oauth options on other methods.
		return "host all all 10.0.0.0/8 " + []string{"scram-sha-256", "md5", "ldap ldapserver=x ldapbasedn=y", "trust"}[rng.Intn(4)] +
			" " + []string{"issuer=https://x", "scope=a", "validator=v1", "delegate_ident_mapping=1"}[rng.Intn(4)]
	}
	return genHBALine(rng)
}

// hbaRow is one row of pg_hba_file_rules, rendered for comparison.
type hbaRow struct {
	loc  string // file:line (the file relative to the data directory)
	desc string
}

func TestHBAParserAgreesWithServer(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		start := time.Now()
		srv := serverFor(t, major)
		ctx := pgtest.Ctx(t)
		conn := pgtest.Conn(t, srv, "postgres")
		hbaPath := filepath.Join(srv.DataDir, "pg_hba.conf")
		restoreFile(t, srv, hbaPath)
		writeFixtures(t, srv, includeFixtures(srv.DataDir))
		unsupported := buildLacks(t, conn)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		// Settings some batches change: ssl (hostssl lines warn without
		// it) and, on 18, the OAuth validator libraries the oauth lines
		// are checked against.
		type setting struct {
			ssl        bool
			validators []string
		}
		settings := []setting{{ssl: true}, {ssl: false}}
		if major >= 18 {
			settings = []setting{{ssl: true, validators: []string{}}, {ssl: true, validators: []string{"v1"}}, {ssl: false, validators: []string{"v1", "v2"}}}
		}
		t.Cleanup(func() {
			srv.Exec(ctx, `ALTER SYSTEM RESET ssl`, `ALTER SYSTEM RESET ALL`, `SELECT pg_reload_conf()`)
		})
		apply := func(s setting) {
			sslVal := "off"
			if s.ssl {
				sslVal = "on"
			}
			stmts := []string{`ALTER SYSTEM SET ssl = ` + sslVal}
			if major >= 18 {
				// A list setting: each name its own literal ('v1,v2' would
				// be one library named "v1,v2"); empty is the default.
				if len(s.validators) == 0 {
					stmts = append(stmts, `ALTER SYSTEM RESET oauth_validator_libraries`)
				} else {
					stmts = append(stmts, `ALTER SYSTEM SET oauth_validator_libraries = '`+strings.Join(s.validators, `', '`)+`'`)
				}
			}
			stmts = append(stmts, `SELECT pg_reload_conf()`)
			for _, q := range stmts {
				_, err := conn.Exec(ctx, q)
				must(err)
			}
			// The reload reaches this backend asynchronously: wait until
			// it shows the new values.
			want := sslVal
			if major >= 18 {
				want += "|" + strings.Join(s.validators, ",")
			}
			q := `SELECT current_setting('ssl')`
			if major >= 18 {
				q += ` || '|' || current_setting('oauth_validator_libraries')`
			}
			for i := 0; ; i++ {
				var got string
				must(conn.QueryRow(ctx, q).Scan(&got))
				if strings.ReplaceAll(strings.ReplaceAll(got, `"`, ""), " ", "") == want {
					return
				}
				if i > 400 {
					t.Fatalf("settings not reloaded: %s, want %s", got, want)
				}
				time.Sleep(25 * time.Millisecond)
			}
		}

		batches, perBatch := 40, 90
		if testing.Short() {
			batches = 8
		}
		rng := rand.New(rand.NewSource(20261122 + int64(major)))
		cases, disagree := 0, 0
		for b := 0; b < batches; b++ {
			s := settings[b%len(settings)]
			if b < len(settings) || b%len(settings) != (b-1)%len(settings) {
				apply(s)
			}
			var sb strings.Builder
			for j := 0; j < perBatch; j++ {
				sb.WriteString(strings.ReplaceAll(genHBALineFor(rng, major), "ABS", srv.DataDir))
				sb.WriteString("\n")
			}
			content := sb.String()
			must(srv.WriteFile(hbaPath, content, 0o600))
			want := serverHBARows(t, conn, major, srv.DataDir)
			var got []hbaRow
			rule := 0
			parseOrdered(hbaPath, []byte(content), Options{SSL: s.ssl, Version: major, OAuthValidators: s.validators, Unsupported: unsupported}, func(r *Rule, e *ParseError) {
				if e != nil {
					got = append(got, hbaRow{relLoc(srv.DataDir, e.File, e.Line, major), errDesc(e.Msg)})
					// A line the server fails without a message of its own
					// gets a rule number (it looks like a rule to the
					// view), unless an earlier warning filled the message.
					if k := len(got) - 1; isSilent(e.Msg) && k < len(want) && want[k].desc == "ERROR " {
						rule++
					}
					return
				}
				if r.Method == "oauth" && s.validators != nil {
					// 18's validator check clears the line's message, and
					// with it the view's "cannot match" warning (the line
					// still cannot match; we keep saying so).
					cp := *r
					cp.Warning = ""
					r = &cp
				}
				d := describeRule(r)
				if major >= 16 {
					// A line loaded with a "cannot match" warning has an
					// error in the view, and no rule number.
					n := 0
					if !strings.Contains(r.Warning, "record cannot match") {
						rule++
						n = rule
					}
					d = fmt.Sprintf("#%d %s", n, d)
				}
				got = append(got, hbaRow{relLoc(srv.DataDir, r.File, r.Line, major), d})
			})
			cases += len(want)
			if os.Getenv("HBA_DUMP") == strconv.Itoa(b) {
				for k := range min(len(want), len(got)) {
					t.Logf("DUMP %d %s %s | %s", k, want[k].loc, want[k].desc, got[k].desc)
				}
			}
			n := max(len(want), len(got))
			for k := 0; k < n; k++ {
				var w, g hbaRow
				if k < len(want) {
					w = want[k]
				}
				if k < len(got) {
					g = got[k]
				}
				if w == g || (w.loc == g.loc && errMatches(w.desc, g.desc)) {
					continue
				}
				disagree++
				if disagree <= 4 {
					ln := 0
					fmt.Sscanf(w.loc[strings.LastIndexByte(w.loc, ':')+1:], "%d", &ln)
					text := "(included)"
					if strings.HasPrefix(w.loc, "pg_hba.conf:") {
						text = lineOf(content, ln)
					}
					t.Errorf("batch %d row %d: %s\nserver: %s %s\nours:   %s %s", b, k, text, w.loc, w.desc, g.loc, g.desc)
				}
			}
		}
		summary(t, "hba-parse", major, cases, disagree, start)
	})
}

func relLoc(dataDir, file string, line, major int) string {
	if major < 16 {
		file = "pg_hba.conf" // the view names no file before 16
	}
	if rel, err := filepath.Rel(dataDir, file); err == nil {
		file = rel
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// buildLacks lists the authentication methods the server was built
// without, from its configure flags (the registry's builds have no
// GSSAPI, LDAP or PAM; Debian's have all).
func buildLacks(t *testing.T, conn *pgx.Conn) []string {
	var conf string
	if err := conn.QueryRow(pgtest.Ctx(t), `SELECT setting FROM pg_config WHERE name = 'CONFIGURE'`).Scan(&conf); err != nil {
		t.Fatal(err)
	}
	lacks := []string{}
	for flag, m := range map[string]string{"--with-gssapi": "gss", "--with-ldap": "ldap", "--with-pam": "pam"} {
		if !strings.Contains(conf, flag) {
			lacks = append(lacks, m)
		}
	}
	return lacks
}

func errDesc(msg string) string { return "ERROR " + msg }

// silentErrors are our messages for checks where the server sets no
// message of its own (the row's error is empty, or still holds an
// earlier "cannot match" warning of the same line).
var silentErrors = []string{"invalid RADIUS port number", "invalid value for clientcert"}

// errMatches compares error rows whose text differs on purpose: we never
// echo the content of included files nor the tail of a credential, and
// regular expression errors are worded by different engines.
func errMatches(server, ours string) bool {
	s, okS := strings.CutPrefix(server, "ERROR ")
	o, okO := strings.CutPrefix(ours, "ERROR ")
	if !okS || !okO {
		return false
	}
	switch {
	case strings.HasSuffix(o, "(content of an included file is not quoted)"),
		strings.Contains(o, "after a credential option") && strings.HasPrefix(s, "authentication option not in name=value format"):
		return true
	case strings.HasPrefix(s, "invalid regular expression "):
		// The pattern as quoted must agree, the engine's reason may not.
		pat, _, _ := strings.Cut(strings.TrimPrefix(s, "invalid regular expression "), ": ")
		return strings.HasPrefix(o, "invalid regular expression "+pat+": ")
	}
	return isSilent(o) && (s == "" || strings.Contains(s, "record cannot match"))
}

func isSilent(msg string) bool {
	for _, e := range silentErrors {
		if strings.HasPrefix(msg, e) {
			return true
		}
	}
	return false
}

func serverHBARows(t *testing.T, conn *pgx.Conn, major int, dataDir string) []hbaRow {
	t.Helper()
	ctx := pgtest.Ctx(t)
	// The function's own order is the file's, include files expanded in
	// place; ordinality keeps it.
	extra := `'pg_hba.conf', 0`
	if major >= 16 {
		extra = `file_name, coalesce(rule_number, 0)`
	}
	q := `SELECT line_number, coalesce(type,''), coalesce(database,'{}'), coalesce(user_name,'{}'),
		coalesce(address,''), coalesce(netmask,''), coalesce(auth_method,''), coalesce(options,'{}'), coalesce(error,''), ` +
		extra + ` FROM pg_hba_file_rules() WITH ORDINALITY AS r ORDER BY ordinality`
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []hbaRow
	for rows.Next() {
		var ln, ruleNo int
		var typ, addr, mask, method, errText, file string
		var dbs, users, opts []string
		if err := rows.Scan(&ln, &typ, &dbs, &users, &addr, &mask, &method, &opts, &errText, &file, &ruleNo); err != nil {
			t.Fatal(err)
		}
		loc := relLoc(dataDir, file, ln, major)
		if typ == "" {
			out = append(out, hbaRow{loc, errDesc(errText)})
			continue
		}
		for k, o := range opts {
			// The parser keeps no credential: compare masked.
			if n, _, _ := strings.Cut(o, "="); IsSecretOption(n) {
				opts[k] = n + "=" + Masked
			}
		}
		d := describe(typ, dbs, users, addr, mask, method, opts, errText != "")
		if major >= 16 {
			d = fmt.Sprintf("#%d %s", ruleNo, d)
		}
		out = append(out, hbaRow{loc, d})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
