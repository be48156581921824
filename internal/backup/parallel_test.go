package backup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func TestPackTables(t *testing.T) {
	defer func(v int64) { splitMin = v }(splitMin)
	splitMin = 10
	tb := func(name string, n int64) catalogTable { return catalogTable{schema: "s", name: name, bytes: n} }
	names := func(parts [][]catalogTable) [][]string {
		var out [][]string
		for _, p := range parts {
			var ns []string
			for _, t := range p {
				ns = append(ns, t.name)
			}
			out = append(out, ns)
		}
		return out
	}
	cases := []struct {
		name string
		cat  []catalogTable
		jobs int
		want [][]string
	}{
		{"one job: nothing split", []catalogTable{tb("a", 100)}, 1, nil},
		{"small tables stay in part 0", []catalogTable{tb("a", 9), tb("b", 1)}, 4, nil},
		// 100 goes to part 1, 90 to part 2, 80 to part 0 (least loaded, 5), 20 to part 0 (85 < 90).
		{"largest first onto the least loaded", []catalogTable{tb("c", 80), tb("a", 100), tb("small", 5), tb("b", 90), tb("d", 20)}, 3,
			[][]string{{"a"}, {"b"}}},
		// a and b open the data parts, c and d fill part 0 (0, then 30 < 40).
		{"part 0 takes its share", []catalogTable{tb("a", 50), tb("b", 40), tb("c", 30), tb("d", 20)}, 3,
			[][]string{{"a"}, {"b"}}},
		{"a data part takes a second table", []catalogTable{tb("a", 50), tb("b", 40), tb("c", 30), tb("d", 20), tb("e", 15)}, 3,
			[][]string{{"a"}, {"b", "e"}}},
		{"empty data parts are dropped", []catalogTable{tb("a", 50)}, 8, [][]string{{"a"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := names(packTables(c.cat, c.jobs))
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("packTables = %v, want %v", got, c.want)
			}
		})
	}
}

// TestTablePatternPgDump checks that a -t pattern made by tablePattern
// selects exactly its table, for names full of pg_dump's wildcards,
// regular expression characters, quotes, dots and upper case.
// ORACLE: the real pg_dump 15 against a real server: which tables
// `pg_dump --schema-only --strict-names -t PATTERN` puts in its script.
func testTablePatternPgDump(t *testing.T, e *env) {
	pgDump := filepath.Join(pg15bin, "pg_dump")
	srv := e.srv
	if err := srv.Exec(pgtest.Ctx(t), "create database patterns"); err != nil {
		t.Fatal(err)
	}
	ctx := pgtest.Ctx(t)
	names := [][2]string{
		{"public", "plain"},
		{"public", "Plain"},
		{"public", "pl*n"},
		{"public", "pl?in"},
		{"public", "a.b"},
		{"public", `q"uote`},
		{"public", "x$|(y)[z]{1}^+\\"},
		{"Odd Schema", "t"},
		{"Odd Schema", "T"},
		{"odd schema", "t"},
	}
	var sql []string
	for _, n := range names {
		sql = append(sql, fmt.Sprintf("create schema if not exists %s", pgx.Identifier{n[0]}.Sanitize()),
			fmt.Sprintf("create table %s (i int)", pgx.Identifier{n[0], n[1]}.Sanitize()))
	}
	if err := srv.ExecIn(ctx, "patterns", sql...); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		p := tablePattern(n[0], n[1])
		cmd := exec.CommandContext(ctx, pgDump, "--schema-only", "--strict-names", "-t", p,
			"-h", "127.0.0.1", "-p", fmt.Sprint(srv.Port), "-U", srv.AdminUser, "-d", "patterns")
		cmd.Env = append(os.Environ(), "PGPASSWORD="+srv.Password)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pg_dump -t %s: %v: %s", p, err, out)
		}
		var got []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "CREATE TABLE ") {
				got = append(got, line)
			}
		}
		want := "CREATE TABLE " + pgx.Identifier{n[0], n[1]}.Sanitize() + " ("
		// pg_dump quotes only where needed; compare unquoted-insensitive forms.
		if len(got) != 1 || !sameTable(got[0], n) {
			t.Errorf("pattern %s for %q.%q selected %q, want one table like %q", p, n[0], n[1], got, want)
		}
	}
}

// sameTable reports whether a pg_dump CREATE TABLE line names schema.name
// (pg_dump quotes identifiers only where needed, fmtId).
func sameTable(line string, n [2]string) bool {
	ident := func(s string) string {
		plain := s != "" && strings.ToLower(s) == s
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				plain = false
			}
		}
		if plain {
			return s
		}
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return line == "CREATE TABLE "+ident(n[0])+"."+ident(n[1])+" ("
}

// TestBackupParallelRoundTrip dumps with Jobs=3 and restores the parts
// into a fresh database in the documented order.
// ORACLE: age CLI and zstd CLI decrypt every part, the real pg_restore
// loads them, and the server's count(*) per table must equal both the
// source's and the manifest's; two tables written in the same
// transactions throughout the dump must restore with equal counts, which
// only one snapshot shared by all parts gives.
func testParallelRoundTrip(t *testing.T, e *env) {
	defer func(v int64) { splitMin = v }(splitMin)
	splitMin = 64 << 10
	ctx := pgtest.Ctx(t)
	e.exec(t, "postgres", "create database par")
	e.exec(t, "par",
		"create schema s2",
		"create table public.big1 (id int primary key, pad text)",
		"create table s2.big2 (id int primary key, pad text)",
		"create table public.twin_a (id bigserial primary key, v int)",
		"create table public.twin_b (id bigserial primary key, a bigint references twin_a)",
		"create table public.small (id int)",
		"insert into public.big1 select g, repeat(md5(g::text), 4) from generate_series(1, 30000) g",
		"insert into s2.big2 select g, repeat(md5(g::text), 2) from generate_series(1, 30000) g",
		"insert into public.twin_a (v) select g from generate_series(1, 5000) g",
		"insert into public.twin_b (a) select id from public.twin_a",
		"insert into public.small values (1), (2), (3)",
		"select lo_from_bytea(0, 'parallel large object')",
		"analyze",
	)
	// Keep writing both twins in single transactions while the dump runs.
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		c, err := e.srv.Connect(context.Background(), "par")
		if err != nil {
			done <- err
			return
		}
		defer c.Close(context.Background())
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := c.Exec(context.Background(), "with a as (insert into twin_a (v) values (0) returning id) insert into twin_b (a) select id from a"); err != nil {
				done <- err
				return
			}
		}
	}()
	res, err := Backup(ctx, e.options("par", func(o *Options) { o.Jobs = 3 }))
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	m := res.Manifest
	if m.Jobs != 3 || len(m.Databases) != 1 {
		t.Fatalf("manifest jobs %d, databases %d", m.Jobs, len(m.Databases))
	}
	d := m.Databases[0]
	if len(d.Files) < 2 {
		t.Fatalf("a parallel dump with two big tables has %d files", len(d.Files))
	}
	parts := map[string]int{}
	for _, tb := range d.Tables {
		parts[tb.Schema+"."+tb.Name] = tb.Part
	}
	if parts["public.big1"] == 0 || parts["s2.big2"] == 0 || parts["public.big1"] == parts["s2.big2"] {
		t.Errorf("big tables not each in their own data part: %v", parts)
	}
	if parts["public.small"] != 0 {
		t.Errorf("small table in part %d", parts["public.small"])
	}
	for i, f := range d.Files {
		if f.Name != backupset.DumpFileName("par", i) {
			t.Errorf("file %d is %q, want %q", i, f.Name, backupset.DumpFileName("par", i))
		}
	}

	e.exec(t, "postgres", "create database restored")
	part0 := filepath.Join(res.Dir, d.Files[0].Name)
	e.restore(t, part0, "restored", "--section=pre-data")
	for _, f := range d.Files[1:] {
		e.restore(t, filepath.Join(res.Dir, f.Name), "restored")
	}
	e.restore(t, part0, "restored", "--section=data")
	e.restore(t, part0, "restored", "--section=post-data")

	rc := pgtest.Conn(t, e.srv, "restored")
	for _, tb := range d.Tables {
		var n int64
		if err := rc.QueryRow(ctx, "select count(*) from "+pgx.Identifier{tb.Schema, tb.Name}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != tb.Rows {
			t.Errorf("%s.%s: manifest %d rows, restored %d", tb.Schema, tb.Name, tb.Rows, n)
		}
	}
	var a, b, lo int64
	if err := rc.QueryRow(ctx, "select (select count(*) from twin_a), (select count(*) from twin_b), (select count(*) from pg_largeobject_metadata)").Scan(&a, &b, &lo); err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("twins restored with %d and %d rows: the parts did not share one snapshot", a, b)
	}
	if lo != 1 || d.Blobs != 1 {
		t.Errorf("large objects: restored %d, manifest %d, want 1", lo, d.Blobs)
	}
	// The foreign key (post-data) was created over the restored data.
	var fks int
	if err := rc.QueryRow(ctx, "select count(*) from pg_constraint where contype = 'f'").Scan(&fks); err != nil || fks != 1 {
		t.Errorf("foreign keys restored: %d (%v)", fks, err)
	}
	t.Logf("parts: %v over %d files", parts, len(d.Files))
}
