package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
)

var t0 = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

// day is the start of scan n of the synthetic history.
func day(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }

func fnd(rule string, st rules.Status, sev rules.Severity, object string) rules.Finding {
	return rules.Finding{Rule: rule, Status: st, Severity: sev, Title: "title of " + rule, Area: rules.AreaAuth, Object: object, Evidence: "seen " + object}
}

// fleetHistory writes two servers' scans:
//
//	day       0     1     2     3     4     5
//	a AUTH-01 fail  fail  pass  fail  fail  (unreachable)
//	a NET-01  fail  fail  fail  fail  fail
//	a ROLE-01 fail  fail  -     -     -
//	a TLS-01  pass  pass  pass  pass  pass
//	b NET-01        fail        fail
//	b TLS-01        pass        pass
//	b LOG-01        pass        not_checked
func fleetHistory(t *testing.T, s Store) {
	t.Helper()
	ctx := pgtest.Ctx(t)
	put := func(server string, n int, st Status, fs ...rules.Finding) {
		t.Helper()
		if _, err := s.PutScan(ctx, NewScan{Server: server, Labels: map[string]string{"env": "prod"}, StartedAt: day(n),
			FinishedAt: day(n).Add(time.Minute), Status: st, Findings: fs}); err != nil {
			t.Fatal(err)
		}
	}
	auth := []rules.Status{rules.Fail, rules.Fail, rules.Pass, rules.Fail, rules.Fail}
	for n := range 5 {
		fs := []rules.Finding{fnd("AUTH-01", auth[n], rules.High, "role x"), fnd("NET-01", rules.Fail, rules.Critical, "hba line 3"),
			fnd("TLS-01", rules.Pass, rules.Medium, "")}
		if n < 2 {
			fs = append(fs, fnd("ROLE-01", rules.Fail, rules.Low, "role old"))
		}
		put("a", n, OK, fs...)
	}
	put("a", 5, Unreachable)
	for _, n := range []int{1, 3} {
		log := rules.Pass
		if n == 3 {
			log = rules.NotChecked
		}
		put("b", n, OK, fnd("NET-01", rules.Fail, rules.Critical, "hba line 9"), fnd("TLS-01", rules.Pass, rules.Medium, ""),
			fnd("LOG-01", log, rules.Low, ""))
	}
}

func TestServersAndDrift(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.newURL(t))
		fleetHistory(t, s)
		ctx := pgtest.Ctx(t)
		sv, err := s.Servers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sv) != 2 || sv[0].Name != "a" || sv[1].Name != "b" || sv[0].Labels["env"] != "prod" {
			t.Fatalf("Servers = %+v", sv)
		}
		a := sv[0]
		if a.Latest == nil || a.Latest.Status != Unreachable || !a.Latest.StartedAt.Equal(day(5)) {
			t.Fatalf("a's latest scan %+v, want the unreachable one of day 5", a.Latest)
		}
		if a.LatestOK == nil || !a.LatestOK.StartedAt.Equal(day(4)) || a.LatestOK.Counts.Fail != 2 ||
			a.LatestOK.Counts.FailBySeverity["critical"] != 1 || a.LatestOK.Counts.FailBySeverity["high"] != 1 || a.LatestOK.Counts.Pass != 1 {
			t.Fatalf("a's latest reached scan %+v", a.LatestOK)
		}
		if c := sv[1].LatestOK.Counts; c.NotChecked != 1 || c.Fail != 1 || c.Pass != 1 {
			t.Fatalf("b's counts %+v", c)
		}

		// The drift pair skips the unreachable scan.
		pair, err := s.LatestScans(ctx, "a", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(pair) != 2 || !pair[0].StartedAt.Equal(day(4)) || !pair[1].StartedAt.Equal(day(3)) {
			t.Fatalf("drift pair %+v", pair)
		}
		older, err := s.LoadScan(ctx, pair[1].ID)
		if err != nil || len(older.Findings) != 3 {
			t.Fatalf("LoadScan: %v, %d findings", err, len(older.Findings))
		}
		if one, _ := s.LatestScans(ctx, "b", 5); len(one) != 2 {
			t.Fatalf("b has %d reached scans, want 2", len(one))
		}

		// A time range is [from, to).
		rng, err := s.Scans(ctx, "a", day(1), day(3))
		if err != nil || len(rng) != 2 || !rng[0].StartedAt.Equal(day(1)) || !rng[1].StartedAt.Equal(day(2)) {
			t.Fatalf("Scans(a, day1, day3) = %+v, %v", rng, err)
		}
		all, _ := s.Scans(ctx, "a", time.Time{}, time.Time{})
		if len(all) != 6 || all[5].Status != Unreachable {
			t.Fatalf("all of a's scans: %d", len(all))
		}
		if _, err := s.Scans(ctx, "nobody", time.Time{}, time.Time{}); err == nil {
			t.Fatal("an unknown server's scans: no error")
		}
		fr, err := s.Findings(ctx, pair[0].ID)
		if err != nil || len(fr) != 3 || fr[0].Rule != "AUTH-01" || !fr[0].OpenSince.Equal(day(3)) || !fr[1].OpenSince.Equal(day(0)) {
			t.Fatalf("findings of day 4: %+v, %v", fr, err)
		}
	})
}

func TestFindingHistory(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.newURL(t))
		fleetHistory(t, s)
		ctx := pgtest.Ctx(t)
		h, err := s.FindingHistory(ctx, "a", "AUTH-01", "role x")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range h.Points {
			got = append(got, fmt.Sprintf("%s/%s", p.ScanStatus, p.Status))
		}
		if want := []string{"ok/fail", "ok/fail", "ok/pass", "ok/fail", "ok/fail", "unreachable/"}; !slices.Equal(got, want) {
			t.Fatalf("points %v, want %v", got, want)
		}
		if !h.FirstSeen.Equal(day(0)) || !h.LastSeen.Equal(day(4)) || !h.Open || !h.FixedAt.IsZero() {
			t.Fatalf("AUTH-01: %+v", h)
		}
		h, err = s.FindingHistory(ctx, "a", "ROLE-01", "role old")
		if err != nil {
			t.Fatal(err)
		}
		if !h.FirstSeen.Equal(day(0)) || !h.LastSeen.Equal(day(1)) || h.Open || !h.FixedAt.Equal(day(2)) {
			t.Fatalf("ROLE-01: %+v", h)
		}
		if _, err := s.FindingHistory(ctx, "nobody", "X", ""); err == nil {
			t.Fatal("unknown server: no error")
		}
	})
}

func TestFleetQueries(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.newURL(t))
		fleetHistory(t, s)
		ctx := pgtest.Ctx(t)
		common, err := s.CommonFailures(ctx, time.Time{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(common) != 2 || common[0].Rule != "NET-01" || common[0].Servers != 2 || common[0].Severity != rules.Critical ||
			common[1].Rule != "AUTH-01" || common[1].Servers != 1 || common[1].Title != "title of AUTH-01" {
			t.Fatalf("common failures %+v", common)
		}
		// As of day 2 (scans before it): a's day-1 scan still has ROLE-01.
		then, err := s.CommonFailures(ctx, day(2), 10)
		if err != nil || len(then) != 3 {
			t.Fatalf("common failures before day 2: %+v, %v", then, err)
		}

		// Open for more than 3 days on day 4: NET-01 on a since day 0, on
		// b since day 1; AUTH-01 reopened on day 3 is younger.
		open, err := s.OpenLongerThan(ctx, 3*24*time.Hour, day(4).Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range open {
			got = append(got, fmt.Sprintf("%s %s %s", o.Server, o.Rule, o.OpenSince.Format("2006-01-02")))
		}
		if want := []string{"a NET-01 2026-10-01", "b NET-01 2026-10-02"}; !slices.Equal(got, want) {
			t.Fatalf("open longer than 3 days: %q, want %q", got, want)
		}

		// Over the whole period only TLS-01 passed in every reached scan;
		// LOG-01 was not checked once and is no evidence.
		ev, err := s.HeldControls(ctx, day(0), day(6))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Scans != 7 || ev.Servers != 2 || ev.Unreached != 1 || len(ev.Held) != 1 || ev.Held[0].Rule != "TLS-01" ||
			ev.Held[0].Scans != 7 || ev.Held[0].Servers != 2 {
			t.Fatalf("evidence %+v", ev)
		}
		// Days 1–2: LOG-01 was only on b, and a's scans lack it.
		ev, err = s.HeldControls(ctx, day(1), day(3))
		if err != nil || ev.Scans != 3 || len(ev.Held) != 1 {
			t.Fatalf("evidence of days 1-2: %+v, %v", ev, err)
		}
		// Day 1: LOG-01 passed on b, but a's scan lacks it: no fleet-wide evidence.
		ev, err = s.HeldControls(ctx, day(1), day(2))
		var rs []string
		for _, h := range ev.Held {
			rs = append(rs, h.Rule)
		}
		if err != nil || !slices.Equal(rs, []string{"TLS-01"}) {
			t.Fatalf("evidence of day 1: %v, %v", rs, err)
		}
	})
}

// TestConcurrentWriters has goroutines on two handles of one store write
// scans at once, some of them for the same server.
func TestConcurrentWriters(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		url := b.newURL(t)
		h1, h2 := open(t, url), open(t, url)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		const writers, each = 6, 8
		errs := make(chan error, writers)
		for w := range writers {
			go func() {
				s := h1
				if w%2 == 1 {
					s = h2
				}
				for i := range each {
					server := fmt.Sprintf("srv-%d", w%3) // two writers per server
					fs := []rules.Finding{fnd("NET-01", rules.Fail, rules.High, "x"), fnd("TLS-01", rules.Pass, rules.Low, "")}
					if _, err := s.PutScan(ctx, NewScan{Server: server, StartedAt: day(i).Add(time.Duration(w) * time.Second),
						Status: OK, Findings: fs}); err != nil {
						errs <- fmt.Errorf("writer %d scan %d: %w", w, i, err)
						return
					}
				}
				errs <- nil
			}()
		}
		for range writers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		sv, err := h1.Servers(ctx)
		if err != nil || len(sv) != 3 {
			t.Fatalf("servers after concurrent writes: %d, %v", len(sv), err)
		}
		total := 0
		for _, x := range sv {
			scans, err := h2.Scans(ctx, x.Name, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			total += len(scans)
			for _, sc := range scans {
				if fr, err := h2.Findings(ctx, sc.ID); err != nil || len(fr) != 2 {
					t.Fatalf("scan %d has %d finding rows (%v), want 2: a scan was written in part", sc.ID, len(fr), err)
				}
			}
		}
		if total != writers*each {
			t.Fatalf("%d scans stored, want %d", total, writers*each)
		}
	})
}

func TestPutScanRefuses(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.newURL(t))
		ctx := pgtest.Ctx(t)
		for i, in := range []NewScan{
			{StartedAt: t0, Status: OK},
			{Server: "a", StartedAt: t0, Status: "fine"},
			{Server: "a", Status: OK},
			{Server: "host=db password=" + auditSecret, StartedAt: t0, Status: OK},
		} {
			if _, err := s.PutScan(ctx, in); err == nil {
				t.Errorf("PutScan of bad scan %d: no error", i) // never the scan: one holds a password
			}
		}
		if sv, _ := s.Servers(ctx); len(sv) != 0 {
			t.Fatalf("a refused scan left %d servers", len(sv))
		}
		if _, err := s.LoadScan(ctx, 42); err == nil {
			t.Fatal("LoadScan of a missing scan: no error")
		}
	})
}
