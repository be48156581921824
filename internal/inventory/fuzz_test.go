package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// FuzzLoad: random bytes and mutated inventories load or fail with
// placed errors; nothing panics. Files the input names are confined to
// the input's directory (load's root), so random text cannot read the
// system.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	more, _ := filepath.Glob("testdata/good/teams/*.yaml")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("servers: [{name: a, conninfo: 'host=x', for: {n: 1..3}}]"))
	f.Add([]byte("\x00\xff{[&a *a"))
	f.Add([]byte("servers: [{name: a, conninfo: 'postgresql://u@h/d?pass%77ord=x'}]"))
	f.Add([]byte("servers: [{name: a, conninfo: \"host=h password = 'x y'\"}]"))
	isolate(f)
	dir := f.TempDir()
	os.WriteFile(filepath.Join(dir, "w.yaml"), []byte("waivers: []\n"), 0o644)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "inv.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		inv, err := load(p, dir)
		if err == nil {
			if len(inv.Servers) == 0 {
				t.Fatal("loaded without servers")
			}
			for _, s := range inv.Servers {
				if s.Name == "" || (s.Conninfo == "" && s.Service == "") {
					t.Fatalf("incomplete server %+v", s)
				}
				// No PG* variables and no pgpass here: a password pgx finds
				// came from the inventory itself, which must have been refused.
				dsn, err := s.dsn()
				if err != nil {
					continue
				}
				if cfg, err := pgx.ParseConfig(dsn); err == nil && cfg.Password != "" {
					t.Fatalf("server %s: an inline password was accepted", s.Name)
				}
			}
			return
		}
		var list Errors
		if !errors.As(err, &list) || len(list) == 0 || len(list) > maxErrors+1 { // +1: the "more problems follow" line
			t.Fatalf("%T %v", err, err)
		}
		for _, e := range list {
			if e.Pos.File == "" || e.Pos.Line < 1 || strings.TrimSpace(e.Msg) == "" {
				t.Fatalf("unplaced error %q", e.Error())
			}
		}
	})
}

func writeBig(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("defaults:\n  labels: {env: prod}\n  schedule: every 6h\n  profile: cis-17\nservers:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: db%04d\n    conninfo: host=db%04d.example.com port=%d dbname=app user=pgaegis sslmode=verify-full\n    password_env: DB%04d_PW\n    labels: {team: t%d, region: r%d}\n    schedule: \"%d */6 * * *\"\n",
			i, i, 5432+i%8, i, i%7, i%3, i%60)
	}
	p := filepath.Join(tb.TempDir(), "big.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestLoad500(t *testing.T) {
	isolate(t)
	inv, err := Load(writeBig(t, 500))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Servers) != 500 || inv.Servers[499].Name != "db0499" || inv.Servers[499].Labels["team"] != "t2" {
		t.Fatalf("%d servers", len(inv.Servers))
	}
}

// BenchmarkLoad500: a 500-server inventory, each entry parsed as a scan
// would parse it (go test -bench Load500 ./internal/inventory).
func BenchmarkLoad500(b *testing.B) {
	isolate(b)
	p := writeBig(b, 500)
	for b.Loop() {
		if _, err := Load(p); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzConnSettings: the key=value reader never panics and never loops.
func FuzzConnSettings(f *testing.F) {
	for _, s := range []string{"host=a port=5 passfile='/x y\\'z'", "a='", "=", "k = v\\", "postgresql://h/d?sslkey=/k&sslkey=/j", "x\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { connSettings(s) })
}
