package rules

import (
	"fmt"
	"os"

	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func init() {
	register(&Rule{
		ID: "NET-01", Title: "listen_addresses names specific interfaces, not every address", Area: AreaNetwork, Severity: High,
		Rationale:  "Listening on every interface exposes the server to every network the host is on; pg_hba.conf is then the only barrier.",
		References: refs(cis("5.2"), stig("V-233511")),
		Check: func(c *Check) {
			v, ok := c.setting("listen_addresses")
			if !ok {
				return
			}
			for _, a := range guc.SplitList(v.Value) {
				if a == "*" || a == "0.0.0.0" || a == "::" {
					c.Fail(c.setProblem(v, "localhost", "listen_addresses lists only the interfaces clients use (for example 'localhost,10.0.0.5')"))
					return
				}
			}
			c.Pass("setting listen_addresses", settingEvidence(v))
		},
	})

	register(&Rule{
		ID: "NET-04", Title: "Unix sockets are not open to every local user", Area: AreaNetwork, Severity: Medium,
		Rationale:  "With unix_socket_permissions 0777 any local account can reach the server's socket; a world-writable socket directory lets any user plant a fake socket.",
		References: cis("8.3"),
		Check: func(c *Check) {
			v, ok := c.setting("unix_socket_permissions")
			if !ok {
				return
			}
			mode, valid := guc.ParseInt(v.Value)
			if !valid || mode&0o007 != 0 {
				p := c.setProblem(v, "0770", "unix_socket_permissions = 0770 (or stricter) with unix_socket_group set to the clients' group")
				p.Evidence += " (others may connect)"
				c.Fail(p)
			} else {
				c.Pass("setting unix_socket_permissions", settingEvidence(v))
			}
			for _, d := range c.S.FilesOfKind(snapshot.KindSocketDir) {
				if !d.Exists {
					continue
				}
				if d.Mode&0o002 != 0 && d.Mode&0o1000 == 0 {
					c.Fail(Problem{Object: "socket directory " + d.Path, Location: d.Path,
						Evidence: fmt.Sprintf("mode %s, owner %s: world-writable without the sticky bit", d.ModeString(), ownerName(d)),
						Expected: "not writable by others (0755 owned by the cluster owner, or 1777 like /tmp)",
						Fix:      "chmod o-w " + quote.Shell(d.Path), FixKind: FixShell,
						Changes: []remedy.Change{{File: &remedy.FileMode{Path: d.Path, Mode: os.FileMode(d.Mode&0o777) &^ 0o002, From: os.FileMode(d.Mode & 0o777)}}}})
				}
			}
		},
	})
}

func ownerName(f *snapshot.File) string {
	if f.Owner != "" {
		return f.Owner
	}
	return fmt.Sprint(f.UID)
}
