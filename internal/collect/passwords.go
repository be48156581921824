package collect

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/pwcheck"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// checkPasswords looks for weak passwords offline: the verifiers are read
// (superuser only), tried against the role name and a small dictionary in
// memory, and dropped; only the verdict goes into the snapshot. Work is
// bounded by budget: every role gets the role-name guesses first, then the
// dictionary, superusers first.
func checkPasswords(ctx context.Context, se *session, s *snapshot.Snapshot, budget time.Duration) {
	if budget <= 0 {
		s.AddGap(snapshot.GapWeakPasswords, "weak-password check disabled (--password-check-budget 0)")
		return
	}
	type target struct {
		i int
		v pwcheck.Verifier
		// plain holds a plaintext password (never a verifier) for the
		// plaintext case; it is compared and dropped.
		plain string
		super bool
	}
	var targets []target
	byName := map[string]int{}
	for i, r := range s.Roles {
		byName[r.Name] = i
	}
	err := se.optional(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT rolname, rolpassword FROM pg_authid WHERE rolcanlogin AND rolpassword IS NOT NULL AND rolpassword <> ''`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name, stored string
			if err := rows.Scan(&name, &stored); err != nil {
				return err
			}
			i, ok := byName[name]
			if !ok {
				continue
			}
			t := target{i: i, super: s.Roles[i].Superuser}
			if v, ok := pwcheck.Parse(stored); ok {
				t.v = v
			} else {
				t.plain = stored
			}
			targets = append(targets, t)
		}
		return rows.Err()
	})
	if err != nil {
		s.AddGap(snapshot.GapWeakPasswords, "pg_authid is readable only by superusers: weak passwords could not be looked for")
		return
	}
	sort.SliceStable(targets, func(a, b int) bool { return targets[a].super && !targets[b].super })
	deadline := time.Now().Add(budget)
	verdict := make([]string, len(targets))
	done := make([]bool, len(targets))
	var mu sync.Mutex
	try := func(t target, cands []string) bool {
		name := s.Roles[t.i].Name
		for _, c := range cands {
			if t.plain != "" {
				if t.plain == c {
					return true
				}
				continue
			}
			if time.Now().After(deadline) {
				return false
			}
			if t.v.Matches(name, c) {
				return true
			}
		}
		return false
	}
	// Two passes, each spread over the cores we have.
	for pass := 0; pass < 2; pass++ {
		var wg sync.WaitGroup
		next := 0
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					k := next
					next++
					mu.Unlock()
					if k >= len(targets) || time.Now().After(deadline) {
						return
					}
					t := targets[k]
					names, dict := pwcheck.Candidates(s.Roles[t.i].Name)
					cands, label := names, pwcheck.RoleName
					if pass == 1 {
						if verdict[k] != "" {
							continue
						}
						cands, label = dict, pwcheck.Common
					}
					if try(t, cands) {
						verdict[k] = label
					}
					if pass == 1 && !time.Now().After(deadline) {
						done[k] = true
					}
				}
			}()
		}
		wg.Wait()
	}
	incomplete := 0
	for k, t := range targets {
		s.Roles[t.i].WeakPassword = verdict[k]
		if verdict[k] == "" && !done[k] {
			incomplete++
		}
	}
	if incomplete > 0 {
		s.AddGap(snapshot.GapWeakPasswords, fmt.Sprintf("the weak-password budget (%s) ran out: %d of %d roles were not tried against the whole dictionary (raise --password-check-budget)", budget, incomplete, len(targets)))
	}
}
