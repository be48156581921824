package collect

import (
	"strings"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// secretMask replaces a whole setting value that is a secret.
const secretMask = "xxxxx"

// redactSetting returns the value to keep for a setting: connection
// strings (primary_conninfo) and shell commands (archive_command ...,
// which may carry PGPASSWORD=... or a conninfo) keep their shape with the
// password values removed, parsed as libpq parses them; a custom setting
// named like a secret (myapp.password, x.client_secret) is hidden whole.
func redactSetting(name, value string) string {
	n := strings.ToLower(name)
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		n = n[i+1:]
	}
	switch {
	case value == "":
		return value
	case strings.HasSuffix(n, "password") || strings.HasSuffix(n, "passwd") || strings.HasSuffix(n, "secret") || strings.HasSuffix(n, "secrets"):
		return secretMask
	case strings.HasSuffix(n, "conninfo") || strings.HasSuffix(n, "_command"):
		return conninfo.RedactDSN(value)
	}
	return value
}

// redact removes credentials that configuration files can hold, so a
// snapshot can be shared and reports printed without leaking them.
func redact(s *snapshot.Snapshot) {
	for name, v := range s.Settings {
		if r := redactSetting(name, v.Value); r != v.Value {
			v.Value = r
			s.Settings[name] = v
		}
	}
	if s.Config != nil {
		for i, e := range s.Config.Entries {
			s.Config.Entries[i].Value = redactSetting(e.Name, e.Value)
		}
	}
	// Per-role and per-database settings (pg_db_role_setting) are
	// "name=value" strings.
	for i := range s.RoleSettings {
		for j, kv := range s.RoleSettings[i].Settings {
			if k, v, ok := strings.Cut(kv, "="); ok {
				s.RoleSettings[i].Settings[j] = k + "=" + redactSetting(k, v)
			}
		}
	}
	if s.HBA != nil {
		hba.RedactSecrets(s.HBA.Rules)
		hba.RedactErrors(s.HBA.Errors) // the server's messages quote secrets
	}
}
