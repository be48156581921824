package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/store"
)

var fixtureDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "pgaegis-web-")
	if err != nil {
		panic(err)
	}
	fixtureDir = d
	code := m.Run()
	pgtest.StopShared()
	os.RemoveAll(d)
	os.Exit(code)
}

var (
	fixOnce  sync.Once
	fixStore store.Store
	fixErr   error
	// realServer is the fleet's server scanned for real, twice: a role
	// made superuser between the scans.
	realServer = "pg-real"
)

// now is the fixture's "now": the generated scans lead up to it.
var fixNow = time.Now().UTC().Truncate(time.Second)

// fleetStore is one SQLite store for the package's tests: two real scans
// of a throwaway server (a superuser role created between them) and a
// generated history of five more servers, one never reached.
func fleetStore(t *testing.T) store.Store {
	t.Helper()
	srv := pgtest.Shared(t)
	fixOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		st, err := store.Open(ctx, filepath.Join(fixtureDir, "fleet.db"))
		if err != nil {
			fixErr = err
			return
		}
		fixStore = st
		// ORACLE: the server's own catalogs decide the findings of both scans.
		scan := func(at time.Time) error {
			snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), DataDir: srv.DataDir})
			if err != nil {
				return err
			}
			_, err = st.PutScan(ctx, store.NewScan{Server: realServer, Labels: map[string]string{"env": "test", "team": "dba"},
				StartedAt: at, FinishedAt: at.Add(3 * time.Second), Status: store.OK, Snapshot: snap, Findings: rules.Run(snap)})
			return err
		}
		if fixErr = scan(fixNow.Add(-2 * time.Hour)); fixErr != nil {
			return
		}
		if fixErr = srv.Exec(ctx, `DROP ROLE IF EXISTS web_boss`, `CREATE ROLE web_boss SUPERUSER LOGIN`); fixErr != nil {
			return
		}
		// And a trust line (last, so that no connection here uses it).
		hba, err := os.OpenFile(filepath.Join(srv.DataDir, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			fixErr = err
			return
		}
		_, fixErr = hba.WriteString("host all all 127.0.0.1/32 trust\n")
		if err := hba.Close(); fixErr == nil {
			fixErr = err
		}
		if fixErr != nil {
			return
		}
		if fixErr = srv.Exec(ctx, `SELECT pg_reload_conf()`); fixErr != nil {
			return
		}
		if fixErr = scan(fixNow.Add(-1 * time.Hour)); fixErr != nil {
			return
		}
		fixErr = generated(ctx, st)
	})
	if fixErr != nil {
		t.Fatalf("fleet fixture: %v", fixErr)
	}
	return fixStore
}

// certDays are the generated servers' certificate lifetimes left at
// fixNow.
var certDays = map[string]int{"gen-a": 200, "gen-b": 45, "gen-c": 5, "gen-d": -3}

func generated(ctx context.Context, st store.Store) error {
	for i, name := range []string{"gen-a", "gen-b", "gen-c", "gen-d"} {
		for k := range 8 {
			at := fixNow.Add(-time.Duration(8-k) * 24 * time.Hour).Add(time.Duration(i) * time.Minute)
			var fs []rules.Finding
			for r := range 12 {
				st := rules.Pass
				if (r+i)%4 == 0 || (r == 5 && k >= 6) || (r == 6 && k < 7 && i == 1) {
					st = rules.Fail // rule 5 fails from scan 6 on; gen-b fixes rule 6 in its last scan
				}
				fs = append(fs, rules.Finding{Rule: fmt.Sprintf("GEN-%02d", r), Status: st, Severity: rules.Severity(r % 5),
					Area: []string{rules.AreaNetwork, rules.AreaAuth, rules.AreaRoles}[r%3], Title: fmt.Sprintf("generated rule %d", r),
					Object: fmt.Sprintf("object %d", r%3), Evidence: fmt.Sprintf("seen on %s", name)})
			}
			snap := &snapshot.Snapshot{ServerCert: &snapshot.Certificate{Path: "/srv/" + name + "/server.crt", Subject: "CN=" + name,
				Issuer: "CN=Test CA", NotAfter: fixNow.Add(time.Duration(certDays[name])*24*time.Hour + time.Hour)}}
			in := store.NewScan{Server: name, Labels: map[string]string{"env": "prod"}, StartedAt: at, FinishedAt: at.Add(time.Second),
				Status: store.OK, Snapshot: snap, Findings: fs}
			if name == "gen-d" && k == 7 {
				in.Status, in.Message, in.Snapshot, in.Findings = store.Unreachable, "connection refused", nil, nil
			}
			if _, err := st.PutScan(ctx, in); err != nil {
				return err
			}
		}
	}
	_, err := st.PutScan(ctx, store.NewScan{Server: "gen-never", StartedAt: fixNow.Add(-time.Hour), Status: store.Timeout, Message: "timed out after 30s"})
	return err
}

// token makes a token of role in the fixture store and returns it.
func token(t *testing.T, st store.Store, role string) string {
	t.Helper()
	tok, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateToken(context.Background(), fmt.Sprintf("%s-%s-%s", t.Name(), role, hash[:6]), role, hash, time.Now()); err != nil {
		t.Fatal(err)
	}
	return tok
}

// dashboard serves a dashboard over the fixture store.
func dashboard(t *testing.T, o Options) (*Server, *httptest.Server) {
	t.Helper()
	o.Store = fleetStore(t)
	if o.Now == nil {
		o.Now = func() time.Time { return fixNow }
	}
	s := New(o)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs
}

func get(t *testing.T, c *http.Client, url, tok string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
