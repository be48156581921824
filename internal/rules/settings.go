package rules

import (
	"fmt"

	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// setting returns a setting, or reports the rule as not checked (with the
// reason) when the snapshot does not have it.
func (c *Check) setting(name string) (snapshot.Setting, bool) {
	if v, ok := c.S.Setting(name); ok {
		return v, true
	}
	c.NotChecked("setting "+name, c.missingSetting(name))
	return snapshot.Setting{}, false
}

func (c *Check) missingSetting(name string) string {
	switch {
	case c.S.Server == nil && c.S.Config == nil:
		return "no server connection and no configuration file to read " + name + " from"
	case c.S.Server != nil && !c.S.Server.Superuser && !c.S.Server.ReadAllSettings:
		return name + " is not visible to the audit role (superuser-only setting, or not loaded): grant pg_read_all_settings to the audit role"
	default:
		return name + " is not set and has no known default (is the extension loaded?)"
	}
}

// settingEvidence renders "name = value (where)".
func settingEvidence(v snapshot.Setting) string {
	where := ""
	switch {
	case v.Origin == snapshot.FromDefault || v.Source == "default":
		where = " (built-in default)"
	case v.Location() != "":
		where = " (" + v.Location() + ")"
	case v.Source != "":
		where = " (source: " + v.Source + ")"
	}
	val := v.Value
	if v.Unit != "" {
		val += " " + v.Unit
	}
	return fmt.Sprintf("%s = %s%s", v.Name, guc.QuoteLiteral(val), where)
}

// setProblem builds a failing finding for a setting with a runnable fix:
// ALTER SYSTEM when auditing a server, a configuration line for files.
func (c *Check) setProblem(v snapshot.Setting, want, expected string) Problem {
	p := Problem{
		Object:   "setting " + v.Name,
		Location: v.Location(),
		Evidence: settingEvidence(v),
		Expected: expected,
		FixApply: guc.Context(v.Name, v.Context),
	}
	if c.S.Server != nil {
		p.FixKind = FixSQL
		p.Fix = fmt.Sprintf("ALTER SYSTEM SET %s = %s;", paramSQL(v.Name), quote.Literal(want))
		if p.FixApply == "reload" {
			p.Fix += " SELECT pg_reload_conf();"
		}
	} else {
		p.FixKind = FixConfig
		file := c.S.Target.ConfigFile
		if v.File != "" {
			file = v.File
		}
		val, err := quote.ConfValue(want)
		if err != nil {
			val = "<" + err.Error() + ">"
		}
		p.Fix = fmt.Sprintf("%s = %s    # in %s", v.Name, val, textsafe.String(file))
	}
	return p
}

// boolSetting registers a rule that wants a boolean setting at a value.
func boolSetting(id, title, area string, sev Severity, name string, want bool, rationale string, r []Reference) {
	register(&Rule{ID: id, Title: title, Area: area, Severity: sev, Rationale: rationale, References: r,
		Check: func(c *Check) {
			v, ok := c.setting(name)
			if !ok {
				return
			}
			got, valid := guc.ParseBool(v.Value)
			wantS := map[bool]string{true: "on", false: "off"}[want]
			if valid && got == want {
				c.Pass("setting "+name, settingEvidence(v))
				return
			}
			c.Fail(c.setProblem(v, wantS, name+" = "+wantS))
		}})
}
