package pwmigrate

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// FormatVersion of the JSON report (docs/passwords.md).
const FormatVersion = 1

// Role actions.
const (
	ActionNone     = "none"     // SCRAM already, or no password
	ActionRotate   = "rotate"   // pgaegis rotates it (--rotate, --rotate-all)
	ActionPassword = "password" // the person sets a new one with \password
	ActionClear    = "clear"    // a NOLOGIN role's password: suggest clearing it
)

// HBA line states.
const (
	HBAReady = "can-become-scram-sha-256"
	HBAMD5   = "still-used-by-md5-roles"
)

// FixCommand is the change to pg_hba.conf, handed to fix (rule AUTH-02
// rewrites md5 and password lines to scram-sha-256).
const FixCommand = "pgaegis fix --only AUTH-02"

// Options say which roles pgaegis rotates.
type Options struct {
	Rotate    []string // roles named with --rotate
	RotateAll bool     // every login role with an md5 or clear-text verifier but the current user
	// Failed are roles whose rotation failed (the report after --apply):
	// still "rotate", and still md5 for the hba lines.
	Failed []string
}

// Report is the migration plan (or, after --apply, what is left).
type Report struct {
	FormatVersion      int              `json:"format_version"`
	Target             string           `json:"target"`
	ServerVersion      string           `json:"server_version"`
	CurrentUser        string           `json:"current_user"`
	PasswordEncryption EncryptionReport `json:"password_encryption"`
	Roles              []RoleReport     `json:"roles"`
	HBAFile            string           `json:"hba_file"`
	HBA                []HBAReport      `json:"hba_lines"`
	HBANote            string           `json:"hba_note,omitempty"`
	Fix                string           `json:"fix,omitempty"`
	Applied            *Applied         `json:"applied,omitempty"`
	Summary            Summary          `json:"summary"`
	Notes              []string         `json:"notes,omitempty"`
}

// EncryptionReport is password_encryption and what --apply does to it.
type EncryptionReport struct {
	Value  string        `json:"value"`
	Source string        `json:"source"`
	File   string        `json:"file,omitempty"`
	Line   int           `json:"line,omitempty"`
	Files  []FileSetting `json:"files"`
	// Set: --apply sets it to scram-sha-256 (ALTER SYSTEM, reload).
	Set       bool             `json:"set"`
	Overrides []OverrideReport `json:"overrides"`
}

// OverrideReport is a per-role or per-database password_encryption and
// what --apply does to it.
type OverrideReport struct {
	Override
	// Reset: not scram-sha-256, and --apply resets it (journalled, with
	// the old value as its undo).
	Reset bool   `json:"reset"`
	SQL   string `json:"sql,omitempty"`
	Undo  string `json:"undo,omitempty"`
}

// RoleReport is one role with a password, and what to do.
type RoleReport struct {
	Name       string     `json:"name"`
	Verifier   string     `json:"verifier"`
	Login      bool       `json:"login"`
	Superuser  bool       `json:"superuser"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	MemberOf   []string   `json:"member_of"`
	Action     string     `json:"action"`
	// Instruction is what to do, in words a person can follow (for
	// "password" and "clear"), or why nothing is done.
	Instruction string `json:"instruction,omitempty"`
}

// HBAReport is one md5 or password line of pg_hba.conf.
type HBAReport struct {
	HBALine
	State string `json:"state"`
	// MD5Roles are the login roles the line can match that keep an md5 or
	// clear-text verifier after the planned rotations.
	MD5Roles []string `json:"md5_roles"`
	// Rotated are the login roles it can match whose md5 verifier the
	// planned rotations replace (before --apply).
	Rotated []string `json:"rotated_roles"`
	Note    string   `json:"note,omitempty"`
}

// Applied is what --apply did.
type Applied struct {
	// PlanID is the fix-style plan (password_encryption and its
	// overrides): 'pgaegis fix rollback PLAN-ID' undoes it.
	PlanID     string     `json:"plan_id,omitempty"`
	JournalDir string     `json:"journal_dir,omitempty"`
	Settings   string     `json:"settings,omitempty"` // what the plan did, or why it did not
	Rotations  []Rotation `json:"rotations"`
}

// Rotation is one role's rotation under --apply.
type Rotation struct {
	Role      string   `json:"role"`
	OK        bool     `json:"ok"`
	PlanID    string   `json:"plan_id,omitempty"` // 'pgaegis rotate rollback PLAN-ID'
	Verified  string   `json:"verified,omitempty"`
	Delivered []string `json:"delivered,omitempty"`
	Error     string   `json:"error,omitempty"`
	Restored  bool     `json:"restored,omitempty"`
}

// Summary counts what is left.
type Summary struct {
	MD5Roles       int `json:"md5_roles"`
	PlaintextRoles int `json:"plaintext_roles"`
	Rotate         int `json:"rotate"`
	AskUser        int `json:"ask_user"`
	Clear          int `json:"clear"`
	HBAReady       int `json:"hba_ready"`
	HBABlocked     int `json:"hba_blocked"`
	// Remaining: md5/plaintext verifiers, md5/password lines, or a
	// password_encryption other than scram-sha-256 are left (exit 1).
	Remaining bool `json:"remaining"`
}

// Build turns an inspection into the migration report. A --rotate role
// that does not exist is an error.
func Build(in *Inspection, target string, o Options) (*Report, error) {
	r := &Report{FormatVersion: FormatVersion, Target: target, ServerVersion: in.ServerVersion, CurrentUser: in.CurrentUser,
		HBAFile: in.HBAFile, Roles: []RoleReport{}, HBA: []HBAReport{}}
	e := in.Encryption
	r.PasswordEncryption = EncryptionReport{Value: e.Value, Source: e.Source, File: e.File, Line: e.Line,
		Files: append([]FileSetting{}, e.Files...), Set: e.Value != VerifierSCRAM, Overrides: []OverrideReport{}}
	for _, ov := range e.Overrides {
		or := OverrideReport{Override: ov}
		if !strings.EqualFold(strings.TrimSpace(ov.Value), VerifierSCRAM) {
			or.Reset = true
			or.SQL, or.Undo = overrideSQL(ov)
		}
		r.PasswordEncryption.Overrides = append(r.PasswordEncryption.Overrides, or)
	}

	byName := map[string]*Role{}
	for i := range in.Roles {
		byName[in.Roles[i].Name] = &in.Roles[i]
	}
	rotate := map[string]bool{}
	for _, n := range o.Rotate {
		role, ok := byName[n]
		switch {
		case !ok:
			return nil, fmt.Errorf("--rotate %s: no such role", quote.Ident(n))
		case !role.Login:
			return nil, fmt.Errorf("--rotate %s: the role cannot log in (NOLOGIN): nothing uses its password; clear it instead (ALTER ROLE %s PASSWORD NULL)", quote.Ident(n), quote.Ident(n))
		}
		rotate[n] = true
	}
	failed := map[string]bool{}
	for _, n := range o.Failed {
		failed[n] = true
	}
	for _, role := range in.Roles {
		if role.Verifier == VerifierNone {
			continue
		}
		rr := RoleReport{Name: role.Name, Verifier: role.Verifier, Login: role.Login, Superuser: role.Superuser,
			ValidUntil: role.ValidUntil, MemberOf: append([]string{}, role.MemberOf...), Action: ActionNone}
		weak := role.Verifier == VerifierMD5 || role.Verifier == VerifierPlaintext
		switch {
		case !weak:
			if rotate[role.Name] {
				rr.Instruction = "already scram-sha-256: not rotated"
			}
		case !role.Login:
			rr.Action = ActionClear
			rr.Instruction = fmt.Sprintf("suggestion: the role cannot log in, so nothing uses its password: clear it (ALTER ROLE %s PASSWORD NULL)", quote.Ident(role.Name))
		case failed[role.Name]:
			rr.Action = ActionRotate
			rr.Instruction = "not rotated (see applied): run again once the cause is fixed"
		case rotate[role.Name] || o.RotateAll && role.Name != in.CurrentUser:
			rr.Action = ActionRotate
		default:
			rr.Action = ActionPassword
			rr.Instruction = passwordInstruction(role.Name)
			if role.Name == in.CurrentUser && o.RotateAll {
				rr.Instruction += " (the role pgaegis runs as is never rotated by --rotate-all: name it with --rotate if you mean to)"
			}
			if ov := overrideFor(in.Encryption.Overrides, role.Name); ov != "" {
				rr.Instruction += "; " + ov
			}
		}
		switch rr.Verifier {
		case VerifierMD5:
			r.Summary.MD5Roles++
		case VerifierPlaintext:
			r.Summary.PlaintextRoles++
		}
		switch rr.Action {
		case ActionRotate:
			r.Summary.Rotate++
		case ActionPassword:
			r.Summary.AskUser++
		case ActionClear:
			r.Summary.Clear++
		}
		r.Roles = append(r.Roles, rr)
	}

	// Which verifiers remain md5 once the planned rotations are done.
	after := map[string]string{}
	for _, rr := range r.Roles {
		after[rr.Name] = rr.Verifier
		if rr.Action == ActionRotate && !failed[rr.Name] {
			after[rr.Name] = VerifierSCRAM
		}
	}
	if in.HBAGap != "" {
		r.HBANote = in.HBAGap
	}
	for _, l := range in.HBA {
		hr := HBAReport{HBALine: l, MD5Roles: []string{}, Rotated: []string{}}
		for _, role := range in.Roles {
			weakNow := role.Verifier == VerifierMD5 || role.Verifier == VerifierPlaintext
			if !role.Login || !weakNow || !matches(l, role, in.Major) {
				continue
			}
			if after[role.Name] == VerifierSCRAM {
				hr.Rotated = append(hr.Rotated, role.Name)
			} else {
				hr.MD5Roles = append(hr.MD5Roles, role.Name)
			}
		}
		if len(hr.MD5Roles) == 0 {
			hr.State = HBAReady
			r.Summary.HBAReady++
		} else {
			hr.State = HBAMD5
			r.Summary.HBABlocked++
		}
		if l.Method == "password" {
			hr.Note = "password sends the clear text over the connection; scram-sha-256 does not"
		}
		r.HBA = append(r.HBA, hr)
	}
	if len(r.HBA) > 0 {
		r.Fix = FixCommand
	}
	r.Summary.Remaining = r.PasswordEncryption.Set || r.Summary.MD5Roles+r.Summary.PlaintextRoles > 0 || len(r.HBA) > 0
	for _, ov := range r.PasswordEncryption.Overrides {
		r.Summary.Remaining = r.Summary.Remaining || ov.Reset
	}
	return r, nil
}

// matches: the line's user field can match role. Keywords and +group as
// the server reads them from pg_hba_file_rules (which shows a quoted
// "all" as all: counted as the keyword, the cautious reading here); on
// 16+ a leading slash is a regular expression, and one our engine
// cannot decide counts as matching.
func matches(l HBALine, role Role, major int) bool {
	for _, u := range l.Users {
		switch {
		case u == "all":
			return true
		case strings.HasPrefix(u, "+"):
			g := u[1:]
			if g == role.Name {
				return true
			}
			for _, m := range role.MemberOf {
				if m == g {
					return true
				}
			}
		case major >= 16 && strings.HasPrefix(u, "/"):
			if _, m, decided := hba.RegexMatch(hba.Token{Value: u}, major, role.Name); m || !decided {
				return true
			}
		case u == role.Name:
			return true
		}
	}
	return false
}

// passwordInstruction is what a person does to move their own role.
func passwordInstruction(role string) string {
	id := quote.Ident(role)
	if strings.HasPrefix(id, "U&") {
		return "the role's name has control characters, which psql's \\password cannot take: rename it (ALTER ROLE " + id + " RENAME TO ...), then set a new password with \\password"
	}
	return fmt.Sprintf("ask the user to run \\password in psql, logged in as %s (psql -U %s, then \\password), once password_encryption = scram-sha-256 is in force: psql hashes the new password on the client with the session's password_encryption (a superuser may run \\password %s for them)", id, quote.Shell(role), id)
}

// overrideFor says which override changes password_encryption for role's
// sessions, when one does and it is not scram-sha-256.
func overrideFor(ovs []Override, role string) string {
	var out []string
	for _, ov := range ovs {
		if strings.EqualFold(strings.TrimSpace(ov.Value), VerifierSCRAM) {
			continue
		}
		switch {
		case ov.Role == role && ov.Database == "":
			out = append(out, "ALTER ROLE "+quote.Ident(role)+" SET password_encryption = "+quote.Literal(ov.Value)+" overrides it in every session of the role")
		case ov.Role == role:
			out = append(out, "in database "+quote.Ident(ov.Database)+" the role's own setting "+quote.Literal(ov.Value)+" overrides it")
		case ov.Role == "" && ov.Database != "":
			out = append(out, "in database "+quote.Ident(ov.Database)+" password_encryption = "+quote.Literal(ov.Value)+" overrides it: run \\password connected to another database")
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// overrideSQL resets an override, and sets it back.
func overrideSQL(ov Override) (sql, undo string) {
	val := quote.Literal(ov.Value)
	switch {
	case ov.Role != "" && ov.Database != "":
		pre := "ALTER ROLE " + quote.Ident(ov.Role) + " IN DATABASE " + quote.Ident(ov.Database)
		return pre + " RESET password_encryption", pre + " SET password_encryption = " + val
	case ov.Role != "":
		pre := "ALTER ROLE " + quote.Ident(ov.Role)
		return pre + " RESET password_encryption", pre + " SET password_encryption = " + val
	case ov.Database != "":
		pre := "ALTER DATABASE " + quote.Ident(ov.Database)
		return pre + " RESET password_encryption", pre + " SET password_encryption = " + val
	}
	pre := "ALTER ROLE ALL"
	return pre + " RESET password_encryption", pre + " SET password_encryption = " + val
}

// RotateRoles are the roles Build planned to rotate, in order.
func (r *Report) RotateRoles() []string {
	var out []string
	for _, rr := range r.Roles {
		if rr.Action == ActionRotate {
			out = append(out, rr.Name)
		}
	}
	return out
}
