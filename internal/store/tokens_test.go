package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestTokens(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.newURL(t))
		ctx := pgtest.Ctx(t)
		if v, err := s.SchemaVersion(ctx); err != nil || v != Latest() {
			t.Fatalf("schema version %d (%v), want %d", v, err, Latest())
		}
		at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		ro, err := s.CreateToken(ctx, "grafana", RoleReadOnly, hashOf("tok-a"), at)
		if err != nil {
			t.Fatal(err)
		}
		op, err := s.CreateToken(ctx, "alice", RoleOperator, hashOf("tok-b"), at)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateToken(ctx, "grafana", RoleReadOnly, hashOf("tok-c"), at); !errors.Is(err, ErrTokenName) {
			t.Errorf("a second token named grafana: %v, want ErrTokenName", err)
		}
		for _, bad := range []struct{ name, role, hash string }{
			{"x", "admin", hashOf("x")}, {"", RoleReadOnly, hashOf("y")}, {"z", RoleReadOnly, "abc"}, {"42", RoleReadOnly, hashOf("z")},
		} {
			if _, err := s.CreateToken(ctx, bad.name, bad.role, bad.hash, at); err == nil {
				t.Errorf("CreateToken(%q, %q) accepted", bad.name, bad.role)
			}
		}

		// Lookup by hash records the last use, at most once a minute.
		got, err := s.LookupToken(ctx, hashOf("tok-a"), at.Add(time.Hour))
		if err != nil || got.ID != ro.ID || got.Role != RoleReadOnly || !got.LastUsed.Equal(at.Add(time.Hour)) {
			t.Fatalf("LookupToken: %+v, %v", got, err)
		}
		if got, _ = s.LookupToken(ctx, hashOf("tok-a"), at.Add(time.Hour+time.Second)); !got.LastUsed.Equal(at.Add(time.Hour)) {
			t.Errorf("a second use within the minute rewrote the last use: %v", got.LastUsed)
		}
		if _, err := s.LookupToken(ctx, hashOf("nope"), at); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown token: %v", err)
		}

		// Revoke by name and by id; revoked tokens are listed, never found.
		if _, err := s.RevokeToken(ctx, "grafana", at.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeToken(ctx, "grafana", at.Add(2*time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("second revoke: %v", err)
		}
		if _, err := s.LookupToken(ctx, hashOf("tok-a"), at.Add(3*time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked token still found: %v", err)
		}
		if _, err := s.RevokeToken(ctx, "999", at); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown id: %v", err)
		}
		list, err := s.ListTokens(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("ListTokens: %v %v", list, err)
		}
		if list[0].Name != "grafana" || !list[0].RevokedAt.Equal(at.Add(2*time.Hour)) || !list[1].RevokedAt.IsZero() || list[1].ID != op.ID {
			t.Errorf("ListTokens: %+v", list)
		}
		if _, err := s.RevokeToken(ctx, itoa(op.ID), at); err != nil {
			t.Errorf("revoke by id: %v", err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRecentScans(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := open(t, b.newURL(t))
		fleetHistory(t, s)
		got, err := s.RecentScans(pgtest.Ctx(t), 3)
		if err != nil {
			t.Fatal(err)
		}
		// a: days 0-4 reached, day 5 unreachable; b: days 1 and 3.
		want := map[string][]time.Time{"a": {day(4), day(3), day(2)}, "b": {day(3), day(1)}}
		if len(got) != len(want) {
			t.Fatalf("servers %v", got)
		}
		for name, days := range want {
			if len(got[name]) != len(days) {
				t.Fatalf("%s: %d scans, want %d", name, len(got[name]), len(days))
			}
			for i, d := range days {
				sc := got[name][i]
				if !sc.StartedAt.Equal(d) || sc.Status != OK || sc.Server != name {
					t.Errorf("%s scan %d: %v %s", name, i, sc.StartedAt, sc.Status)
				}
			}
		}
		// The counts come along (the dashboard's score).
		if c := got["a"][0].Counts; c.Fail != 2 || c.Pass != 1 {
			t.Errorf("a's latest counts %+v", c)
		}
	})
}
