// Package snapshot is the model every analysis reads: what was collected
// from a live server and its files, with a versioned JSON form so a
// collection made on one host can be audited on another. Anything that
// could not be seen is recorded in Gaps, never guessed.
package snapshot

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/pgconf"
)

// FormatVersion is bumped on any incompatible change of the JSON form.
const FormatVersion = 1

// Snapshot is everything the rules look at.
type Snapshot struct {
	FormatVersion int       `json:"format_version"`
	Tool          string    `json:"tool"`
	ToolVersion   string    `json:"tool_version"`
	CollectedAt   time.Time `json:"collected_at"`
	Target        Target    `json:"target"`
	// Server is nil when no live server was reached (file audit).
	Server   *Server            `json:"server,omitempty"`
	Settings map[string]Setting `json:"settings,omitempty"`
	// Config is postgresql.conf as parsed from disk (with includes and
	// postgresql.auto.conf), when the files were readable.
	Config *pgconf.Config `json:"config,omitempty"`
	// ConfigErrors are errors the server reports for its configuration
	// files (pg_file_settings), or our parser's when offline.
	ConfigErrors []ConfigError     `json:"config_errors,omitempty"`
	HBA          *HBA              `json:"hba,omitempty"`
	Ident        *Ident            `json:"ident,omitempty"`
	Roles        []Role            `json:"roles,omitempty"`
	Memberships  []Membership      `json:"memberships,omitempty"`
	RoleSettings []DBRoleSetting   `json:"role_settings,omitempty"`
	Databases    []Database        `json:"databases,omitempty"`
	Files        []File            `json:"files,omitempty"`
	Gaps         map[string]string `json:"gaps,omitempty"`
	Warnings     []string          `json:"warnings,omitempty"`
	index        map[string]*Role
}

// Target describes what was audited; connection details are redacted.
type Target struct {
	Description string `json:"description"`
	Live        bool   `json:"live"`
	OnHost      bool   `json:"on_host"` // the server's files were read too
	DataDir     string `json:"data_directory,omitempty"`
	ConfigFile  string `json:"config_file,omitempty"`
	HBAFile     string `json:"hba_file,omitempty"`
	IdentFile   string `json:"ident_file,omitempty"`
	// MajorVersion is from the data directory's PG_VERSION (files audits).
	MajorVersion int `json:"major_version,omitempty"`
}

// Server is what the live connection told us about the server.
type Server struct {
	Version         string `json:"version"`
	VersionNum      int    `json:"version_num"`
	CurrentUser     string `json:"current_user"`
	Superuser       bool   `json:"superuser"`
	ReadAllSettings bool   `json:"read_all_settings"`
	InRecovery      bool   `json:"in_recovery"`
	Host            string `json:"host,omitempty"`
	Port            int    `json:"port,omitempty"`
}

// Setting origins.
const (
	FromServer  = "server"  // pg_settings
	FromFile    = "file"    // parsed configuration files
	FromDefault = "default" // not set anywhere: the server's built-in default
)

// Setting is one configuration parameter's effective value.
type Setting struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	Unit    string `json:"unit,omitempty"`
	Source  string `json:"source,omitempty"` // pg_settings.source
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Context string `json:"context,omitempty"`
	Origin  string `json:"origin"`
}

// Location renders file:line when known.
func (s Setting) Location() string {
	if s.File == "" {
		return ""
	}
	if s.Line > 0 {
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	}
	return s.File
}

// ConfigError is a configuration file problem.
type ConfigError struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Msg  string `json:"message"`
}

// HBA is the client authentication file.
type HBA struct {
	// Source is "file" (parsed by us, exact) or "pg_hba_file_rules" (the
	// server's view: quoting of names is not visible there).
	Source string           `json:"source"`
	Path   string           `json:"path,omitempty"`
	Rules  []hba.Rule       `json:"rules"`
	Errors []hba.ParseError `json:"errors,omitempty"`
}

// Ident is the user name map file.
type Ident struct {
	Source string           `json:"source"`
	Path   string           `json:"path,omitempty"`
	Maps   []hba.IdentMap   `json:"maps"`
	Errors []hba.ParseError `json:"errors,omitempty"`
}

// Password kinds, classified on the server: verifiers never leave it.
const (
	PasswordNone      = "none"
	PasswordSCRAM     = "scram-sha-256"
	PasswordMD5       = "md5"
	PasswordPlaintext = "plaintext"
)

// Role is a cluster role and its attributes.
type Role struct {
	OID         uint32     `json:"oid"`
	Name        string     `json:"name"`
	Superuser   bool       `json:"superuser"`
	Inherit     bool       `json:"inherit"`
	CreateRole  bool       `json:"createrole"`
	CreateDB    bool       `json:"createdb"`
	CanLogin    bool       `json:"login"`
	Replication bool       `json:"replication"`
	BypassRLS   bool       `json:"bypassrls"`
	ConnLimit   int        `json:"connection_limit"`
	ValidUntil  *time.Time `json:"valid_until,omitempty"`
	// Password is the kind of stored verifier; empty when unknown (needs
	// superuser to read pg_authid).
	Password string   `json:"password,omitempty"`
	Config   []string `json:"config,omitempty"`
}

// Predefined reports whether the role is one of the server's pg_* roles.
func (r Role) Predefined() bool { return strings.HasPrefix(r.Name, "pg_") }

// Membership is one pg_auth_members row.
type Membership struct {
	Role    string `json:"role"`
	Member  string `json:"member"`
	Grantor string `json:"grantor,omitempty"`
	Admin   bool   `json:"admin"`
	Inherit bool   `json:"inherit"` // PostgreSQL 16+: per grant; earlier: the member's rolinherit
	Set     bool   `json:"set"`     // PostgreSQL 16+; always true before
}

// DBRoleSetting is a per-database and/or per-role setting override.
type DBRoleSetting struct {
	Database string   `json:"database,omitempty"`
	Role     string   `json:"role,omitempty"`
	Settings []string `json:"settings"`
}

// Database is one database and what was collected inside it.
type Database struct {
	Name       string     `json:"name"`
	Owner      string     `json:"owner"`
	AllowConn  bool       `json:"allow_connections"`
	IsTemplate bool       `json:"is_template"`
	ACL        []acl.Item `json:"acl"`
	// ACLDefault is true when datacl is NULL (the built-in default:
	// CONNECT and TEMPORARY for PUBLIC).
	ACLDefault bool `json:"acl_default,omitempty"`
	// Collected is false when we could not look inside; Gap says why.
	Collected  bool        `json:"collected"`
	Gap        string      `json:"gap,omitempty"`
	Schemas    []Schema    `json:"schemas,omitempty"`
	Extensions []Extension `json:"extensions,omitempty"`
	Languages  []Language  `json:"languages,omitempty"`
}

// Schema is a namespace with its owner and ACL.
type Schema struct {
	Name       string     `json:"name"`
	Owner      string     `json:"owner"`
	ACL        []acl.Item `json:"acl"`
	ACLDefault bool       `json:"acl_default,omitempty"`
}

// Extension is an installed extension.
type Extension struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Schema  string `json:"schema"`
}

// Language is a procedural language.
type Language struct {
	Name       string     `json:"name"`
	Trusted    bool       `json:"trusted"`
	PL         bool       `json:"procedural"`
	Owner      string     `json:"owner"`
	ACL        []acl.Item `json:"acl"`
	ACLDefault bool       `json:"acl_default,omitempty"`
}

// File kinds.
const (
	KindDataDir    = "data_directory"
	KindConfig     = "config_file"
	KindAutoConf   = "auto_conf"
	KindInclude    = "config_include"
	KindHBA        = "hba_file"
	KindIdent      = "ident_file"
	KindSocketDir  = "socket_directory"
	KindSocket     = "socket"
	KindSSLKey     = "ssl_key_file"
	KindSSLCert    = "ssl_cert_file"
	KindLogDir     = "log_directory"
	KindHBAInclude = "hba_include"
)

// File is what stat said about a file the server uses.
type File struct {
	Path    string `json:"path"`
	Kind    string `json:"kind"`
	Exists  bool   `json:"exists"`
	IsDir   bool   `json:"is_dir,omitempty"`
	Mode    uint32 `json:"mode"` // permission bits, e.g. 0o600
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	Owner   string `json:"owner,omitempty"`
	Group   string `json:"group,omitempty"`
	Error   string `json:"error,omitempty"`
	Symlink bool   `json:"symlink,omitempty"`
}

// ModeString renders the permission bits as 4-digit octal.
func (f File) ModeString() string { return fmt.Sprintf("%04o", f.Mode) }

// Gap keys used by collectors and rules.
const (
	GapSettings       = "settings"
	GapSettingSources = "settings.sources"
	GapHBA            = "hba"
	GapIdent          = "ident"
	GapRoles          = "roles"
	GapPasswords      = "roles.passwords"
	GapMemberships    = "memberships"
	GapDatabases      = "databases"
	GapFiles          = "files"
	GapConfigFiles    = "config_files"
)

// AddGap records that something could not be seen, and why.
func (s *Snapshot) AddGap(key, reason string) {
	if s.Gaps == nil {
		s.Gaps = map[string]string{}
	}
	if _, ok := s.Gaps[key]; !ok {
		s.Gaps[key] = reason
	}
}

// Gap returns why key could not be seen ("" when it was).
func (s *Snapshot) Gap(key string) string { return s.Gaps[key] }

// Setting returns a parameter's effective value.
func (s *Snapshot) Setting(name string) (Setting, bool) {
	v, ok := s.Settings[strings.ToLower(name)]
	return v, ok
}

// SetSetting stores a parameter under its lower-case name.
func (s *Snapshot) SetSetting(v Setting) {
	if s.Settings == nil {
		s.Settings = map[string]Setting{}
	}
	v.Name = strings.ToLower(v.Name)
	s.Settings[v.Name] = v
}

// Role looks a role up by name.
func (s *Snapshot) Role(name string) (*Role, bool) {
	if s.index == nil || len(s.index) != len(s.Roles) {
		s.index = make(map[string]*Role, len(s.Roles))
		for i := range s.Roles {
			s.index[s.Roles[i].Name] = &s.Roles[i]
		}
	}
	r, ok := s.index[name]
	return r, ok
}

// FilesOfKind returns the stat results of one kind.
func (s *Snapshot) FilesOfKind(kind string) []*File {
	var out []*File
	for i := range s.Files {
		if s.Files[i].Kind == kind {
			out = append(out, &s.Files[i])
		}
	}
	return out
}

// MajorVersion returns the major version (15 for 150004), 0 when unknown.
func (s *Snapshot) MajorVersion() int {
	if s.Server != nil && s.Server.VersionNum > 0 {
		return s.Server.VersionNum / 10000
	}
	return s.Target.MajorVersion
}

// Write writes the snapshot as indented JSON.
func (s *Snapshot) Write(w io.Writer) error {
	sort.Slice(s.Roles, func(i, j int) bool { return s.Roles[i].Name < s.Roles[j].Name })
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// Read loads a snapshot, refusing one from an incompatible format.
func Read(path string) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var s Snapshot
	dec := json.NewDecoder(f)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: not a pgaegis snapshot: %v", path, err)
	}
	if s.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%s: snapshot format %d, this pgaegis reads format %d", path, s.FormatVersion, FormatVersion)
	}
	return &s, nil
}
