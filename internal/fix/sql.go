package fix

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// sqlUnit is one statement of a SQL step with its undo and the findings
// that asked for it.
type sqlUnit struct {
	do, undo string
	class    int // sqlOrder: revokes and alters before drops
}

// Statement classes, in the order a step runs them: whatever changes or
// revokes on an object runs before anything that drops an object, so no
// statement refers to something an earlier one removed.
const (
	classAlter = iota
	classDrop
)

func sqlClass(stmt string) int {
	if strings.HasPrefix(strings.ToUpper(stmt), "DROP ") {
		return classDrop
	}
	return classAlter
}

// planSQL makes one KindSQL step per database: the statements of every
// finding, each run (and undone) once however many findings need it,
// revokes before drops, the undo in the same order as the statements (the
// executor runs it backwards). A change that would take the operator's own
// role's attributes, memberships or grants away is held: the plan must not
// cut off the connection that applies it.
func planSQL(s *snapshot.Snapshot, items []item) ([]built, []plan.Held) {
	type group struct {
		db      string
		units   []sqlUnit
		index   map[string]int // statement → units index
		closes  []plan.FindingRef
		closed  map[string]bool
		breaks  []string
		broken  map[string]bool // breaks, as a set: thousands of findings may each bring one
		super   bool
		texts   map[string]string
		ownStmt map[string][]string // finding key → its statements
	}
	groups := map[string]*group{}
	var order []string
	var held []plan.Held
	cur, isSuper := "", true
	if s != nil && s.Server != nil {
		cur, isSuper = s.Server.CurrentUser, s.Server.Superuser
	}
	for _, it := range items {
		c := it.c.SQL
		if c == nil || len(c.Statements) == 0 {
			continue
		}
		partial := false
		if cur != "" && touchesRole(c, cur) {
			held = append(held, plan.Held{FindingRef: it.ref(), Why: fmt.Sprintf("would remove your own access: the change is to role %s, which this connection uses (run it as another administrator)", quote.Ident(cur))})
			// A finding that stands for many roles (NET-05 over every login
			// role) still gets the statements about the others: only the
			// ones about this connection's role are held.
			rest, ok := withoutRole(c, cur)
			if !ok {
				continue
			}
			c, partial = rest, true
		}
		if c.Superuser && !isSuper {
			held = append(held, plan.Held{FindingRef: it.ref(), Why: fmt.Sprintf("needs a superuser: role %s is not one", quote.Ident(cur))})
			continue
		}
		g := groups[c.Database]
		if g == nil {
			g = &group{db: c.Database, index: map[string]int{}, closed: map[string]bool{}, broken: map[string]bool{}, texts: map[string]string{}, ownStmt: map[string][]string{}}
			groups[c.Database] = g
			order = append(order, c.Database)
		}
		paired := len(c.Undo) == len(c.Statements)
		for i, st := range c.Statements {
			u := sqlUnit{do: st, class: sqlClass(st)}
			if paired {
				u.undo = c.Undo[i]
			}
			if _, dup := g.index[st]; !dup {
				g.index[st] = len(g.units)
				g.units = append(g.units, u)
			}
		}
		if !paired {
			// Undo statements not paired one to one: kept as a block
			// that runs after (so, undone before) this finding's own.
			for _, u := range c.Undo {
				g.units = append(g.units, sqlUnit{undo: u, class: classAlter})
			}
		}
		key := it.f.Key()
		g.ownStmt[key] = append(g.ownStmt[key], c.Statements...)
		// A finding that also has a manual part is not closed by the
		// statements alone: the step does its share, Manual says the rest.
		if !g.closed[key] && !hasManual(it) && !partial {
			g.closed[key] = true
			g.closes = append(g.closes, it.ref())
		}
		if b := it.c.Breaks; b != "" && !g.broken[b] {
			g.broken[b] = true
			g.breaks = append(g.breaks, b)
		}
		g.super = g.super || c.Superuser
	}
	sort.Strings(order) // "" (the connection's database) first
	var out []built
	for _, db := range order {
		g := groups[db]
		sort.SliceStable(g.units, func(i, j int) bool { return g.units[i].class < g.units[j].class })
		st := plan.Step{Kind: plan.KindSQL, Database: db, Closes: g.closes, Breaks: g.breaks, Superuser: g.super}
		for _, u := range g.units {
			if u.do != "" {
				st.SQL = append(st.SQL, u.do)
			}
			if u.undo != "" {
				st.Undo = append(st.Undo, u.undo)
			}
		}
		where := "in database " + quote.Ident(db)
		if db == "" {
			where = "in the connection's database (cluster-wide: roles, databases, parameters)"
		}
		n := len(st.SQL)
		st.Summary = fmt.Sprintf("run %d SQL statement%s %s in one transaction", n, plural(n), where)
		if g.super {
			st.Summary += ", as a superuser"
		}
		b := built{step: st, key: "sql:" + db, order: phaseSQL, texts: map[string]string{}}
		for key, stmts := range g.ownStmt {
			b.texts[key] = sqlText(stmts, db)
		}
		out = append(out, b)
	}
	return out, held
}

// sqlText renders statements as a script for one database.
func sqlText(stmts []string, db string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, s := range stmts {
		if seen[s] {
			continue
		}
		seen[s] = true
		b.WriteString(s)
		b.WriteString(";\n")
	}
	if db != "" {
		b.WriteString("-- in database " + quote.Ident(db))
	} else {
		b.WriteString("-- in any database (cluster-wide)")
	}
	return b.String()
}

// touchesRole reports whether a statement changes role's own attributes,
// memberships or grants (ALTER ROLE r ..., REVOKE ... FROM r): names in
// statements are quoted with quote.Ident, so matching the quoted form is
// exact.
func touchesRole(c *remedy.SQL, role string) bool {
	id := quote.Ident(role)
	for _, st := range c.Statements {
		if stmtTouches(st, id) {
			return true
		}
	}
	return false
}

func stmtTouches(st, id string) bool {
	return strings.HasPrefix(st, "ALTER ROLE "+id+" ") || strings.HasSuffix(st, " FROM "+id) || strings.Contains(st, " FROM "+id+", ") || strings.Contains(st, " FROM "+id+"; ")
}

// withoutRole is c without the statements (and their undo) that touch
// role; ok is false when nothing else is left, or when the undo is not
// paired with the statements (then the change cannot be cut apart).
func withoutRole(c *remedy.SQL, role string) (*remedy.SQL, bool) {
	if len(c.Undo) != len(c.Statements) {
		return nil, false
	}
	id := quote.Ident(role)
	out := *c
	out.Statements, out.Undo = nil, nil
	for i, st := range c.Statements {
		if !stmtTouches(st, id) {
			out.Statements = append(out.Statements, st)
			out.Undo = append(out.Undo, c.Undo[i])
		}
	}
	return &out, len(out.Statements) > 0
}

func hasManual(it item) bool {
	for _, c := range it.f.Changes {
		if c.Kind() == "manual" {
			return true
		}
	}
	return false
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
