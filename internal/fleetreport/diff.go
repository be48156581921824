package fleetreport

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/drift"
)

// WriteDiff renders a server's drift in format (text, json, html,
// markdown). The JSON form is drift.Diff itself.
func WriteDiff(w io.Writer, format string, d *drift.Diff) error {
	return write(w, format, diffDoc(d), d)
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func diffDoc(d *drift.Diff) doc {
	out := doc{Title: "Drift of " + d.Server,
		Meta: []string{"from scan " + strconv.FormatInt(d.From.ID, 10) + " (" + ts(d.From.StartedAt) + ")",
			"to scan " + strconv.FormatInt(d.To.ID, 10) + " (" + ts(d.To.StartedAt) + ")"}}
	if d.Empty() {
		out.Meta = append(out.Meta, "nothing changed")
	}
	if len(d.Unknown) > 0 {
		out.Meta = append(out.Meta, "not compared (one scan could not see it): "+strings.Join(d.Unknown, ", "))
	}
	fr := func(fs []drift.Finding) [][]string {
		var rows [][]string
		for _, f := range fs {
			rows = append(rows, []string{f.Severity.String(), f.Rule, f.Object, f.Title})
		}
		return rows
	}
	out.Tables = append(out.Tables,
		table{Title: "New findings", Empty: "none", Head: []string{"severity", "rule", "object", "title"}, Rows: fr(d.New)},
		table{Title: "Fixed findings", Empty: "none", Head: []string{"severity", "rule", "object", "title"}, Rows: fr(d.Fixed)})
	out.Tables = append(out.Tables, changeTables(d)...)
	return out
}

// changeTables are the drift's tables other than the findings: settings,
// roles, grants, pg_hba.conf lines, the certificate.
func changeTables(d *drift.Diff) []table {
	var out []table
	var set [][]string
	for _, s := range d.Settings {
		old, cur := s.Old, s.New
		if !s.OldSet {
			old = "(not set)"
		}
		if !s.NewSet {
			cur = "(not set)"
		}
		set = append(set, []string{s.Name, old, s.OldSource, cur, s.NewSource})
	}
	out = append(out, table{Title: "Settings changed", Empty: "none", Head: []string{"setting", "old", "from", "new", "from"}, Rows: set})
	var roles [][]string
	for _, r := range d.RolesAdded {
		roles = append(roles, []string{"+", r.Name, "role added", "", strings.Join(r.Attributes, ", ")})
	}
	for _, r := range d.RolesRemoved {
		roles = append(roles, []string{"-", r.Name, "role removed", strings.Join(r.Attributes, ", "), ""})
	}
	for _, c := range d.RoleChanges {
		roles = append(roles, []string{"~", c.Role, c.Attribute, c.Old, c.New})
	}
	out = append(out, table{Title: "Roles", Empty: "no change", Head: []string{"", "role", "attribute", "old", "new"}, Rows: roles})
	var grants [][]string
	for _, g := range d.GrantsAdded {
		grants = append(grants, []string{"+", g})
	}
	for _, g := range d.GrantsRemoved {
		grants = append(grants, []string{"-", g})
	}
	out = append(out, table{Title: "Grants", Empty: "no change", Head: []string{"", "grant"}, Rows: grants})
	var hba [][]string
	for _, l := range d.HBAAdded {
		hba = append(hba, []string{"+", l.File + ":" + strconv.Itoa(l.Line), l.Text})
	}
	for _, l := range d.HBARemoved {
		hba = append(hba, []string{"-", l.File + ":" + strconv.Itoa(l.Line), l.Text})
	}
	out = append(out, table{Title: "pg_hba.conf lines", Empty: "no change", Head: []string{"", "where", "line"}, Rows: hba})
	var certs [][]string
	for _, c := range d.Certificates {
		certs = append(certs, []string{c.Field, c.Old, c.New})
	}
	out = append(out, table{Title: "Server certificate", Empty: "no change", Head: []string{"field", "old", "new"}, Rows: certs})
	return out
}

// Table is one titled table of a fleet document, for another renderer
// (the dashboard's server page).
type Table = table

// DiffTables are fleet diff's tables for d other than the findings ones
// (the dashboard lists those itself, with links), and only those with a
// change: settings, roles, grants, pg_hba.conf lines, the certificate.
// Terminal controls are escaped; HTML is the caller's to escape.
func DiffTables(d *drift.Diff) []Table {
	var out []Table
	for _, t := range clean(doc{Tables: changeTables(d)}).Tables {
		if len(t.Rows) > 0 {
			out = append(out, t)
		}
	}
	return out
}
