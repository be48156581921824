package rules

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// settingRule registers a rule over one setting: ok decides, want is the
// value the fix sets, expected explains it.
func settingRule(r *Rule, name string, ok func(v string, c *Check) bool, want, expected string) {
	r.Check = func(c *Check) {
		v, found := c.setting(name)
		if !found {
			return
		}
		if ok(v.Value, c) {
			c.Pass("setting "+name, settingEvidence(v))
			return
		}
		c.Fail(c.setProblem(v, want, expected))
	}
	register(r)
}

func nonZero(v string, _ *Check) bool {
	n, ok := guc.ParseInt(v)
	return !ok || n != 0
}

func hasListItem(list, item string) bool {
	for _, x := range guc.SplitList(strings.ToLower(list)) {
		if x == item {
			return true
		}
	}
	return false
}

// syslogInUse reports whether log_destination includes syslog (syslog_*
// settings matter only then).
func (c *Check) syslogInUse() (bool, bool) {
	v, ok := c.S.Setting("log_destination")
	if !ok {
		return false, false
	}
	return hasListItem(v.Value, "syslog"), true
}

// syslogSetting is a setting rule that is not applicable without syslog.
func syslogSetting(r *Rule, name string, ok func(string, *Check) bool, want, expected string) {
	settingRule(r, name, ok, want, expected)
	inner := r.Check
	r.Check = func(c *Check) {
		if used, known := c.syslogInUse(); known && !used {
			c.NotChecked("setting "+name, "not applicable: log_destination does not include syslog")
			return
		}
		inner(c)
	}
}

func init() {
	settingRule(&Rule{ID: "LOG-01", Title: "Server messages go to a log destination that is kept (stderr with the collector, csvlog, jsonlog or syslog)", Area: AreaLogging, Severity: Medium,
		Rationale: "Without a kept destination the audit trail is lost on restart.", References: refs(cis("3.1.2"), stig("V-233589"))},
		"log_destination", func(v string, _ *Check) bool {
			for _, d := range []string{"stderr", "csvlog", "jsonlog", "syslog", "eventlog"} {
				if hasListItem(v, d) {
					return true
				}
			}
			return false
		}, "stderr", "log_destination includes stderr (with logging_collector), csvlog, jsonlog or syslog")
	listAdd("LOG-01", "log_destination", "stderr")

	register(&Rule{ID: "LOG-03", Title: "Logs are written outside the data directory", Area: AreaLogging, Severity: Low,
		Rationale:  "Logs inside PGDATA end up in base backups and share the data volume; a separate, absolute log directory can be protected and shipped on its own.",
		References: refs(cis("3.1.4"), devsec("postgres-16"), []Reference{{"pgdsat", "3.1.27"}}),
		Check: func(c *Check) {
			v, ok := c.setting("log_directory")
			if !ok {
				return
			}
			if lc, ok := c.S.Setting("logging_collector"); ok && !isOn(lc.Value) {
				c.NotChecked("setting log_directory", "not applicable: logging_collector is off")
				return
			}
			dd := c.S.Target.DataDir
			if dd == "" {
				if s, ok := c.S.Setting("data_directory"); ok {
					dd = s.Value
				}
			}
			inside := !filepath.IsAbs(v.Value) || (dd != "" && strings.HasPrefix(filepath.Clean(v.Value)+"/", filepath.Clean(dd)+"/"))
			if !inside {
				c.Pass("setting log_directory", settingEvidence(v))
				return
			}
			c.Fail(c.setProblem(v, "/var/log/postgresql", "an absolute directory outside the data directory, owned by the cluster owner, 0700"))
		}})

	settingRule(&Rule{ID: "LOG-04", Title: "Log file names carry the time of rotation", Area: AreaLogging, Severity: Low,
		Rationale: "A fixed log_filename makes rotation overwrite or append blindly; time-stamped names keep the trail ordered.", References: cis("3.1.5")},
		"log_filename", func(v string, _ *Check) bool { return strings.Contains(v, "%") }, "postgresql-%Y-%m-%d_%H%M%S.log", "a strftime pattern such as postgresql-%Y-%m-%d_%H%M%S.log")

	settingRule(&Rule{ID: "LOG-06", Title: "Log rotation truncates reused file names", Area: AreaLogging, Severity: Low,
		Rationale: "With a cyclic log_filename (postgresql-%a.log) and no truncation, old entries mix with new ones.", References: cis("3.1.7")},
		"log_truncate_on_rotation", func(v string, _ *Check) bool { return isOn(v) }, "on", "log_truncate_on_rotation = on (with a retention set by log_filename)")

	settingRule(&Rule{ID: "LOG-07", Title: "Logs rotate by age", Area: AreaLogging, Severity: Low,
		Rationale: "Rotation by age bounds each file to a period the retention policy can reason about.", References: cis("3.1.8")},
		"log_rotation_age", nonZero, "1d", "a non-zero log_rotation_age (e.g. 1d)")

	settingRule(&Rule{ID: "LOG-08", Title: "Logs rotate by size", Area: AreaLogging, Severity: Low,
		Rationale: "Rotation by size keeps one noisy day from filling a single huge file.", References: cis("3.1.9")},
		"log_rotation_size", nonZero, "1GB", "a non-zero log_rotation_size (e.g. 1GB)")

	syslogSetting(&Rule{ID: "LOG-09", Title: "syslog_facility is one reserved for PostgreSQL", Area: AreaLogging, Severity: Low,
		Rationale: "A dedicated LOCALn facility lets syslog route database logs to their own protected file and collector.", References: refs(cis("3.1.10"), stig("V-233610", "V-233545"))},
		"syslog_facility", func(v string, _ *Check) bool { return strings.HasPrefix(strings.ToLower(v), "local") }, "local0", "a LOCAL0-7 facility reserved for PostgreSQL")
	syslogSetting(&Rule{ID: "LOG-10", Title: "syslog messages carry sequence numbers", Area: AreaLogging, Severity: Low,
		Rationale: "Sequence numbers make dropped or suppressed syslog messages visible.", References: cis("3.1.11")},
		"syslog_sequence_numbers", func(v string, _ *Check) bool { return isOn(v) }, "on", "on")
	syslogSetting(&Rule{ID: "LOG-11", Title: "Long messages are split for syslog", Area: AreaLogging, Severity: Low,
		Rationale: "syslog truncates long lines; splitting keeps whole statements in the log.", References: cis("3.1.12")},
		"syslog_split_messages", func(v string, _ *Check) bool { return isOn(v) }, "on", "on")
	syslogSetting(&Rule{ID: "LOG-12", Title: "syslog_ident identifies this cluster", Area: AreaLogging, Severity: Low,
		Rationale: "With several clusters (or a fleet) sending to one collector, the default 'postgres' ident cannot tell them apart.", References: cis("3.1.13")},
		"syslog_ident", func(v string, _ *Check) bool { return v != "postgres" && v != "" }, "postgres-<cluster>", "a name unique to this cluster")

	settingRule(&Rule{ID: "LOG-18", Title: "debug_pretty_print is on", Area: AreaLogging, Severity: Info,
		Rationale: "When debug output is enabled, indented output is readable (CIS asks for it).", References: cis("3.1.19")},
		"debug_pretty_print", func(v string, _ *Check) bool { return isOn(v) }, "on", "on")

	register(&Rule{ID: "LOG-21", Title: "Error messages are logged verbosely (CIS)", Area: AreaLogging, Severity: Low,
		Rationale:  "log_error_verbosity = verbose adds the SQLSTATE and source location to each error; CIS asks for it, other baselines do not.",
		References: cis("3.1.22"),
		Check: func(c *Check) {
			if c.Profile != "cis-16" && c.Profile != "cis-17" {
				c.NotChecked("setting log_error_verbosity", "a CIS-only preference (more log volume): evaluated with --profile cis-16 or cis-17")
				return
			}
			v, ok := c.setting("log_error_verbosity")
			if !ok {
				return
			}
			if strings.EqualFold(v.Value, "verbose") {
				c.Pass("setting log_error_verbosity", settingEvidence(v))
				return
			}
			c.Fail(c.setProblem(v, "verbose", "verbose"))
		}})

	settingRule(&Rule{ID: "LOG-22", Title: "Host names are not resolved for each connection (log_hostname off)", Area: AreaLogging, Severity: Low,
		Rationale: "A reverse DNS lookup per connection slows logins and can be spoofed; log the address (%r/%h) instead.", References: refs(cis("3.1.23"), stig("V-233591"))},
		"log_hostname", func(v string, _ *Check) bool { return !isOn(v) }, "off", "off, with %r or %h in log_line_prefix")

	settingRule(&Rule{ID: "LOG-25", Title: "Logs use UTC (or the organisation's reference time zone)", Area: AreaLogging, Severity: Low,
		Rationale: "Correlating database logs with other systems needs one time zone; UTC avoids daylight-saving gaps.", References: refs(cis("3.1.26"), stig("V-233532"))},
		"log_timezone", func(v string, _ *Check) bool {
			switch strings.ToUpper(v) {
			case "UTC", "GMT", "ETC/UTC", "ETC/GMT", "UCT", "ZULU", "ETC/ZULU":
				return true
			}
			return false
		}, "UTC", "UTC")

	settingRule(&Rule{ID: "LOG-31", Title: "Clients are not sent debug or log-level messages", Area: AreaLogging, Severity: Low,
		Rationale: "client_min_messages at log or debug sends server internals (queries, plans) to whoever is connected.", References: stig("V-233516", "V-233533")},
		"client_min_messages", func(v string, c *Check) bool {
			i := levelIndex(v)
			if c.Profile == "stig" {
				return i >= levelIndex("error") || strings.EqualFold(v, "error")
			}
			return i >= levelIndex("notice") || strings.EqualFold(v, "warning") || strings.EqualFold(v, "error")
		}, "notice", "notice or higher (STIG: error)")

	settingRule(&Rule{ID: "LOG-32", Title: "Statement durations are logged (dev-sec)", Area: AreaLogging, Severity: Info,
		Rationale: "dev-sec's baseline expects log_duration; it helps spot data exfiltration by long-running reads.", References: devsec("postgres-16")},
		"log_duration", func(v string, _ *Check) bool { return isOn(v) }, "on", "on")

	register(&Rule{ID: "LOG-33", Title: "Statement logging does not write passwords to the log", Area: AreaLogging, Severity: Medium,
		Rationale:  "log_statement = all or mod (and log_min_duration_statement = 0) write CREATE/ALTER ROLE ... PASSWORD and connection strings in clear text into every log file and its copies.",
		References: []Reference{{"PostgreSQL docs", "CREATE ROLE: password in server log"}, {"pgaudit", "#166"}},
		Check: func(c *Check) {
			v, ok := c.setting("log_statement")
			if !ok {
				return
			}
			risky := strings.EqualFold(v.Value, "all") || strings.EqualFold(v.Value, "mod")
			if d, ok := c.S.Setting("log_min_duration_statement"); ok && d.Value == "0" {
				p := c.setProblem(d, "-1", "log_min_duration_statement > 0 or -1; use pgaudit for statement auditing")
				p.Evidence += ": every statement, passwords included, is logged"
				c.Fail(p)
			}
			if risky {
				p := c.setProblem(v, "ddl", "log_statement = ddl, and pgaudit with pgaudit.log_parameter = off; set passwords with \\password (sends a verifier, not the password)")
				p.Evidence += ": statements with literal passwords are logged"
				c.Fail(p)
				return
			}
			c.Pass("setting log_statement", settingEvidence(v))
		}})

	register(&Rule{ID: "LOG-29", Title: "Logs leave the host (syslog, or a shipper reading csv/json logs)", Area: AreaLogging, Severity: Low,
		Rationale:  "An attacker with the server account can edit local logs; a copy elsewhere keeps the trail.",
		References: stig("V-233610", "V-233545"),
		Check: func(c *Check) {
			v, ok := c.setting("log_destination")
			if !ok {
				return
			}
			if hasListItem(v.Value, "syslog") || hasListItem(v.Value, "csvlog") || hasListItem(v.Value, "jsonlog") {
				c.Pass("setting log_destination", settingEvidence(v)+" (structured or syslog: ready for shipping; confirm the shipper)")
				return
			}
			p := c.setProblem(v, "stderr,jsonlog", "syslog, or csvlog/jsonlog read by a log shipper")
			// jsonlog arrived in 15; either is read by the collector
			// (LOG-02) and shipped from there.
			add := "jsonlog"
			if m := c.S.MajorVersion(); m > 0 && m < 15 {
				add = "csvlog"
			}
			p.Changes = []remedy.Change{{Setting: &remedy.Setting{Name: "log_destination", ListAdd: []string{add}}}}
			c.Fail(p)
		}})

	settingRule(&Rule{ID: "REPL-02", Title: "Replication commands are logged", Area: AreaLogging, Severity: Low,
		Rationale: "log_replication_commands records who started streaming or base backups: a full copy of the cluster.", References: cis("7.2")},
		"log_replication_commands", func(v string, _ *Check) bool { return isOn(v) }, "on", "on")

	register(&Rule{ID: "AUTH-13", Title: "Password complexity is enforced (passwordcheck or credcheck loaded)", Area: AreaAuth, Severity: Medium,
		Rationale: "Without a check at CREATE/ALTER ROLE time, any password is accepted (only effective when the client sends the password, not a verifier).", References: cis("5.6"),
		Check: func(c *Check) {
			v, ok := c.setting("shared_preload_libraries")
			if !ok {
				return
			}
			if hasListItem(v.Value, "passwordcheck") || hasListItem(v.Value, "credcheck") {
				c.Pass("setting shared_preload_libraries", settingEvidence(v))
				return
			}
			// credcheck where it is installed; otherwise passwordcheck,
			// which ships with the server (contrib).
			lib := "passwordcheck"
			if has, _ := c.S.Libraries.Has("credcheck"); has {
				lib = "credcheck"
			}
			c.Fail(c.preloadProblem(v, []string{lib}, "shared_preload_libraries includes "+lib+" (or credcheck/passwordcheck; requires a restart)"))
		}})

	register(&Rule{ID: "AUTH-14", Title: "Authentication is throttled (short authentication_timeout, auth_delay)", Area: AreaAuth, Severity: Low,
		Rationale:  "A long authentication window and no delay after failures make online password guessing cheap.",
		References: []Reference{{"pgdsat", "5.7"}},
		Check: func(c *Check) {
			v, ok := c.setting("authentication_timeout")
			if !ok {
				return
			}
			secs := durationSeconds(v)
			if secs > 60 {
				c.Fail(c.setProblem(v, "30s", "authentication_timeout of 60s or less"))
			}
			spl, ok := c.S.Setting("shared_preload_libraries")
			if ok && !hasListItem(spl.Value, "auth_delay") && !hasListItem(spl.Value, "credcheck") {
				p := c.preloadProblem(spl, []string{"auth_delay"}, "auth_delay (with auth_delay.milliseconds) or credcheck's ban loaded")
				p.Evidence += "; no delay after failed logins"
				p.Changes = append(p.Changes, libraryChange("auth_delay", "auth_delay.milliseconds", authDelay))
				c.Fail(p)
				return
			}
			if ok && hasListItem(spl.Value, "auth_delay") {
				// Loaded with the default of 0 ms, auth_delay delays nothing.
				d, found := c.S.Setting("auth_delay.milliseconds")
				if !found {
					d = snapshot.Setting{Name: "auth_delay.milliseconds", Value: "0", Origin: snapshot.FromDefault}
				}
				if n, valid := guc.ParseInt(strings.TrimSuffix(d.Value, "ms")); !valid || n <= 0 {
					p := c.setProblem(d, authDelay, "auth_delay.milliseconds of at least 100 (e.g. "+authDelay+")")
					p.Evidence += "; auth_delay is loaded but delays nothing"
					c.Fail(p)
					return
				}
			}
			if secs <= 60 {
				c.Pass("setting authentication_timeout", settingEvidence(v))
			}
		}})

	register(&Rule{ID: "NET-02", Title: "No service announcement (bonjour off)", Area: AreaNetwork, Severity: Low,
		Rationale:  "Bonjour advertises the server on the local network.",
		References: stig("V-233511", "V-233548"),
		Check: func(c *Check) {
			v, ok := c.S.Setting("bonjour")
			if !ok {
				c.NotChecked("setting bonjour", "bonjour is not known (server built without it)")
				return
			}
			if isOn(v.Value) {
				c.Fail(c.setProblem(v, "off", "off"))
				return
			}
			c.Pass("setting bonjour", settingEvidence(v))
		}})

	register(&Rule{ID: "NET-06", Title: "Idle and abandoned sessions are cut off", Area: AreaNetwork, Severity: Low,
		Rationale:  "Sessions idle in a transaction hold locks and snapshots; forgotten sessions keep privileges open.",
		References: stig("V-233606", "V-233613"),
		Check: func(c *Check) {
			v, ok := c.setting("idle_in_transaction_session_timeout")
			if !ok {
				return
			}
			if v.Source == "client" {
				// The audit's own session sets this timeout at connect:
				// what pg_settings shows is ours. The files tell the
				// server's; without them it is the built-in default.
				v = snapshot.Setting{Name: v.Name, Value: "0", Unit: "ms", Context: v.Context, Origin: snapshot.FromDefault}
				if c.S.Config != nil {
					if e, ok := c.S.Config.Get(v.Name); ok {
						v = snapshot.Setting{Name: v.Name, Value: e.Value, File: e.File, Line: e.Line, Context: v.Context, Origin: snapshot.FromFile}
						v.Unit = "ms"
					}
				} else if c.S.Server != nil {
					c.NotChecked("setting idle_in_transaction_session_timeout", "the audit session sets this timeout itself, and the configuration files were not read: the server's value is not visible")
					return
				}
			}
			if durationSeconds(v) == 0 {
				c.Fail(c.setProblem(v, "10min", "idle_in_transaction_session_timeout set (e.g. 10min); consider idle_session_timeout for interactive roles"))
				return
			}
			c.Pass("setting idle_in_transaction_session_timeout", settingEvidence(v))
		}})

	register(&Rule{ID: "EXT-04", Title: "Libraries load only from the server's own directory", Area: AreaHardening, Severity: High,
		Rationale:  "dynamic_library_path and local_preload_libraries decide which shared objects run inside the server; anything outside $libdir can be swapped by whoever writes there.",
		References: cis("8.3"),
		Check: func(c *Check) {
			v, ok := c.setting("dynamic_library_path")
			if !ok {
				return
			}
			if v.Value != "$libdir" {
				c.Fail(c.setProblem(v, "$libdir", "$libdir"))
			} else {
				c.Pass("setting dynamic_library_path", settingEvidence(v))
			}
			if l, ok := c.S.Setting("local_preload_libraries"); ok {
				for _, lib := range guc.SplitList(l.Value) {
					if !strings.HasPrefix(lib, "$libdir/plugins/") {
						p := c.setProblem(l, "", "only $libdir/plugins/... libraries")
						p.Evidence += "; " + lib + " is loaded by any role that connects"
						c.Fail(p)
						break
					}
				}
			}
		}})

	register(&Rule{ID: "EXT-06", Title: "Backend debugging parameters are at safe values", Area: AreaHardening, Severity: Low,
		Rationale:  "ignore_system_indexes, jit debugging/profiling and post_auth_delay are developer switches that hurt integrity or availability in production.",
		References: cis("6.2"),
		Check: func(c *Check) {
			bad := map[string]string{"ignore_system_indexes": "off", "jit_debugging_support": "off", "jit_profiling_support": "off", "post_auth_delay": "0"}
			any := false
			for _, name := range []string{"ignore_system_indexes", "jit_debugging_support", "jit_profiling_support", "post_auth_delay"} {
				v, ok := c.S.Setting(name)
				if !ok {
					continue
				}
				want := bad[name]
				okVal := (want == "off" && !isOn(v.Value)) || (want == "0" && !nonZero(v.Value, c))
				if !okVal {
					c.Fail(c.setProblem(v, want, name+" = "+want))
					any = true
				}
			}
			if !any {
				c.Pass("backend settings", "ignore_system_indexes, jit_*_support, post_auth_delay at defaults")
			}
		}})

	register(&Rule{ID: "EXT-08", Title: "Integrity switches are safe (fsync, full_page_writes on; system-table and checksum overrides off)", Area: AreaHardening, Severity: Medium,
		Rationale:  "fsync off or full_page_writes off corrupt data on a crash; allow_system_table_mods, ignore_checksum_failure and zero_damaged_pages hide or cause damage; lo_compat_privileges turns off large-object permissions.",
		References: cis("6.3", "6.5"),
		Check: func(c *Check) {
			want := []struct{ name, val string }{{"fsync", "on"}, {"full_page_writes", "on"}, {"allow_system_table_mods", "off"},
				{"ignore_checksum_failure", "off"}, {"zero_damaged_pages", "off"}, {"lo_compat_privileges", "off"}}
			any := false
			for _, w := range want {
				v, ok := c.S.Setting(w.name)
				if !ok {
					continue
				}
				if isOn(v.Value) != (w.val == "on") {
					p := c.setProblem(v, w.val, w.name+" = "+w.val)
					if w.name == "lo_compat_privileges" {
						p.Severity, p.SevSet = High, true
						p.Evidence += ": every role can read and write every large object"
					}
					c.Fail(p)
					any = true
				}
			}
			if !any {
				c.Pass("integrity settings", "fsync, full_page_writes on; overrides off")
			}
		}})

	register(&Rule{ID: "EXT-09", Title: "ALTER SYSTEM is disabled where configuration is managed elsewhere", Area: AreaHardening, Severity: Low,
		Rationale: "When configuration comes from a management tool, ALTER SYSTEM lets a superuser change settings behind its back, and the tool's next run may silently undo or keep them (allow_alter_system, PostgreSQL 17+). " +
			"allow_alter_system = off is not a security boundary and pgaegis never counts it as protection: a superuser still writes any file the server's OS user can (COPY ... TO, pg_file_write, lo_export), changes settings per role and database (ALTER ROLE/DATABASE ... SET) and reloads the server; it only keeps honest administrators from drifting away from the managed files. " +
			"PostgreSQL 13 to 16 have no such parameter: ALTER SYSTEM cannot be turned off there.",
		References: []Reference{{"PostgreSQL 17", "allow_alter_system"}},
		Check: func(c *Check) {
			if m := c.S.MajorVersion(); m > 0 && m < 17 {
				c.NotChecked("setting allow_alter_system", fmt.Sprintf("PostgreSQL %d has no allow_alter_system parameter (it arrived in 17): ALTER SYSTEM cannot be turned off on this server", m))
				return
			}
			v, ok := c.setting("allow_alter_system")
			if !ok {
				return
			}
			const noBoundary = "; this is no security boundary: a superuser can still write files and change settings by other means"
			if !isOn(v.Value) {
				c.Pass("setting allow_alter_system", settingEvidence(v)+noBoundary)
				return
			}
			p := c.setProblem(v, "off", "off when a configuration management tool owns postgresql.conf (waive otherwise); it guards against drift, not against a superuser")
			p.FixKind, p.Fix = FixConfig, "allow_alter_system = off    # in postgresql.conf (ALTER SYSTEM cannot set it)"
			c.Fail(p)
		}})

	register(&Rule{ID: "EXT-05.preload", Title: "shared_preload_libraries names installed libraries, one per item", Area: AreaHardening, Severity: High,
		Rationale:  "The server loads every library of shared_preload_libraries at start and does not start when one cannot be loaded: a quoted item holding commas (\"pgaudit,auth_delay\", what ALTER SYSTEM SET shared_preload_libraries = 'pgaudit,auth_delay' stores) is one library of that name, and a library whose package is not installed is missing.",
		References: []Reference{{"PostgreSQL docs", "shared_preload_libraries"}, {"pgaegis", "issue 12: a files-only audit must see the value the next start fails on"}},
		Check: func(c *Check) {
			v, ok := c.setting("shared_preload_libraries")
			if !ok {
				return
			}
			// The value the next start reads: the files when they were
			// read (a pending ALTER SYSTEM), else the one in force.
			cands := []snapshot.Setting{v}
			if c.S.Config != nil {
				if e, ok := c.S.Config.Get("shared_preload_libraries"); ok && e.Value != v.Value {
					cands = append(cands, snapshot.Setting{Name: v.Name, Value: e.Value, File: e.File, Line: e.Line, Context: v.Context, Origin: snapshot.FromFile})
				}
			}
			failed := false
			for _, cv := range cands {
				if p, bad := c.preloadDefects(cv); bad {
					c.Fail(p)
					failed = true
				}
			}
			if !failed {
				why := " (every item is one library name)"
				if c.S.Libraries != nil {
					why = " (every item is installed in " + c.S.Libraries.Dir + ")"
				}
				c.Pass("setting shared_preload_libraries", settingEvidence(v)+why)
			}
		}})

	register(&Rule{ID: "NET-05", Title: "Application login roles have connection limits", Area: AreaNetwork, Severity: Low,
		Rationale:  "One runaway or compromised application role can take every connection slot (denial of service) without a per-role limit.",
		References: refs(cis("5.5"), stig("V-233522")),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			var ps problems
			for _, r := range roles {
				// Superusers and predefined roles need no limit (reserved slots
				// cover superusers); NOLOGIN roles cannot connect at all.
				if !r.CanLogin || r.Superuser || r.Predefined() || r.Replication || r.ConnLimit >= 0 {
					continue
				}
				st := connLimitStmt(r)
				ps.add("", Problem{Object: "role " + r.Name, Evidence: fmt.Sprintf("login role %q has no connection limit", r.Name),
					Expected: "CONNECTION LIMIT sized to the application's pool", Fix: st.do + ";", FixKind: FixSQL,
					Changes: []remedy.Change{{SQL: &remedy.SQL{Statements: []string{st.do}, Undo: []string{st.undo}},
						Breaks: fmt.Sprintf("role %s: sessions beyond %d at once are refused (size the limit to its pool)", quote.Ident(r.Name), connLimit)}}})
			}
			c.failRepeated(&ps, func(_ string, members []Problem) (string, string, string) {
				return "login roles", fmt.Sprintf("%s login roles have no connection limit: %s", textsafe.Thousands(len(members)), someNames(stripRole(memberNames(members)))), ""
			})
		}})
}

// connLimit is the per-role connection limit NET-05's fix sets.
const connLimit = 50

// connLimitStmt gives role r the limit NET-05 asks for, undone to the
// limit it has.
func connLimitStmt(r snapshot.Role) sqlStmt {
	q := quote.Ident(r.Name)
	return sqlStmt{do: fmt.Sprintf("ALTER ROLE %s CONNECTION LIMIT %d", q, connLimit), undo: fmt.Sprintf("ALTER ROLE %s CONNECTION LIMIT %d", q, r.ConnLimit)}
}

// authDelay is the delay after a failed login the fix sets (ms): enough
// to slow guessing, short enough for a mistyped password.
const authDelay = "500"

// durationSeconds reads a time setting in its unit (pg_settings gives a
// number and a unit; files may carry a suffix).
func durationSeconds(v snapshot.Setting) int64 {
	val := strings.TrimSpace(v.Value)
	mult := map[string]int64{"ms": 0, "s": 1, "min": 60, "h": 3600, "d": 86400}
	unit := v.Unit
	for _, u := range []string{"ms", "min", "s", "h", "d"} {
		if strings.HasSuffix(val, u) {
			unit, val = u, strings.TrimSpace(strings.TrimSuffix(val, u))
			break
		}
	}
	n, ok := guc.ParseInt(val)
	if !ok {
		return -1
	}
	if unit == "ms" {
		return n / 1000
	}
	if m, ok := mult[unit]; ok {
		return n * m
	}
	return n
}

// preloadDefects checks one shared_preload_libraries value the way the
// server reads it at start, and builds the repaired value: items holding
// commas split, items not installed dropped.
func (c *Check) preloadDefects(v snapshot.Setting) (Problem, bool) {
	items, ok := guc.SplitQuotedList(v.Value)
	var why, fixed, dropped []string
	if !ok {
		why = append(why, "the value is not a valid list (unbalanced quotes or an empty item)")
		items = guc.SplitList(v.Value)
	}
	for _, it := range items {
		parts := []string{it}
		if strings.Contains(it, ",") {
			why = append(why, fmt.Sprintf("%s is one library name holding commas (one quoted literal per library was meant)", guc.QuoteLiteral(it)))
			parts = guc.SplitList(it)
		}
		for _, lib := range parts {
			if has, known := c.S.Libraries.Has(lib); known && !has {
				why = append(why, fmt.Sprintf("%s is not installed in %s", guc.QuoteLiteral(lib), c.S.Libraries.Dir))
				dropped = append(dropped, lib)
				continue
			}
			if !containsFold(fixed, lib) {
				fixed = append(fixed, lib)
			}
		}
	}
	if len(why) == 0 {
		return Problem{}, false
	}
	p := c.setProblem(v, guc.JoinQuotedList(fixed), "one literal per installed library: the server does not start with this value")
	p.Evidence += "; " + strings.Join(why, "; ") + ": the next start fails"
	// The whole repaired list: the planner takes it as the list's base and
	// adds what other rules need.
	ch := remedy.Change{Setting: &remedy.Setting{Name: "shared_preload_libraries", Value: guc.JoinQuotedList(fixed), Restart: true}}
	if len(dropped) > 0 {
		ch.Breaks = "no longer loaded (not installed; install the package to keep it): " + strings.Join(dropped, ", ")
	}
	p.Changes = []remedy.Change{ch}
	if len(fixed) == 0 {
		// ALTER SYSTEM SET shared_preload_libraries = '' stores '""' on
		// PostgreSQL 15 (one library with an empty name): the server
		// then does not start either.
		where := "the configuration"
		if v.Location() != "" {
			where = v.Location()
		}
		p.Changes = manualChange("remove the shared_preload_libraries line from " + textsafe.String(where) + " (ALTER SYSTEM RESET shared_preload_libraries when it is in postgresql.auto.conf), then restart: none of its libraries can be loaded")
	}
	if c.S.Server != nil {
		lits := make([]string, len(fixed))
		for i, l := range fixed {
			lits[i] = quote.Literal(l)
		}
		if len(lits) == 0 {
			p.Fix = "ALTER SYSTEM RESET shared_preload_libraries;    -- then restart"
		} else {
			p.Fix = "ALTER SYSTEM SET shared_preload_libraries = " + strings.Join(lits, ", ") + ";    -- then restart"
		}
	}
	return p, true
}
