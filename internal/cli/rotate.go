package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/apply"
	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/leakscan"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/pwgen"
	"github.com/pgaegis/pgaegis/internal/rotate"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// rotateFlags are everything 'pgaegis rotate ROLE' takes besides the
// connection and the destinations.
type rotateFlags struct {
	length            int
	alphabet          string
	iterations        int
	validUntil        string
	verify            string
	strategy          string
	loginRoles        []string
	plan              bool
	format            string
	insecureTransport bool
	noRestore         bool
	noLeakScan        bool
	logFile           string
	journalDir        string
}

const journalDirHelp = "`DIR` of plan journals, private to you (default $XDG_STATE_HOME/pgaegis/plans, else ~/.local/state/pgaegis/plans)"

// rotateCmd is 'pgaegis rotate ROLE' and 'rotate rollback ID' (docs/rotate.md).
func rotateCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate ROLE [connection options] [destinations]",
		Short: "change a role's password without the clear text reaching the server, prove it, deliver it",
		Long: `Give ROLE a new random password (crypto/rand; --length, --alphabet) without
the clear text ever reaching the server: its SCRAM-SHA-256 verifier is
computed here with a random salt and set with ALTER ROLE ... PASSWORD
'SCRAM-SHA-256$...', in a transaction that first turns off, where the
connecting role may, what would keep the statement (log_statement,
log_min_duration_statement, pgaudit.log, ...). The connection must be a
unix socket or TLS that verified the server (sslmode=verify-full), unless
--insecure-transport.

The new password is then proven by a login as the role over the path the
application uses (--verify, default: the admin connection's host, port
and database), and only then delivered to every destination given
(--to-file, --to-pgpass, --to-service, --exec, --output json). A failed
login or delivery restores the previous verifier and the files already
written. Afterwards the server's log written meanwhile (when it can be
read) and pg_stat_statements are searched for the secret, here, never by
sending it.

--strategy alternate keeps two login roles (ROLE_a, ROLE_b, or
--login-roles), members of the NOLOGIN ROLE that owns the objects; each
rotation changes the idle one and makes it current, so the application's
open connections and its old password keep working until the next one.
--plan shows what a rotation would do and changes nothing.

Every rotation is journalled: 'pgaegis rotate rollback ID' puts the
previous verifier and files back, 'pgaegis rotate history' lists them.

Exit codes: 0 rotated (the leak scan found nothing, or could not run: it
says which); 1 rotated, but the secret was found in the server's log or
pg_stat_statements (where is said); 2 a usage error, a refusal or a
failure (it says whether the previous password was restored).`,
		Example: `  sudo -u postgres pgaegis rotate app --to-file /etc/app/db.pw --verify "host=db.example.com dbname=shop sslmode=verify-full"
  pgaegis rotate app -h /var/run/postgresql -U postgres --to-pgpass --valid-until 90d
  pgaegis rotate app -h /var/run/postgresql -U postgres --exec 'my-secret-store put app' --output json
  pgaegis rotate app_owner --strategy alternate --to-service app --plan
  pgaegis rotate rollback 20261202-143000-1a2b -h /var/run/postgresql -U postgres`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("give one role to rotate (or: rotate rollback ID, rotate history)")
			}
			return nil
		},
	}
	var conn connFlags
	conn.register(cmd)
	var sinks sinkFlags
	sinks.register(cmd)
	var f rotateFlags
	fs := cmd.Flags()
	fs.IntVar(&f.length, "length", pwgen.DefaultLength, fmt.Sprintf("password length `N` in characters (%d to %d)", pwgen.MinLength, pwgen.MaxLength))
	fs.StringVar(&f.alphabet, "alphabet", pwgen.Alnum, "the `ALPHABET` to draw from: "+strings.Join(pwgen.Alphabets, ", "))
	fs.IntVar(&f.iterations, "iterations", 0, "SCRAM-SHA-256 iterations `N`, at least 4096 (default: the server's scram_iterations on 16+, else 4096)")
	fs.StringVar(&f.validUntil, "valid-until", "", "set VALID UNTIL to `WHEN`: a duration from now (90d, 12h, 1d12h), a date (2027-03-01, local midnight), a time (2027-03-01T12:00:00Z) or infinity")
	fs.StringVar(&f.verify, "verify", "", "prove the new password over the application's connection `CONNSTR` (libpq key=value or URI, no password; its user is replaced by the login role)")
	fs.StringVar(&f.strategy, "strategy", rotate.Single, "`STRATEGY`: single changes ROLE's password; alternate keeps two login roles, members of ROLE, and changes the idle one")
	fs.StringSliceVar(&f.loginRoles, "login-roles", nil, "alternate's two login roles `A,B` (default ROLE_a,ROLE_b)")
	fs.BoolVar(&f.plan, "plan", false, "print what the rotation would do and change nothing")
	fs.StringVar(&f.format, "format", "text", "`FORMAT` of the result (or, with --plan, the plan): text or json")
	fs.BoolVar(&f.insecureTransport, "insecure-transport", false, "allow an admin connection that is neither a unix socket nor TLS that verified the server")
	fs.BoolVar(&f.noRestore, "no-restore", false, "rotate even when the previous verifier cannot be read (not a superuser): a failed login then cannot be undone")
	fs.BoolVar(&f.noLeakScan, "no-leak-scan", false, "do not search the server log and pg_stat_statements for the secret afterwards")
	fs.StringVar(&f.logFile, "log-file", "", "also search the server log `FILE` readable here (from its size before the change), for a log the server cannot read back (stderr to journald or a container)")
	fs.StringVar(&f.journalDir, "journal-dir", "", journalDirHelp)
	cmd.MarkFlagFilename("log-file")
	completeValues(cmd, "alphabet", pwgen.Alphabets...)
	completeValues(cmd, "strategy", rotate.Single, rotate.Alternate)
	completeValues(cmd, "format", "text", "json")
	cmd.MarkFlagDirname("journal-dir")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		o, err := f.options(args[0], time.Now())
		if err != nil {
			return ExitError, err
		}
		if err := sinks.check(); err != nil {
			return ExitError, err
		}
		if !f.plan && !sinks.given() {
			return ExitError, usagef("no destination: the new password would be known nowhere; give --to-file, --to-pgpass, --to-service, --exec or --output json (or --plan to see what would be done)")
		}
		if !f.plan && sinks.stdout() && f.format == "json" {
			return ExitError, usagef("--output json puts the secret on standard output, so the result cannot go there too: use --format text (it goes to standard error) or deliver the secret with --to-file or --exec")
		}
		users := []string{o.Role}
		if o.Strategy == rotate.Alternate {
			users = o.LoginRoles[:]
		}
		if o.Sinks, err = sinks.sinks(env, o.Role, users...); err != nil {
			return ExitError, err
		}
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		cfg = collect.WithoutEventTriggers(ctx, cfg)
		if f.plan {
			p, err := rotate.Plan(ctx, cfg, o)
			if err != nil {
				return ExitError, err
			}
			if f.format == "json" {
				return ExitOK, plan.WriteJSON(env.Stdout, p)
			}
			return ExitOK, plan.WriteText(textsafe.NewWriter(env.Stdout), p)
		}
		// The result goes where the secret does not.
		out := env.Stdout
		if sinks.stdout() {
			out = env.Stderr
		}
		if isTerminal(env.Stderr) {
			o.Progress = func(format string, a ...any) {
				fmt.Fprintf(env.Stderr, "pgaegis rotate: %s\n", esc(fmt.Sprintf(format, a...)))
			}
		}
		res, err := rotate.Rotate(ctx, cfg, o)
		if err != nil {
			// rotate says where the password stands once it changed
			// it; before that, or in words it did not use, say it here.
			if !strings.Contains(err.Error(), "put back") {
				err = fmt.Errorf("%w (%s)", err, restoreNote(res))
			}
			if f.format == "json" && res != nil {
				writeRotateJSON(out, env, res, err)
			}
			return ExitError, err
		}
		if f.format == "json" {
			if err := writeRotateJSON(out, env, res, nil); err != nil {
				return ExitError, err
			}
		} else {
			writeRotateText(textsafe.NewWriter(out), res, o.NoLeakScan)
		}
		if res.Leak != nil && rotate.NewSecretLeaked(res.Leak) {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	cmd.AddCommand(rotateRollbackCmd(env), rotateHistoryCmd(env))
	return cmd
}

// options checks every flag that needs no server and builds the
// rotation's options (without sinks).
func (f *rotateFlags) options(role string, now time.Time) (rotate.Options, error) {
	o := rotate.Options{
		Role: role, Strategy: f.strategy, Iterations: f.iterations,
		Password:          pwgen.Options{Length: f.length, Alphabet: f.alphabet},
		InsecureTransport: f.insecureTransport, NoRestore: f.noRestore, NoLeakScan: f.noLeakScan,
		LogFile: f.logFile, JournalRoot: f.journalDir,
	}
	if f.format != "text" && f.format != "json" {
		return o, usagef("unknown --format %q (text or json)", f.format)
	}
	if f.length < pwgen.MinLength || f.length > pwgen.MaxLength {
		return o, usagef("--length %d: a password of %d to %d characters", f.length, pwgen.MinLength, pwgen.MaxLength)
	}
	if !slices.Contains(pwgen.Alphabets, f.alphabet) {
		return o, usagef("unknown --alphabet %q (%s)", f.alphabet, strings.Join(pwgen.Alphabets, ", "))
	}
	if f.iterations != 0 && f.iterations < 4096 {
		// RFC 7677's minimum: fewer makes an offline guess of a stolen
		// verifier cheaper than PostgreSQL's own default.
		return o, usagef("--iterations %d: at least 4096", f.iterations)
	}
	switch f.strategy {
	case rotate.Single:
		if len(f.loginRoles) > 0 {
			return o, usagef("--login-roles is for --strategy alternate")
		}
	case rotate.Alternate:
		switch {
		case len(f.loginRoles) == 0:
			o.LoginRoles = [2]string{role + "_a", role + "_b"}
		case len(f.loginRoles) != 2 || f.loginRoles[0] == "" || f.loginRoles[1] == "":
			return o, usagef("--login-roles takes two roles, A,B")
		case f.loginRoles[0] == f.loginRoles[1] || slices.Contains(f.loginRoles, role):
			return o, usagef("--login-roles: two roles, different from each other and from %s (which owns the objects and does not log in)", role)
		default:
			o.LoginRoles = [2]string{f.loginRoles[0], f.loginRoles[1]}
		}
	default:
		return o, usagef("unknown --strategy %q (single or alternate)", f.strategy)
	}
	if f.validUntil != "" {
		t, never, err := parseValidUntil(f.validUntil, now)
		if err != nil {
			return o, usagef("--valid-until %q: %v", f.validUntil, err)
		}
		o.ValidUntil, o.ValidUntilNever = t, never
	}
	if f.verify != "" {
		cfg, err := verifyConfig(f.verify)
		if err != nil {
			return o, err
		}
		o.Verify = cfg
	}
	return o, nil
}

// verifyConfig parses --verify. A password in it is refused: the login
// proves the new one, and argv is readable by every user of the host.
func verifyConfig(s string) (*pgx.ConnConfig, error) {
	if conninfo.PasswordOf(s) != "" {
		return nil, usagef("--verify %s: holds a password; give the connection without one (the new password is what is proven, and argv is visible to every user of the host)", conninfo.RedactDSN(s))
	}
	cfg, err := conninfo.Config(conninfo.Flags{DSN: s})
	if err != nil {
		return nil, usagef("--verify: %v", err)
	}
	return cfg, nil
}

// parseValidUntil reads --valid-until: infinity, a duration from now (Go's
// units and a d suffix for days: 90d, 1d12h), a date (local midnight) or
// a time. A time not in the future is refused: the role could not log in
// at all.
func parseValidUntil(s string, now time.Time) (*time.Time, bool, error) {
	if strings.EqualFold(s, "infinity") {
		return nil, true, nil
	}
	var t time.Time
	if d, ok := parseDays(s); ok {
		if d <= 0 {
			return nil, false, errors.New("a duration must be positive")
		}
		t = now.Add(d)
	} else {
		var err error
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
			if t, err = time.ParseInLocation(layout, s, time.Local); err == nil {
				break
			}
		}
		if err != nil {
			return nil, false, errors.New("not a duration (90d, 12h), a date (2027-03-01), a time (2027-03-01T12:00:00Z) or infinity")
		}
	}
	if !t.After(now) {
		return nil, false, fmt.Errorf("%s is not in the future: the role could not log in at all", t.Format(time.RFC3339))
	}
	return &t, false, nil
}

// parseDays is time.ParseDuration with a leading "Nd" allowed.
func parseDays(s string) (time.Duration, bool) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100000 {
			return 0, false
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, true
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, false
	}
	return days + d, true
}

// restoreNote says, after a failed rotation, where the password stands.
func restoreNote(res *rotate.Result) string {
	switch {
	case res == nil:
		return "nothing was changed"
	case res.Restored:
		return "the previous password was restored"
	}
	if _, set := res.Stages["set"]; !set {
		return "nothing was changed"
	}
	s := "the previous password was NOT restored"
	if res.PlanID != "" {
		s += "; 'pgaegis rotate rollback " + res.PlanID + "' puts back what the journal holds"
	}
	return s
}

// stageOrder is the order stages ran in; others follow sorted.
var stageOrder = []string{"connect", "preflight", "generate", "set", "verify", "deliver", "leak-scan"}

func stageNames(st map[string]time.Duration) []string {
	var out, rest []string
	for _, n := range stageOrder {
		if _, ok := st[n]; ok {
			out = append(out, n)
		}
	}
	for n := range st {
		if !slices.Contains(stageOrder, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// writeRotateText is the summary of a rotation (no secret is in a Result).
func writeRotateText(w io.Writer, r *rotate.Result, noLeakScan bool) {
	fmt.Fprintf(w, "rotated %s: %s now logs in with the new password", esc(r.Role), esc(r.User))
	if r.Previous != "" {
		fmt.Fprintf(w, " (the current login role; %s keeps its password until the next rotation)", esc(r.Previous))
	}
	fmt.Fprintln(w)
	if len(r.Created) > 0 {
		fmt.Fprintf(w, "  created: %s\n", strings.Join(escAll(r.Created), ", "))
	}
	fmt.Fprintf(w, "  verified: %s\n", esc(r.Verified))
	fmt.Fprintf(w, "  delivered to: %s\n", strings.Join(escAll(r.Delivered), "; "))
	vu := "unchanged"
	if r.ValidUntil != nil {
		vu = r.ValidUntil.Format("2006-01-02 15:04:05 MST")
	}
	fmt.Fprintf(w, "  valid until: %s\n", vu)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", esc(warn))
	}
	fmt.Fprintf(w, "  leak scan: %s\n", leakText(r.Leak, noLeakScan))
	var st []string
	for _, n := range stageNames(r.Stages) {
		st = append(st, fmt.Sprintf("%s %s", n, r.Stages[n].Round(time.Millisecond)))
	}
	took := r.Duration.Round(time.Millisecond).String()
	if len(st) > 0 {
		took += " (" + strings.Join(st, ", ") + ")"
	}
	fmt.Fprintf(w, "  took %s\n", took)
	if r.PlanID != "" {
		fmt.Fprintf(w, "  undo: pgaegis rotate rollback %s\n", esc(r.PlanID))
	}
}

// leakText is one line on what the leak scan searched and found.
func leakText(l *leakscan.Result, skipped bool) string {
	switch {
	case l == nil && skipped:
		return "not run (--no-leak-scan)"
	case l == nil:
		return "could not run (the warning above says why)"
	}
	var searched, not []string
	if l.LogChecked {
		searched = append(searched, humanBytes(l.LogBytes)+" of server log")
	}
	if l.LogWhy != "" {
		not = append(not, "the server log ("+esc(l.LogWhy)+")")
	}
	if l.StatementsChecked {
		searched = append(searched, fmt.Sprintf("%d pg_stat_statements entries", l.Statements))
	} else if l.StatementsWhy != "" {
		not = append(not, "pg_stat_statements ("+esc(l.StatementsWhy)+")")
	}
	var b strings.Builder
	if len(searched) == 0 {
		b.WriteString("nothing could be searched")
	} else {
		b.WriteString("searched " + strings.Join(searched, " and "))
		if len(l.Hits) == 0 {
			b.WriteString(": no trace of the new password or its verifier")
		} else {
			var hits []string
			for _, h := range l.Hits {
				hits = append(hits, esc(h.Label)+" in "+esc(h.Where))
			}
			b.WriteString(": FOUND " + strings.Join(hits, "; ") + " (remove it there)")
		}
	}
	if len(not) > 0 {
		b.WriteString("; not searched: " + strings.Join(not, ", "))
	}
	return b.String()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// rotateJSON is the result of 'rotate --format json' (docs/rotate.md): no
// secret is in it.
type rotateJSON struct {
	FormatVersion int              `json:"format_version"`
	OK            bool             `json:"ok"`
	Error         string           `json:"error,omitempty"`
	Restored      bool             `json:"restored"`
	PlanID        string           `json:"plan_id"`
	Role          string           `json:"role"`
	User          string           `json:"user"`
	Previous      string           `json:"previous,omitempty"`
	Created       []string         `json:"created"`
	Verified      string           `json:"verified"`
	Delivered     []string         `json:"delivered"`
	ValidUntil    *time.Time       `json:"valid_until"`
	Warnings      []string         `json:"warnings"`
	LeakScan      *leakJSON        `json:"leak_scan"`
	StagesMS      map[string]int64 `json:"stages_ms"`
	DurationMS    int64            `json:"duration_ms"`
}

type leakJSON struct {
	LogChecked        bool       `json:"log_checked"`
	LogBytes          int64      `json:"log_bytes"`
	LogWhy            string     `json:"log_why,omitempty"`
	StatementsChecked bool       `json:"statements_checked"`
	Statements        int        `json:"statements"`
	StatementsWhy     string     `json:"statements_why,omitempty"`
	Hits              []leakHits `json:"hits"`
}

type leakHits struct {
	Label string `json:"label"`
	Where string `json:"where"`
}

func writeRotateJSON(w io.Writer, env *Env, r *rotate.Result, rerr error) error {
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	j := rotateJSON{FormatVersion: 1, OK: rerr == nil, Restored: r.Restored, PlanID: r.PlanID, Role: r.Role, User: r.User,
		Previous: r.Previous, Created: nz(r.Created), Verified: r.Verified, Delivered: nz(r.Delivered), ValidUntil: r.ValidUntil,
		Warnings: nz(r.Warnings), StagesMS: map[string]int64{}, DurationMS: r.Duration.Milliseconds()}
	if rerr != nil {
		j.Error = conninfo.Redact(rerr.Error(), env.secrets...)
	}
	for n, d := range r.Stages {
		j.StagesMS[n] = d.Milliseconds()
	}
	if l := r.Leak; l != nil {
		j.LeakScan = &leakJSON{LogChecked: l.LogChecked, LogBytes: l.LogBytes, LogWhy: l.LogWhy,
			StatementsChecked: l.StatementsChecked, Statements: l.Statements, StatementsWhy: l.StatementsWhy, Hits: []leakHits{}}
		for _, h := range l.Hits {
			j.LeakScan.Hits = append(j.LeakScan.Hits, leakHits{h.Label, h.Where})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

func rotateRollbackCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback ID [connection options]",
		Short: "put back the verifier and destination files a rotation replaced, from its journal",
		Long: `Put back what rotation ID replaced, from its journal: the previous password
verifier of the login role (and its VALID UNTIL), and each destination file
as it was, unless the file was changed since (then it is left and said).
What ran cannot be undone (an --exec command, --output json): said too.

Exit codes: 0 rolled back; 2 an error or a refusal.`,
		Example: `  pgaegis rotate rollback 20261202-143000-1a2b -h /var/run/postgresql -U postgres
  pgaegis rotate history`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("rotate rollback needs one rotation id (see pgaegis rotate history)")
			}
			return nil
		},
	}
	var conn connFlags
	conn.register(cmd)
	journalDir := cmd.Flags().String("journal-dir", "", journalDirHelp)
	format := cmd.Flags().String("format", "text", "text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.MarkFlagDirname("journal-dir")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		if !plan.ValidID(args[0]) {
			return ExitError, usagef("%q is not a rotation id (see pgaegis rotate history)", args[0])
		}
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		r, err := rotate.Rollback(ctx, collect.WithoutEventTriggers(ctx, cfg), *journalDir, args[0])
		if err != nil {
			return ExitError, err
		}
		if *format == "json" {
			nz := func(s []string) []string {
				if s == nil {
					return []string{}
				}
				return s
			}
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return ExitOK, enc.Encode(map[string]any{"plan_id": r.PlanID, "roles": nz(r.Roles), "files": nz(r.Files), "removed": nz(r.Removed), "skipped": nz(r.Skipped)})
		}
		w := textsafe.NewWriter(env.Stdout)
		fmt.Fprintf(w, "rotation %s rolled back\n", esc(r.PlanID))
		for _, role := range r.Roles {
			fmt.Fprintf(w, "  restored the previous password of %s\n", esc(role))
		}
		for _, file := range r.Files {
			fmt.Fprintf(w, "  restored %s\n", esc(file))
		}
		for _, file := range r.Removed {
			fmt.Fprintf(w, "  removed %s (the rotation created it)\n", esc(file))
		}
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "  not restored: %s\n", esc(s))
		}
		return ExitOK, nil
	})
	return cmd
}

// rotation is one line of 'rotate history'.
type rotation struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	State   string    `json:"state"`
	Target  string    `json:"target"`
	Steps   []string  `json:"steps"`
}

func rotateHistoryCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history [--journal-dir DIR] [--format text|json]",
		Short: "list the rotations in the journal, newest first",
		Example: `  pgaegis rotate history
  pgaegis rotate history --format json`,
		Args: noArgs,
	}
	dir := cmd.Flags().String("journal-dir", "", journalDirHelp)
	format := cmd.Flags().String("format", "text", "text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.MarkFlagDirname("journal-dir")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, _ []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		root := *dir
		if root == "" {
			root = apply.DefaultJournalRoot()
		}
		js, err := plan.ListJournals(root)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return ExitError, err
		}
		list := []rotation{}
		for _, j := range js {
			p, err := j.Plan()
			if err != nil || p.Source != "rotate" {
				continue // fix and policy plans share the directory
			}
			r := rotation{ID: j.ID, Created: p.Created, Target: p.Target, Steps: []string{}}
			if st, err := j.State(); err == nil {
				r.State = st.State
			}
			for _, s := range p.Steps {
				r.Steps = append(r.Steps, s.Summary)
			}
			list = append(list, r)
		}
		sort.SliceStable(list, func(a, b int) bool {
			if !list[a].Created.Equal(list[b].Created) {
				return list[a].Created.After(list[b].Created)
			}
			return list[a].ID > list[b].ID
		})
		if *format == "json" {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return ExitOK, enc.Encode(list)
		}
		if len(list) == 0 {
			fmt.Fprintf(env.Stdout, "no rotations in %s\n", esc(root))
			return ExitOK, nil
		}
		for _, r := range list {
			fmt.Fprintln(env.Stdout, esc(fmt.Sprintf("%s  %s  %-11s %s  %s", r.ID, r.Created.Local().Format("2006-01-02 15:04:05"), r.State, r.Target, strings.Join(r.Steps, "; "))))
		}
		return ExitOK, nil
	})
	return cmd
}
