// Package drift compares two stored scans of one server: which findings
// are new and which were fixed (by rule and object), which settings
// changed (with the file and line each value came from), which roles,
// role attributes, grants and pg_hba.conf lines appeared or went, and
// how the server's certificate changed. The result is plain data with a
// stable JSON form (every list sorted, empty lists omitted).
package drift

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/store"
)

// Diff is what changed on a server from one scan to a later one.
type Diff struct {
	Server string  `json:"server"`
	From   ScanRef `json:"from"`
	To     ScanRef `json:"to"`
	// New are failures in To that were not failing in From; Fixed the
	// reverse. Both by (rule, object).
	New   []Finding `json:"new_findings,omitempty"`
	Fixed []Finding `json:"fixed_findings,omitempty"`
	// Settings whose value changed, appeared or went.
	Settings []SettingChange `json:"settings,omitempty"`
	// RolesAdded and RolesRemoved are roles with the attributes they
	// have (or had).
	RolesAdded   []Role       `json:"roles_added,omitempty"`
	RolesRemoved []Role       `json:"roles_removed,omitempty"`
	RoleChanges  []RoleChange `json:"role_changes,omitempty"`
	// Grants are privileges and role memberships, one line each
	// ("SELECT ON TABLE app.orders TO PUBLIC (database shop)").
	GrantsAdded   []string `json:"grants_added,omitempty"`
	GrantsRemoved []string `json:"grants_removed,omitempty"`
	// HBA lines compared by their text; the line number is the one in
	// the scan that has the line.
	HBAAdded     []HBALine    `json:"hba_added,omitempty"`
	HBARemoved   []HBALine    `json:"hba_removed,omitempty"`
	Certificates []CertChange `json:"certificate_changes,omitempty"`
	// Unknown names what one of the scans could not see (no snapshot, no
	// roles, no pg_hba.conf): a part that is unknown is not compared, so
	// "nothing changed" there means nothing.
	Unknown []string `json:"unknown,omitempty"`
}

// ScanRef names a scan.
type ScanRef struct {
	ID        int64     `json:"id"`
	StartedAt time.Time `json:"started_at"`
}

// Finding is a failure that appeared or went.
type Finding struct {
	Rule     string         `json:"rule"`
	Object   string         `json:"object"`
	Severity rules.Severity `json:"severity"`
	Title    string         `json:"title"`
	Location string         `json:"location,omitempty"`
}

// SettingChange is one setting's value in both scans; Old or New is ""
// with OldSet/NewSet false when the setting was absent there.
type SettingChange struct {
	Name   string `json:"name"`
	Old    string `json:"old"`
	New    string `json:"new"`
	OldSet bool   `json:"old_set"`
	NewSet bool   `json:"new_set"`
	// OldSource, NewSource: "file:line" when the value came from a
	// configuration file, else pg_settings' source ("default",
	// "command line", ...).
	OldSource string `json:"old_source,omitempty"`
	NewSource string `json:"new_source,omitempty"`
}

// Role is a role that appeared or went, with its attributes that are
// set ("superuser", "login", "connection_limit=5", ...).
type Role struct {
	Name       string   `json:"name"`
	Attributes []string `json:"attributes,omitempty"`
}

// RoleChange is one attribute of one role that changed.
type RoleChange struct {
	Role      string `json:"role"`
	Attribute string `json:"attribute"`
	Old       string `json:"old"`
	New       string `json:"new"`
}

// HBALine is a pg_hba.conf line.
type HBALine struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Text string `json:"text"`
}

// CertChange is one property of the server certificate that changed.
type CertChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Empty says nothing changed (unknown parts aside).
func (d *Diff) Empty() bool {
	return len(d.New)+len(d.Fixed)+len(d.Settings)+len(d.RolesAdded)+len(d.RolesRemoved)+len(d.RoleChanges)+
		len(d.GrantsAdded)+len(d.GrantsRemoved)+len(d.HBAAdded)+len(d.HBARemoved)+len(d.Certificates) == 0
}

// Compare returns what changed from the scan from to the scan to.
func Compare(from, to *store.ScanRecord) *Diff {
	d := &Diff{Server: to.Server, From: ScanRef{from.ID, from.StartedAt}, To: ScanRef{to.ID, to.StartedAt}}
	d.New, d.Fixed = Change(FailuresOf(from.Findings), FailuresOf(to.Findings))
	a, b := from.Snapshot, to.Snapshot
	if a == nil || b == nil {
		d.Unknown = append(d.Unknown, "snapshot")
		return d
	}
	d.Settings = settings(a, b)
	if a.Roles == nil || b.Roles == nil {
		d.Unknown = append(d.Unknown, "roles")
	} else {
		d.RolesAdded, d.RolesRemoved, d.RoleChanges = roles(a.Roles, b.Roles)
	}
	ga, gb := grants(a), grants(b)
	d.GrantsAdded, d.GrantsRemoved = minus(gb, ga), minus(ga, gb)
	if a.HBA == nil || b.HBA == nil {
		d.Unknown = append(d.Unknown, "pg_hba.conf")
	} else {
		d.HBAAdded, d.HBARemoved = hbaLines(b.HBA, a.HBA), hbaLines(a.HBA, b.HBA)
	}
	d.Certificates = certs(a.ServerCert, b.ServerCert)
	return d
}

// Key identifies a finding across scans of a server.
type Key struct{ Rule, Object string }

// Failures are a scan's failing findings by key: what New and Fixed
// compare. Callers that hold only stored finding rows (the dashboard)
// build it themselves and share Change.
type Failures map[Key]Finding

// FailuresOf collects the failures among fs (the first of a repeated key
// wins).
func FailuresOf(fs []rules.Finding) Failures {
	out := Failures{}
	for _, f := range fs {
		k := Key{f.Rule, f.Object}
		if _, seen := out[k]; f.Status == rules.Fail && !seen {
			out[k] = Finding{Rule: f.Rule, Object: f.Object, Severity: f.Severity, Title: f.Title, Location: f.Location}
		}
	}
	return out
}

// Change returns the failures in to that were not in from (new) and the
// reverse (fixed), each worst first, then by rule and object.
func Change(from, to Failures) (newF, fixed []Finding) {
	return minusFailures(to, from), minusFailures(from, to)
}

func minusFailures(a, b Failures) []Finding {
	var out []Finding
	for k, f := range a {
		if _, ok := b[k]; !ok {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Severity != out[j].Severity {
			return out[i].Severity > out[j].Severity
		}
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].Object < out[j].Object
	})
	return out
}

func settingValue(s snapshot.Setting) string {
	if s.Unit != "" {
		return s.Value + " " + s.Unit
	}
	return s.Value
}

func settingSource(s snapshot.Setting) string {
	if s.File != "" && s.Line > 0 {
		return s.File + ":" + strconv.Itoa(s.Line)
	}
	return s.Source
}

func settings(a, b *snapshot.Snapshot) []SettingChange {
	names := map[string]bool{}
	for n := range a.Settings {
		names[n] = true
	}
	for n := range b.Settings {
		names[n] = true
	}
	var out []SettingChange
	for n := range names {
		x, inA := a.Settings[n]
		y, inB := b.Settings[n]
		if inA && inB && settingValue(x) == settingValue(y) {
			continue
		}
		c := SettingChange{Name: n, OldSet: inA, NewSet: inB}
		if inA {
			c.Old, c.OldSource = settingValue(x), settingSource(x)
		}
		if inB {
			c.New, c.NewSource = settingValue(y), settingSource(y)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// roleAttrs are the attributes compared, in the order they are listed.
func roleAttrs(r snapshot.Role) [][2]string {
	b := strconv.FormatBool
	until := "none"
	if r.ValidUntil != nil {
		until = r.ValidUntil.String()
	}
	pw := r.Password
	if pw == "" {
		pw = "unknown"
	}
	return [][2]string{{"superuser", b(r.Superuser)}, {"createrole", b(r.CreateRole)}, {"createdb", b(r.CreateDB)},
		{"login", b(r.CanLogin)}, {"replication", b(r.Replication)}, {"bypassrls", b(r.BypassRLS)},
		{"inherit", b(r.Inherit)}, {"connection_limit", strconv.Itoa(r.ConnLimit)}, {"valid_until", until},
		{"password", pw}, {"config", strings.Join(r.Config, ", ")}}
}

// roleOf lists the attributes a role has, the ones that are off left out.
func roleOf(r snapshot.Role) Role {
	out := Role{Name: r.Name}
	for _, kv := range roleAttrs(r) {
		switch {
		case kv[1] == "true" && kv[0] != "inherit":
			out.Attributes = append(out.Attributes, kv[0])
		case kv[0] == "inherit" && kv[1] == "false":
			out.Attributes = append(out.Attributes, "noinherit")
		case kv[0] == "connection_limit" && kv[1] != "-1", kv[0] == "valid_until" && kv[1] != "none",
			kv[0] == "password" && kv[1] != "unknown", kv[0] == "config" && kv[1] != "":
			out.Attributes = append(out.Attributes, kv[0]+"="+kv[1])
		}
	}
	return out
}

func roles(a, b []snapshot.Role) (added, removed []Role, changes []RoleChange) {
	old := map[string]snapshot.Role{}
	for _, r := range a {
		old[r.Name] = r
	}
	cur := map[string]bool{}
	for _, r := range b {
		cur[r.Name] = true
		o, ok := old[r.Name]
		if !ok {
			added = append(added, roleOf(r))
			continue
		}
		oa, na := roleAttrs(o), roleAttrs(r)
		for i := range na {
			if oa[i][1] != na[i][1] {
				changes = append(changes, RoleChange{Role: r.Name, Attribute: na[i][0], Old: oa[i][1], New: na[i][1]})
			}
		}
	}
	for _, r := range a {
		if !cur[r.Name] {
			removed = append(removed, roleOf(r))
		}
	}
	byName := func(rs []Role) { sort.Slice(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name }) }
	byName(added)
	byName(removed)
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Role < changes[j].Role })
	return added, removed, changes
}

// grants lists a snapshot's privileges and memberships as lines.
func grants(s *snapshot.Snapshot) map[string]bool {
	out := map[string]bool{}
	for _, m := range s.Memberships {
		opt := ""
		if m.Admin {
			opt = " WITH ADMIN OPTION"
		}
		out[fmt.Sprintf("role %s TO %s%s", m.Role, m.Member, opt)] = true
	}
	for _, db := range s.Databases {
		in := " (database " + db.Name + ")"
		acls(out, "DATABASE "+db.Name, db.ACL, "")
		for _, sc := range db.Schemas {
			acls(out, "SCHEMA "+sc.Name, sc.ACL, in)
		}
		for _, r := range db.Relations {
			acls(out, "TABLE "+r.Schema+"."+r.Name, r.ACL, in)
			for _, c := range r.Columns {
				acls(out, "COLUMN "+r.Schema+"."+r.Name+"."+c.Name, c.ACL, in)
			}
		}
		for _, f := range db.Functions {
			acls(out, "FUNCTION "+f.Schema+"."+f.Name+"("+f.Args+")", f.ACL, in)
		}
		for _, l := range db.Languages {
			acls(out, "LANGUAGE "+l.Name, l.ACL, in)
		}
		for _, g := range db.PublicGrants {
			// Summaries of what PUBLIC holds in a schema (relations the
			// collection does not list one by one).
			out[fmt.Sprintf("%s ON %d objects in SCHEMA %s TO %s%s", g.Privilege, g.Count, g.Schema, g.Grantee, in)] = true
		}
	}
	return out
}

func acls(out map[string]bool, on string, items []acl.Item, in string) {
	for _, it := range items {
		for _, g := range it.Grants {
			opt := ""
			if g.GrantOption {
				opt = " WITH GRANT OPTION"
			}
			out[g.Privilege+" ON "+on+" TO "+it.Grantee+opt+in] = true
		}
	}
}

// minus returns the keys of a not in b, sorted.
func minus(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// hbaText is a line's text with its whitespace normalised, so that
// re-indenting a file is not a change.
func hbaText(s string) string { return strings.Join(strings.Fields(s), " ") }

// hbaLines returns the lines of a whose text is not in b (as many times
// as it is missing: a duplicated line added is an addition).
func hbaLines(a, b *snapshot.HBA) []HBALine {
	count := map[string]int{}
	for _, r := range b.Rules {
		count[hbaText(r.Text)]++
	}
	var out []HBALine
	for _, r := range a.Rules {
		t := hbaText(r.Text)
		if count[t] > 0 {
			count[t]--
			continue
		}
		out = append(out, HBALine{File: r.File, Line: r.Line, Text: t})
	}
	return out
}

func certs(a, b *snapshot.Certificate) []CertChange {
	if a == nil && b == nil {
		return nil
	}
	fields := func(c *snapshot.Certificate) [][2]string {
		if c == nil {
			return [][2]string{{"present", "false"}}
		}
		t := func(x time.Time) string { return x.UTC().Format(time.RFC3339) }
		return [][2]string{{"present", "true"}, {"path", c.Path}, {"subject", c.Subject}, {"issuer", c.Issuer},
			{"not_before", t(c.NotBefore)}, {"not_after", t(c.NotAfter)}, {"key", fmt.Sprintf("%s %d", c.KeyType, c.KeyBits)},
			{"signature_algorithm", c.SignatureAlg}, {"self_signed", strconv.FormatBool(c.SelfSigned)},
			{"dns_names", strings.Join(c.DNSNames, ", ")}, {"ip_addresses", strings.Join(c.IPs, ", ")}, {"error", c.Error}}
	}
	fa, fb := fields(a), fields(b)
	m := map[string]string{}
	for _, f := range fa {
		m[f[0]] = f[1]
	}
	var out []CertChange
	seen := map[string]bool{}
	for _, f := range fb {
		seen[f[0]] = true
		if m[f[0]] != f[1] {
			out = append(out, CertChange{Field: f[0], Old: m[f[0]], New: f[1]})
		}
	}
	for _, f := range fa {
		if !seen[f[0]] && f[1] != "" {
			out = append(out, CertChange{Field: f[0], Old: f[1], New: ""})
		}
	}
	return out
}
