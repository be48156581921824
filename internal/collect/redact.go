package collect

import (
	"strings"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// secretSettings may carry connection strings with passwords.
var secretSettings = map[string]bool{"primary_conninfo": true}

// redact removes credentials that configuration files can hold, so a
// snapshot can be shared and reports printed without leaking them.
func redact(s *snapshot.Snapshot) {
	for name, v := range s.Settings {
		if secretSettings[name] {
			v.Value = conninfo.RedactDSN(v.Value)
			s.Settings[name] = v
		}
	}
	if s.Config != nil {
		for i, e := range s.Config.Entries {
			if secretSettings[strings.ToLower(e.Name)] {
				s.Config.Entries[i].Value = conninfo.RedactDSN(e.Value)
			}
		}
	}
	if s.HBA != nil {
		hba.RedactSecrets(s.HBA.Rules)
		hba.RedactErrors(s.HBA.Errors) // the server's messages quote secrets
	}
}
