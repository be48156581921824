package guc

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// serverParam is one pg_settings row, as the catalogue models it.
type serverParam struct {
	Name, VarType, Unit, Context, BootVal, Min, Max string
	EnumVals                                        []string
}

// readSettings reads a server's built-in parameters (no extension's
// placeholders: those are not the server's knowledge).
func readSettings(ctx context.Context, conn *pgx.Conn) (map[string]serverParam, error) {
	rows, err := conn.Query(ctx, `SELECT name, vartype, coalesce(unit,''), context, coalesce(boot_val,''),
		coalesce(min_val,''), coalesce(max_val,''), coalesce(enumvals, '{}') FROM pg_settings
		WHERE name !~ '[.]' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]serverParam{}
	for rows.Next() {
		var p serverParam
		if err := rows.Scan(&p.Name, &p.VarType, &p.Unit, &p.Context, &p.BootVal, &p.Min, &p.Max, &p.EnumVals); err != nil {
			return nil, err
		}
		out[p.Name] = p
	}
	return out, rows.Err()
}

// The catalogue is regenerated from the installed servers with
// PGAEGIS_GUC_UPDATE=1 (every major, and a second build of one major to
// find the build-dependent defaults); TestCatalogAgreesWithPgSettings then
// holds it to every major's pg_settings.
func TestUpdateCatalog(t *testing.T) {
	if os.Getenv("PGAEGIS_GUC_UPDATE") == "" {
		t.Skip("set PGAEGIS_GUC_UPDATE=1 to regenerate catalog.json from the installed servers")
	}
	var mu sync.Mutex
	byMajor := map[int]map[string]serverParam{}
	var builds []map[string]serverParam // other builds of a major, for build-dependent values
	t.Run("read", func(t *testing.T) {
		pgtest.EachMajor(t, func(t *testing.T, major int) {
			srv := pgtest.StartMajor(t, major, localpg.Options{})
			ctx := pgtest.Ctx(t)
			conn := pgtest.Conn(t, srv, "postgres")
			s, err := readSettings(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			byMajor[major] = s
			mu.Unlock()
			// A second build of the same major (Debian's and the registry's).
			for _, dir := range otherBuilds(major, srv.BinDir) {
				o, err := localpg.Start(ctx, localpg.Options{BinDir: dir})
				if err != nil {
					t.Fatal(err)
				}
				c2, err := o.Connect(ctx, "postgres")
				if err != nil {
					o.Stop()
					t.Fatal(err)
				}
				s2, err := readSettings(ctx, c2)
				c2.Close(ctx)
				o.Stop()
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				builds = append(builds, s2, s)
				mu.Unlock()
			}
		})
	})
	buildDependent := map[string]bool{}
	for i := 0; i+1 < len(builds); i += 2 {
		for n, a := range builds[i] {
			if b, ok := builds[i+1][n]; ok && !reflect.DeepEqual(a, b) {
				t.Logf("builds differ on %s:\n %+v\n %+v", n, a, b)
				buildDependent[n] = true
			}
		}
	}
	var majors []int
	for m := range byMajor {
		majors = append(majors, m)
	}
	sort.Ints(majors)
	var out []catalogEntry
	names := map[string]bool{}
	for _, m := range majors {
		for n := range byMajor[m] {
			names[n] = true
		}
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		var cur *catalogEntry
		for _, m := range majors {
			p, ok := byMajor[m][n]
			if !ok {
				cur = nil
				continue
			}
			e := catalogEntry{Name: n, From: m, To: m, VarType: p.VarType, Unit: p.Unit, Context: p.Context,
				BootVal: p.BootVal, Min: p.Min, Max: p.Max, EnumVals: p.EnumVals, BuildDependent: buildDependent[n] || p.Context == "internal"}
			if len(e.EnumVals) == 0 {
				e.EnumVals = nil
			}
			if e.BuildDependent {
				e.BootVal, e.Min, e.Max, e.EnumVals = "", "", "", nil
			}
			if cur != nil && cur.To == m-1 && cur.sameAs(e) {
				cur.To = m
				continue
			}
			out = append(out, e)
			cur = &out[len(out)-1]
		}
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("catalog.json", append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("catalog.json: %d entries for %d parameters, majors %v; build-dependent defaults: %v", len(out), len(sorted), majors, keys(buildDependent))
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// otherBuilds lists the installed binaries of a major other than the one
// the harness picked (Debian's 15 and the registry's 15).
func otherBuilds(major int, picked string) []string {
	var out []string
	for _, dir := range []string{
		fmt.Sprintf("/usr/lib/postgresql/%d/bin", major),
		fmt.Sprintf("%s/%d/native/bin", localpg.RegistryCache(), major),
	} {
		if dir == picked {
			continue
		}
		if m, err := localpg.BinMajor(dir); err == nil && m == major {
			out = append(out, dir)
		}
	}
	return out
}

// TestCatalogAgreesWithPgSettings holds every catalogue entry to each
// major's pg_settings, both ways: every parameter the server has is
// known for that major with the same type, unit, context, boot value,
// range and enum values, and nothing is claimed for a major that lacks it.
// The hand-written knowledge (Default, Context) is held to the same rows.
func TestCatalogAgreesWithPgSettings(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		start := time.Now()
		srv := pgtest.StartMajor(t, major, localpg.Options{})
		ctx := pgtest.Ctx(t)
		conn := pgtest.Conn(t, srv, "postgres")
		server, err := readSettings(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		cases, bad := 0, 0
		fail := func(format string, args ...any) {
			bad++
			if bad <= 15 {
				t.Errorf("pg%d: "+format, append([]any{major}, args...)...)
			}
		}
		for n, s := range server {
			cases++
			p, ok := Lookup(n, major)
			if !ok {
				fail("%s exists on the server, not in the catalogue", n)
				continue
			}
			got := serverParam{p.Name, p.VarType, p.Unit, p.Context, p.BootVal, p.Min, p.Max, p.EnumVals}
			want := s
			if len(want.EnumVals) == 0 {
				want.EnumVals = nil
			}
			if p.BuildDependent {
				want.BootVal, want.Min, want.Max, want.EnumVals = "", "", "", nil
			}
			if !reflect.DeepEqual(got, want) {
				fail("%s:\n catalogue %+v\n server    %+v", n, got, want)
			}
			if c := Context(n, ""); (c == "restart") != (s.Context == "postmaster" || s.Context == "internal") && major == Newest {
				fail("Context(%s) = %s, server context %s", n, c, s.Context)
			}
			if sc := Context(n, s.Context); (sc == "restart") != (s.Context == "postmaster" || s.Context == "internal") {
				fail("Context(%s, %s) = %s", n, s.Context, sc)
			}
		}
		for _, n := range Names(major) {
			cases++
			if _, ok := server[n]; !ok {
				if notEveryMinor(n, major) {
					continue
				}
				fail("catalogue has %s on %d, the server does not", n, major)
			}
		}
		// Every built-in default the rules use is the server's boot value.
		for _, n := range Known() {
			cases++
			d, ok := Default(n, major)
			s, exists := server[n]
			p, _ := Lookup(n, major)
			switch {
			case ok != exists:
				fail("Default(%s, %d) ok=%v, exists on the server=%v", n, major, ok, exists)
			case !ok:
			case p.BuildDependent:
				// Not a property of the major: this package's value is
				// Debian's build (unix_socket_directories).
			default:
				if eq, err := SameValue(p, d, s.BootVal); err != nil || !eq {
					fail("Default(%s, %d) = %q, server boot_val %q %s (%v)", n, major, d, s.BootVal, s.Unit, err)
				}
			}
		}
		t.Logf("ORACLE guc pg%d: cases=%d disagreements=%d seconds=%.1f", major, cases, bad, time.Since(start).Seconds())
	})
}

var _ = strings.ToLower

// notEveryMinor: the catalogue says some builds of major lack n.
func notEveryMinor(n string, major int) bool {
	for _, e := range entries(n) {
		if major >= e.From && major <= e.To && e.NotEveryMinor {
			return true
		}
	}
	return false
}
