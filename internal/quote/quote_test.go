package quote

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// fragments are the pieces hostile names are built from.
var fragments = []string{
	"a", "Z", "x1", "1", "9lives", "_", "$", "é", "名前", "😀", " ", "  ", "\t", "\n", "\r\n", "\x1b]0;t\x07", "\x1b[2J", "\u202e", "\u2066", "\u200b", "\u0085", "\u2028",
	`"`, `""`, `'`, `''`, `\`, `\\`, `\'`, `\"`, ";", "; DROP TABLE x; --", "--", "/*", "*/", "$$", "$t$", "U&", "E'", "&", "#", ",", "+", "@", "/", "=", "]", "[", "(", ")", ".",
	"all", "user", "current_user", "session_user", "select", "table", "from", "public", "none", "sameuser", "samerole", "replication", "abort", "json", "system_user",
	"\x7f", "\x01", "\x00", "\xff",
}

// hostileNames returns the fixed hostile names and n generated ones, each
// at most 63 bytes (NAMEDATALEN-1) so the server does not truncate them.
func hostileNames(n int) []string {
	names := []string{"current_user", "user", "all", "select", "1startsdigit", `a"; DROP TABLE x; --`, "z\nDROP TABLE canary; --",
		"Upper", "abort", "json", "system_user", "x\x1b]0;title\x07\x1b[2J", "rtl\u202eevil", `back\slash`, `q'uote`, "tab\tbed", "ok_name", "_x", "a1",
		"é", "名前", "😀", `U&"x"`, "\\0041"}
	rng := rand.New(rand.NewSource(10))
	for len(names) < n {
		var b strings.Builder
		for k := 1 + rng.Intn(4); k > 0; k-- {
			b.WriteString(fragments[rng.Intn(len(fragments))])
		}
		s := b.String()
		for len(s) > 63 {
			s = s[:len(s)-1]
		}
		names = append(names, s)
	}
	return names
}

// serverName reports whether the server can hold name at all.
func serverName(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func hasUnsafe(s string) bool {
	for _, r := range s {
		if !oneLine(r) {
			return true
		}
	}
	return !utf8.ValidString(s)
}

// assertOneLine fails when printed text could break a line or a terminal.
func assertOneLine(t *testing.T, what, in, out string) {
	t.Helper()
	for _, r := range out {
		if r != '\\' && !oneLine(r) {
			t.Fatalf("%s(%q) = %q: holds %U", what, in, out, r)
		}
	}
}

func TestKeywordsMatchServer(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT word, catcode FROM pg_get_keywords()")
	if err != nil {
		t.Fatal(err)
	}
	cats := map[string]Category{"U": Unreserved, "C": ColName, "T": TypeFuncName, "R": Reserved}
	n := 0
	for rows.Next() {
		var w, cc string
		if err := rows.Scan(&w, &cc); err != nil {
			t.Fatal(err)
		}
		n++
		if got, ok := Keyword(w); !ok || got != cats[cc] {
			t.Errorf("keyword %q: ours %v (%v), server %s", w, got, ok, cc)
		}
	}
	if rows.Err() != nil || n < 400 {
		t.Fatalf("read %d keywords: %v", n, rows.Err())
	}
}

func TestIdentTable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc", "abc"}, {"current_user", `"current_user"`}, {"user", `"user"`}, {"1startsdigit", `"1startsdigit"`},
		{"abort", "abort"}, {"json", `"json"`}, {"Upper", `"Upper"`}, {`a"b`, `"a""b"`}, {"", `""`},
		{"z\nDROP", `U&"z\000ADROP"`}, {`b\s` + "\x1b", `U&"b\\s\001B"`}, {"r\u202e", `U&"r\202E"`}, {"😀", `"😀"`},
	} {
		if got := Ident(tc.in); got != tc.want {
			t.Errorf("Ident(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestIdentOracle: the server reads each quoted name back as exactly the
// name (as a column alias, and as a role and a schema read back from the
// catalogs), and where the name needs no escapes ours is quote_ident()'s.
func TestIdentOracle(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var names []string
	for _, n := range hostileNames(3000) {
		if serverName(n) {
			names = append(names, n)
		}
	}
	for _, scs := range []string{"on", "off"} {
		if _, err := c.Exec(ctx, "SET standard_conforming_strings = "+scs); err != nil {
			t.Fatal(err)
		}
		for start := 0; start < len(names); start += 200 {
			batch := names[start:min(start+200, len(names))]
			cols := make([]string, len(batch))
			for i, n := range batch {
				q := Ident(n)
				assertOneLine(t, "Ident", n, q)
				cols[i] = "1 AS " + q
			}
			rows, err := c.Query(ctx, "SELECT "+strings.Join(cols, ", ")+" -- "+Ident(batch[0]), pgx.QueryExecModeExec)
			if err != nil {
				t.Fatalf("batch at %d: %v", start, err)
			}
			fds := rows.FieldDescriptions()
			for i, fd := range fds {
				if fd.Name != batch[i] {
					t.Errorf("Ident(%q) = %s reads back as %q", batch[i], Ident(batch[i]), fd.Name)
				}
			}
			rows.Close()
		}
	}
	if _, err := c.Exec(ctx, "RESET standard_conforming_strings"); err != nil {
		t.Fatal(err)
	}
	serverKW := map[string]bool{}
	kwRows, err := c.Query(ctx, "SELECT word FROM pg_get_keywords()")
	if err != nil {
		t.Fatal(err)
	}
	for kwRows.Next() {
		var w string
		kwRows.Scan(&w)
		serverKW[w] = true
	}
	for _, n := range names {
		if hasUnsafe(n) {
			continue
		}
		var want string
		if err := c.QueryRow(ctx, "SELECT quote_ident($1)", n).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if _, inServer := serverKW[n]; !inServer {
			if _, ours := Keyword(n); ours {
				continue // a keyword of a newer major: quoting it is safe everywhere
			}
		}
		if got := Ident(n); got != want {
			t.Errorf("Ident(%q) = %s, quote_ident = %s", n, got, want)
		}
	}
	// Objects with hostile names, read back from the catalogs.
	for i, n := range names[:300] {
		if n == "public" || n == "none" || strings.HasPrefix(n, "pg_") {
			continue // reserved role names
		}
		q := Ident(n)
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var role, schema string
		_, err = tx.Exec(ctx, "CREATE ROLE "+q+"; CREATE SCHEMA "+q+" AUTHORIZATION "+q, pgx.QueryExecModeSimpleProtocol)
		if err == nil {
			err = tx.QueryRow(ctx, "SELECT r.rolname, n.nspname FROM pg_roles r JOIN pg_namespace n ON n.nspowner = r.oid WHERE r.rolname = $1", n).Scan(&role, &schema)
		}
		if err != nil {
			t.Errorf("name %d %q as %s: %v", i, n, q, err)
		} else if role != n || schema != n {
			t.Errorf("name %q as %s: role %q, schema %q", n, q, role, schema)
		}
		tx.Rollback(ctx)
	}
}

func TestQualifiedAndFunction(t *testing.T) {
	if got := Qualified(`a"; DROP TABLE x; --`, "f"); got != `"a""; DROP TABLE x; --".f` {
		t.Errorf("Qualified = %s", got)
	}
	for _, tc := range []struct{ args, want string }{
		{"", ""}, {"integer, text", "integer, text"}, {`"x y" integer, VARIADIC b text[]`, `"x y" integer, VARIADIC b text[]`},
		{`a public."my""type"`, `a public."my""type"`}, {"\"n\nl\" integer", `U&"n\000Al" integer`},
		{"integer); DROP TABLE x; --", ""}, {"a 'x'", ""}, {`"unterminated`, ""}, {"x\ny", ""},
	} {
		got, err := Args(tc.args)
		if tc.want == "" && tc.args != "" {
			if !errors.Is(err, ErrArgs) {
				t.Errorf("Args(%q) = %q, %v; want ErrArgs", tc.args, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Args(%q) = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
}

// TestFunctionOracle: the server's own identity arguments of functions
// with hostile parameter and type names go through Args and name the
// function again (to_regprocedure finds it).
func TestFunctionOracle(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for i, n := range []string{"select", "z\nDROP TABLE canary; --", `a"; DROP TABLE x; --`, "x\x1b[2J", "rtl\u202e", `b\s`} {
		q := Ident(n)
		sql := fmt.Sprintf("CREATE SCHEMA %s; CREATE TYPE %s.%s AS (v int); CREATE FUNCTION %s.%s(%s %s.%s, VARIADIC %s int[]) RETURNS int LANGUAGE sql AS 'SELECT 1'",
			q, q, q, q, q, Ident(n+"p"), q, q, Ident(n+"v"))
		if _, err := tx.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		var args string
		if err := tx.QueryRow(ctx, "SELECT pg_get_function_identity_arguments(p.oid) FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = $1", n).Scan(&args); err != nil {
			t.Fatal(err)
		}
		fn, err := Function(n, n, args)
		if err != nil {
			t.Fatalf("Function(%q, %q): %v", n, args, err)
		}
		assertOneLine(t, "Function", args, fn)
		var comment *string
		if _, err := tx.Exec(ctx, "COMMENT ON FUNCTION "+fn+" IS 'found'"); err != nil {
			t.Fatalf("%s does not name the function: %v", fn, err)
		}
		if err := tx.QueryRow(ctx, "SELECT obj_description(p.oid, 'pg_proc') FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = $1", n).Scan(&comment); err != nil || comment == nil || *comment != "found" {
			t.Errorf("%s: comment %v (%v)", fn, comment, err)
		}
	}
}

func TestLiteralOracle(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var vals []string
	for _, n := range hostileNames(3000) {
		if utf8.ValidString(n) && !strings.ContainsRune(n, 0) {
			vals = append(vals, n)
		}
	}
	for _, scs := range []string{"on", "off"} {
		if _, err := c.Exec(ctx, "SET standard_conforming_strings = "+scs); err != nil {
			t.Fatal(err)
		}
		for start := 0; start < len(vals); start += 200 {
			batch := vals[start:min(start+200, len(vals))]
			lits := make([]string, len(batch))
			for i, v := range batch {
				lits[i] = Literal(v)
				assertOneLine(t, "Literal", v, lits[i])
			}
			var got []string
			if err := c.QueryRow(ctx, "SELECT ARRAY["+strings.Join(lits, ", ")+"]::text[] -- "+lits[0], pgx.QueryExecModeExec).Scan(&got); err != nil {
				t.Fatalf("scs=%s batch at %d: %v", scs, start, err)
			}
			for i := range batch {
				if got[i] != batch[i] {
					t.Errorf("Literal(%q) = %s reads back as %q", batch[i], lits[i], got[i])
				}
			}
		}
	}
	if _, err := c.Exec(ctx, "RESET standard_conforming_strings"); err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if hasUnsafe(v) {
			continue
		}
		var want string
		if err := c.QueryRow(ctx, "SELECT quote_literal($1)", v).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := Literal(v); got != want {
			t.Errorf("Literal(%q) = %s, quote_literal = %s", v, got, want)
		}
	}
}

// TestShellOracle: sh reads each quoted word back as one argument, equal to
// the original.
func TestShellOracle(t *testing.T) {
	var words []string
	for _, n := range hostileNames(2000) {
		if !strings.ContainsRune(n, 0) {
			words = append(words, n)
		}
	}
	for start := 0; start < len(words); start += 200 {
		batch := words[start:min(start+200, len(words))]
		script := "printf '%s\\0'"
		for _, w := range batch {
			script += " " + Shell(w)
		}
		out, err := exec.Command("sh", "-c", script).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if len(got) != len(batch) {
			t.Fatalf("batch at %d: %d words came back, want %d", start, len(got), len(batch))
		}
		for i := range batch {
			if got[i] != batch[i] {
				t.Errorf("Shell(%q) = %s reads back as %q", batch[i], Shell(batch[i]), got[i])
			}
		}
	}
}

// TestConfValueOracle: pg_file_settings reads every quoted value back
// unchanged from an included file.
func TestConfValueOracle(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	if err := srv.AppendConf("include_if_exists 'quote_oracle.conf'"); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, n := range hostileNames(1500) {
		if utf8.ValidString(n) && !strings.ContainsRune(n, 0) {
			vals = append(vals, n)
		}
	}
	if _, err := ConfValue("a\x00b"); !errors.Is(err, ErrNotRepresentable) {
		t.Errorf("ConfValue with NUL: %v", err)
	}
	var file strings.Builder
	for i, v := range vals {
		q, err := ConfValue(v)
		if err != nil {
			t.Fatal(err)
		}
		assertOneLine(t, "ConfValue", v, q)
		fmt.Fprintf(&file, "pgaegis.v%d = %s    # %s\n", i, q, q)
	}
	if err := srv.WriteDataFile("quote_oracle.conf", file.String()); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT name, setting, error FROM pg_file_settings WHERE sourcefile LIKE '%quote_oracle.conf'")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var name string
		var setting, errText *string
		if err := rows.Scan(&name, &setting, &errText); err != nil {
			t.Fatal(err)
		}
		if errText != nil || setting == nil {
			t.Fatalf("%s: error %v", name, errText)
		}
		var i int
		fmt.Sscanf(name, "pgaegis.v%d", &i)
		if *setting != vals[i] {
			t.Errorf("ConfValue(%q) reads back as %q", vals[i], *setting)
		}
		seen++
	}
	if seen != len(vals) {
		t.Fatalf("pg_file_settings has %d of %d values (%v)", seen, len(vals), rows.Err())
	}
}

// TestHBATokenOracle: pg_hba_file_rules reads each token back as the name;
// a name with a line break is refused.
func TestHBATokenOracle(t *testing.T) {
	srv := pgtest.Start(t, localpgOptions())
	ctx := context.Background()
	for _, tc := range []struct{ in, want string }{
		{"app", "app"}, {"all", `"all"`}, {"samegroup", `"samegroup"`}, {"+admins", `"+admins"`}, {"@f", `"@f"`},
		{"/re", `"/re"`}, {"a b", `"a b"`}, {"a,b", `"a,b"`}, {"a#b", `"a#b"`}, {`a"b`, `"a""b"`}, {"a+b", "a+b"},
	} {
		if got, err := HBAToken(tc.in); err != nil || got != tc.want {
			t.Errorf("HBAToken(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"z\nDROP", "cr\r", "nul\x00"} {
		if _, err := HBAToken(bad); !errors.Is(err, ErrNotRepresentable) {
			t.Errorf("HBAToken(%q): %v, want ErrNotRepresentable", bad, err)
		}
	}
	var names []string
	for _, n := range hostileNames(1500) {
		if _, err := HBAToken(n); err == nil && serverName(n) {
			names = append(names, n)
		}
	}
	var file strings.Builder
	file.WriteString("local all all trust\nhost all all 127.0.0.1/32 trust\n")
	for _, n := range names {
		tok, _ := HBAToken(n)
		assertOneLine(t, "HBAToken", n, tok)
		fmt.Fprintf(&file, "host %s %s 127.0.0.1/32 reject    # %s\n", tok, tok, tok)
	}
	if err := srv.WriteDataFile("pg_hba.conf", file.String()); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT line_number, database, user_name, error FROM pg_hba_file_rules ORDER BY line_number")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var line int
		var db, user []string
		var errText *string
		if err := rows.Scan(&line, &db, &user, &errText); err != nil {
			t.Fatal(err)
		}
		if line <= 2 {
			continue
		}
		n := names[line-3]
		if errText != nil {
			t.Errorf("line %d for %q: %s", line, n, *errText)
			continue
		}
		if len(db) != 1 || db[0] != n || len(user) != 1 || user[0] != n {
			tok, _ := HBAToken(n)
			t.Errorf("HBAToken(%q) = %s reads back as database %q user %q", n, tok, db, user)
		}
		seen++
	}
	if seen != len(names) {
		t.Fatalf("pg_hba_file_rules has %d of %d lines (%v)", seen, len(names), rows.Err())
	}
}

func TestService(t *testing.T) {
	if v, err := ServiceValue("/etc/ssl/a b.crt"); err != nil || v != "/etc/ssl/a b.crt" {
		t.Errorf("ServiceValue = %q, %v", v, err)
	}
	for _, bad := range []string{"a\nhost=evil", "trail ", "\x00", " lead"} {
		if _, err := ServiceValue(bad); !errors.Is(err, ErrNotRepresentable) {
			t.Errorf("ServiceValue(%q): %v", bad, err)
		}
	}
	for _, bad := range []string{"a]b", "x\n[y", ""} {
		if _, err := ServiceName(bad); !errors.Is(err, ErrNotRepresentable) {
			t.Errorf("ServiceName(%q): %v", bad, err)
		}
	}
}

func localpgOptions() localpg.Options { return localpg.Options{} }

// FuzzOneLine: whatever the input, no quoter lets a line break, control or
// bidi character through raw, and Args never panics.
func FuzzOneLine(f *testing.F) {
	for _, s := range hostileNames(50) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		assertOneLine(t, "Ident", s, Ident(s))
		assertOneLine(t, "Literal", s, Literal(s))
		if q, err := ConfValue(s); err == nil {
			assertOneLine(t, "ConfValue", s, q)
		}
		if q, err := HBAToken(s); err == nil {
			assertOneLine(t, "HBAToken", s, q)
		}
		if q, err := Args(s); err == nil {
			assertOneLine(t, "Args", s, q)
		}
	})
}
