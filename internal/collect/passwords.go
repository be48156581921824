package collect

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/pwcheck"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// passwordCheck is the audit's weak-password search: the verifiers are
// read in the collection's transaction, then searched on a goroutine of
// their own while the catalogs are read, and the verdicts are merged into
// the snapshot at the end. Only the verdict goes into the snapshot.
type passwordCheck struct {
	budget  time.Duration
	index   []int // s.Roles index of each target
	cancel  context.CancelFunc
	done    chan struct{}
	results []pwcheck.Result
	stats   pwcheck.Stats
	warning string
}

// verifierGap says why the verifiers may not be fetched over se ("" when
// they may). They are as good as passwords to an eavesdropper (an md5
// hash logs in as is; a SCRAM verifier is open to an offline search), so
// only a local socket or TLS that verified the server will do.
func verifierGap(se *session) string {
	if se.transport == "unix" || se.transport == "tls-verified" {
		return ""
	}
	return "weak passwords were not looked for: the password verifiers are fetched only over a local unix socket or TLS with a verified server certificate (sslmode=verify-ca or verify-full), and this connection is " + transportName(se.transport)
}

// readVerifiers reads the stored passwords of the login roles (pg_authid:
// superusers only), most powerful roles first in the search's order.
func readVerifiers(ctx context.Context, se *session) ([]pwcheck.Target, error) {
	var targets []pwcheck.Target
	err := se.optional(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT rolname, rolpassword, rolsuper, rolcreaterole OR rolreplication OR rolbypassrls
			FROM pg_authid WHERE rolcanlogin AND rolpassword IS NOT NULL AND rolpassword <> '' ORDER BY rolname`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name, stored string
			var super, powerful bool
			if err := rows.Scan(&name, &stored, &super, &powerful); err != nil {
				return err
			}
			prio := 2
			switch {
			case super:
				prio = 0
			case powerful:
				prio = 1
			}
			targets = append(targets, pwcheck.NewTarget(name, stored, prio))
		}
		return rows.Err()
	})
	return targets, err
}

// verifierReadError is what a failed read says: only the server's message
// or a fixed text, since a scan error could quote the value, and the
// value is a verifier.
func verifierReadError(err error) string {
	if pgMsg := pgErrorText(err); pgMsg != "" {
		return "reading the password verifiers failed: " + pgMsg
	}
	return "reading the password verifiers failed"
}

// startPasswordCheck fetches the verifiers and starts the default search
// on them; nil when there is nothing to search (the gap is recorded).
func startPasswordCheck(ctx context.Context, se *session, s *snapshot.Snapshot, o *Options) *passwordCheck {
	if g := s.Gap(snapshot.GapPasswords); g != "" {
		s.AddGap(snapshot.GapWeakPasswords, g)
		return nil
	}
	if o.PasswordBudget <= 0 {
		s.AddGap(snapshot.GapWeakPasswords, "weak-password check disabled (--password-check-budget 0)")
		return nil
	}
	if g := verifierGap(se); g != "" {
		s.AddGap(snapshot.GapWeakPasswords, g)
		return nil
	}
	all, err := readVerifiers(ctx, se)
	if err != nil {
		if isPermission(err) {
			s.AddGap(snapshot.GapWeakPasswords, "pg_authid is readable only by superusers: weak passwords could not be looked for")
		} else {
			s.AddError(snapshot.GapWeakPasswords, verifierReadError(err))
		}
		return nil
	}
	byName := make(map[string]int, len(s.Roles))
	for i, r := range s.Roles {
		byName[r.Name] = i
	}
	p := &passwordCheck{budget: o.PasswordBudget, done: make(chan struct{})}
	var targets []pwcheck.Target
	for _, t := range all {
		if i, ok := byName[t.Role]; ok {
			targets = append(targets, t)
			p.index = append(p.index, i)
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	cacheDir := o.PasswordCache
	go func() {
		defer close(p.done)
		start := time.Now()
		search := pwcheck.Default(o.PasswordBudget)
		// Half the cores: the other half decodes the catalogs meanwhile.
		search.Workers = max(1, runtime.NumCPU()/2)
		if cacheDir != "" {
			c, err := pwcheck.OpenCache(cacheDir)
			if err != nil {
				p.warning = "the password cache is not used: " + err.Error()
			}
			search.Cache = c
		}
		// The budget counts from here: reading a large cache is part of it.
		search.Budget = max(time.Nanosecond, o.PasswordBudget-time.Since(start))
		p.results, p.stats = search.Run(sctx, targets)
		if p.stats.CacheError != "" {
			p.warning = "the password cache could not be written: " + p.stats.CacheError
		}
		o.trace("weak-password search: %d roles, %d guesses, %d cached, %d incomplete in %s", p.stats.Roles, p.stats.Guesses, p.stats.Cached, p.stats.Incomplete, time.Since(start).Round(time.Millisecond))
	}()
	return p
}

// stop cancels a search still running and waits for it (nil-safe).
func (p *passwordCheck) stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}

// finish waits for the search and merges its verdicts into s.
func (p *passwordCheck) finish(s *snapshot.Snapshot) {
	if p == nil {
		return
	}
	<-p.done
	p.cancel()
	for k, r := range p.results {
		s.Roles[p.index[k]].WeakPassword = r.Verdict
	}
	if p.warning != "" {
		s.Warnings = append(s.Warnings, p.warning)
	}
	switch {
	case p.stats.Interrupted:
		s.AddGap(snapshot.GapWeakPasswords, fmt.Sprintf("the weak-password search was interrupted: %d of %d roles were not searched", p.stats.Incomplete, p.stats.Roles))
	case p.stats.BudgetSpent:
		s.AddGap(snapshot.GapWeakPasswords, fmt.Sprintf("the weak-password budget (%s) ran out: %d of %d roles were not tried against all of the default guesses (the role name and its variants, the most common passwords); run 'pgaegis passwords' to search them (its verdicts are cached, and later audits use them), or raise --password-check-budget", p.budget, p.stats.Incomplete, p.stats.Roles))
	}
}

// PasswordReport is what 'pgaegis passwords' found.
type PasswordReport struct {
	Target  string
	Results []pwcheck.Result
	Stats   pwcheck.Stats
}

// Passwords searches the verifiers of the server's login roles: read over
// a unix socket or verified TLS only, by a superuser, in one short
// read-only transaction that is closed before the search starts.
func Passwords(ctx context.Context, o Options, search pwcheck.Search) (*PasswordReport, error) {
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 30 * time.Second
	}
	o.progress("connecting to %s", conninfo.Describe(o.Conn))
	se, err := openSession(ctx, o.Conn, "", &o)
	if err != nil {
		return nil, err
	}
	targets, err := func() ([]pwcheck.Target, error) {
		defer se.close(ctx)
		if g := verifierGap(se); g != "" {
			return nil, errors.New(g)
		}
		o.progress("reading the password verifiers")
		t, err := readVerifiers(ctx, se)
		if err != nil {
			if isPermission(err) {
				return nil, errors.New("pg_authid is readable only by superusers: connect as a superuser to search the password verifiers")
			}
			return nil, errors.New(verifierReadError(err))
		}
		return t, nil
	}()
	if err != nil {
		return nil, err
	}
	rep := &PasswordReport{Target: conninfo.Describe(o.Conn)}
	rep.Results, rep.Stats = search.Run(ctx, targets)
	return rep, nil
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
