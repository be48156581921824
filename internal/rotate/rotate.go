// Package rotate changes a role's password without the clear text ever
// reaching the server: a random password (pwgen), its SCRAM-SHA-256
// verifier computed here (scram), set with logging quieted for the one
// transaction (pgquiet) over a unix socket or verified TLS, proven by a
// login over the application's own path, and only then delivered
// (secretsink). A failed login or delivery puts the previous verifier
// back. Every rotation is journalled (plan.Journal, Source "rotate") and
// can be rolled back by id.
//
// Strategies: "single" changes the role itself; "alternate" keeps two
// login roles (OWNER_a, OWNER_b), members of the NOLOGIN owner with
// their sessions set to it (ALTER ROLE ... SET role), so objects either
// creates belong to the owner; each rotation changes the idle one and
// makes it current, and the other keeps working until the next rotation.
package rotate

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/leakscan"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/pwgen"
	"github.com/pgaegis/pgaegis/internal/secretsink"
)

// Strategies.
const (
	Single    = "single"
	Alternate = "alternate"
)

// Options say what to rotate and where the secret goes.
type Options struct {
	Role     string // the role (single) or the NOLOGIN owner (alternate)
	Strategy string // Single ("") or Alternate
	// LoginRoles are alternate's two login roles; zero: Role+"_a", Role+"_b".
	LoginRoles [2]string
	Password   pwgen.Options
	Iterations int // SCRAM iterations; 0: the server's scram_iterations (16+) or 4096
	// ValidUntil sets VALID UNTIL; nil leaves it as it is ("infinity" to clear
	// is ValidUntilNever).
	ValidUntil      *time.Time
	ValidUntilNever bool
	// Verify is the application's path: a login as the new user with the
	// new password must succeed there before anything is delivered. nil:
	// the admin connection's host, port and database with the user
	// replaced. Its Password is ignored.
	Verify *pgx.ConnConfig
	// Sinks receive the secret after the login succeeded, in order. At
	// least one is required (else the new password would be lost).
	Sinks []secretsink.Sink
	// InsecureTransport allows an admin connection that is neither a unix
	// socket nor TLS that verified the server.
	InsecureTransport bool
	// NoRestore allows a rotation whose previous verifier cannot be read
	// (a non-superuser cannot read pg_authid): a failed login then cannot
	// be undone. Without it such a rotation is refused before any change.
	NoRestore bool
	// NoLeakScan skips the log and pg_stat_statements scan afterwards.
	NoLeakScan bool
	// LogFile is a server log readable here, searched too (from its size
	// before the change): for a log the server cannot read back itself
	// (logging to stderr captured by systemd or a container runtime).
	LogFile     string
	JournalRoot string // plan journals; "": apply.DefaultJournalRoot()
	// Progress receives one line per stage (never a secret); nil: quiet.
	Progress func(format string, args ...any)
}

// Result is what a rotation did. It holds no secret.
type Result struct {
	PlanID   string
	Role     string // Options.Role
	User     string // the login role whose password changed (the new current one under alternate)
	Previous string // alternate: the login role that was current before ("" on the first rotation)
	// Created lists roles made by this run (alternate's first rotation).
	Created    []string
	Verified   string // how the login proved it: "app_b@db.example.com:5432 over TLS (scram-sha-256)"
	Delivered  []string
	ValidUntil *time.Time
	Warnings   []string // quiet settings that could not be changed, trust on the verify path, ...
	Leak       *leakscan.Result
	Restored   bool                     // the previous verifier was put back (set with a non-nil error)
	Stages     map[string]time.Duration // "connect", "set", "verify", "deliver", "leak-scan"
	Duration   time.Duration
}

// Rotate performs the rotation with the admin connection admin. On an
// error after the password was changed it restores the previous verifier
// and every destination already written, and says so in the error and
// in Result.Restored.
func Rotate(ctx context.Context, admin *pgx.ConnConfig, o Options) (*Result, error) {
	start := time.Now()
	res := &Result{Role: o.Role, Stages: map[string]time.Duration{}}
	err := rotate(ctx, admin, o, res)
	res.Duration = time.Since(start)
	return res, err
}

// Plan says what Rotate would do, read-only (roles created, the login
// role whose verifier changes, VALID UNTIL, the verify path, the
// destinations), as a plan.Plan with Source "rotate" whose SQL shows
// "PASSWORD '<new SCRAM-SHA-256 verifier>'" in place of any verifier.
func Plan(ctx context.Context, admin *pgx.ConnConfig, o Options) (*plan.Plan, error) {
	a, err := connectAdmin(ctx, admin, o.InsecureTransport)
	if err != nil {
		return nil, err
	}
	defer a.close()
	p, err := prepare(ctx, a, &o)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	pl := p.buildPlan(now)
	// An id for the header only: a rotation run later journals under its own.
	pl.ID = plan.NewJournalID(now)
	return pl, nil
}

// RollbackResult is what Rollback put back.
type RollbackResult struct {
	PlanID  string
	Roles   []string // verifiers (and VALID UNTIL, comments) restored
	Files   []string // destination files restored
	Removed []string // destination files the rotation created, removed again
	Skipped []string // destinations not restored and why (changed since, a command)
}

// Rollback restores the verifiers and destination files journalled by
// the rotation id (under root), refusing a file changed since.
func Rollback(ctx context.Context, admin *pgx.ConnConfig, root, id string) (*RollbackResult, error) {
	return rollback(ctx, admin, journalRoot(root), id)
}
