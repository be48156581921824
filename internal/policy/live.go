package policy

// Live is the server as policy/inspect reads it: the whole state as a
// File with every object named (no "*" patterns, no compaction), and what
// the diff and the removal preflight need besides.
type Live struct {
	File *File
	// Major is the server's major version (16 has per-grant INHERIT/SET,
	// 17 MAINTAIN).
	Major int
	// CurrentUser is the role pgaegis runs as; Superuser whether it is one.
	CurrentUser string
	Superuser   bool
	// Bootstrap is the role with OID 10, never dropped or demoted.
	Bootstrap string
	// HasPassword: roles that have a password set (never the verifier).
	HasPassword map[string]bool
	// Databases is every database on the server, whether or not it
	// accepts connections (File.Databases holds those that were read).
	Databases []string
	// Dependents: per role, per database ("" for shared objects), how
	// many objects the role owns and how many privileges it holds
	// there (pg_shdepend), for the removal preflight.
	Dependents map[string]map[string]Dependents
	// Sessions: live sessions per role (pg_stat_activity).
	Sessions map[string]int
	// Unreadable names what could not be read (a database that refused
	// the connection), so a plan never revokes what it did not see.
	Unreadable map[string]string
}

// Dependents counts what holds a role in one database.
type Dependents struct {
	Owned      int `json:"owned"`
	Privileges int `json:"privileges"`
	Policies   int `json:"policies,omitempty"` // RLS policies naming the role
}
