package privileges

import (
	"strings"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Route is one way a role gets beyond what has_*_privilege says it holds:
// an escalation chain whose first link is the role itself.
type Route struct {
	// How, in one line: "SET ROLE app_admin"; Gains says what for.
	How   string `json:"how"`
	Gains string `json:"gains"`
	Kind  string `json:"kind"`
	// Everything is true when the route makes the role a superuser, so
	// any privilege on any object is within reach; other routes (OS
	// command execution, file access, configuration) are reported but
	// not counted as a privilege on an object.
	Everything bool  `json:"everything"`
	Chain      Chain `json:"chain"`
}

// Reach lists the escalation routes out of role: the chains of
// Escalations (every kind, present and future) that start at it. Like
// Escalations it covers non-superuser login roles: a superuser already
// holds everything, and a NOLOGIN role is used by whoever may become
// it, whose own routes are the ones that count.
func (m *Model) Reach(s *snapshot.Snapshot, role string) []Route {
	ri, ok := m.RoleIndex(role)
	if !ok || m.Roles[ri].Super {
		return nil
	}
	var out []Route
	for _, c := range m.Escalations(s) {
		if c.Role != role {
			continue
		}
		// Escalations reports no inherit-only membership in a superuser
		// (the attribute is never inherited), so a superuser gain is one.
		every := c.Gains == "superuser"
		out = append(out, Route{How: routeHow(c), Gains: c.Gains, Kind: c.Kind, Everything: every, Chain: c})
	}
	return out
}

// routeHow joins the chain's steps, leaving out the one that only
// repeats the kind ("membership", "CREATEROLE").
func routeHow(c Chain) string {
	var whats []string
	for _, st := range c.Steps {
		if strings.EqualFold(st.What, c.Kind) {
			continue
		}
		whats = append(whats, st.What)
	}
	if len(whats) == 0 {
		whats = []string{c.Kind}
	}
	return strings.Join(whats, ", ")
}

// EverythingRoute returns the first route that makes the role a
// superuser, if any.
func EverythingRoute(rs []Route) (Route, bool) {
	for _, r := range rs {
		if r.Everything {
			return r, true
		}
	}
	return Route{}, false
}
