package collect

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
	// Verifiers are as good as passwords to an eavesdropper (an md5 hash
	// logs in as is; a SCRAM verifier is open to an offline search): they
	// are fetched only over a local socket or TLS that verified the server.
	if se.transport != "unix" && se.transport != "tls-verified" {
		s.AddGap(snapshot.GapWeakPasswords, "weak passwords were not looked for: the password verifiers are fetched only over a local unix socket or TLS with a verified server certificate (sslmode=verify-ca or verify-full), and this connection is "+transportName(se.transport))
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
		// Only the server's message or a fixed text: a scan error could
		// quote the value, and the value is a verifier.
		if isPermission(err) {
			s.AddGap(snapshot.GapWeakPasswords, "pg_authid is readable only by superusers: weak passwords could not be looked for")
		} else if pgMsg := pgErrorText(err); pgMsg != "" {
			s.AddError(snapshot.GapWeakPasswords, "reading the password verifiers failed: "+pgMsg)
		} else {
			s.AddError(snapshot.GapWeakPasswords, "reading the password verifiers failed")
		}
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

func transportName(t string) string {
	switch t {
	case "plain":
		return "unencrypted TCP"
	case "tls-unverified":
		return "TLS without verification of the server (sslmode=require or prefer)"
	}
	return t
}

// pgErrorText is the server's message and SQLSTATE, "" for other errors.
func pgErrorText(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	}
	if errors.Is(err, errStalled) {
		return err.Error()
	}
	return ""
}
