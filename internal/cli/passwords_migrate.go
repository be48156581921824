package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/apply"
	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/pwmigrate"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/rotate"
	"github.com/pgaegis/pgaegis/internal/secretsink"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// passwordsMigrateCmd is 'pgaegis passwords migrate' (docs/passwords.md):
// md5 and clear-text verifiers to SCRAM.
func passwordsMigrateCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate [connection options] [--rotate ROLE...|--rotate-all] [destinations] [--apply [--yes]]",
		Short: "move md5 and clear-text password verifiers to SCRAM-SHA-256",
		Long: `Plan the move from md5 (and clear-text) password verifiers to SCRAM-SHA-256,
and with --apply carry it out. Needs a superuser: the verifiers are in
pg_authid. Only the kind of each verifier is read, never the verifier.

The report says where password_encryption is set (the configuration
files, and ALTER ROLE / ALTER DATABASE overrides, which win for their
sessions), each role with a password and what to do for it:
  rotate    roles named with --rotate, or every login role with an md5 or
            clear-text verifier but the one pgaegis runs as (--rotate-all):
            a new random password as 'pgaegis rotate' sets it
  password  every other such login role: the person runs \password in psql
            once password_encryption = scram-sha-256 is in force
  clear     a NOLOGIN role with an md5 password: a suggestion to clear it
and the pg_hba.conf md5 and password lines: which can become
scram-sha-256 (no role they match keeps an md5 verifier after the
rotations) and which are still used by md5 roles. That change is fix's:
pgaegis fix --only AUTH-02.

Without --apply nothing is written. With --apply: password_encryption =
scram-sha-256 by ALTER SYSTEM and a reload, and the overrides that are not
scram-sha-256 reset, as one journalled plan ('pgaegis fix rollback ID'
undoes it); then each rotate role is rotated, its new password delivered
to the destinations ({role} in a path is the role's name), proven first
by a login over --verify (the connection string with the user replaced).
A failed rotation puts that role's verifier back and the next role goes on.

Exit codes: 0 nothing is left on md5 (verifiers, password_encryption, hba
lines); 1 roles or hba lines remain to migrate; 2 an error, or a rotation
failed.`,
		Example: `  sudo -u postgres pgaegis passwords migrate
  sudo -u postgres pgaegis passwords migrate --format json
  sudo -u postgres pgaegis passwords migrate --rotate app --rotate batch --verify "host=db.example.com sslmode=verify-full dbname=app"
  sudo -u postgres pgaegis passwords migrate --rotate-all --apply --yes   # with a destination for the new passwords (docs/rotate.md)`,
		Args: noArgs,
	}
	var conn connFlags
	conn.register(cmd)
	var sinks sinkFlags
	sinks.register(cmd)
	fs := cmd.Flags()
	rotateRoles := fs.StringArray("rotate", nil, "rotate this role's password (repeatable)")
	rotateAll := fs.Bool("rotate-all", false, "rotate every login role with an md5 or clear-text verifier, except the role pgaegis runs as")
	verify := fs.String("verify", "", "connection string of the applications' path, where each rotated role must log in with its new password before it is delivered (user replaced by the role; default: this connection's host, port and database)")
	insecure := fs.Bool("insecure-transport", false, "rotate over a connection that is neither a unix socket nor TLS that verified the server")
	format := fs.String("format", "text", "text or json")
	doApply := fs.Bool("apply", false, "set password_encryption and rotate the rotate roles")
	yes := fs.BoolP("yes", "y", false, "apply without asking (needed when standard input is not a terminal)")
	journalDir := fs.String("journal-dir", "", "directory of plan journals, private to you (default $XDG_STATE_HOME/pgaegis/plans, else ~/.local/state/pgaegis/plans)")
	completeValues(cmd, "format", "text", "json")
	cmd.MarkFlagDirname("journal-dir")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		if *rotateAll && len(*rotateRoles) > 0 {
			return ExitError, usagef("--rotate-all and --rotate contradict each other: give one")
		}
		if *yes && !*doApply {
			return ExitError, usagef("--yes only means something with --apply")
		}
		if sinks.output != "" {
			// The report goes to standard output: secrets there would mix
			// with it (and land wherever the report is kept).
			return ExitError, usagef("--output sends the new passwords to standard output, where the report goes: use --to-file, --to-pgpass, --to-service or --exec")
		}
		if *doApply && !*yes && !stdinTerminal(env) {
			return ExitError, usagef("--apply changes the server: standard input is not a terminal to ask on, so give --yes (after reviewing the plan without --apply)")
		}
		var verifyCfg *pgx.ConnConfig
		if *verify != "" {
			c, err := conninfo.Config(conninfo.Flags{DSN: *verify, ConnectTimeout: conninfo.DefaultConnectTimeout})
			if err != nil {
				return ExitError, usagef("--verify: %v", err)
			}
			env.secrets = append(env.secrets, conninfo.Secrets(c)...)
			verifyCfg = c
		}
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		cfg = collect.WithoutEventTriggers(ctx, cfg)
		opts := pwmigrate.Options{Rotate: *rotateRoles, RotateAll: *rotateAll}
		target := conninfo.Describe(cfg)
		rep, err := migrateReport(ctx, cfg, target, opts)
		if err != nil {
			return ExitError, err
		}
		if !*doApply {
			if err := writeMigrate(env.Stdout, rep, *format); err != nil {
				return ExitError, err
			}
			return migrateCode(rep, false), nil
		}

		toRotate := rep.RotateRoles()
		if len(toRotate) > 0 && !sinks.given() {
			return ExitError, usagef("--apply would rotate %s: name where the new passwords go (--to-file, --to-pgpass, --to-service or --exec), or the passwords would be lost", roleList(toRotate))
		}
		// Every role's destinations are built before anything changes: a
		// bad path is said now, not after half the roles are rotated.
		dests := map[string][]secretsink.Sink{}
		for _, role := range toRotate {
			ss, err := sinks.sinks(env, role)
			if err != nil {
				return ExitError, fmt.Errorf("destinations for role %s: %w", quote.Ident(role), err)
			}
			dests[role] = ss
		}
		sp := pwmigrate.SettingsPlan(rep)
		if sp.Empty() && len(toRotate) == 0 {
			if err := writeMigrate(env.Stdout, rep, *format); err != nil {
				return ExitError, err
			}
			fmt.Fprintln(env.Stderr, "pgaegis passwords migrate: nothing to apply")
			return migrateCode(rep, false), nil
		}
		if !*yes {
			if err := pwmigrate.WriteText(env.Stderr, rep); err != nil {
				return ExitError, err
			}
			q := fmt.Sprintf("apply to %s: %d settings step(s), rotate %d role(s)? [y/N] ", target, len(sp.Steps), len(toRotate))
			ok, err := confirm(env, q)
			if err != nil {
				return ExitError, err
			}
			if !ok {
				fmt.Fprintln(env.Stderr, "pgaegis passwords migrate: not applied")
				return ExitError, nil
			}
		}
		var progress io.Writer
		if isTerminal(env.Stderr) {
			progress = env.Stderr
		}
		applied := &pwmigrate.Applied{Rotations: []pwmigrate.Rotation{}}
		failed := false
		if !sp.Empty() {
			ao := apply.Options{Conn: cfg, JournalRoot: *journalDir, Progress: progress}
			if rep.PasswordEncryption.Set {
				ao.Before = []plan.FindingRef{encryptionRef}
			}
			// The re-audit is this command's own inspection: the setting
			// is in force for new sessions after the reload, or the plan
			// is rolled back.
			ao.ReAudit = func(ctx context.Context) ([]plan.FindingRef, error) {
				r, err := migrateReport(ctx, cfg, target, pwmigrate.Options{})
				if err != nil {
					return nil, err
				}
				if r.PasswordEncryption.Value != pwmigrate.VerifierSCRAM {
					return []plan.FindingRef{encryptionRef}, nil
				}
				return nil, nil
			}
			res, err := apply.Apply(ctx, sp, ao)
			if res != nil {
				applied.PlanID, applied.JournalDir = res.PlanID, res.JournalDir
			}
			switch {
			case err != nil || res == nil || res.Problem != "":
				msg := "not applied"
				if res != nil && res.Problem != "" {
					msg = res.Problem
				} else if err != nil {
					msg = err.Error()
				}
				applied.Settings = "FAILED: " + msg
				failed = true
			default:
				applied.Settings = fmt.Sprintf("plan %s applied and verified (%d step(s), reloaded); undo: pgaegis fix rollback %s", res.PlanID, len(res.Applied), res.PlanID)
			}
		}
		var retry []string
		if !failed {
			for _, role := range toRotate {
				rot := rotateOne(ctx, env, cfg, role, verifyCfg, dests[role], *insecure, *journalDir)
				if !rot.OK {
					failed = true
					retry = append(retry, role)
				}
				applied.Rotations = append(applied.Rotations, rot)
			}
		} else {
			retry = toRotate
		}
		// What is left, read again: the report shows the server after.
		after, err := migrateReport(ctx, cfg, target, pwmigrate.Options{Failed: retry})
		if err != nil {
			return ExitError, fmt.Errorf("after applying: %w", err)
		}
		after.Applied = applied
		if err := writeMigrate(env.Stdout, after, *format); err != nil {
			return ExitError, err
		}
		return migrateCode(after, failed), nil
	})
	return cmd
}

// encryptionRef is the finding the settings step closes.
var encryptionRef = plan.FindingRef{Rule: "AUTH-11", Object: "setting password_encryption", Severity: "high"}

// migrateReport inspects the server and builds the report.
func migrateReport(ctx context.Context, cfg *pgx.ConnConfig, target string, o pwmigrate.Options) (*pwmigrate.Report, error) {
	c, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", target, err)
	}
	defer c.Close(context.Background())
	in, err := pwmigrate.Inspect(ctx, c)
	if err != nil {
		return nil, err
	}
	r, err := pwmigrate.Build(in, target, o)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return r, nil
}

// rotateOne rotates one role; a failure is reported, never fatal.
func rotateOne(ctx context.Context, env *Env, admin *pgx.ConnConfig, role string, verify *pgx.ConnConfig, ss []secretsink.Sink, insecure bool, journal string) pwmigrate.Rotation {
	rot := pwmigrate.Rotation{Role: role}
	o := rotate.Options{Role: role, Sinks: ss, InsecureTransport: insecure, JournalRoot: journal}
	if verify != nil {
		v := verify.Copy()
		v.User = role
		o.Verify = v
	}
	if isTerminal(env.Stderr) {
		o.Progress = func(format string, args ...any) {
			fmt.Fprintf(env.Stderr, "%s: %s\n", textsafe.String(quote.Ident(role)), textsafe.String(fmt.Sprintf(format, args...)))
		}
	}
	res, err := rotate.Rotate(ctx, admin, o)
	if res != nil {
		rot.PlanID, rot.Verified, rot.Delivered, rot.Restored = res.PlanID, res.Verified, res.Delivered, res.Restored
	}
	if err != nil {
		rot.Error = conninfo.Redact(err.Error(), env.secrets...)
		return rot
	}
	rot.OK = true
	return rot
}

func writeMigrate(w io.Writer, r *pwmigrate.Report, format string) error {
	if format == "json" {
		return pwmigrate.WriteJSON(w, r)
	}
	return pwmigrate.WriteText(w, r)
}

// migrateCode: 2 when a step failed, 1 while anything is left on md5.
func migrateCode(r *pwmigrate.Report, failed bool) int {
	switch {
	case failed:
		return ExitError
	case r.Summary.Remaining:
		return ExitFindings
	}
	return ExitOK
}

func roleList(names []string) string {
	var q []string
	for _, n := range names {
		q = append(q, quote.Ident(n))
	}
	return strings.Join(q, ", ")
}
