package rules

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
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
	p.Changes = []remedy.Change{settingChange(v, want)}
	if strings.EqualFold(v.Name, "ssl") && isOn(want) {
		// Without a certificate and key, a reload keeps ssl off and the
		// next start fails: the fallback text says so (the plan adds the
		// certificate step itself).
		if tf := c.S.TLSFiles; tf == nil || !tf.CertExists || !tf.KeyExists {
			comment := "# "
			if p.FixKind == FixSQL {
				comment = "-- "
			}
			dd := c.S.Target.DataDir
			if dd == "" {
				dd = "DATADIR"
			}
			p.Fix = comment + "first issue a server certificate and key (ssl = on needs them): pgaegis tls issue server --pgdata " + textsafe.String(quote.Shell(dd)) + "\n" + p.Fix
		}
	}
	return p
}

// manualSettings are settings whose right value is a choice only the
// administrator can make (which interfaces, which directory, which CA), or
// that ALTER SYSTEM cannot set: the planner lists them as manual.
var manualSettings = map[string]string{
	"listen_addresses":         "set listen_addresses to the interfaces clients use (for example 'localhost,10.0.0.5') and restart: which networks need the server is your choice",
	"log_directory":            "create a log directory outside the data directory, owned by the cluster owner with mode 0700, set log_directory to its absolute path and reload",
	"syslog_ident":             "set syslog_ident to a name unique to this cluster and reload",
	"primary_conninfo":         "edit primary_conninfo by hand (it holds the standby's connection) and reload",
	"ssl_ca_file":              "install the CA certificate that signs client certificates, set ssl_ca_file to it and reload",
	"ssl_crl_file":             "install the CA's certificate revocation list, set ssl_crl_file (or ssl_crl_dir) to it and reload",
	"archive_command":          "set archive_command (or archive_library) to your backup tool's archive command and check in pg_stat_archiver that archiving succeeds: an archive command that fails lets WAL pile up in pg_wal",
	"archive_library":          "set archive_library to your backup tool's archive module and check in pg_stat_archiver that archiving succeeds",
	"allow_alter_system":       "set allow_alter_system = off in postgresql.conf (ALTER SYSTEM cannot set it) and reload, when a configuration management tool owns the configuration",
	"local_preload_libraries":  "remove the library from local_preload_libraries, or install it under $libdir/plugins/, and reload",
	"shared_preload_libraries": "change shared_preload_libraries by hand, with one quoted literal per library, and restart",
}

// restartSettings need a restart but are missing from the guc table, for
// files-only audits (a live server's pg_settings.context decides there).
var restartSettings = map[string]bool{"bonjour": true, "bonjour_name": true, "cluster_name": true, "max_wal_senders": true, "hot_standby": true}

// settingBreaks says what a setting's new value can break for clients.
var settingBreaks = map[string]string{
	"ssl_min_protocol_version":            "clients that support only older TLS versions can no longer connect over TLS",
	"ssl_ciphers":                         "clients that support only the removed cipher suites can no longer connect over TLS 1.2",
	"unix_socket_permissions":             "local OS users outside the server's group can no longer connect through the unix socket",
	"dynamic_library_path":                "libraries outside $libdir no longer load",
	"idle_in_transaction_session_timeout": "sessions idle inside a transaction for longer than the timeout are cut off",
	"authentication_timeout":              "clients that take longer than the timeout to authenticate fail",
	"logging_collector":                   "server messages go to files in log_directory instead of stderr",
	"lo_compat_privileges":                "roles that read or write large objects they were not granted lose that access",
}

// settingChange is what a failing setting asks the planner for.
func settingChange(v snapshot.Setting, want string) remedy.Change {
	name := strings.ToLower(v.Name)
	if what, ok := manualSettings[name]; ok {
		return remedy.Change{Manual: what}
	}
	st := &remedy.Setting{Name: name, Value: want,
		Restart: guc.Context(name, v.Context) == "restart" || v.Context == "" && restartSettings[name]}
	switch {
	case name == "ssl" && isOn(want):
		st.Requires = []string{"server-certificate"}
	case name == "archive_mode" && (isOn(want) || want == "always"):
		st.Requires = []string{"archive-command"}
	}
	return remedy.Change{Setting: st, Breaks: settingBreaks[name]}
}

// preloadProblem is a failing finding that needs libraries added to
// shared_preload_libraries. The planner unites the items of every finding
// with the list as it is, so LOG-26, AUTH-13 and AUTH-14 together give one
// value; the fallback text already writes one literal per library (one
// literal holding commas is one library name to the server, and the next
// start fails).
func (c *Check) preloadProblem(v snapshot.Setting, libs []string, expected string) Problem {
	p := c.setProblem(v, "", expected)
	items, _ := guc.SplitQuotedList(v.Value)
	for _, l := range libs {
		if !containsFold(items, l) {
			items = append(items, l)
		}
	}
	lits := make([]string, len(items))
	for i, it := range items {
		lits[i] = quote.Literal(it)
	}
	if c.S.Server != nil {
		p.Fix = fmt.Sprintf("ALTER SYSTEM SET shared_preload_libraries = %s;    -- then restart", strings.Join(lits, ", "))
	} else {
		file := c.S.Target.ConfigFile
		if v.File != "" {
			file = v.File
		}
		val, err := quote.ConfValue(strings.Join(items, ","))
		if err != nil {
			val = "<" + err.Error() + ">"
		}
		p.Fix = fmt.Sprintf("shared_preload_libraries = %s    # in %s, then restart", val, textsafe.String(file))
	}
	st := &remedy.Setting{Name: "shared_preload_libraries", ListAdd: libs, Restart: true}
	for _, l := range libs {
		st.Requires = append(st.Requires, "library:"+l)
	}
	p.Changes = []remedy.Change{{Setting: st}}
	return p
}

// libraryChange is a setting that only exists once lib is loaded
// (auth_delay.milliseconds, pgaudit.log) to a preload problem.
func libraryChange(lib, name, value string) remedy.Change {
	return remedy.Change{Setting: &remedy.Setting{Name: name, Value: value, Restart: true, Requires: []string{"library:" + lib}}}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
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

// listAdd turns the fix of a registered setting rule into "add item to
// the list": the planner then unites it with what the list holds and what
// other rules add, instead of replacing the list.
func listAdd(id, name, item string) {
	for _, r := range registry {
		if r.ID != id {
			continue
		}
		inner := r.Check
		r.Check = func(c *Check) {
			from := len(c.findings)
			inner(c)
			for i := from; i < len(c.findings); i++ {
				if c.findings[i].Status == Fail {
					c.findings[i].Changes = []remedy.Change{{Setting: &remedy.Setting{Name: name, ListAdd: []string{item}}}}
				}
			}
		}
	}
}
