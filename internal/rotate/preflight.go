package rotate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/scram"
)

// commentPrefix marks alternate's login roles as made by pgaegis rotate;
// the rest of the comment says which one is current. It lives on the
// server so a rotation from any machine sees the same state.
const commentPrefix = "pgaegis rotate: "

func currentComment(t time.Time) string {
	return commentPrefix + "current since " + t.UTC().Format(time.RFC3339)
}

func previousComment(t time.Time) string {
	return commentPrefix + "previous since " + t.UTC().Format(time.RFC3339)
}

// role is one role as the preflight read it.
type role struct {
	name       string
	oid        uint32
	exists     bool
	canLogin   bool
	super      bool
	validUntil *string // rolvaliduntil as text (ISO, UTC); nil: none
	comment    *string
	// verifier is pg_authid.rolpassword (nil: no password); readable is
	// false when pg_authid could not be read.
	verifier *string
	readable bool
	member   bool // alternate: a member of the owner
}

func (a *admin) readRole(ctx context.Context, name string) (*role, error) {
	r := &role{name: name}
	qctx, cancel := a.bound(ctx)
	defer cancel()
	err := a.conn.QueryRow(qctx, `SELECT oid, rolcanlogin, rolsuper, rolvaliduntil::text, pg_catalog.shobj_description(oid, 'pg_authid')
		FROM pg_catalog.pg_roles WHERE rolname = $1`, name).Scan(&r.oid, &r.canLogin, &r.super, &r.validUntil, &r.comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading role %s: %s", quote.Ident(name), errText(err))
	}
	r.exists = true
	err = a.conn.QueryRow(qctx, `SELECT rolpassword FROM pg_catalog.pg_authid WHERE oid = $1`, r.oid).Scan(&r.verifier)
	switch {
	case err == nil:
		r.readable = true
	case sqlState(err) == "42501":
	default:
		return nil, fmt.Errorf("reading the password of %s: %s", quote.Ident(name), errText(err))
	}
	return r, nil
}

// canAlter says why the admin may not change r's password, or nil. The
// server's rules: a superuser may change any; only a superuser may
// change a superuser's; a role may change its own; otherwise CREATEROLE,
// and on 16+ ADMIN OPTION on the role too.
func (a *admin) canAlter(ctx context.Context, r *role) error {
	if a.super {
		return nil
	}
	if r.super {
		return fmt.Errorf("role %s is a superuser: only a superuser can change its password (connected as %s, not a superuser)", quote.Ident(r.name), quote.Ident(a.user))
	}
	if r.name == a.user {
		return nil
	}
	if !a.createRole {
		return fmt.Errorf("%s may not change the password of %s: that needs a superuser or a role with CREATEROLE%s", quote.Ident(a.user), quote.Ident(r.name), adminOptionWord(a, r.name))
	}
	if a.major() >= 16 {
		ok, err := a.hasAdmin(ctx, r.name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s has CREATEROLE but not ADMIN OPTION on %s, which PostgreSQL %d requires to change its password: GRANT %s TO %s WITH ADMIN OPTION (as a superuser)", quote.Ident(a.user), quote.Ident(r.name), a.major(), quote.Ident(r.name), quote.Ident(a.user))
		}
	}
	return nil
}

func adminOptionWord(a *admin, name string) string {
	if a.major() >= 16 {
		return " and ADMIN OPTION on " + quote.Ident(name)
	}
	return ""
}

func (a *admin) hasAdmin(ctx context.Context, name string) (bool, error) {
	qctx, cancel := a.bound(ctx)
	defer cancel()
	var ok bool
	if err := a.conn.QueryRow(qctx, `SELECT pg_catalog.pg_has_role(current_user, $1::text, 'MEMBER WITH ADMIN OPTION')`, name).Scan(&ok); err != nil {
		return false, fmt.Errorf("checking ADMIN OPTION on %s: %s", quote.Ident(name), errText(err))
	}
	return ok, nil
}

// prepared is everything the preflight found: what Plan shows and
// Rotate does.
type prepared struct {
	o          *Options
	alternate  bool
	owner      *role // alternate: Options.Role
	user       *role // whose password changes (alternate: the idle login role)
	current    *role // alternate: the login role current now (nil on the first rotation)
	create     bool  // alternate's first rotation: both login roles are created
	login      [2]string
	iterations int
	until      string // VALID UNTIL value ("" leaves it)
	verify     *pgx.ConnConfig
	warnings   []string
	target     string
	major      int
	pair       [2]*role // alternate: the login roles as read
}

// prepare is the read-only preflight: every refusal happens here, before
// anything changes.
func prepare(ctx context.Context, a *admin, o *Options) (*prepared, error) {
	p := &prepared{o: o, target: conninfo.Describe(a.cfg), major: a.major()}
	if o.Role == "" {
		return nil, errors.New("rotate: no role given")
	}
	switch o.Strategy {
	case "", Single:
	case Alternate:
		p.alternate = true
	default:
		return nil, fmt.Errorf("rotate: unknown strategy %q (single or alternate)", o.Strategy)
	}
	if o.ValidUntil != nil && o.ValidUntilNever {
		return nil, errors.New("rotate: VALID UNTIL given both as a time and as never")
	}
	if o.ValidUntil != nil {
		if !o.ValidUntil.After(time.Now()) {
			return nil, fmt.Errorf("rotate: VALID UNTIL %s is in the past: the new password would not log in", o.ValidUntil.UTC().Format(time.RFC3339))
		}
		p.until = o.ValidUntil.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
	} else if o.ValidUntilNever {
		p.until = "infinity"
	}
	p.iterations = o.Iterations
	if p.iterations == 0 {
		p.iterations = scram.DefaultIterations
		if a.num >= 160000 {
			qctx, cancel := a.bound(ctx)
			var s string
			err := a.conn.QueryRow(qctx, `SELECT current_setting('scram_iterations')`).Scan(&s)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("reading scram_iterations: %s", errText(err))
			}
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				p.iterations = n
			}
		}
	}
	if o.Verify != nil {
		p.verify = o.Verify.Copy()
	} else {
		p.verify = a.base.Copy() // the caller's settings, not our session's
	}
	p.verify.Password = ""
	r, err := a.readRole(ctx, o.Role)
	if err != nil {
		return nil, err
	}
	if !r.exists {
		return nil, fmt.Errorf("role %s does not exist on %s", quote.Ident(o.Role), p.target)
	}
	if p.alternate {
		err = p.prepareAlternate(ctx, a, r)
	} else {
		err = p.prepareSingle(ctx, a, r)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *prepared) prepareSingle(ctx context.Context, a *admin, r *role) error {
	if !r.canLogin {
		return fmt.Errorf("role %s cannot log in: the new password would prove nothing (for a NOLOGIN owner use --strategy alternate)", quote.Ident(r.name))
	}
	if err := a.canAlter(ctx, r); err != nil {
		return err
	}
	if err := p.needPrevious(a, r); err != nil {
		return err
	}
	p.user = r
	return nil
}

// needPrevious refuses a role whose previous verifier cannot be read,
// unless NoRestore: a failed login could then not be undone.
func (p *prepared) needPrevious(a *admin, r *role) error {
	if r.readable || p.o.NoRestore {
		return nil
	}
	return fmt.Errorf("cannot read the current password of %s as %s (pg_authid is readable by superusers only), so a failed login could not be undone: connect as a superuser, or accept that with --no-restore", quote.Ident(r.name), quote.Ident(a.user))
}

func (p *prepared) prepareAlternate(ctx context.Context, a *admin, owner *role) error {
	p.owner = owner
	if owner.canLogin {
		p.warnings = append(p.warnings, fmt.Sprintf("role %s can still log in: once the application uses the login roles, make it NOLOGIN (ALTER ROLE %s NOLOGIN)", quote.Ident(owner.name), quote.Ident(owner.name)))
	}
	p.login = p.o.LoginRoles
	if p.login[0] == "" {
		p.login[0] = owner.name + "_a"
	}
	if p.login[1] == "" {
		p.login[1] = owner.name + "_b"
	}
	if p.login[0] == p.login[1] || p.login[0] == owner.name || p.login[1] == owner.name {
		return fmt.Errorf("rotate: the login roles %s and %s must be two roles other than %s", quote.Ident(p.login[0]), quote.Ident(p.login[1]), quote.Ident(owner.name))
	}
	var rs [2]*role
	for i, n := range p.login {
		r, err := a.readRole(ctx, n)
		if err != nil {
			return err
		}
		if r.exists {
			qctx, cancel := a.bound(ctx)
			err := a.conn.QueryRow(qctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members WHERE roleid = $1 AND member = $2)`, owner.oid, r.oid).Scan(&r.member)
			cancel()
			if err != nil {
				return fmt.Errorf("reading the members of %s: %s", quote.Ident(owner.name), errText(err))
			}
		}
		rs[i] = r
	}
	p.pair = rs
	switch {
	case !rs[0].exists && !rs[1].exists:
		p.create = true
		if !a.super {
			if owner.super {
				return fmt.Errorf("role %s is a superuser: only a superuser can grant it to new login roles (connected as %s)", quote.Ident(owner.name), quote.Ident(a.user))
			}
			if !a.createRole {
				return fmt.Errorf("%s may not create the login roles %s and %s: that needs CREATEROLE%s", quote.Ident(a.user), quote.Ident(p.login[0]), quote.Ident(p.login[1]), adminOptionWord(a, owner.name))
			}
			if a.major() >= 16 {
				ok, err := a.hasAdmin(ctx, owner.name)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%s has CREATEROLE but not ADMIN OPTION on %s, which PostgreSQL %d requires to grant it to the login roles: GRANT %s TO %s WITH ADMIN OPTION (as a superuser)", quote.Ident(a.user), quote.Ident(owner.name), a.major(), quote.Ident(owner.name), quote.Ident(a.user))
				}
			}
		}
		p.user = rs[0]
		return nil
	case rs[0].exists != rs[1].exists:
		have, missing := rs[0], rs[1]
		if !have.exists {
			have, missing = missing, have
		}
		return fmt.Errorf("login role %s exists but %s does not: alternate rotation needs both, made by pgaegis rotate (drop %s or create %s as its pair)", quote.Ident(have.name), quote.Ident(missing.name), quote.Ident(have.name), quote.Ident(missing.name))
	}
	for _, r := range rs {
		if r.comment == nil || !strings.HasPrefix(*r.comment, commentPrefix) {
			return fmt.Errorf("role %s exists but was not made by pgaegis rotate for %s (its comment does not start with %q): refusing to change its password; give other --login-roles", quote.Ident(r.name), quote.Ident(owner.name), commentPrefix)
		}
		if !r.member {
			return fmt.Errorf("role %s is not a member of %s: it was not made for this owner (or its membership was revoked); refusing to change its password", quote.Ident(r.name), quote.Ident(owner.name))
		}
		if !r.canLogin {
			return fmt.Errorf("login role %s cannot log in (NOLOGIN): refusing to rotate onto it", quote.Ident(r.name))
		}
	}
	// The idle one gets the new password; with neither current (a first
	// rotation that failed half-way), the first.
	idle, cur := rs[0], rs[1]
	if isCurrent(rs[0]) {
		idle, cur = rs[1], rs[0]
	} else if !isCurrent(rs[1]) {
		cur = nil
	}
	if err := a.canAlter(ctx, idle); err != nil {
		return err
	}
	if cur != nil {
		if err := a.canAlter(ctx, cur); err != nil { // its comment changes too
			return err
		}
	}
	if err := p.needPrevious(a, idle); err != nil {
		return err
	}
	p.user, p.current = idle, cur
	return nil
}

func isCurrent(r *role) bool {
	return r.comment != nil && strings.HasPrefix(*r.comment, commentPrefix+"current")
}

// setStatements are the statements of the password transaction, with
// pw the verifier as an SQL literal (or maskedVerifier).
func (p *prepared) setStatements(pw string, now time.Time) []string {
	if !p.alternate || !p.create {
		return []string{alterPassword(p.user.name, pw, p.until)}
	}
	owner := quote.Ident(p.owner.name)
	grantOpts := ""
	if p.major >= 16 {
		grantOpts = " WITH INHERIT TRUE, SET TRUE"
	}
	var out []string
	for i, n := range p.login {
		q := "CREATE ROLE " + quote.Ident(n) + " LOGIN INHERIT"
		if i == 0 {
			q += " PASSWORD " + pw
			if p.until != "" {
				q += " VALID UNTIL " + quote.Literal(p.until)
			}
		}
		out = append(out, q,
			"GRANT "+owner+" TO "+quote.Ident(n)+grantOpts,
			// Objects either creates belong to the owner, so both can
			// use everything the application made.
			"ALTER ROLE "+quote.Ident(n)+" SET role = "+quote.Literal(p.owner.name),
			"COMMENT ON ROLE "+quote.Ident(n)+" IS "+quote.Literal(previousComment(now)))
	}
	return out
}

// flipStatements make the idle role current and the current one previous.
func (p *prepared) flipStatements(now time.Time) []string {
	out := []string{"COMMENT ON ROLE " + quote.Ident(p.user.name) + " IS " + quote.Literal(currentComment(now))}
	other := p.login[0]
	if other == p.user.name {
		other = p.login[1]
	}
	return append(out, "COMMENT ON ROLE "+quote.Ident(other)+" IS "+quote.Literal(previousComment(now)))
}

// verifyPath names where the verify login goes.
func verifyPath(cfg *pgx.ConnConfig, user string) string {
	host := cfg.Host
	return fmt.Sprintf("%s@%s:%d", user, host, cfg.Port)
}

// buildPlan is the plan Plan returns and Rotate journals; every verifier
// in it is masked.
func (p *prepared) buildPlan(now time.Time) *plan.Plan {
	pl := &plan.Plan{FormatVersion: plan.FormatVersion, Created: now.UTC(), Source: "rotate", Target: p.target}
	add := func(s plan.Step) {
		s.ID = strconv.Itoa(len(pl.Steps) + 1)
		pl.Steps = append(pl.Steps, s)
	}
	until := ""
	switch p.until {
	case "":
	case "infinity":
		until = ", VALID UNTIL infinity"
	default:
		until = ", VALID UNTIL " + p.until
	}
	summary := fmt.Sprintf("set a new password for %s (SCRAM-SHA-256, %d iterations%s)", quote.Ident(p.user.name), p.iterations, until)
	if p.create {
		summary = fmt.Sprintf("create the login roles %s and %s (members of %s, sessions as %s) and set a new password for %s (SCRAM-SHA-256, %d iterations%s)",
			quote.Ident(p.login[0]), quote.Ident(p.login[1]), quote.Ident(p.owner.name), quote.Ident(p.owner.name), quote.Ident(p.user.name), p.iterations, until)
	}
	add(plan.Step{Kind: plan.KindSQL, Summary: summary, SQL: p.setStatements(maskedVerifier, now), Cluster: true, Superuser: p.user.super})
	add(plan.Step{Kind: plan.KindVerify, Summary: fmt.Sprintf("log in as %s with the new password (database %s); on failure put the previous password back", verifyPath(p.verify, p.user.name), quote.Ident(p.verify.Database))})
	if p.alternate {
		add(plan.Step{Kind: plan.KindSQL, Summary: fmt.Sprintf("make %s the current login role of %s", quote.Ident(p.user.name), quote.Ident(p.owner.name)), SQL: p.flipStatements(now), Cluster: true})
	}
	for _, s := range p.o.Sinks {
		add(plan.Step{Kind: plan.KindDeliver, Summary: "deliver the secret to " + s.String()})
	}
	if !p.o.NoLeakScan {
		add(plan.Step{Kind: plan.KindVerify, Summary: "search the server log written since the change and pg_stat_statements for the password and its verifier"})
	}
	return pl
}
