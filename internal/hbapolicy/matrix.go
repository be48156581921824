package hbapolicy

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/hba"
)

// Cell is one role × database of the matrix: the weakest way in and the
// widest network it is offered to.
type Cell struct {
	Role        string `json:"role"`
	Database    string `json:"database"`
	Weakest     string `json:"weakest_method"` // "refused" when nothing accepts
	Network     string `json:"widest_network,omitempty"`
	Class       string `json:"connection,omitempty"`
	Line        int    `json:"line,omitempty"`
	Superuser   bool   `json:"superuser,omitempty"`
	Replication bool   `json:"replication,omitempty"`
	Undecided   bool   `json:"undecided,omitempty"`
	// Alarm marks the combinations reviewers look for first: a superuser
	// reachable from beyond loopback with trust or a password method.
	Alarm string `json:"alarm,omitempty"`
}

// RoleInfo is what the matrix needs of a role.
type RoleInfo struct {
	Name                   string
	Superuser, Replication bool
}

type slot struct {
	class  ConnClass
	region Region
	rules  []*hba.Rule // lines whose type and address can match
}

// slots builds one slot per connection class and address region, merging
// regions that every line treats alike (keeping the widest as the name).
func slots(rules []hba.Rule, env hba.Env) []slot {
	var out []slot
	index := map[string]int{}
	for _, cl := range Classes {
		regions := []Region{{Label: "socket"}}
		if !cl.Local {
			regions = Regions(env, rules)
		}
		for _, rg := range regions {
			c := hba.Conn{Local: cl.Local, SSL: cl.SSL, Addr: rg.Addr}
			var keep []*hba.Rule
			var sig strings.Builder
			sig.WriteString(cl.Name)
			for i := range rules {
				if hba.SiteMatches(&rules[i], c, env) != hba.No {
					keep = append(keep, &rules[i])
					fmt.Fprintf(&sig, ",%d", i)
				}
			}
			if j, ok := index[sig.String()]; ok {
				if rg.Size > out[j].region.Size {
					out[j].region = rg
				}
				continue
			}
			index[sig.String()] = len(out)
			out = append(out, slot{class: cl, region: rg, rules: keep})
		}
	}
	return out
}

// Matrix computes every role × database: per slot and role, the lines
// whose role field matches are found once; each database then scans only
// those.
func Matrix(rules []hba.Rule, env hba.Env, roles []RoleInfo, dbs []string) []Cell {
	ss := slots(rules, env)
	out := make([]Cell, len(roles)*len(dbs))
	best := make([]int, len(out))
	size := make([]float64, len(out))
	for i := range out {
		out[i] = Cell{Role: roles[i/len(dbs)].Name, Database: dbs[i%len(dbs)], Weakest: "refused",
			Superuser: roles[i/len(dbs)].Superuser, Replication: roles[i/len(dbs)].Replication}
		best[i], size[i] = 100, -1
	}
	var mine []*hba.Rule
	var mineMaybe []bool
	for _, s := range ss {
		for ri, role := range roles {
			mine, mineMaybe = mine[:0], mineMaybe[:0]
			c := hba.Conn{User: role.Name}
			for _, r := range s.rules {
				if d := hba.UserMatches(r, c, env); d != hba.No {
					mine = append(mine, r)
					mineMaybe = append(mineMaybe, d == hba.Maybe)
				}
			}
			for di, db := range dbs {
				k := ri*len(dbs) + di
				c.Database = db
				for j, r := range mine {
					d := hba.DBMatches(r, c, env)
					if d == hba.No {
						continue
					}
					if d == hba.Maybe || mineMaybe[j] {
						out[k].Undecided = true
						break
					}
					st := Strength(r.Method)
					if st < best[k] || (st == best[k] && st < 100 && s.region.Size > size[k]) {
						best[k], size[k] = st, s.region.Size
						out[k].Weakest, out[k].Network, out[k].Class, out[k].Line = r.Method, s.region.Label, s.class.Name, r.Line
					}
					break
				}
			}
		}
	}
	for i := range out {
		cl := &out[i]
		if cl.Superuser && best[i] <= Strength("md5") && cl.Class != "local" && !isLoopback(cl.Network) {
			cl.Alarm = "superuser reachable by " + cl.Weakest + " from " + cl.Network
		}
	}
	return out
}

func isLoopback(network string) bool {
	return network == "127.0.0.0/8" || network == "::1/128" || network == "127.0.0.1/32" || network == "socket"
}
