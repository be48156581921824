package plan

import (
	"strings"

	"github.com/pgaegis/pgaegis/internal/quote"
)

// listSettings take a list of separately quoted elements in ALTER SYSTEM
// (GUC_LIST_QUOTE in PostgreSQL's guc_tables.c): one quoted string is one
// element, so 'pgaudit,auth_delay' would name a single library.
var listSettings = map[string]bool{
	"shared_preload_libraries":   true,
	"local_preload_libraries":    true,
	"session_preload_libraries":  true,
	"search_path":                true,
	"temp_tablespaces":           true,
	"default_text_search_config": false,
}

// IsListSetting reports whether ALTER SYSTEM takes the setting as a list
// of literals.
func IsListSetting(name string) bool { return listSettings[strings.ToLower(name)] }

// ListElements splits a list setting's value as SHOW prints it
// ("pgaudit, auth_delay"; an element may be double-quoted).
func ListElements(v string) []string {
	var out []string
	var cur strings.Builder
	inQ, any := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' && inQ && i+1 < len(v) && v[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"':
			inQ, any = !inQ, true
		case c == ',' && !inQ:
			if s := strings.TrimSpace(cur.String()); s != "" || any {
				out = append(out, s)
			}
			cur.Reset()
			any = false
		case (c == ' ' || c == '\t') && !inQ && cur.Len() == 0:
		default:
			cur.WriteByte(c)
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" || any {
		out = append(out, s)
	}
	return out
}

// AlterSystem is the statement that gives a setting its new value: RESET
// for an empty To of a list setting, separate literals for list settings.
func AlterSystem(c SettingChange) string {
	name := quote.Qualified(strings.Split(strings.ToLower(c.Name), ".")...)
	if IsListSetting(c.Name) {
		els := ListElements(c.To)
		if len(els) == 0 {
			return "ALTER SYSTEM SET " + name + " = '';"
		}
		q := make([]string, len(els))
		for i, e := range els {
			q[i] = quote.Literal(e)
		}
		return "ALTER SYSTEM SET " + name + " = " + strings.Join(q, ", ") + ";"
	}
	return "ALTER SYSTEM SET " + name + " = " + quote.Literal(c.To) + ";"
}
