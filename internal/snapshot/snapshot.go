// Package snapshot is the model every analysis reads: what was collected
// from a live server and its files, with a versioned JSON form so a
// collection made on one host can be audited on another. Anything that
// could not be seen is recorded in Gaps, never guessed.
package snapshot

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/pgconf"
	"github.com/pgaegis/pgaegis/internal/safefile"
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
	ConfigErrors []ConfigError   `json:"config_errors,omitempty"`
	HBA          *HBA            `json:"hba,omitempty"`
	Ident        *Ident          `json:"ident,omitempty"`
	Roles        []Role          `json:"roles,omitempty"`
	Memberships  []Membership    `json:"memberships,omitempty"`
	RoleSettings []DBRoleSetting `json:"role_settings,omitempty"`
	Databases    []Database      `json:"databases,omitempty"`
	Files        []File          `json:"files,omitempty"`
	ParamACLs    []ParamACL      `json:"parameter_acls,omitempty"`
	CatalogACLs  []CatalogACL    `json:"catalog_acls,omitempty"`
	Replication  *Replication    `json:"replication,omitempty"`
	Tablespaces  []Tablespace    `json:"tablespaces,omitempty"`
	Host         *Host           `json:"host,omitempty"`
	ServerCert   *Certificate    `json:"server_certificate,omitempty"`
	// Probe is what a TLS probe of the server's port saw (live TCP audits).
	Probe *TLSProbe `json:"tls_probe,omitempty"`
	// AvailableExtensions: security-relevant extensions the server could
	// load (name -> default version).
	AvailableExtensions map[string]string `json:"available_extensions,omitempty"`
	// Libraries are the shared libraries installed in the server's
	// library directory; nil when it could not be listed.
	Libraries *Libraries `json:"libraries,omitempty"`
	// TLSFiles says whether the certificate and key that ssl = on would
	// load exist, whatever ssl is now; nil when unknown.
	TLSFiles *TLSFiles `json:"tls_files,omitempty"`
	// Backups is what pgaegis saw of the backup directories it was told
	// about (audit/collect --backup-dir); nil when none was named. It is
	// apart from Host: a backup directory is read where pgaegis runs,
	// which may be a backup host auditing a remote server.
	Backups *Backups          `json:"backups,omitempty"`
	Gaps    map[string]string `json:"gaps,omitempty"`
	// Errors are the gaps that come from a failure (a query or a scan that
	// broke, a stalled server) rather than from missing privileges or
	// files: an audit with errors is incomplete and exits 2. Every key
	// here is in Gaps too, so rules that need it report not_checked.
	Errors   map[string]string `json:"collection_errors,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
	index    map[string]*Role
	// SampleData is true when the audit sampled credential columns'
	// values (--sample-data); only verdict counts are kept.
	SampleData bool `json:"sample_data,omitempty"`
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
	// Source is "file" (parsed by us, exact), "pg_hba_file_rules" (the
	// server's view: quoting of names is not visible there, see Ambiguous)
	// or "pg_hba_file_rules+file" (the view, with the quoting taken from
	// the file read through the server).
	Source string           `json:"source"`
	Path   string           `json:"path,omitempty"`
	Rules  []hba.Rule       `json:"rules"`
	Errors []hba.ParseError `json:"errors,omitempty"`
	// Ambiguous lists the tokens of a server-view file that read as a
	// keyword ("all", "+group", ...) but may have been quoted names: the
	// view drops quotes. Rules carry the keyword reading; the registry
	// re-runs the rules with the quoted reading and reports what differs
	// as not checked.
	Ambiguous []AmbiguousToken `json:"ambiguous_tokens,omitempty"`
}

// AmbiguousToken is one token whose quoting the server's view hides.
type AmbiguousToken struct {
	Line  int    `json:"line"`
	Field string `json:"field"` // "database" or "user"
	Value string `json:"value"`
}

// QuotedReading returns a copy of h where every ambiguous token is read
// as a quoted name (nil when nothing is ambiguous).
func (h *HBA) QuotedReading() *HBA {
	if h == nil || len(h.Ambiguous) == 0 {
		return nil
	}
	amb := map[AmbiguousToken]bool{}
	for _, a := range h.Ambiguous {
		amb[a] = true
	}
	c := *h
	c.Rules = make([]hba.Rule, len(h.Rules))
	for i, r := range h.Rules {
		prefix := r.Type + " " + joinTokens(r.Databases) + " " + joinTokens(r.Users)
		r.Databases = quoteTokens(r.Databases, r.Line, "database", amb)
		r.Users = quoteTokens(r.Users, r.Line, "user", amb)
		// The rendered line is what fixes and objects quote: it must show
		// the reading too.
		if strings.HasPrefix(r.Text, prefix) {
			r.Text = r.Type + " " + joinTokens(r.Databases) + " " + joinTokens(r.Users) + r.Text[len(prefix):]
		}
		c.Rules[i] = r
	}
	return &c
}

func joinTokens(ts []hba.Token) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}

func quoteTokens(ts []hba.Token, line int, field string, amb map[AmbiguousToken]bool) []hba.Token {
	out := make([]hba.Token, len(ts))
	for i, t := range ts {
		if amb[AmbiguousToken{line, field, t.Value}] {
			t.Quoted = true
		}
		out[i] = t
	}
	return out
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
	OID         uint32 `json:"oid"`
	Name        string `json:"name"`
	Superuser   bool   `json:"superuser"`
	Inherit     bool   `json:"inherit"`
	CreateRole  bool   `json:"createrole"`
	CreateDB    bool   `json:"createdb"`
	CanLogin    bool   `json:"login"`
	Replication bool   `json:"replication"`
	BypassRLS   bool   `json:"bypassrls"`
	ConnLimit   int    `json:"connection_limit"`
	// ValidUntil is rolvaliduntil: nil when NULL (no expiry set); the
	// server also allows 'infinity' and '-infinity', kept as such.
	ValidUntil *Timestamp `json:"valid_until,omitempty"`
	// Password is the kind of stored verifier; empty when unknown (needs
	// superuser to read pg_authid).
	Password string   `json:"password,omitempty"`
	Config   []string `json:"config,omitempty"`
	// WeakPassword says how the password was guessed offline ("" when it
	// was not); the password itself is never recorded.
	WeakPassword string `json:"weak_password,omitempty"`
}

// Timestamp is a timestamptz that may be 'infinity' or '-infinity'. Its
// JSON form is an RFC 3339 string or the word "infinity"/"-infinity".
// Time is set for the infinities too (far future, far past), so that
// comparisons with Before/After stay meaningful.
type Timestamp struct {
	time.Time
	// Infinity is +1 for 'infinity', -1 for '-infinity', 0 otherwise.
	Infinity int
}

var (
	farFuture = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	farPast   = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
)

// InfiniteTimestamp returns 'infinity' (sign > 0) or '-infinity'.
func InfiniteTimestamp(sign int) *Timestamp {
	if sign > 0 {
		return &Timestamp{Time: farFuture, Infinity: 1}
	}
	return &Timestamp{Time: farPast, Infinity: -1}
}

// String renders the timestamp as the server would name it.
func (t Timestamp) String() string {
	switch {
	case t.Infinity > 0:
		return "infinity"
	case t.Infinity < 0:
		return "-infinity"
	}
	return t.Time.Format(time.RFC3339)
}

// MarshalJSON writes RFC 3339 or "infinity"/"-infinity".
func (t Timestamp) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("timestamp: %v", err)
	}
	switch v {
	case "infinity":
		*t = *InfiniteTimestamp(1)
		return nil
	case "-infinity":
		*t = *InfiniteTimestamp(-1)
		return nil
	}
	tm, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("timestamp %q: %v", v, err)
	}
	*t = Timestamp{Time: tm}
	return nil
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
	Functions  []Function  `json:"functions,omitempty"`
	// PublicGrants and GrantOptions summarise explicit grants on relations
	// in non-system schemas: to PUBLIC, and WITH GRANT OPTION to others.
	PublicGrants   []GrantSummary  `json:"public_grants,omitempty"`
	GrantOptions   []GrantSummary  `json:"grant_options,omitempty"`
	SchemaCreators []GrantSummary  `json:"schema_create_grants,omitempty"`
	DefaultACLs    []DefaultACL    `json:"default_acls,omitempty"`
	ForeignServers []ForeignServer `json:"foreign_servers,omitempty"`
	RLSTables      []RLSTable      `json:"rls_tables,omitempty"`
	ViewsOverRLS   []ViewOverRLS   `json:"views_over_rls,omitempty"`
	Owners         []OwnerCount    `json:"owners,omitempty"`
	// Relations and LargeObjects: the full privilege model (access).
	Relations    []Relation    `json:"relations,omitempty"`
	LargeObjects []LargeObject `json:"large_objects,omitempty"`
	// Routines are all functions of user schemas and the built-ins with a
	// non-default ACL (Functions keeps the security-relevant subset).
	Routines []Function `json:"routines,omitempty"`
	// EventTriggers are pg_event_trigger's rows with what decides who
	// can change the code they run as every superuser (login from 17,
	// ddl_command_start/end, sql_drop, table_rewrite).
	EventTriggers []EventTrigger `json:"event_triggers,omitempty"`
	// SensitiveColumns are the columns of user tables (not extensions')
	// whose name or type looks like a credential or personal data.
	// SensitiveRead is false when that read failed or was not made.
	SensitiveColumns []SensitiveColumn `json:"sensitive_columns,omitempty"`
	SensitiveRead    bool              `json:"sensitive_read,omitempty"`
}

// SensitiveColumn is a column that looks like a credential or personal
// data. Sample holds verdict counts only: no sampled value is ever stored.
type SensitiveColumn struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Column string `json:"column"`
	Type   string `json:"type"`
	Kind   string `json:"kind"`  // credential or personal
	Label  string `json:"label"` // password, email, ...
	// Sample is nil when values were not sampled; SampleError says why a
	// sample was attempted and failed (no SELECT, timeout).
	Sample      *ValueSample `json:"sample,omitempty"`
	SampleError string       `json:"sample_error,omitempty"`
}

// ValueSample counts how sampled values of a column were classified.
type ValueSample struct {
	Rows      int            `json:"rows"`
	Empty     int            `json:"empty,omitempty"`
	Hashed    int            `json:"hashed,omitempty"`
	Encrypted int            `json:"encrypted,omitempty"`
	Plain     int            `json:"plain,omitempty"`
	Formats   map[string]int `json:"formats,omitempty"`
}

// EventTrigger is one event trigger and its function.
type EventTrigger struct {
	Name  string `json:"name"`
	Event string `json:"event"` // login, ddl_command_start, ...
	// Enabled is evtenabled: "O" (origin, the default), "D" disabled,
	// "R" replica, "A" always.
	Enabled    string   `json:"enabled"`
	Tags       []string `json:"tags,omitempty"` // WHEN TAG IN (...)
	Owner      string   `json:"owner"`
	OwnerSuper bool     `json:"owner_superuser"`
	// Function is the function as regprocedure renders it with
	// search_path = pg_catalog: schema-qualified and quoted, usable in
	// ALTER FUNCTION.
	Function           string `json:"function"`
	FunctionOwner      string `json:"function_owner"`
	FunctionOwnerSuper bool   `json:"function_owner_superuser"`
	Language           string `json:"language"`
	SecDef             bool   `json:"security_definer,omitempty"`
	// SearchPath is the function's pinned search_path ("" when it has
	// none and resolves names with the caller's).
	SearchPath string `json:"search_path,omitempty"`
	// OwnerActors are the roles that are not superusers and can act as
	// the function's owner (the owner itself, members that inherit or may
	// SET ROLE to it, holders of ADMIN on it, and before 16 CREATEROLE
	// roles when the owner is not a superuser): each can ALTER the
	// function (its search_path, its owner). Replacers are those of them
	// that can also CREATE OR REPLACE its body (which needs CREATE on the
	// function's schema too).
	OwnerActors []string `json:"owner_actors,omitempty"`
	Replacers   []string `json:"replacers,omitempty"`
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
	KindWALDir     = "wal_directory"
	KindExtDir     = "extension_directory"
	KindBinDir     = "bin_directory"
	KindLibDir     = "lib_directory"
	KindTablespace = "tablespace"
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
	GapWeakPasswords  = "roles.weak_passwords"
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

// AddError records that reading key failed (not for lack of privilege):
// it is a gap for the rules and an error for the audit's result.
func (s *Snapshot) AddError(key, reason string) {
	if s.Errors == nil {
		s.Errors = map[string]string{}
	}
	// Several failures under one key (a database, the catalog ACLs) are
	// all kept, within reason.
	if prev, ok := s.Errors[key]; !ok {
		s.Errors[key] = reason
	} else if !strings.Contains(prev, reason) && len(prev) < 4000 {
		s.Errors[key] = prev + "; " + reason
	}
	reason = s.Errors[key]
	if s.Gaps == nil {
		s.Gaps = map[string]string{}
	}
	// An error outranks a permission gap recorded earlier for the key.
	s.Gaps[key] = reason
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
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// Read loads a snapshot, refusing one from an incompatible format.
func Read(path string) (*Snapshot, error) {
	// Only a regular file, capped: /dev/zero or a FIFO must not be read
	// forever or waited on.
	f, err := safefile.OpenLimited(path, safefile.SnapshotMax)
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

// Function is a function worth a security look: SECURITY DEFINER ones and
// built-ins whose ACL was changed from the default.
type Function struct {
	Schema       string     `json:"schema"`
	Name         string     `json:"name"`
	Args         string     `json:"args"`
	Owner        string     `json:"owner"`
	Language     string     `json:"language"`
	SecDef       bool       `json:"security_definer"`
	Config       []string   `json:"config,omitempty"` // proconfig: SET clauses (search_path)
	ACL          []acl.Item `json:"acl,omitempty"`
	ACLDefault   bool       `json:"acl_default,omitempty"` // NULL ACL: EXECUTE for PUBLIC
	Extension    string     `json:"extension,omitempty"`   // member of this extension
	DynamicSQL   bool       `json:"dynamic_sql,omitempty"` // body runs EXECUTE
	ConcatInExec bool       `json:"concat_in_execute,omitempty"`
	// Untrusted: its language gives the body the server's OS user (C,
	// plpython3u, plperlu, ...; not internal, whose functions are the
	// server's own). Omitted when false, so older snapshots read the same.
	Untrusted bool `json:"untrusted_language,omitempty"`
}

// Signature renders schema.name(args).
func (f Function) Signature() string { return f.Schema + "." + f.Name + "(" + f.Args + ")" }

// GrantSummary aggregates explicit grants on relations of one schema (a
// catalog of 100k tables is summarised, not listed).
type GrantSummary struct {
	Schema    string `json:"schema"`
	Grantee   string `json:"grantee"` // role or PUBLIC
	Privilege string `json:"privilege"`
	Grantable bool   `json:"grantable,omitempty"`
	Count     int    `json:"count"`
	Example   string `json:"example"` // one relation, for the evidence
}

// DefaultACL is a pg_default_acl entry.
type DefaultACL struct {
	Role    string     `json:"role"`
	Schema  string     `json:"schema,omitempty"`
	ObjType string     `json:"object_type"` // r (tables), S, f, T, n
	ACL     []acl.Item `json:"acl"`
}

// ForeignServer is a foreign server and its user mappings.
type ForeignServer struct {
	Name     string        `json:"name"`
	Wrapper  string        `json:"wrapper"`
	Owner    string        `json:"owner"`
	ACL      []acl.Item    `json:"acl,omitempty"`
	Mappings []UserMapping `json:"mappings,omitempty"`
}

// UserMapping holds only the names of options: values may be passwords.
type UserMapping struct {
	User             string   `json:"user"` // role or PUBLIC
	OptionNames      []string `json:"option_names"`
	PasswordOptional bool     `json:"password_required_false,omitempty"`
}

// RLSTable is a table with row-level security enabled, or one that looks
// multi-tenant.
type RLSTable struct {
	Schema   string   `json:"schema"`
	Name     string   `json:"name"`
	Owner    string   `json:"owner"`
	Enabled  bool     `json:"rls_enabled"`
	Forced   bool     `json:"rls_forced"`
	Policies []Policy `json:"policies,omitempty"`
	// TenantColumns lists tenant-looking columns (tenant_id, org_id ...).
	TenantColumns []string `json:"tenant_columns,omitempty"`
}

// Policy is a row-level security policy.
type Policy struct {
	Name       string   `json:"name"`
	Command    string   `json:"command"` // r a w d * (SELECT, INSERT, UPDATE, DELETE, ALL)
	Permissive bool     `json:"permissive"`
	Roles      []string `json:"roles"`
	Using      string   `json:"using,omitempty"`
	WithCheck  string   `json:"with_check,omitempty"`
}

// ViewOverRLS is a view that reads an RLS table with its owner's rights.
type ViewOverRLS struct {
	Schema, Name, Owner string
	Table               string `json:"table"`
}

// ParamACL is a pg_parameter_acl entry (GRANT SET / ALTER SYSTEM, 15+).
type ParamACL struct {
	Name string     `json:"name"`
	ACL  []acl.Item `json:"acl"`
}

// OwnerCount counts user objects a role owns in a database.
type OwnerCount struct {
	Owner string `json:"owner"`
	Count int    `json:"count"`
}

// CatalogACL is the ACL of a sensitive system catalog.
type CatalogACL struct {
	Name  string     `json:"name"`
	Owner string     `json:"owner"`
	ACL   []acl.Item `json:"acl"`
}

// Replication describes walsender connections and WAL archiving.
type Replication struct {
	Senders []WalSender `json:"senders,omitempty"`
	// Archiver: pg_stat_archiver.
	ArchivedCount int        `json:"archived_count"`
	FailedCount   int        `json:"failed_count"`
	LastFailed    *time.Time `json:"last_failed_time,omitempty"`
	LastArchived  *time.Time `json:"last_archived_time,omitempty"`
}

// WalSender is one pg_stat_replication row.
type WalSender struct {
	User   string `json:"user"`
	Client string `json:"client_addr,omitempty"`
	SSL    bool   `json:"ssl"`
}

// Tablespace is a non-default tablespace and its directory.
type Tablespace struct {
	Name     string `json:"name"`
	Owner    string `json:"owner"`
	Location string `json:"location"`
}

// Host holds what pgaegis saw on the database host itself (root or the
// cluster owner): environment, accounts, packages. Never secret values:
// only where a secret sits.
type Host struct {
	// ProcsWithPGPASSWORD lists processes whose environment has PGPASSWORD.
	ProcsWithPGPASSWORD []Proc `json:"procs_with_pgpassword,omitempty"`
	ProcsScanned        int    `json:"procs_scanned"`
	// ProcsWithPasswordArgs lists processes with a password on their command line.
	ProcsWithPasswordArgs []Proc `json:"procs_with_password_args,omitempty"`
	// SecretLines are places in files where a password is written:
	// PGPASSWORD in shell profiles, password= in service files, shell history.
	SecretLines []SecretLine `json:"secret_lines,omitempty"`
	// PgpassFiles are .pgpass files with their modes.
	PgpassFiles []File `json:"pgpass_files,omitempty"`
	// PsqlHistory lists psql history files that are kept.
	PsqlHistory []File `json:"psql_history,omitempty"`
	// Owner is the OS account that owns the data directory.
	Owner        string `json:"owner,omitempty"`
	OwnerShell   string `json:"owner_shell,omitempty"`
	OwnerHome    string `json:"owner_home,omitempty"`
	OwnerPwState string `json:"owner_password_state,omitempty"` // "locked", "set", "empty", "" (unknown)
	OwnerUmask   string `json:"owner_umask,omitempty"`          // from profile files; "" unknown
	// SudoRules are sudoers lines that let someone become the owner.
	SudoRules []SecretLine `json:"sudo_rules,omitempty"`
	// Postmasters counts running PostgreSQL servers.
	Postmasters int `json:"postmasters"`
	// ServiceEnabled: a systemd unit for PostgreSQL is enabled ("" unknown).
	ServiceEnabled string `json:"service_enabled,omitempty"`
	// InstalledMajors lists the majors with server binaries on the host.
	InstalledMajors []int `json:"installed_majors,omitempty"`
	// Package: the server package, its installed and candidate versions.
	Package          string `json:"package,omitempty"`
	PackageVersion   string `json:"package_version,omitempty"`
	PackageCandidate string `json:"package_candidate,omitempty"`
	FIPS             string `json:"fips,omitempty"` // "1", "0", "" unknown
	// Encrypted reports whether the data directory's block device is
	// dm-crypt ("yes", "no", "" unknown).
	Encrypted string `json:"data_encrypted,omitempty"`
	// LogDiskUsedPct is the used share of the log directory's file system.
	LogDiskUsedPct int `json:"log_disk_used_pct,omitempty"`
	// Fail2ban: a jail watches PostgreSQL logs ("yes", "no", "" unknown).
	Fail2ban string `json:"fail2ban,omitempty"`
	// Fail2banJail is the enabled PostgreSQL jail ("name (file)"), its
	// logpath, and whether that covers the server's log ("yes", "no",
	// "" unknown).
	Fail2banJail    string `json:"fail2ban_jail,omitempty"`
	Fail2banLogPath string `json:"fail2ban_logpath,omitempty"`
	Fail2banLogOK   string `json:"fail2ban_log_ok,omitempty"`
	// Firewall is the host's packet filter as its tools print it (nil:
	// not collected).
	Firewall *Firewall `json:"firewall,omitempty"`
	// Backup tool configuration found.
	PgBackRest *PgBackRest `json:"pgbackrest,omitempty"`
	// WALG lists the WAL-G configurations found (files, env directories,
	// process environments); Barman the Barman configuration files.
	WALG   []WALGConfig `json:"walg,omitempty"`
	Barman *Barman      `json:"barman,omitempty"`
	// Clusters are the running postmasters, one per data directory
	// (Postmasters is their number), plus the audited data directory when
	// its server is not running (Running false).
	Clusters []Cluster `json:"clusters,omitempty"`
	// ConnFiles are the password and service files libpq would read on
	// this host: named by a process's PGPASSFILE, PGSERVICEFILE or
	// PGSYSCONFDIR, in a home directory, the system service file, or in a
	// cluster's own directories. Whether they hold passwords, never the
	// passwords.
	ConnFiles []ConnFile `json:"conn_files,omitempty"`
}

// Cluster is one PostgreSQL server on the host.
type Cluster struct {
	DataDir    string   `json:"data_dir"`
	PID        int      `json:"pid,omitempty"`
	User       string   `json:"user,omitempty"`
	Port       int      `json:"port,omitempty"`
	ConfigDir  string   `json:"config_dir,omitempty"`
	SocketDirs []string `json:"socket_dirs,omitempty"`
	Running    bool     `json:"running"`
}

// ConnFile is a libpq password file ("pgpass") or service file
// ("service") and how libpq gets to it.
type ConnFile struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // "pgpass" or "service"
	// Sources say why libpq would read it ("PGPASSFILE", "home of user
	// alice", "system service file", "data directory of cluster ...").
	Sources []string `json:"sources"`
	// Procs are the processes whose environment names the file.
	Procs []ConnProc `json:"procs,omitempty"`
	// Clusters are the data directories of the clusters it belongs to.
	Clusters []string `json:"clusters,omitempty"`
	File     File     `json:"file"`
	// Mode is the mode libpq sees (of the target when File is a symlink).
	Mode uint32 `json:"mode"`
	// Passwords counts entries with a password (pgpass: a non-empty
	// password field; service: a password= line); -1 when unreadable.
	Passwords int `json:"passwords"`
	// PasswordLines are the line numbers of a service file's password=
	// lines (to delete them), never their text.
	PasswordLines []int `json:"password_lines,omitempty"`
	// Ignored: libpq will not use it (a pgpass with group or world
	// access, or not a regular file).
	Ignored bool   `json:"ignored,omitempty"`
	Why     string `json:"why_ignored,omitempty"`
}

// ConnProc is a process whose environment points libpq at a file.
type ConnProc struct {
	Proc
	Var     string `json:"var"`               // PGPASSFILE, PGSERVICEFILE, PGSYSCONFDIR, HOME
	Cluster string `json:"cluster,omitempty"` // data directory of the cluster it works for
}

// Proc is a process (never its secret).
type Proc struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
	User    string `json:"user,omitempty"`
}

// SecretLine points at a line that holds a secret (the secret is not kept).
type SecretLine struct {
	File string `json:"file"`
	Line int    `json:"line"`
	What string `json:"what"`
}

// PgBackRest is what pgbackrest.conf says about repositories.
type PgBackRest struct {
	Config string `json:"config"`
	// Unreadable says why the file that exists could not be read ("" when
	// it was): its repositories are then unknown, never assumed encrypted.
	Unreadable string            `json:"unreadable,omitempty"`
	Repos      []PgBackRestRepo  `json:"repos"`
	File       *File             `json:"file,omitempty"`
	Extra      map[string]string `json:"-"`
}

// PgBackRestRepo is one repoN section of settings.
type PgBackRestRepo struct {
	Name       string `json:"name"` // repo1
	Path       string `json:"path,omitempty"`
	Type       string `json:"type,omitempty"`
	CipherType string `json:"cipher_type,omitempty"`
}

// Certificate describes the server certificate file (first in the chain).
type Certificate struct {
	Path         string    `json:"path"`
	Subject      string    `json:"subject"`
	Issuer       string    `json:"issuer"`
	NotBefore    time.Time `json:"not_before"`
	NotAfter     time.Time `json:"not_after"`
	KeyType      string    `json:"key_type"` // RSA, ECDSA, Ed25519
	KeyBits      int       `json:"key_bits"`
	SignatureAlg string    `json:"signature_algorithm"`
	SelfSigned   bool      `json:"self_signed"`
	DNSNames     []string  `json:"dns_names,omitempty"`
	IPs          []string  `json:"ip_addresses,omitempty"`
	ChainLength  int       `json:"chain_length"`
	Error        string    `json:"error,omitempty"`
}

// Relation is a table, view, sequence or similar with its privileges.
type Relation struct {
	Schema     string      `json:"schema"`
	Name       string      `json:"name"`
	Kind       string      `json:"kind"` // pg_class.relkind: r p v m S f
	Owner      string      `json:"owner"`
	ACL        []acl.Item  `json:"acl,omitempty"`
	ACLDefault bool        `json:"acl_default,omitempty"`
	RLS        bool        `json:"rls,omitempty"`
	ForceRLS   bool        `json:"force_rls,omitempty"`
	Columns    []ColumnACL `json:"columns,omitempty"` // only columns with their own ACL
}

// ColumnACL is a column with column-level grants.
type ColumnACL struct {
	Name string     `json:"name"`
	ACL  []acl.Item `json:"acl"`
}

// LargeObject is a large object's owner and ACL.
type LargeObject struct {
	OID        uint32     `json:"oid"`
	Owner      string     `json:"owner"`
	ACL        []acl.Item `json:"acl,omitempty"`
	ACLDefault bool       `json:"acl_default,omitempty"`
}

// TLSProbe is the outside view of the server's port.
type TLSProbe struct {
	Address           string          `json:"address"`
	TLSOffered        bool            `json:"tls_offered"`
	PlaintextAccepted bool            `json:"plaintext_accepted"`
	PlaintextAnswer   string          `json:"plaintext_answer"`
	Protocols         map[string]bool `json:"protocols"`
	// DirectTLS: a direct TLS handshake (ALPN "postgresql", PostgreSQL
	// 17+) succeeded; DirectProtocols are the versions it accepts.
	DirectTLS       bool            `json:"direct_tls,omitempty"`
	DirectProtocols map[string]bool `json:"direct_protocols,omitempty"`
	CertDaysLeft    *int            `json:"certificate_days_left,omitempty"`
	CertSelfSigned  bool            `json:"certificate_self_signed,omitempty"`
	Errors          []string        `json:"errors,omitempty"`
}

// Libraries lists the shared libraries ($libdir/NAME.so) a server can
// load: what shared_preload_libraries may name.
type Libraries struct {
	Dir string `json:"dir"`
	// Names are the file names without ".so", sorted.
	Names []string `json:"names"`
	// Source is "pg_ls_dir" (read through the server) or "filesystem".
	Source string `json:"source"`
}

// Has reports whether a shared_preload_libraries item is installed, and
// whether that is known: a bare name or $libdir/NAME is looked up in the
// listing; other paths are not listed.
func (l *Libraries) Has(item string) (present, known bool) {
	if l == nil {
		return false, false
	}
	name := strings.TrimSuffix(strings.TrimPrefix(item, "$libdir/"), ".so")
	if strings.Contains(name, "/") || name == "" {
		return false, false
	}
	for _, n := range l.Names {
		if n == name {
			return true, true
		}
	}
	return false, true
}

// TLSFiles are the server certificate and key files, as ssl_cert_file and
// ssl_key_file name them (absolute).
type TLSFiles struct {
	CertFile   string `json:"cert_file"`
	KeyFile    string `json:"key_file"`
	CertExists bool   `json:"cert_exists"`
	KeyExists  bool   `json:"key_exists"`
	// Source is "pg_stat_file" (through the server) or "filesystem".
	Source string `json:"source"`
}

// WALGConfig is one place WAL-G takes its settings from. Only variable
// names are kept, never values (a libsodium key is the backups' key).
type WALGConfig struct {
	// Path is the file or directory; for a process, "process PID (command)".
	Path string `json:"path"`
	// Kind is "json" (a .walg.json or --config file), "envdir" (a
	// directory of one file per variable, as envdir reads) or "process"
	// (the environment of a running process).
	Kind string `json:"kind"`
	File *File  `json:"file,omitempty"`
	// Unreadable says why the settings could not be read ("" when they
	// were): such a configuration is not checked, never passed.
	Unreadable string `json:"unreadable,omitempty"`
	// Vars are the names of the WALG_/WALE_ variables it sets.
	Vars []string `json:"vars,omitempty"`
	// Encryption names the variables that turn on client-side encryption
	// (WALG_LIBSODIUM_KEY, WALG_LIBSODIUM_KEY_PATH, WALG_PGP_KEY,
	// WALG_PGP_KEY_PATH, WALG_GPG_KEY_ID, WALG_CSE_KMS_ID) set non-empty.
	Encryption []string `json:"encryption,omitempty"`
	// ServerSide names storage-side encryption variables set (WALG_S3_SSE).
	ServerSide []string `json:"server_side,omitempty"`
}

// Barman is what Barman's configuration files say, per server.
type Barman struct {
	// Files are the configuration files found, with their modes.
	Files []BarmanFile `json:"files"`
	// Global holds the [barman] section's options that servers inherit
	// (encryption, encryption_key_id, backup_method, backup_compression).
	Global  map[string]string `json:"global,omitempty"`
	Servers []BarmanServer    `json:"servers,omitempty"`
}

// BarmanFile is one Barman configuration file.
type BarmanFile struct {
	Path       string `json:"path"`
	File       *File  `json:"file,omitempty"`
	Unreadable string `json:"unreadable,omitempty"`
}

// BarmanServer is one [server] section: only the options about how
// backups are written (never passphrase commands or connection strings).
type BarmanServer struct {
	Name              string `json:"name"`
	Config            string `json:"config"` // file:line of the section
	BackupMethod      string `json:"backup_method,omitempty"`
	BackupCompression string `json:"backup_compression,omitempty"`
	Encryption        string `json:"encryption,omitempty"`
	EncryptionKeyID   bool   `json:"encryption_key_id_set,omitempty"`
}

// Backups are the backup directories named with --backup-dir and what
// was found in them. Times are as the manifests say; ages are measured
// from ScannedAt.
type Backups struct {
	ScannedAt time.Time `json:"scanned_at"`
	// User is the account pgaegis ran as: backup files owned by it (or by
	// postgres, or by the cluster owner) are the backup account's.
	User string `json:"user,omitempty"`
	// MaxAgeSeconds: the newest set must have finished within this
	// (--backup-max-age); RestoreTestMaxAgeSeconds likewise for the newest
	// restore test (--restore-test-max-age).
	MaxAgeSeconds            int64       `json:"max_age_seconds"`
	RestoreTestMaxAgeSeconds int64       `json:"restore_test_max_age_seconds"`
	Dirs                     []BackupDir `json:"dirs"`
}

// BackupDir is one --backup-dir.
type BackupDir struct {
	Path string `json:"path"`
	// Dir is the directory as named (Symlink set when the name is a link).
	Dir File `json:"dir"`
	// Resolved is where a symlinked Path leads (what was scanned).
	Resolved string `json:"resolved,omitempty"`
	// Target is the resolved directory's own mode and owner.
	Target *File `json:"target,omitempty"`
	// Error says why the directory could not be read (nothing in it is
	// then known: its rules are not checked).
	Error string `json:"error,omitempty"`
	// Missing: the directory (or a link's target) does not exist, which
	// BKP-01 counts as no backups rather than as not checked.
	Missing bool `json:"missing,omitempty"`
	// Sets are the backup sets found (backupset.List), newest first;
	// SetsError says why they could not be listed.
	Sets      []BackupSet `json:"sets,omitempty"`
	SetsError string      `json:"sets_error,omitempty"`
	// Entries are every directory and file of the tree below Path (not
	// following links), with modes and what the file's first bytes are.
	Entries []BackupEntry `json:"entries,omitempty"`
	// Truncated: the walk stopped at its limit; what lies beyond is unknown.
	Truncated bool `json:"truncated,omitempty"`
}

// BackupSet is one set directory and what its manifest and verification
// record say (read without a key: no MAC was checked).
type BackupSet struct {
	Name      string     `json:"name"`
	Dir       string     `json:"dir"`
	Started   *time.Time `json:"started,omitempty"`
	Finished  *time.Time `json:"finished,omitempty"`
	Databases []string   `json:"databases,omitempty"`
	// Files are the sealed files the manifest names (relative to Dir).
	Files []string `json:"files,omitempty"`
	// Problem: unreadable manifest, missing or resized file, ...
	Problem string `json:"problem,omitempty"`
	// Verified is backupset.Set.Verified(): a verification record that
	// says ok and whose hashes match the manifest and the files' sizes.
	Verified bool `json:"verified"`
	// VerifiedAt, VerifyOK and VerifyProblems are the verification
	// record's (nil/false/empty when the set was never verified).
	VerifiedAt     *time.Time `json:"verified_at,omitempty"`
	VerifyOK       bool       `json:"verify_ok,omitempty"`
	VerifyProblems []string   `json:"verify_problems,omitempty"`
	// RestoreTested is when a restore test ran (the verification's time);
	// RestoreMismatches its row-count differences (none: it passed).
	RestoreTested     *time.Time `json:"restore_tested,omitempty"`
	RestoreMismatches []string   `json:"restore_mismatches,omitempty"`
}

// Content kinds of a backup directory's files (BackupEntry.Content).
const (
	ContentAge        = "age"         // starts with the age header: encrypted
	ContentRecord     = "record"      // manifest.json or verification.json of a set
	ContentPgDump     = "pg_dump"     // a pg_dump custom or directory-format archive (PGDMP): plaintext
	ContentPgDumpTar  = "pg_dump_tar" // a pg_dump tar-format archive (toc.dat first): plaintext
	ContentSQLDump    = "sql_dump"    // pg_dump/pg_dumpall plain SQL text: plaintext
	ContentCompressed = "compressed"  // gzip, zstd, xz, bzip2 or lz4, not encrypted
	ContentOther      = "other"
	ContentUnreadable = "unreadable"
)

// BackupEntry is one directory or file under a backup directory.
type BackupEntry struct {
	File
	Size int64 `json:"size,omitempty"`
	// Content is one of the Content* kinds (files only); Detail names
	// the format seen ("gzip", "zstd", "PGDMP 1.14") or the read error.
	Content string `json:"content,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Plaintext reports whether the entry's first bytes show an unencrypted
// dump or compressed stream.
func (e BackupEntry) Plaintext() bool {
	switch e.Content {
	case ContentPgDump, ContentPgDumpTar, ContentSQLDump, ContentCompressed:
		return true
	}
	return false
}

// Firewall is the live packet filter, stored raw (internal/netfilter
// reads it). Source is "nft", "iptables", "none" (no tool answered:
// Error says why) or "" (not read: Error says why).
type Firewall struct {
	Source    string `json:"source"`
	NFTJSON   string `json:"nft_json,omitempty"`  // nft -j list ruleset
	IPTables  string `json:"iptables,omitempty"`  // iptables-save
	IP6Tables string `json:"ip6tables,omitempty"` // ip6tables-save
	Error     string `json:"error,omitempty"`
}
