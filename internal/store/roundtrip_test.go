package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// auditSecret is written into the audited server's primary_conninfo: it
// must never reach a store. A throwaway loopback server's value only.
const auditSecret = "Rep-Secret-4711-xyz"

var (
	auditOnce sync.Once
	auditSnap []byte
	auditFind []byte
	auditErr  error
)

// realAudit collects the shared server (with a password in its
// primary_conninfo) and runs every rule, once per package run; each test
// gets fresh copies.
func realAudit(t *testing.T) (*snapshot.Snapshot, []rules.Finding) {
	t.Helper()
	srv := pgtest.Shared(t)
	auditOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if auditErr = srv.Exec(ctx, `ALTER SYSTEM SET primary_conninfo = 'host=192.0.2.1 user=rep password=`+auditSecret+`'`,
			`SELECT pg_reload_conf()`); auditErr != nil {
			return
		}
		var s *snapshot.Snapshot
		if s, auditErr = collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), DataDir: srv.DataDir}); auditErr != nil {
			return
		}
		if auditSnap, auditErr = json.Marshal(s); auditErr != nil {
			return
		}
		auditFind, auditErr = json.Marshal(rules.Run(s))
	})
	if auditErr != nil {
		t.Fatalf("real audit: %v", auditErr)
	}
	var s *snapshot.Snapshot
	var fs []rules.Finding
	if err := json.Unmarshal(auditSnap, &s); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(auditFind, &fs); err != nil {
		t.Fatal(err)
	}
	return s, fs
}

func TestRoundTripRealAudit(t *testing.T) {
	snap, finds := realAudit(t)
	if len(finds) < 20 || snap.Server == nil {
		t.Fatalf("the real audit found %d findings (server %v): too little to prove anything", len(finds), snap.Server != nil)
	}
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.newURL(t))
		ctx := pgtest.Ctx(t)
		start := time.Date(2026, 11, 2, 3, 4, 5, 678901000, time.UTC)
		id, err := s.PutScan(ctx, NewScan{Server: "db1", Labels: map[string]string{"env": "prod"}, StartedAt: start,
			FinishedAt: start.Add(3 * time.Second), Status: OK, Snapshot: snap, Findings: finds})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadScan(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !got.StartedAt.Equal(start) || got.Server != "db1" || got.Labels["env"] != "prod" || got.Status != OK {
			t.Fatalf("scan row: %+v", got.Scan)
		}
		if got.ServerVersion != snap.Server.Version || got.ServerVersion == "" {
			t.Fatalf("server version %q, want %q", got.ServerVersion, snap.Server.Version)
		}
		if a, b := mustJSON(t, snap), mustJSON(t, got.Snapshot); !bytes.Equal(a, b) {
			t.Fatalf("snapshot changed in the store (%d bytes in, %d out)", len(a), len(b))
		}
		if a, b := mustJSON(t, finds), mustJSON(t, got.Findings); !bytes.Equal(a, b) {
			for i := range finds {
				if x, y := mustJSON(t, finds[i]), mustJSON(t, got.Findings[i]); !bytes.Equal(x, y) {
					t.Fatalf("finding %d changed in the store:\n%s\n%s", i, x, y)
				}
			}
			t.Fatalf("findings changed in the store")
		}
		// The rows say what the findings say, in report order.
		rows, err := s.Findings(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(finds) {
			t.Fatalf("%d finding rows, want %d", len(rows), len(finds))
		}
		want := countFindings(finds)
		for i, r := range rows {
			f := finds[i]
			if r.Rule != f.Rule || r.Status != f.Status || r.Severity != f.Severity || r.Area != f.Area || r.Object != f.Object ||
				r.Evidence != f.Evidence || r.Location != f.Location || r.Title != f.Title {
				t.Fatalf("row %d = %+v, finding %s %s %s", i, r, f.Rule, f.Status, f.Object)
			}
			if (r.Status == rules.Fail) != !r.OpenSince.IsZero() || (r.Status == rules.Fail && !r.OpenSince.Equal(start)) {
				t.Fatalf("row %d (%s) open since %v", i, r.Status, r.OpenSince)
			}
		}
		sv, err := s.Servers(ctx)
		if err != nil || len(sv) != 1 || sv[0].LatestOK == nil {
			t.Fatalf("Servers = %+v, %v", sv, err)
		}
		if c := sv[0].LatestOK.Counts; c.Fail != want.Fail || c.Pass != want.Pass || c.NotChecked != want.NotChecked ||
			fmt.Sprint(c.FailBySeverity) != fmt.Sprint(want.FailBySeverity) {
			t.Fatalf("counts %+v, want %+v", c, want)
		}
	})
}

// TestNoSecretStored writes a real audit of a server whose
// primary_conninfo holds a password, plus the same password where
// collect's redaction does not reach (a hand-made setting, a finding's
// evidence, the scan's error message, a label), and looks at every
// column of every row, blobs decompressed.
func TestNoSecretStored(t *testing.T) {
	snap, finds := realAudit(t)
	// ORACLE: the server itself holds the password; collect read the setting.
	pc, ok := snap.Settings["primary_conninfo"]
	if !ok {
		t.Fatal("the snapshot has no primary_conninfo: the test proves nothing")
	}
	if strings.Contains(pc.Value, auditSecret) {
		t.Fatal("collect left the password in primary_conninfo")
	}
	dsn := "host=192.0.2.1 user=rep password=" + auditSecret
	snap.Settings["x.replica_dsn"] = snapshot.Setting{Name: "x.replica_dsn", Value: dsn}
	snap.Warnings = append(snap.Warnings, "could not reach postgres://rep:"+auditSecret+"@192.0.2.1/db")
	finds = append(finds, rules.Finding{Rule: "TEST-1", Status: rules.Fail, Severity: rules.High, Object: "setting x",
		Evidence: "conninfo " + dsn})
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.newURL(t))
		ctx := pgtest.Ctx(t)
		now := time.Now()
		if _, err := s.PutScan(ctx, NewScan{Server: "db1", Labels: map[string]string{"dsn": dsn}, StartedAt: now, Status: OK,
			Snapshot: snap, Findings: finds}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutScan(ctx, NewScan{Server: "db2", StartedAt: now, Status: Error,
			Message: "connect postgres://rep:" + auditSecret + "@192.0.2.1/db: refused"}); err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, table := range []string{"servers", "scans", "findings", "schema_migrations"} {
			rows, err := rawDB(s).QueryContext(ctx, `SELECT * FROM `+table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					text := fmt.Sprint(v)
					if bs, ok := v.([]byte); ok {
						text = string(bs)
						if plain, err := zdec.DecodeAll(bs, nil); err == nil {
							text = string(plain)
						}
					}
					if strings.Contains(text, auditSecret) {
						t.Errorf("%s.%s holds the password", table, cols[i])
					}
					if strings.Contains(text, "xxxxx") {
						seen++
					}
				}
			}
			rows.Close()
		}
		if seen < 4 {
			t.Errorf("only %d columns show a masked password: the secrets did not get where the test put them", seen)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
