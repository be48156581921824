package pwmigrate

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// WriteJSON writes the report (docs/passwords.md, "Moving from md5 to SCRAM").
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people; after --apply (r.Applied) it
// says what was done and what is left.
func WriteText(w io.Writer, r *Report) error {
	one := textsafe.String
	var b strings.Builder
	fmt.Fprintf(&b, "passwords migrate: %s (PostgreSQL %s, as %s)\n", one(r.Target), one(r.ServerVersion), one(quote.Ident(r.CurrentUser)))

	if a := r.Applied; a != nil {
		b.WriteString("\napplied:\n")
		if a.Settings != "" {
			fmt.Fprintf(&b, "  settings: %s\n", one(a.Settings))
		}
		for _, rot := range a.Rotations {
			if rot.OK {
				fmt.Fprintf(&b, "  rotated %s: verified %s; delivered to %s; undo: pgaegis rotate rollback %s\n", one(quote.Ident(rot.Role)),
					one(rot.Verified), one(strings.Join(rot.Delivered, ", ")), one(rot.PlanID))
			} else {
				restored := ""
				if rot.Restored && !strings.Contains(rot.Error, "put back") {
					restored = " (the previous verifier was put back)"
				}
				fmt.Fprintf(&b, "  FAILED to rotate %s: %s%s\n", one(quote.Ident(rot.Role)), one(rot.Error), restored)
			}
		}
		b.WriteString("\nwhat is left:\n")
	}

	pe := r.PasswordEncryption
	where := pe.Source
	if pe.File != "" {
		where = fmt.Sprintf("%s:%d", pe.File, pe.Line)
	}
	fmt.Fprintf(&b, "\npassword_encryption = %s (%s)\n", one(pe.Value), one(where))
	switch {
	case pe.Set && r.Applied == nil:
		b.WriteString("  --apply sets it to scram-sha-256 (ALTER SYSTEM, reload; journalled: pgaegis fix rollback undoes it)\n")
	case pe.Set:
		b.WriteString("  still not scram-sha-256\n")
	}
	for _, f := range pe.Files {
		state := "applied"
		if !f.Applied {
			state = "overridden by a later line"
		}
		if f.Error != "" {
			state = f.Error
		}
		fmt.Fprintf(&b, "  %s:%d: %s (%s)\n", one(f.File), f.Line, one(f.Value), one(state))
	}
	for _, ov := range pe.Overrides {
		fmt.Fprintf(&b, "  override: %s password_encryption = %s", one(overrideWhere(ov.Override)), one(ov.Value))
		if ov.Reset {
			if r.Applied == nil {
				fmt.Fprintf(&b, ": --apply runs %s (journalled; undo: %s)", one(ov.SQL), one(ov.Undo))
			} else {
				fmt.Fprintf(&b, ": %s resets it", one(ov.SQL))
			}
		}
		b.WriteString("\n")
	}

	s := r.Summary
	fmt.Fprintf(&b, "\nroles with md5 verifiers: %d; with clear-text passwords: %d\n", s.MD5Roles, s.PlaintextRoles)
	scram := 0
	for _, rr := range r.Roles {
		if rr.Action == ActionNone && rr.Verifier == VerifierSCRAM {
			scram++
			continue
		}
		if rr.Action == ActionNone {
			continue
		}
		flags := []string{rr.Verifier}
		if !rr.Login {
			flags = append(flags, "NOLOGIN")
		}
		if rr.Superuser {
			flags = append(flags, "superuser")
		}
		if rr.ValidUntil != nil {
			flags = append(flags, "valid until "+rr.ValidUntil.Format("2006-01-02"))
		}
		if len(rr.MemberOf) > 0 {
			var ms []string
			for _, m := range rr.MemberOf {
				ms = append(ms, quote.Ident(m))
			}
			flags = append(flags, "member of "+strings.Join(ms, ", "))
		}
		fmt.Fprintf(&b, "  %s (%s)\n", one(quote.Ident(rr.Name)), one(strings.Join(flags, "; ")))
		switch rr.Action {
		case ActionRotate:
			if rr.Instruction != "" {
				fmt.Fprintf(&b, "    rotate: %s\n", one(rr.Instruction))
			} else {
				b.WriteString("    rotate: --apply gives it a new random password, stored as a SCRAM verifier computed here, proven by a login, then delivered\n")
			}
		case ActionPassword:
			fmt.Fprintf(&b, "    %s\n", textsafe.Code(rr.Instruction))
		case ActionClear:
			fmt.Fprintf(&b, "    %s\n", textsafe.Code(rr.Instruction))
		}
	}
	fmt.Fprintf(&b, "roles with SCRAM verifiers already: %d\n", scram)

	if r.HBANote != "" {
		fmt.Fprintf(&b, "\npg_hba.conf: %s\n", one(r.HBANote))
	} else if len(r.HBA) == 0 {
		fmt.Fprintf(&b, "\npg_hba.conf (%s): no md5 or password lines\n", one(r.HBAFile))
	} else {
		fmt.Fprintf(&b, "\npg_hba.conf md5 and password lines (%s):\n", one(r.HBAFile))
		for _, h := range r.HBA {
			addr := ""
			if h.Address != "" {
				addr = " " + h.Address
			}
			fmt.Fprintf(&b, "  %s:%d: %s %s %s%s %s: ", one(h.File), h.Line, one(h.Type), one(strings.Join(h.Databases, ",")),
				one(strings.Join(h.Users, ",")), one(addr), one(h.Method))
			if h.State == HBAReady {
				b.WriteString("can become scram-sha-256")
				if len(h.Rotated) > 0 {
					fmt.Fprintf(&b, " once the rotation of %s is done", one(roleNames(h.Rotated)))
				}
			} else {
				fmt.Fprintf(&b, "still used by md5 roles %s", one(roleNames(h.MD5Roles)))
			}
			if h.Note != "" {
				fmt.Fprintf(&b, " (%s)", one(h.Note))
			}
			b.WriteString("\n")
		}
		b.WriteString("  an md5 line already does SCRAM for roles with a SCRAM verifier; the line itself can change only when no role it matches keeps an md5 verifier.\n")
		fmt.Fprintf(&b, "  to change them: %s; it rewrites every md5 and password line at once (host becomes hostssl where ssl is on), whatever verifiers remain: the md5 roles whose clients it would refuse are listed under its 'breaks', so run it once none is left\n", FixCommand)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", one(n))
	}
	if !s.Remaining {
		b.WriteString("\nnothing is left on md5: every verifier is SCRAM, password_encryption = scram-sha-256 and no md5 line remains\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func roleNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote.Ident(n)
	}
	return strings.Join(q, ", ")
}
