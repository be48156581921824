package web

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/pgaegis/pgaegis/internal/drift"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/score"
	"github.com/pgaegis/pgaegis/internal/store"
)

// trendLen is how many reached scans a server's trend shows.
const trendLen = 12

// fleet is the fleet as the pages and /metrics show it, built at most
// once per cache period.
type fleet struct {
	at      time.Time
	rows    []*serverRow
	byName  map[string]*serverRow
	build   time.Duration
	servers int
}

type serverRow struct {
	Name     string
	Labels   map[string]string
	Latest   *store.Scan
	LatestOK *store.Scan
	Score    int  // of the latest reached scan
	HasScore bool // false: never reached, or nothing decided
	Delta    int  // score change since the previous reached scan
	Trend    []int
	Drift    *findingDrift // since the previous reached scan; nil with fewer than two
	Sum      *scanSummary
	Cert     *certInfo
}

// Fail is the latest reached scan's failures by severity name.
func (r *serverRow) Fail(sev string) int {
	if r.LatestOK == nil {
		return 0
	}
	return r.LatestOK.Counts.FailBySeverity[sev]
}

// scanSummary is what the fleet needs from one scan's finding rows.
// Scans never change once written: summaries are kept by scan id.
type scanSummary struct {
	failing drift.Failures
	// bySevArea counts failures by severity and area.
	bySevArea map[[2]string]int
	byRule    map[string]int
}

func summarize(rows []store.FindingRow) *scanSummary {
	s := &scanSummary{failing: drift.Failures{}, bySevArea: map[[2]string]int{}, byRule: map[string]int{}}
	for _, f := range rows {
		if f.Status != rules.Fail {
			continue
		}
		s.failing[drift.Key{Rule: f.Rule, Object: f.Object}] = drift.Finding{Rule: f.Rule, Object: f.Object, Severity: f.Severity, Title: f.Title}
		s.bySevArea[[2]string{sevName(f.Severity), f.Area}]++
		s.byRule[f.Rule]++
	}
	return s
}

func sevName(s rules.Severity) string {
	if s < rules.Info || s > rules.Critical {
		return "unknown"
	}
	return s.String()
}

// findingDrift is the findings-level change between a server's two
// latest reached scans, from the stored rows (drift.Change, as fleet diff
// does); the server page adds the rest of drift.Compare.
type findingDrift struct {
	From, To   *store.Scan
	New, Fixed []drift.Finding
}

// certInfo is a server's certificate as its latest reached scan saw it.
type certInfo struct {
	Server     string
	Subject    string
	Issuer     string
	Path       string
	NotAfter   time.Time
	DaysLeft   float64
	SelfSigned bool
	Source     string // "file" (the server's certificate file) or "probe" (the port's answer)
	Error      string
}

// Days is the days left rounded down, for the pages.
func (c *certInfo) Days() int { return int(math.Floor(c.DaysLeft)) }

// caches keeps per-scan results across fleet builds.
type caches struct {
	mu    sync.Mutex
	sums  map[int64]*scanSummary
	certs map[int64]*certInfo // nil value: the scan holds no certificate
}

func (s *Server) summary(ctx context.Context, id int64) (*scanSummary, error) {
	s.c.mu.Lock()
	v, ok := s.c.sums[id]
	s.c.mu.Unlock()
	if ok {
		return v, nil
	}
	rows, err := s.st.Findings(ctx, id)
	if err != nil {
		return nil, err
	}
	v = summarize(rows)
	s.c.mu.Lock()
	s.c.sums[id] = v
	s.c.mu.Unlock()
	return v, nil
}

func (s *Server) cert(ctx context.Context, sc *store.Scan, now time.Time) (*certInfo, error) {
	s.c.mu.Lock()
	v, ok := s.c.certs[sc.ID]
	s.c.mu.Unlock()
	if !ok {
		rec, err := s.st.LoadScan(ctx, sc.ID)
		if err != nil {
			return nil, err
		}
		if snap := rec.Snapshot; snap != nil {
			switch {
			case snap.ServerCert != nil && !snap.ServerCert.NotAfter.IsZero():
				c := snap.ServerCert
				v = &certInfo{Subject: c.Subject, Issuer: c.Issuer, Path: c.Path, NotAfter: c.NotAfter, SelfSigned: c.SelfSigned, Source: "file", Error: c.Error}
			case snap.Probe != nil && snap.Probe.CertDaysLeft != nil:
				// Only the days left at scan time: the expiry is that far from the scan.
				v = &certInfo{NotAfter: sc.StartedAt.Add(time.Duration(*snap.Probe.CertDaysLeft) * 24 * time.Hour),
					SelfSigned: snap.Probe.CertSelfSigned, Source: "probe"}
			}
		}
		s.c.mu.Lock()
		s.c.certs[sc.ID] = v
		s.c.mu.Unlock()
	}
	if v == nil {
		return nil, nil
	}
	c := *v
	c.Server = sc.Server
	c.DaysLeft = c.NotAfter.Sub(now).Hours() / 24
	return &c, nil
}

// fleet returns the current fleet. Only the first build is waited for:
// once there is a fleet, a stale one is served while one request's
// rebuild runs in the background (pages and scrapes never wait for the
// store's slowest queries).
func (s *Server) fleet(ctx context.Context) (*fleet, error) {
	s.fmu.Lock()
	f := s.cur
	s.fmu.Unlock()
	if f != nil {
		if s.now().Sub(f.at) >= s.ttl && s.build.TryLock() {
			go func() {
				defer s.build.Unlock()
				bctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				if err := s.rebuild(bctx); err != nil {
					s.log.Printf("reading the fleet: %v", err)
				}
			}()
		}
		return f, nil
	}
	s.build.Lock()
	defer s.build.Unlock()
	s.fmu.Lock()
	f = s.cur
	s.fmu.Unlock()
	if f != nil {
		return f, nil
	}
	if err := s.rebuild(ctx); err != nil {
		return nil, err
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.cur, nil
}

// rebuild reads the fleet from the store (the caller holds s.build).
func (s *Server) rebuild(ctx context.Context) error {
	nf, err := s.buildFleet(ctx)
	if err != nil {
		return err
	}
	s.fmu.Lock()
	s.cur = nf
	s.fmu.Unlock()
	return nil
}

func (s *Server) buildFleet(ctx context.Context) (*fleet, error) {
	start := time.Now()
	now := s.now()
	servers, err := s.st.Servers(ctx)
	if err != nil {
		return nil, err
	}
	recent, err := s.st.RecentScans(ctx, trendLen)
	if err != nil {
		return nil, err
	}
	f := &fleet{at: now, byName: map[string]*serverRow{}, servers: len(servers)}
	keep := map[int64]bool{}
	for _, sv := range servers {
		r := &serverRow{Name: sv.Name, Labels: sv.Labels, Latest: sv.Latest, LatestOK: sv.LatestOK}
		rs := recent[sv.Name]
		for i := len(rs) - 1; i >= 0; i-- {
			if sc, ok := score.Of(rs[i].Counts); ok {
				r.Trend = append(r.Trend, sc)
			}
		}
		if sv.LatestOK != nil {
			r.Score, r.HasScore = score.Of(sv.LatestOK.Counts)
			if r.Sum, err = s.summary(ctx, sv.LatestOK.ID); err != nil {
				return nil, fmt.Errorf("scan %d of %s: %w", sv.LatestOK.ID, sv.Name, err)
			}
			keep[sv.LatestOK.ID] = true
			if r.Cert, err = s.cert(ctx, sv.LatestOK, now); err != nil {
				return nil, fmt.Errorf("scan %d of %s: %w", sv.LatestOK.ID, sv.Name, err)
			}
		}
		if len(rs) >= 2 && sv.LatestOK != nil && rs[0].ID == sv.LatestOK.ID {
			prev, err := s.summary(ctx, rs[1].ID)
			if err != nil {
				return nil, err
			}
			keep[rs[1].ID] = true
			d := &findingDrift{From: &rs[1], To: &rs[0]}
			d.New, d.Fixed = drift.Change(prev.failing, r.Sum.failing)
			r.Drift = d
			if ps, ok := score.Of(rs[1].Counts); ok && r.HasScore {
				r.Delta = r.Score - ps
			}
		}
		f.rows = append(f.rows, r)
		f.byName[r.Name] = r
	}
	// Forget scans no longer anyone's latest pair.
	s.c.mu.Lock()
	for id := range s.c.sums {
		if !keep[id] {
			delete(s.c.sums, id)
		}
	}
	for id := range s.c.certs {
		if !keep[id] {
			delete(s.c.certs, id)
		}
	}
	s.c.mu.Unlock()
	f.build = time.Since(start)
	return f, nil
}
