package privileges

import (
	"fmt"
	"strings"
)

// Via says how a privilege is held.
type Via string

// Ways a privilege is held.
const (
	ViaSuperuser  Via = "superuser"
	ViaOwner      Via = "owner"
	ViaDirect     Via = "direct"
	ViaPublic     Via = "PUBLIC"
	ViaMembership Via = "membership"
	ViaPredefined Via = "predefined role"
	ViaColumn     Via = "column"
)

// Reason explains an answer.
type Reason struct {
	Allowed bool     `json:"allowed"`
	Via     Via      `json:"via,omitempty"`
	Grantee string   `json:"grantee,omitempty"`
	Path    []string `json:"path,omitempty"`
	Text    string   `json:"reason"`
}

// Check answers whether role holds priv (with its grant option when
// grantOpt) on an object of kind k with compiled ACL a, as the server's
// has_*_privilege functions do.
func (m *Model) Check(role int, k Kind, a ACL, priv Bits, grantOpt bool) Reason {
	r := m.Roles[role]
	if r.Super {
		return Reason{Allowed: true, Via: ViaSuperuser, Text: fmt.Sprintf("%s is a superuser", r.Name)}
	}
	if grantOpt && a.Owner >= 0 && m.HasPrivsOfRole(role, a.Owner) {
		return Reason{Allowed: true, Via: ViaOwner, Grantee: m.Roles[a.Owner].Name, Path: m.PrivPath(role, a.Owner),
			Text: fmt.Sprintf("the owner (%s) implicitly holds every grant option", m.Roles[a.Owner].Name)}
	}
	held := func(e Entry) Bits {
		if grantOpt {
			return e.Grant
		}
		return e.Privs
	}
	for _, e := range a.Entries {
		if held(e)&priv == 0 {
			continue
		}
		if e.Grantee == -1 {
			return Reason{Allowed: true, Via: ViaPublic, Grantee: "PUBLIC", Text: "granted to PUBLIC"}
		}
		if e.Grantee == role {
			via, text := ViaDirect, "granted directly"
			if e.Grantee == a.Owner {
				via, text = ViaOwner, "as the owner"
			}
			return Reason{Allowed: true, Via: via, Grantee: r.Name, Text: text}
		}
	}
	for _, e := range a.Entries {
		if e.Grantee < 0 || e.Grantee == role || held(e)&priv == 0 || !m.privsOf[role].has(e.Grantee) {
			continue
		}
		path := m.PrivPath(role, e.Grantee)
		what := "granted to " + m.Roles[e.Grantee].Name
		if e.Grantee == a.Owner {
			what = m.Roles[e.Grantee].Name + " owns it"
		}
		return Reason{Allowed: true, Via: ViaMembership, Grantee: m.Roles[e.Grantee].Name, Path: path,
			Text: fmt.Sprintf("%s, inherited through %s", what, strings.Join(path, " → "))}
	}
	if !grantOpt && m.Version >= 14 {
		if p, ok := m.predefined(role, k, priv); ok {
			return Reason{Allowed: true, Via: ViaPredefined, Grantee: p, Path: m.PrivPath(role, m.index[p]), Text: "through predefined role " + p}
		}
	}
	return Reason{Text: fmt.Sprintf("%s holds no %s on it", r.Name, priv)}
}

// predefined: pg_read_all_data and pg_write_all_data (14+), pg_maintain (17+).
func (m *Model) predefined(role int, k Kind, priv Bits) (string, bool) {
	try := func(name string) bool {
		i, ok := m.index[name]
		return ok && m.privsOf[role].has(i)
	}
	switch k {
	case Table, Sequence:
		if priv&Select != 0 && try("pg_read_all_data") {
			return "pg_read_all_data", true
		}
		if priv&(Insert|Update|Delete) != 0 && try("pg_write_all_data") {
			return "pg_write_all_data", true
		}
		if priv&Maintain != 0 && m.Version >= 17 && try("pg_maintain") {
			return "pg_maintain", true
		}
	case Schema:
		if priv&Usage != 0 && (try("pg_read_all_data") || try("pg_write_all_data")) {
			if try("pg_read_all_data") {
				return "pg_read_all_data", true
			}
			return "pg_write_all_data", true
		}
	}
	return "", false
}

// CheckColumn is has_column_privilege: the table-level privilege, or the
// column's own.
func (m *Model) CheckColumn(role int, table ACL, column ACL, hasColumnACL bool, priv Bits, grantOpt bool) Reason {
	if r := m.Check(role, Table, table, priv, grantOpt); r.Allowed {
		return r
	}
	if !hasColumnACL {
		return Reason{Text: fmt.Sprintf("%s holds no %s on the table or the column", m.Roles[role].Name, priv)}
	}
	column.Owner = table.Owner
	r := m.Check(role, ColumnKind, column, priv, grantOpt)
	if r.Allowed && r.Via != ViaSuperuser && r.Via != ViaOwner {
		r.Text = "column privilege: " + r.Text
		r.Via = ViaColumn
	}
	return r
}

// HasRole is pg_has_role: MEMBER, USAGE or SET, or MEMBER/USAGE WITH
// ADMIN (GRANT) OPTION, which is ADMIN OPTION on the role.
func (m *Model) HasRole(role, target int, mode string) (bool, error) {
	mode = strings.ToUpper(strings.TrimSpace(mode))
	for _, suffix := range []string{" WITH ADMIN OPTION", " WITH GRANT OPTION"} {
		if b, ok := strings.CutSuffix(mode, suffix); ok && (b == "MEMBER" || b == "USAGE") {
			return m.IsAdminOfRole(role, target), nil
		}
	}
	switch mode {
	case "MEMBER":
		return m.IsMemberOfRole(role, target), nil
	case "USAGE":
		return m.HasPrivsOfRole(role, target), nil
	case "SET":
		return m.CanSetRole(role, target), nil
	}
	return false, fmt.Errorf("unknown role privilege %q", mode)
}
