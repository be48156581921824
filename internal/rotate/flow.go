package rotate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/apply"
	"github.com/pgaegis/pgaegis/internal/leakscan"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/pwgen"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/scram"
	"github.com/pgaegis/pgaegis/internal/secretsink"
)

// Variables only so the package's tests could run before the packages
// they stand for were built.
var (
	generate     = pwgen.Generate
	takeMark     = leakscan.TakeMark
	scanLeaks    = leakscan.Scan
	scanLeakFile = leakscan.ScanFile
)

// pgxPassword is the password pgx must be given for its SCRAM login to
// match the verifier computed from pw: pgx does not apply SASLprep.
func pgxPassword(pw []byte) string { return scram.ForPgx(pw) }

// runner is one rotation's bookkeeping.
type runner struct {
	o      *Options
	res    *Result
	warned map[string]bool
	j      *plan.Journal
	st     *plan.JournalState
	// secrets are scrubbed from every message that leaves Rotate.
	secrets []string
}

func (r *runner) progress(format string, args ...any) {
	if r.o.Progress != nil {
		r.o.Progress("%s", scrub(fmt.Sprintf(format, args...), r.secrets...))
	}
}

func (r *runner) warn(msg string) {
	msg = scrub(msg, r.secrets...)
	if r.warned[msg] {
		return
	}
	if r.warned == nil {
		r.warned = map[string]bool{}
	}
	r.warned[msg] = true
	r.res.Warnings = append(r.res.Warnings, msg)
	r.progress("warning: %s", msg)
}

// fail records the journal as failed (nothing of the rotation in force
// when restored) and returns the error.
func (r *runner) fail(problem string) error {
	problem = scrub(problem, r.secrets...)
	if r.j != nil {
		r.st.State, r.st.Problem = plan.StateFailed, problem
		if werr := r.j.WriteState(r.st); werr != nil {
			problem += "; " + werr.Error()
		}
	}
	return errors.New(problem)
}

func (r *runner) stage(name string, t0 time.Time) { r.res.Stages[name] += time.Since(t0) }

func journalRoot(root string) string {
	if root != "" {
		return root
	}
	return apply.DefaultJournalRoot()
}

// verifierParts are the secret parts of a SCRAM verifier: the whole,
// StoredKey and ServerKey (either lets an attacker impersonate the
// server or, with a captured exchange, the client).
func verifierParts(v string) []string {
	out := []string{v}
	if i := strings.LastIndexByte(v, '$'); i >= 0 {
		if sk, svk, ok := strings.Cut(v[i+1:], ":"); ok {
			out = append(out, sk, svk)
		}
	}
	return out
}

func rotate(ctx context.Context, adminCfg *pgx.ConnConfig, o Options, res *Result) error {
	r := &runner{o: &o, res: res}
	if len(o.Sinks) == 0 {
		return errors.New("rotate: no destination for the new password (it would be lost): give at least one")
	}
	t0 := time.Now()
	a, err := connectAdmin(ctx, adminCfg, o.InsecureTransport)
	r.stage("connect", t0)
	if err != nil {
		return err
	}
	defer func() { a.close() }()
	r.progress("connected to %s over %s", a.cfg.Host, transportWord(a.transport))

	t0 = time.Now()
	p, err := prepare(ctx, a, &o)
	r.stage("preflight", t0)
	if err != nil {
		return err
	}
	for _, w := range p.warnings {
		r.warn(w)
	}
	res.User, res.ValidUntil = p.user.name, o.ValidUntil
	if p.current != nil {
		res.Previous = p.current.name
	}

	t0 = time.Now()
	pw, err := generate(o.Password)
	if err != nil {
		return fmt.Errorf("generating the password: %w", err)
	}
	defer clear(pw)
	ver, err := scram.Verifier(pw, p.iterations)
	if err != nil {
		return fmt.Errorf("computing the verifier: %w", err)
	}
	r.secrets = append([]string{string(pw)}, verifierParts(ver)...)
	r.stage("generate", t0)
	needles := []leakscan.Needle{{Label: "new password", Value: pw}}
	for i, part := range verifierParts(ver) {
		needles = append(needles, leakscan.Needle{Label: []string{"new verifier", "new verifier's StoredKey", "new verifier's ServerKey"}[i], Value: []byte(part)})
	}

	now := time.Now()
	saved := p.saved(ver)
	for _, s := range saved.Roles {
		if s.Verifier != nil && scram.IsVerifier(*s.Verifier) {
			for i, part := range verifierParts(*s.Verifier) {
				r.secrets = append(r.secrets, part)
				needles = append(needles, leakscan.Needle{Label: []string{"previous verifier", "previous verifier's StoredKey", "previous verifier's ServerKey"}[i] + " of " + s.Role, Value: []byte(part)})
			}
		}
	}
	data, err := marshal(saved)
	if err != nil {
		return err
	}
	j, err := plan.CreateJournal(journalRoot(o.JournalRoot), p.buildPlan(now))
	if err != nil {
		return err
	}
	r.j, res.PlanID = j, j.ID
	if r.st, err = j.State(); err != nil {
		return err
	}
	if err := j.WriteExtra(verifiersFile, data); err != nil {
		return r.fail(err.Error())
	}

	var mark leakscan.Mark
	marked := false
	if !o.NoLeakScan {
		if mark, err = takeMark(ctx, a.conn); err != nil {
			r.warn("the leak scan cannot mark the server log: " + err.Error())
		} else {
			marked = true
		}
	}
	var fileOffset int64 = -1
	if !o.NoLeakScan && o.LogFile != "" {
		if st, err := os.Stat(o.LogFile); err != nil {
			r.warn("the leak scan cannot read " + o.LogFile + ": " + err.Error())
		} else {
			fileOffset = st.Size()
		}
	}

	t0 = time.Now()
	r.progress("setting the new password of %s", quote.Ident(p.user.name))
	real := p.setStatements(quote.Literal(ver), now)
	shown := p.setStatements(maskedVerifier, now)
	stmts := make([]stmt, len(real))
	for i := range real {
		stmts[i] = stmt{real[i], shown[i]}
	}
	err = a.quietTx(ctx, stmts, r.warn)
	r.stage("set", t0)
	if err != nil {
		// The transaction rolled back: nothing changed.
		return r.fail(fmt.Sprintf("setting the password of %s: %s", quote.Ident(p.user.name), err))
	}
	if p.create {
		res.Created = append(res.Created, p.login[0], p.login[1])
	}
	r.st.Applied = append(r.st.Applied, "1")
	if err := j.WriteState(r.st); err != nil {
		return r.restore(ctx, a, p, saved, err.Error())
	}

	t0 = time.Now()
	r.progress("verifying: logging in as %s", verifyPath(p.verify, p.user.name))
	how, trust, err := verifyLogin(ctx, p.verify, p.user.name, pw)
	r.stage("verify", t0)
	if err != nil {
		return r.restore(ctx, a, p, saved, fmt.Sprintf("the new password did not log in as %s (database %s): %s", verifyPath(p.verify, p.user.name), quote.Ident(p.verify.Database), err))
	}
	res.Verified = how
	if trust {
		r.warn(fmt.Sprintf("the verify path %s does not check the password (trust): the login proved nothing about the new password", verifyPath(p.verify, p.user.name)))
	}
	r.progress("verified: %s", how)
	r.st.Applied = append(r.st.Applied, "2")

	if p.alternate {
		var flip []stmt
		for _, q := range p.flipStatements(time.Now()) {
			flip = append(flip, stmt{q, q})
		}
		if err := a.quietTx(ctx, flip, r.warn); err != nil {
			return r.restore(ctx, a, p, saved, fmt.Sprintf("making %s current: %s", quote.Ident(p.user.name), err))
		}
		r.st.Applied = append(r.st.Applied, "3")
	}

	t0 = time.Now()
	secret := secretsink.Secret{Role: o.Role, User: p.user.name, Password: pw, Host: p.verify.Host, Port: strconv.Itoa(int(p.verify.Port)), Database: p.verify.Database, ValidUntil: o.ValidUntil}
	var done []*secretsink.Delivery
	for _, s := range o.Sinks {
		r.progress("delivering to %s", s.String())
		d, err := s.Deliver(ctx, secret)
		if err != nil {
			problem := fmt.Sprintf("delivering to %s: %s", s.String(), err)
			for i := len(done) - 1; i >= 0; i-- {
				if done[i].Undo == nil {
					problem += fmt.Sprintf("; %s cannot be undone and keeps the new password", done[i].Sink)
					continue
				}
				if uerr := done[i].Undo(); uerr != nil {
					problem += fmt.Sprintf("; putting %s back failed: %s", done[i].Sink, uerr)
				} else {
					problem += fmt.Sprintf("; put %s back", done[i].Sink)
				}
			}
			r.stage("deliver", t0)
			return r.restore(ctx, a, p, saved, problem)
		}
		if d == nil {
			d = &secretsink.Delivery{Sink: s.String()}
		}
		done = append(done, d)
		res.Delivered = append(res.Delivered, s.String())
		if b, err := marshal(toSaved(done)); err == nil {
			err = j.WriteExtra(deliveriesFile, b)
			if err != nil {
				r.warn("journalling the deliveries: " + err.Error())
			}
		}
	}
	r.stage("deliver", t0)
	r.st.State = plan.StateApplied
	if err := j.WriteState(r.st); err != nil {
		r.warn(err.Error())
	}
	r.progress("rotated %s: plan %s", quote.Ident(p.user.name), j.ID)

	if marked || fileOffset >= 0 {
		t0 = time.Now()
		lr := &leakscan.Result{LogWhy: mark.Why}
		var err error
		if marked {
			lr, err = scanLeaks(ctx, a.conn, mark, needles)
		}
		if err == nil && fileOffset >= 0 {
			var fr *leakscan.Result
			if fr, err = scanLeakFile(o.LogFile, fileOffset, needles); err == nil {
				lr.LogChecked, lr.LogBytes = true, lr.LogBytes+fr.LogBytes
				lr.Hits = append(lr.Hits, fr.Hits...)
				lr.LogWhy = "" // a log was searched
			}
		}
		r.stage("leak-scan", t0)
		if err != nil {
			r.warn("the leak scan failed: " + err.Error())
		} else {
			res.Leak = lr
			for _, h := range lr.Hits {
				if isNewSecret(h.Label) {
					r.warn(fmt.Sprintf("LEAK: the %s was found in %s: treat it as exposed and rotate again once the cause is fixed", h.Label, h.Where))
				} else {
					// Left there before this run: it no longer logs in,
					// but the old password may be in use elsewhere.
					r.warn(fmt.Sprintf("the %s is still in %s, from before this rotation: it no longer logs in here, but remove it (pg_stat_statements_reset(), the log file)", h.Label, h.Where))
				}
			}
			if len(lr.Hits) == 0 {
				r.progress("leak scan: nothing found (%s)", leakSummary(lr))
			}
		}
	}
	return nil
}

func leakSummary(lr *leakscan.Result) string {
	var parts []string
	if lr.LogChecked {
		parts = append(parts, fmt.Sprintf("%d bytes of server log", lr.LogBytes))
	} else if lr.LogWhy != "" {
		parts = append(parts, "log not searched: "+lr.LogWhy)
	}
	if lr.StatementsChecked {
		parts = append(parts, fmt.Sprintf("%d pg_stat_statements entries", lr.Statements))
	} else if lr.StatementsWhy != "" {
		parts = append(parts, "pg_stat_statements not searched: "+lr.StatementsWhy)
	}
	return strings.Join(parts, "; ")
}

// saved is what the journal keeps of the roles before the change.
func (p *prepared) saved(newVerifier string) savedRotation {
	s := savedRotation{Strategy: Single, Role: p.o.Role, User: p.user.name}
	if p.alternate {
		s.Strategy = Alternate
	}
	if p.current != nil {
		s.Previous = p.current.name
	}
	if p.create {
		for _, n := range p.login {
			sr := savedRole{Role: n, Created: true, Readable: true}
			if n == p.user.name {
				sr.NewSHA256 = plan.Hash([]byte(newVerifier))
			}
			s.Roles = append(s.Roles, sr)
		}
		return s
	}
	u := p.user
	s.Roles = append(s.Roles, savedRole{Role: u.name, Verifier: u.verifier, Readable: u.readable, ValidUntil: u.validUntil,
		SetValidUntil: p.until != "", Comment: u.comment, SetComment: p.alternate, NewSHA256: plan.Hash([]byte(newVerifier))})
	if p.alternate {
		other := p.login[0]
		if other == u.name {
			other = p.login[1]
		}
		sr := savedRole{Role: other, SetComment: true, Readable: true}
		for _, pr := range p.pair {
			if pr != nil && pr.name == other {
				sr.Comment = pr.comment
			}
		}
		s.Roles = append(s.Roles, sr)
	}
	return s
}

// restoreStatements put the journalled roles back: created roles are
// dropped, verifiers, VALID UNTIL and comments set as they were.
func restoreStatements(s savedRotation) []stmt {
	var out []stmt
	for _, r := range s.Roles {
		if r.Created {
			q := "DROP ROLE IF EXISTS " + quote.Ident(r.Role)
			out = append(out, stmt{q, q})
			continue
		}
		if r.NewSHA256 != "" && r.Readable {
			pw, shown := "NULL", "NULL"
			if r.Verifier != nil {
				pw, shown = quote.Literal(*r.Verifier), "'<previous verifier>'"
			}
			until := ""
			if r.SetValidUntil {
				// ALTER ROLE cannot give rolvaliduntil back its NULL;
				// infinity means the same to the server.
				until = "infinity"
				if r.ValidUntil != nil {
					until = *r.ValidUntil
				}
			}
			out = append(out, stmt{alterPassword(r.Role, pw, until), alterPassword(r.Role, shown, until)})
		}
		if r.SetComment {
			c := "NULL"
			if r.Comment != nil {
				c = quote.Literal(*r.Comment)
			}
			q := "COMMENT ON ROLE " + quote.Ident(r.Role) + " IS " + c
			out = append(out, stmt{q, q})
		}
	}
	return out
}

// restore puts the previous verifier (and comments) back after a
// failure past the change, and fails the journal with what happened.
func (r *runner) restore(ctx context.Context, a *admin, p *prepared, s savedRotation, problem string) error {
	if !p.user.readable && !p.create {
		r.progress("cannot put the previous password back: it was not readable")
		return r.fail(problem + fmt.Sprintf("; the previous password of %s could not be put back (pg_authid was not readable, --no-restore): it now has a password nobody holds; rotate it again", quote.Ident(p.user.name)))
	}
	r.progress("restoring the previous password of %s", quote.Ident(p.user.name))
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	if a.conn.IsClosed() {
		na, err := connectAdmin(rctx, a.base, a.insecure)
		if err != nil {
			return r.fail(problem + "; putting the previous password back failed too: " + err.Error() + " (the journal " + r.j.Dir + " keeps it)")
		}
		a.close()
		*a = *na
	}
	if err := a.quietTx(rctx, restoreStatements(s), r.warn); err != nil {
		return r.fail(problem + "; putting the previous password back failed too: " + err.Error() + " (the journal " + r.j.Dir + " keeps it)")
	}
	r.res.Restored = true
	r.res.Created = nil
	if p.create {
		return r.fail(problem + fmt.Sprintf("; dropped the login roles %s and %s it had created", quote.Ident(p.login[0]), quote.Ident(p.login[1])))
	}
	return r.fail(problem + fmt.Sprintf("; the previous password of %s was put back", quote.Ident(p.user.name)))
}

// isNewSecret: a needle label of this rotation's own password or verifier
// (the others are the previous verifiers).
func isNewSecret(label string) bool { return strings.HasPrefix(label, "new ") }

// NewSecretLeaked reports whether the scan found this rotation's own
// password or verifier (a previous verifier found is a warning only).
func NewSecretLeaked(r *leakscan.Result) bool {
	for _, h := range r.Hits {
		if isNewSecret(h.Label) {
			return true
		}
	}
	return false
}
