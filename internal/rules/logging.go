package rules

import (
	"fmt"
	"os"
	"strings"

	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// logLevels orders message levels from most to least verbose.
var logLevels = []string{"debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error", "log", "fatal", "panic"}

func levelIndex(v string) int {
	for i, l := range logLevels {
		if strings.EqualFold(l, v) {
			return i
		}
	}
	return -1
}

// levelAtMost registers a rule wanting a message-level setting at least as
// verbose as want.
func levelAtMost(id, title string, name, want string, rationale string, r []Reference) {
	register(&Rule{ID: id, Title: title, Area: AreaLogging, Severity: Medium, Rationale: rationale, References: r,
		Check: func(c *Check) {
			v, ok := c.setting(name)
			if !ok {
				return
			}
			if i := levelIndex(v.Value); i >= 0 && i <= levelIndex(want) {
				c.Pass("setting "+name, settingEvidence(v))
				return
			}
			c.Fail(c.setProblem(v, want, fmt.Sprintf("%s = %s or more verbose", name, want)))
		}})
}

func init() {
	register(&Rule{
		ID: "LOG-19", Title: "Connection attempts are logged (log_connections = on)", Area: AreaLogging, Severity: Medium,
		Rationale: "Without connection logging, brute-force attempts and logins from unexpected addresses leave no trace. " +
			"From PostgreSQL 18 log_connections is a list of aspects (receipt, authentication, authorization, setup_durations, or all); " +
			"'on' still means receipt, authentication and authorization, and the control needs those three: a list that lacks one (receipt alone) fails.",
		References: refs(cis("3.1.20"), stig("V-233553", "V-233554", "V-233558", "V-233569", "V-233604", "V-233622"), devsec("postgres-16")),
		Check: func(c *Check) {
			v, ok := c.setting("log_connections")
			if !ok {
				return
			}
			major := c.S.MajorVersion()
			got, valid := logConnAspects(major, v.Value)
			var missing []string
			for _, a := range logConnRequiredFor(major) {
				if !got[a] {
					missing = append(missing, a)
				}
			}
			if valid && len(missing) == 0 {
				c.Pass("setting log_connections", settingEvidence(v))
				return
			}
			// 'on' is what every major accepts and, on 18, the three
			// aspects required; a list that also asks for setup_durations
			// keeps it through 'all'.
			want, expected := "on", "log_connections = on"
			if major >= 18 || (major == 0 && !isBoolValue(v.Value)) {
				expected = "log_connections covering receipt, authentication and authorization ('on' or 'all')"
				if got["setup_durations"] {
					want = "all"
				}
			}
			p := c.setProblem(v, want, expected)
			switch {
			case !valid:
				p.Evidence += ": not a value this server accepts"
			case len(missing) < len(logConnRequiredFor(major)):
				p.Evidence += ": does not log " + strings.Join(missing, ", ")
			}
			c.Fail(p)
		},
	})
	boolSetting("LOG-20", "Session ends are logged (log_disconnections = on)", AreaLogging, Medium, "log_disconnections", true,
		"Session end and duration are needed to reconstruct what a session did and for how long.",
		refs(cis("3.1.21"), stig("V-233554", "V-233569", "V-233604", "V-233622"), devsec("postgres-16")))
	boolSetting("LOG-02", "The logging collector is on", AreaLogging, Medium, "logging_collector", true,
		"The collector captures all server messages into rotated files; without it stderr output may be lost.",
		refs(cis("3.1.3"), devsec("postgres-16")))
	boolSetting("LOG-15", "debug_print_parse is off", AreaLogging, Low, "debug_print_parse", false,
		"Parse trees in the log can expose data and flood the log.", cis("3.1.16"))
	boolSetting("LOG-16", "debug_print_rewritten is off", AreaLogging, Low, "debug_print_rewritten", false,
		"Rewritten query trees in the log can expose data and flood the log.", cis("3.1.17"))
	boolSetting("LOG-17", "debug_print_plan is off", AreaLogging, Low, "debug_print_plan", false,
		"Plans in the log can expose data and flood the log.", cis("3.1.18"))
	levelAtMost("LOG-13", "Server messages of level warning and above are logged", "log_min_messages", "warning",
		"A higher log_min_messages drops warnings that point at misuse.", cis("3.1.14"))
	levelAtMost("LOG-14", "Statements that cause errors are logged", "log_min_error_statement", "error",
		"Failing statements (permission denied, syntax errors from injection attempts) are evidence.", refs(cis("3.1.15"), stig("V-233512", "V-233544")))

	register(&Rule{
		ID: "LOG-24", Title: "DDL statements are logged (log_statement is ddl, mod or all)", Area: AreaLogging, Severity: Medium,
		Rationale:  "Schema and role changes (CREATE/ALTER/DROP, GRANT) must leave a record. Note: logged CREATE/ALTER ROLE ... PASSWORD statements contain the password; prefer pgaudit with role logging and no parameter logging.",
		References: cis("3.1.25"),
		Check: func(c *Check) {
			v, ok := c.setting("log_statement")
			if !ok {
				return
			}
			switch strings.ToLower(v.Value) {
			case "ddl", "mod", "all":
				c.Pass("setting log_statement", settingEvidence(v))
			default:
				c.Fail(c.setProblem(v, "ddl", "log_statement = ddl (or mod/all)"))
			}
		},
	})

	register(&Rule{
		ID: "LOG-23", Title: "log_line_prefix identifies time, process, client, user and database", Area: AreaLogging, Severity: Medium,
		Rationale:  "A log line that does not say who, from where and when cannot serve as audit evidence.",
		References: refs(cis("3.1.24"), stig("V-233542", "V-233569", "V-233578", "V-233581", "V-233582", "V-233591", "V-233598", "V-233604", "V-233608"), devsec("postgres-16")),
		Check: func(c *Check) {
			v, ok := c.setting("log_line_prefix")
			if !ok {
				return
			}
			need := []struct{ what, alts string }{
				{"timestamp (%m or %t)", "mtn"}, {"process id (%p)", "p"}, {"client address (%r or %h)", "rh"},
				{"user (%u)", "u"}, {"database (%d)", "d"}, {"application (%a)", "a"},
			}
			var missing []string
			for _, n := range need {
				found := false
				for _, ch := range n.alts {
					if strings.Contains(v.Value, "%"+string(ch)) {
						found = true
					}
				}
				if !found {
					missing = append(missing, n.what)
				}
			}
			if len(missing) == 0 {
				c.Pass("setting log_line_prefix", settingEvidence(v))
				return
			}
			p := c.setProblem(v, "%m [%p] %q%u@%d %r %a ", "log_line_prefix with %m %p %r %u %d %a")
			p.Evidence += "; missing " + strings.Join(missing, ", ")
			c.Fail(p)
		},
	})

	register(&Rule{
		ID: "LOG-05", Title: "Log files are readable only by the server account", Area: AreaLogging, Severity: Medium,
		Rationale:  "Server logs hold statements, user names, client addresses and sometimes passwords.",
		References: refs(cis("3.1.6"), stig("V-233514", "V-233531", "V-233533", "V-233549", "V-233618"), devsec("postgres-20")),
		Check: func(c *Check) {
			v, ok := c.setting("log_file_mode")
			if !ok {
				return
			}
			mode, valid := guc.ParseInt(v.Value)
			if valid && mode&0o077 == 0 {
				c.Pass("setting log_file_mode", settingEvidence(v))
			} else {
				c.Fail(c.setProblem(v, "0600", "log_file_mode = 0600"))
			}
			for _, d := range c.S.FilesOfKind(snapshot.KindLogDir) {
				if d.Exists && d.Mode&0o007 != 0 {
					c.Fail(Problem{Object: "directory " + d.Path, Location: d.Path, Evidence: fmt.Sprintf("log directory mode %s", d.ModeString()),
						Expected: "0700", Fix: "chmod 0700 " + quote.Shell(d.Path), FixKind: FixShell,
						Changes: []remedy.Change{{File: &remedy.FileMode{Path: d.Path, Mode: 0o700, From: os.FileMode(d.Mode)}}}})
				}
			}
		},
	})

	register(&Rule{
		ID: "LOG-26", Title: "pgAudit is loaded and logs DDL, role changes, reads and writes", Area: AreaLogging, Severity: High,
		Rationale: "Statement logging misses what a statement did to which object; pgAudit records session and object audit events in a form auditors accept (CIS 3.2, STIG). " +
			"ddl and role alone miss attacks that are no DDL: COPY ... TO PROGRAM is logged only by the read class, COPY ... FROM PROGRAM only by write, " +
			"and pg_read_file, pg_read_binary_file and pg_ls_dir only by read (the function class skips built-in functions; checked on a real server with pgaudit 1.7), " +
			"so the STIG's ddl, role, read and write are required. read logs every SELECT: size and rotate the logs for it.",
		References: refs(cis("3.2"), stig("V-233551", "V-233556", "V-233557", "V-233559", "V-233562", "V-233563", "V-233565", "V-233566", "V-233567", "V-233568", "V-233570", "V-233571", "V-233573", "V-233574", "V-233580", "V-233589", "V-233598", "V-233600", "V-233620", "V-233621", "V-233622")),
		Check: func(c *Check) {
			v, ok := c.setting("shared_preload_libraries")
			if !ok {
				return
			}
			loaded := false
			for _, l := range guc.SplitList(v.Value) {
				if l == "pgaudit" {
					loaded = true
				}
			}
			if !loaded {
				p := c.preloadProblem(v, []string{"pgaudit"}, "shared_preload_libraries includes pgaudit (requires the pgaudit package and a restart)")
				// Loaded with its default pgaudit.log = none, pgaudit logs
				// nothing: the same restart brings the classes in.
				p.Changes = append(p.Changes, libraryChange("pgaudit", "pgaudit.log", strings.Join(pgauditClasses, ",")))
				c.Fail(p)
				return
			}
			lv, ok := c.S.Setting("pgaudit.log")
			if !ok {
				c.NotChecked("setting pgaudit.log", c.missingSetting("pgaudit.log"))
				return
			}
			classes := map[string]bool{}
			for _, cl := range guc.SplitList(strings.ToLower(lv.Value)) {
				classes[strings.TrimPrefix(cl, "-")] = !strings.HasPrefix(cl, "-")
			}
			var missing []string
			for _, need := range pgauditClasses {
				if !classes[need] && !classes["all"] {
					missing = append(missing, need)
				}
			}
			if len(missing) > 0 {
				// What is logged now stays logged; a class excluded with
				// "-ddl" is replaced by the class itself.
				var keep []string
				for _, cl := range guc.SplitList(strings.ToLower(lv.Value)) {
					if cl != "none" && !containsFold(missing, strings.TrimPrefix(cl, "-")) {
						keep = append(keep, cl)
					}
				}
				p := c.setProblem(lv, strings.Join(append(keep, missing...), ","), "pgaudit.log includes at least "+strings.Join(pgauditClasses, ", "))
				p.Evidence += "; missing " + strings.Join(missing, ", ")
				c.Fail(p)
				return
			}
			c.Pass("setting pgaudit.log", settingEvidence(lv))
		},
	})

	register(&Rule{
		ID: "LOG-26.overrides", Title: "No per-role or per-database setting turns logging or auditing down", Area: AreaLogging, Severity: High,
		Rationale:  "ALTER ROLE ... SET pgaudit.log = 'none' (or log_statement = 'none') silently exempts a role from the audit trail.",
		References: refs(cis("6.6"), stig("V-233516")),
		Check: func(c *Check) {
			if c.S.Server == nil {
				c.NotChecked("pg_db_role_setting", "per-role settings are only known from a live server or a snapshot of one")
				return
			}
			for _, rs := range c.S.RoleSettings {
				for _, kv := range rs.Settings {
					name, val, _ := strings.Cut(kv, "=")
					name = strings.ToLower(name)
					bad := false
					switch name {
					case "pgaudit.log":
						bad = strings.EqualFold(val, "none") || val == ""
					case "log_statement":
						bad = strings.EqualFold(val, "none")
					case "log_connections", "log_disconnections", "pgaudit.log_catalog":
						on, ok := guc.ParseBool(val)
						bad = ok && !on
					case "log_min_messages", "log_min_error_statement":
						bad = levelIndex(val) > levelIndex("error")
					}
					if !bad {
						continue
					}
					who, reset := overrideTarget(rs, name)
					c.Fail(Problem{Object: who, Evidence: fmt.Sprintf("%s has %s", who, kv),
						Expected: "no per-role or per-database override that weakens logging", Fix: reset, FixKind: FixSQL,
						Changes: []remedy.Change{{SQL: &remedy.SQL{Statements: []string{reset}, Undo: []string{overrideSet(rs, name, val)}, Superuser: true}}}})
				}
			}
		},
	})
}

// pgauditClasses are the pgaudit.log classes LOG-26 requires: what makes
// every attack logs scan detects visible in the log
// (internal/logscan TestRecommendedLoggingSeesAttacks proves it).
var pgauditClasses = []string{"ddl", "role", "read", "write"}

// overrideSet is the statement that puts a per-role or per-database
// setting back (the undo of overrideTarget's RESET).
func overrideSet(rs snapshot.DBRoleSetting, name, val string) string {
	// A list setting takes one literal per element ('a, b' would be one
	// element named "a, b").
	var lits []string
	for _, e := range plan.SplitList(name, val) {
		lits = append(lits, quote.Literal(e))
	}
	if len(lits) == 0 {
		lits = []string{"''"}
	}
	set := " SET " + paramSQL(name) + " = " + strings.Join(lits, ", ") + ";"
	switch {
	case rs.Role != "" && rs.Database != "":
		return "ALTER ROLE " + quote.Ident(rs.Role) + " IN DATABASE " + quote.Ident(rs.Database) + set
	case rs.Role != "":
		return "ALTER ROLE " + quote.Ident(rs.Role) + set
	}
	return "ALTER DATABASE " + quote.Ident(rs.Database) + set
}

// logConnRequired are the aspects of a connection the control wants
// logged: that it arrived, who it authenticated as, and what it was
// authorized for (log_connections = on, on every major).
var logConnRequired = []string{"receipt", "authentication", "authorization"}

// logConnRequiredFor is logConnRequired on the majors that log it: 13
// has no "connection authenticated" line (it came with 14), so there
// "on" covers all it can log.
func logConnRequiredFor(major int) []string {
	if major == 13 {
		return []string{"receipt", "authorization"}
	}
	return logConnRequired
}

// logConnAspects reads log_connections as the server of that major does:
// a boolean before 18 (on = all three aspects); from 18 a boolean (on =
// receipt, authentication and authorization) or a comma-separated,
// case-insensitive list of receipt, authentication, authorization,
// setup_durations and all. A files-only audit of unknown major (0) reads a
// boolean as a boolean and anything else as 18's list. valid is false for
// a value the server refuses.
func logConnAspects(major int, value string) (aspects map[string]bool, valid bool) {
	aspects = map[string]bool{}
	b, ok := guc.ParseBool(value)
	if major == 0 || major >= 18 {
		// 18 takes only the whole boolean words, not the prefixes ("tr",
		// "of") that boolean parameters accept (checked on a real 18).
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "on", "off", "true", "false", "yes", "no", "1", "0":
		default:
			ok = false
		}
	}
	if major > 0 && major < 18 && value != strings.TrimSpace(value) {
		ok = false // the boolean parser before 18 takes no surrounding blanks
	}
	if ok {
		if b {
			for _, a := range logConnRequiredFor(major) {
				aspects[a] = true
			}
		}
		return aspects, true
	}
	if major > 0 && major < 18 {
		return aspects, false
	}
	if strings.TrimSpace(value) == "" {
		return aspects, true // 18's default: nothing logged
	}
	for _, item := range strings.Split(value, ",") {
		switch a := strings.ToLower(strings.TrimSpace(item)); a {
		case "receipt", "authentication", "authorization", "setup_durations":
			aspects[a] = true
		case "all":
			for _, x := range append([]string{"setup_durations"}, logConnRequired...) {
				aspects[x] = true
			}
		default:
			return map[string]bool{}, false
		}
	}
	return aspects, true
}

func isBoolValue(v string) bool {
	_, ok := guc.ParseBool(v)
	return ok
}
