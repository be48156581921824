// Package pwmigrate plans the move from md5 (and clear-text) password
// verifiers to SCRAM-SHA-256: what password_encryption is and where it is
// set, which roles still hold md5 verifiers and what to do for each
// (rotate, ask the person to run \password, clear a NOLOGIN role's
// password), and which pg_hba.conf md5 lines can then become
// scram-sha-256. It reads only; the changes run through internal/apply
// (the settings) and internal/rotate (the passwords).
//
// Verifiers are classified on the server: only the kind ever leaves it.
package pwmigrate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// Verifier kinds, as the audit names them (snapshot.Password*).
const (
	VerifierNone      = "none"
	VerifierSCRAM     = "scram-sha-256"
	VerifierMD5       = "md5"
	VerifierPlaintext = "plaintext"
)

// Inspection is what the server says, read-only.
type Inspection struct {
	Target        string
	ServerVersion string
	Major         int
	CurrentUser   string
	Encryption    Encryption
	Roles         []Role
	// HBAFile is hba_file; HBA the md5 and password lines the server
	// reads from it (pg_hba_file_rules), in file order.
	HBAFile string
	HBA     []HBALine
	// HBAGap says why the lines could not be read ("" when they were).
	HBAGap string
}

// Encryption is password_encryption and everything that sets it.
type Encryption struct {
	Value  string // in force for new sessions of roles without an override
	Source string // pg_settings.source ("default", "configuration file", ...)
	File   string // pg_settings.sourcefile, when from a file
	Line   int
	// Files are its lines in the configuration files (pg_file_settings),
	// in the order the server reads them; the last applied one wins.
	Files []FileSetting
	// Overrides are ALTER ROLE / ALTER DATABASE ... SET password_encryption
	// (pg_db_role_setting): they win over the files for their sessions,
	// and psql's \password hashes with the value of the session it runs in.
	Overrides []Override
}

// FileSetting is one password_encryption line of a configuration file.
type FileSetting struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Value   string `json:"value"`
	Applied bool   `json:"applied"`
	Error   string `json:"error,omitempty"`
}

// Override is a per-role, per-database or per-role-in-database setting.
type Override struct {
	Role     string `json:"role,omitempty"`     // "" for every role
	Database string `json:"database,omitempty"` // "" for every database
	Value    string `json:"value"`
}

// Role is a role with what matters for the migration; never its verifier.
type Role struct {
	Name       string
	Verifier   string // VerifierNone, VerifierSCRAM, VerifierMD5, VerifierPlaintext
	Login      bool
	Superuser  bool
	ValidUntil *time.Time // nil: no expiry; far future for 'infinity'
	// MemberOf are the roles it is a member of, directly or through
	// others (what +group in pg_hba.conf matches), sorted.
	MemberOf []string
}

// HBALine is one md5 or password line of pg_hba.conf, as the server reads
// it: @file lists are already expanded by the server in Users.
type HBALine struct {
	File      string   `json:"file"`
	Line      int      `json:"line"`
	Type      string   `json:"type"`
	Databases []string `json:"databases"`
	Users     []string `json:"users"`
	Address   string   `json:"address,omitempty"`
	Method    string   `json:"method"`
}

// ErrNotSuperuser: pg_authid, which holds the verifiers, is readable only
// by superusers.
var ErrNotSuperuser = errors.New("passwords migrate needs a superuser: the stored verifiers are in pg_authid, which only superusers can read; pg_roles shows every rolpassword as ******** whatever is stored, so md5, SCRAM and no password cannot be told apart from it")

// Inspect reads the server through c (a superuser's connection).
func Inspect(ctx context.Context, c *pgx.Conn) (*Inspection, error) {
	in := &Inspection{}
	var num int
	var super bool
	if err := c.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('server_version_num')::int,
		current_user, r.rolsuper FROM pg_roles r WHERE r.rolname = current_user`).Scan(&in.ServerVersion, &num, &in.CurrentUser, &super); err != nil {
		return nil, fmt.Errorf("reading the server identity: %w", err)
	}
	in.Major = num / 10000
	if !super {
		return nil, fmt.Errorf("role %s: %w", in.CurrentUser, ErrNotSuperuser)
	}
	if err := in.readEncryption(ctx, c); err != nil {
		return nil, err
	}
	if err := in.readRoles(ctx, c); err != nil {
		return nil, err
	}
	if err := in.readHBA(ctx, c); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *Inspection) readEncryption(ctx context.Context, c *pgx.Conn) error {
	e := &in.Encryption
	if err := c.QueryRow(ctx, `SELECT setting, coalesce(source, ''), coalesce(sourcefile, ''), coalesce(sourceline, 0)
		FROM pg_settings WHERE name = 'password_encryption'`).Scan(&e.Value, &e.Source, &e.File, &e.Line); err != nil {
		return fmt.Errorf("reading password_encryption (pg_settings): %w", err)
	}
	// pg_settings shows our session's value, which a role or database
	// override of the role pgaegis runs as may set: the server-wide value
	// is then the files' (below).
	rows, err := c.Query(ctx, `SELECT coalesce(sourcefile, ''), coalesce(sourceline, 0), coalesce(setting, ''), applied, coalesce(error, '')
		FROM pg_file_settings WHERE name = 'password_encryption' ORDER BY seqno`)
	if err != nil {
		return fmt.Errorf("reading pg_file_settings: %w", err)
	}
	for rows.Next() {
		var f FileSetting
		if err := rows.Scan(&f.File, &f.Line, &f.Value, &f.Applied, &f.Error); err != nil {
			rows.Close()
			return fmt.Errorf("reading pg_file_settings: %w", err)
		}
		e.Files = append(e.Files, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading pg_file_settings: %w", err)
	}
	if e.Source == "database" || e.Source == "user" || e.Source == "database user" || e.Source == "client" || e.Source == "session" {
		// Our session's value is an override's: the server-wide value is
		// the files' (the last applied line) or the built-in default.
		var boot string
		if err := c.QueryRow(ctx, `SELECT boot_val FROM pg_settings WHERE name = 'password_encryption'`).Scan(&boot); err != nil {
			return fmt.Errorf("reading password_encryption (pg_settings): %w", err)
		}
		e.Value, e.Source, e.File, e.Line = boot, "default", "", 0
		for _, f := range e.Files {
			if f.Applied {
				e.Value, e.Source, e.File, e.Line = f.Value, "configuration file", f.File, f.Line
			}
		}
	}
	rows, err = c.Query(ctx, `SELECT coalesce(r.rolname::text, ''), coalesce(d.datname::text, ''), cfg
		FROM pg_db_role_setting s
		LEFT JOIN pg_roles r ON r.oid = s.setrole
		LEFT JOIN pg_database d ON d.oid = s.setdatabase,
		unnest(s.setconfig) AS cfg
		WHERE lower(cfg) LIKE 'password\_encryption=%'
		ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("reading pg_db_role_setting: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var o Override
		var cfg string
		if err := rows.Scan(&o.Role, &o.Database, &cfg); err != nil {
			return fmt.Errorf("reading pg_db_role_setting: %w", err)
		}
		_, o.Value, _ = strings.Cut(cfg, "=")
		e.Overrides = append(e.Overrides, o)
	}
	return rows.Err()
}

// ClassifySQL is the kind of the verifier in column rolpassword, computed
// on the server so that no verifier crosses the wire.
const ClassifySQL = `CASE WHEN rolpassword IS NULL OR rolpassword = '' THEN 'none'
	WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram-sha-256'
	WHEN rolpassword ~ '^md5[0-9a-f]{32}$' THEN 'md5' ELSE 'plaintext' END`

func (in *Inspection) readRoles(ctx context.Context, c *pgx.Conn) error {
	// The md5 form is "md5" and 32 hex digits; anything else that is neither
	// that nor SCRAM is a stored clear text (password_encryption = off
	// before PostgreSQL 10, carried over by pg_upgrade).
	rows, err := c.Query(ctx, `SELECT rolname::text, `+ClassifySQL+`, rolcanlogin, rolsuper, rolvaliduntil
		FROM pg_authid WHERE rolname !~ '^pg_' ORDER BY rolname`)
	if err != nil {
		return fmt.Errorf("reading pg_authid: %w", err)
	}
	byName := map[string]int{}
	for rows.Next() {
		var r Role
		var vu pgtype.Timestamptz
		if err := rows.Scan(&r.Name, &r.Verifier, &r.Login, &r.Superuser, &vu); err != nil {
			rows.Close()
			return fmt.Errorf("reading pg_authid: %w", err)
		}
		switch {
		case !vu.Valid:
		case vu.InfinityModifier == pgtype.Infinity:
			t := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
			r.ValidUntil = &t
		case vu.InfinityModifier == pgtype.NegativeInfinity:
			t := time.Time{}
			r.ValidUntil = &t
		default:
			t := vu.Time.UTC()
			r.ValidUntil = &t
		}
		byName[r.Name] = len(in.Roles)
		in.Roles = append(in.Roles, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading pg_authid: %w", err)
	}
	// Memberships, walked here: +group in pg_hba.conf matches members
	// direct or indirect, whatever INHERIT says.
	rows, err = c.Query(ctx, `SELECT m.rolname::text, g.rolname::text FROM pg_auth_members a
		JOIN pg_roles m ON m.oid = a.member JOIN pg_roles g ON g.oid = a.roleid`)
	if err != nil {
		return fmt.Errorf("reading pg_auth_members: %w", err)
	}
	parents := map[string][]string{}
	for rows.Next() {
		var m, g string
		if err := rows.Scan(&m, &g); err != nil {
			rows.Close()
			return fmt.Errorf("reading pg_auth_members: %w", err)
		}
		parents[m] = append(parents[m], g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading pg_auth_members: %w", err)
	}
	for i := range in.Roles {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(r string) {
			for _, g := range parents[r] {
				if !seen[g] {
					seen[g] = true
					walk(g)
				}
			}
		}
		walk(in.Roles[i].Name)
		for g := range seen {
			in.Roles[i].MemberOf = append(in.Roles[i].MemberOf, g)
		}
		sort.Strings(in.Roles[i].MemberOf)
	}
	return nil
}

func (in *Inspection) readHBA(ctx context.Context, c *pgx.Conn) error {
	if err := c.QueryRow(ctx, `SELECT current_setting('hba_file')`).Scan(&in.HBAFile); err != nil {
		return fmt.Errorf("reading hba_file: %w", err)
	}
	// 16+ has file_name (lines of included files); 13-15 have one file.
	file, order := "NULL::text", "line_number"
	if in.Major >= 16 {
		file, order = "file_name", "rule_number"
	}
	rows, err := c.Query(ctx, `SELECT coalesce(`+file+`, ''), line_number, type, coalesce(database, '{}'), coalesce(user_name, '{}'),
			coalesce(address, ''), coalesce(netmask, ''), auth_method
		FROM pg_hba_file_rules WHERE error IS NULL AND auth_method IN ('md5', 'password') ORDER BY `+order)
	if err != nil {
		in.HBAGap = "pg_hba_file_rules could not be read: " + err.Error()
		return nil
	}
	defer rows.Close()
	for rows.Next() {
		var l HBALine
		var mask string
		if err := rows.Scan(&l.File, &l.Line, &l.Type, &l.Databases, &l.Users, &l.Address, &mask, &l.Method); err != nil {
			return fmt.Errorf("reading pg_hba_file_rules: %w", err)
		}
		// The view splits a CIDR into address and netmask: written back
		// as the file would have it.
		if m, ok := hba.ParseNumericHost(mask); ok && mask != "" {
			if bits := hba.MaskBits(m); bits >= 0 {
				l.Address = fmt.Sprintf("%s/%d", l.Address, bits)
			} else {
				l.Address += " " + mask
			}
		}
		if l.File == "" {
			l.File = in.HBAFile
		}
		in.HBA = append(in.HBA, l)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading pg_hba_file_rules: %w", err)
	}
	return nil
}
