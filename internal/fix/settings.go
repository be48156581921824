package fix

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// Step keys of the settings part of a plan.
const (
	keySettingsReload  = "settings:reload"
	keySettingsRestart = "settings:restart"
	keyServerCert      = "command:server-certificate"
	// keySettingsLoaded is the step after the restart: settings of a
	// library the restart loads. Before PostgreSQL 17, ALTER SYSTEM
	// refuses a setting no loaded module defines (pgaudit.log before
	// pgaudit is loaded), so they cannot share the restart's step.
	keySettingsLoaded = "settings:after-restart"
	phaseAfterRestart = phaseSettingsRestart + 1
)

// mergeLists are the settings whose changes are list additions: every
// rule's items are united with what the list holds now.
var mergeLists = map[string]bool{
	"shared_preload_libraries": true, "local_preload_libraries": true, "session_preload_libraries": true,
	"log_destination": true,
}

// contribLibraries ship with the server (contrib); the others are
// packages of their own.
var contribLibraries = map[string]bool{
	"auth_delay": true, "passwordcheck": true, "pg_stat_statements": true, "auto_explain": true, "sepgsql": true,
	"pg_prewarm": true, "basic_archive": true,
}

// planSettings merges every setting change into one ALTER SYSTEM step for
// the settings a reload applies and one for those that need a restart.
// List settings (shared_preload_libraries) become the union of what the
// list holds and what every rule adds, written as separate literals by
// plan.AlterSystem; a library must be installed. A setting whose
// prerequisite is missing is held with why: ssl without a certificate
// gets a certificate step first where the data directory is known.
func planSettings(s *snapshot.Snapshot, items []item) ([]built, []plan.Held) {
	if len(items) == 0 {
		return nil, nil
	}
	var held []plan.Held
	heldKeys := map[string]bool{}
	hold := func(it item, why string) {
		if heldKeys[it.f.Key()] {
			return
		}
		heldKeys[it.f.Key()] = true
		held = append(held, plan.Held{FindingRef: it.ref(), Why: why})
	}
	needCert := false
	// Prerequisites first: a finding with any unmet one is held as a
	// whole (its other changes would not close it).
	for _, it := range items {
		for _, req := range it.c.Setting.Requires {
			ok, why, cert := prerequisite(s, req)
			if !ok {
				hold(it, why)
			}
			needCert = needCert || cert
		}
	}
	byName := map[string][]item{}
	var names []string
	for _, it := range items {
		if heldKeys[it.f.Key()] {
			continue
		}
		n := strings.ToLower(it.c.Setting.Name)
		if byName[n] == nil {
			names = append(names, n)
		}
		byName[n] = append(byName[n], it)
	}
	sort.Strings(names)

	type merged struct {
		change plan.SettingChange
		items  []item
	}
	var reload, restart, loaded []merged
	running, _ := s.Setting("shared_preload_libraries")
	for _, n := range names {
		its := byName[n]
		cur, _ := s.Setting(n)
		sc := plan.SettingChange{Name: n, From: showValue(cur)}
		if mergeLists[n] || anyListAdd(its) {
			to, why := mergeList(s, n, cur, its)
			if why != "" {
				for _, it := range its {
					hold(it, why)
				}
				continue
			}
			sc.To = to
		} else {
			vals := map[string]bool{}
			var order []string
			for _, it := range its {
				v := it.c.Setting.Value
				if !vals[strings.ToLower(v)] {
					vals[strings.ToLower(v)] = true
					order = append(order, v)
				}
			}
			if len(order) > 1 {
				why := fmt.Sprintf("rules ask for different values of %s (%s): choose one by hand", n, strings.Join(order, ", "))
				for _, it := range its {
					hold(it, why)
				}
				continue
			}
			sc.To = order[0]
		}
		for _, it := range its {
			sc.Rules = stAppendOnce(sc.Rules, it.f.Rule)
			if it.c.Setting.Restart {
				sc.Restart = true
			}
		}
		if guc.Context(n, cur.Context) == "restart" {
			sc.Restart = true
		}
		m := merged{change: sc, items: its}
		if lib := pendingLibrary(its, running.Value); lib != "" {
			m.change.Restart = false
			loaded = append(loaded, m)
		} else if sc.Restart {
			restart = append(restart, m)
		} else {
			reload = append(reload, m)
		}
	}
	// A finding held for one setting leaves its other settings out too.
	drop := func(ms []merged) []merged {
		var out []merged
		for _, m := range ms {
			var keep []item
			for _, it := range m.items {
				if !heldKeys[it.f.Key()] {
					keep = append(keep, it)
				}
			}
			if len(keep) > 0 {
				m.items = keep
				out = append(out, m)
			}
		}
		return out
	}
	reload, restart, loaded = drop(reload), drop(restart), drop(loaded)

	var out []built
	certNeeded := false
	mk := func(ms []merged, key, apply string, order int) {
		if len(ms) == 0 {
			return
		}
		b := built{key: key, order: order, texts: map[string]string{}}
		b.step = plan.Step{Kind: plan.KindSettings, Apply: apply}
		perFinding := map[string][]plan.SettingChange{}
		var keys []string
		var parts []string
		for _, m := range ms {
			b.step.Settings = append(b.step.Settings, m.change)
			if br := fail2banBreaks(s, m.change.Name); br != "" {
				b.step.Breaks = stAppendOnce(b.step.Breaks, br)
			}
			// As ALTER SYSTEM takes it: a list setting is one literal per
			// element, never the one string that names a single library.
			parts = append(parts, strings.TrimSuffix(strings.TrimPrefix(plan.AlterSystem(m.change), "ALTER SYSTEM SET "), ";"))
			for _, it := range m.items {
				k := it.f.Key()
				if perFinding[k] == nil {
					keys = append(keys, k)
					b.step.Closes = stAppendRef(b.step.Closes, it.ref())
				}
				perFinding[k] = append(perFinding[k], m.change)
				if it.c.Breaks != "" {
					b.step.Breaks = stAppendOnce(b.step.Breaks, it.c.Breaks)
				}
				if needCert && strings.EqualFold(m.change.Name, "ssl") {
					b.after = stAppendOnce(b.after, keyServerCert)
					certNeeded = true
				}
			}
		}
		b.step.Summary = "ALTER SYSTEM SET " + strings.Join(parts, ", ") + applyWords(apply)
		for _, k := range keys {
			b.texts[k] = settingsText(s, perFinding[k], apply)
		}
		out = append(out, b)
	}
	mk(reload, keySettingsReload, plan.ApplyReload, phaseSettingsReload)
	mk(restart, keySettingsRestart, plan.ApplyRestart, phaseSettingsRestart)
	if len(loaded) > 0 && len(restart) > 0 {
		mk(loaded, keySettingsLoaded, plan.ApplyReload, phaseAfterRestart)
		b := &out[len(out)-1]
		b.after = stAppendOnce(b.after, keySettingsRestart)
		b.step.Summary += " (after the restart that loads the library)"
	} else if len(loaded) > 0 {
		// The library is not loaded and this plan does not restart
		// (a restart already pending): after that restart.
		mk(loaded, keySettingsLoaded, plan.ApplyReload, phaseAfterRestart)
		out[len(out)-1].step.Summary += " (after a restart that loads the library)"
	}
	if certNeeded {
		c := built{key: keyServerCert, order: phaseCommand}
		c.step = plan.Step{Kind: plan.KindCommand,
			Summary: "issue a server certificate and key into the data directory, readable by the server's OS user (ssl = on needs them)",
			Command: []string{"pgaegis", "tls", "issue", "server", "--pgdata", s.Target.DataDir}}
		for _, it := range items {
			if strings.EqualFold(it.c.Setting.Name, "ssl") && !heldKeys[it.f.Key()] {
				c.step.Closes = stAppendRef(c.step.Closes, it.ref())
			}
		}
		out = append([]built{c}, out...)
	}
	return out, held
}

// pendingLibrary names the library one of the changes needs that the
// running server has not loaded yet ("" when none).
func pendingLibrary(its []item, running string) string {
	have, _ := guc.SplitQuotedList(running)
	for _, it := range its {
		for _, req := range it.c.Setting.Requires {
			lib, ok := strings.CutPrefix(req, "library:")
			if ok && it.c.Setting.Name != "shared_preload_libraries" && !stContainsFold(have, lib) {
				return lib
			}
		}
	}
	return ""
}

// prerequisite checks one remedy.Setting.Requires entry against the
// snapshot. cert is true when a certificate step satisfies it.
func prerequisite(s *snapshot.Snapshot, req string) (ok bool, why string, cert bool) {
	switch {
	case req == "server-certificate":
		if tf := s.TLSFiles; tf != nil && tf.CertExists && tf.KeyExists {
			return true, "", false
		}
		dd := s.Target.DataDir
		if dd == "" || !s.Target.OnHost || s.TLSFiles == nil {
			return false, "ssl = on needs a server certificate and key, and none was seen: issue a certificate first: pgaegis tls issue server --pgdata DATADIR (on the database host), then plan again", false
		}
		// The command writes server.crt and server.key into the data
		// directory: only what the server reads when the settings name
		// those files.
		if filepath.Clean(s.TLSFiles.CertFile) != filepath.Join(dd, "server.crt") || filepath.Clean(s.TLSFiles.KeyFile) != filepath.Join(dd, "server.key") {
			return false, fmt.Sprintf("ssl = on needs the certificate %s and key %s, which do not both exist: install them there (or issue a certificate first: pgaegis tls issue server), then plan again",
				quote.Shell(s.TLSFiles.CertFile), quote.Shell(s.TLSFiles.KeyFile)), false
		}
		return true, "", true
	case req == "archive-command":
		cmd, _ := s.Setting("archive_command")
		lib, _ := s.Setting("archive_library")
		c := strings.TrimSpace(cmd.Value)
		if c == "(disabled)" {
			// With archive_mode off the server shows "(disabled)" for
			// any archive_command: only the files tell.
			if s.Config == nil {
				return false, "archive_mode = on is not proposed: the server hides archive_command while archiving is off and the configuration files were not read; check that a working archive command is set (with archiving on but no working archiver WAL segments pile up in pg_wal), then set archive_mode = on and restart", false
			}
			c = ""
			if e, ok := s.Config.Get("archive_command"); ok {
				c = strings.TrimSpace(e.Value)
			}
		}
		if c != "" || strings.TrimSpace(lib.Value) != "" {
			return true, "", false
		}
		return false, "archive_mode = on is not proposed: no archive_command or archive_library is set, and with archiving on but no working archiver WAL segments pile up in pg_wal until the disk is full. Set your backup tool's archive command first, then plan again", false
	case strings.HasPrefix(req, "library:"):
		lib := strings.TrimPrefix(req, "library:")
		has, known := s.Libraries.Has(lib)
		switch {
		case !known:
			return false, fmt.Sprintf("%s must be installed in the server's library directory, which could not be listed (needs superuser, or running on the database host): check that %s.so is installed, then plan again", lib, lib), false
		case !has:
			return false, fmt.Sprintf("%s is not installed in %s: %s, then plan again", lib, s.Libraries.Dir, installAdvice(s, lib)), false
		}
		return true, "", false
	}
	return false, "unknown prerequisite " + req, false
}

func installAdvice(s *snapshot.Snapshot, lib string) string {
	major := s.MajorVersion()
	if major == 0 {
		major = 15
	}
	if contribLibraries[lib] {
		return fmt.Sprintf("install the server's contrib modules (Debian: postgresql-%d; RHEL: postgresql%d-contrib)", major, major)
	}
	return fmt.Sprintf("install postgresql-%d-%s (Debian; RHEL: %s_%d)", major, lib, lib, major)
}

// mergeList unites the items of every change with the list as it is. A
// change with a whole Value (EXT-05.preload's repaired list) replaces the
// list as the base. A base the server could not load at its next start is
// only kept when a repair is part of the plan; otherwise the change is
// held, since adding to it would leave a value the server refuses.
func mergeList(s *snapshot.Snapshot, name string, cur snapshot.Setting, its []item) (string, string) {
	base, ok := guc.SplitQuotedList(cur.Value)
	repaired := false
	for _, it := range its {
		if it.c.Setting.ListAdd == nil {
			base, ok = guc.SplitQuotedList(it.c.Setting.Value)
			repaired = true
			break
		}
	}
	if !ok {
		return "", fmt.Sprintf("%s = %s is not a list the server reads: repair it first (EXT-05.preload)", name, guc.QuoteLiteral(cur.Value))
	}
	preload := strings.HasSuffix(name, "_preload_libraries")
	if preload && !repaired {
		for _, b := range base {
			has, known := s.Libraries.Has(b)
			if strings.Contains(b, ",") || known && !has {
				return "", fmt.Sprintf("%s holds %s, which the server cannot load at its next start: repair it first (EXT-05.preload)", name, guc.QuoteLiteral(b))
			}
		}
	}
	out := append([]string(nil), base...)
	for _, it := range its {
		for _, add := range it.c.Setting.ListAdd {
			if !stContainsFold(out, add) {
				out = append(out, add)
			}
		}
	}
	return guc.JoinQuotedList(out), ""
}

// settingsText is the fix one finding shows: its own settings, as they
// will be written (a list setting with everything the plan puts in it).
func settingsText(s *snapshot.Snapshot, cs []plan.SettingChange, apply string) string {
	var lines []string
	for _, c := range cs {
		if s.Server != nil {
			lines = append(lines, plan.AlterSystem(c))
			continue
		}
		// A files-only audit: the line for postgresql.auto.conf (or
		// postgresql.conf) of the data directory.
		v := c.To
		if plan.ListSetting(c.Name) {
			v = strings.Join(plan.SplitList(c.Name, c.To), ",")
		}
		q, err := quote.ConfValue(v)
		if err != nil {
			q = "<" + err.Error() + ">"
		}
		lines = append(lines, c.Name+" = "+q)
	}
	if s.Server != nil && apply == plan.ApplyReload {
		lines = append(lines, "SELECT pg_reload_conf();")
	}
	return strings.Join(lines, "\n")
}

// showValue renders the current value with its unit, as SHOW does for
// the common units.
func showValue(v snapshot.Setting) string {
	switch v.Unit {
	case "ms", "s", "min", "h", "d", "kB", "MB", "GB", "TB":
		if _, ok := guc.ParseInt(v.Value); ok && v.Value != "-1" && v.Value != "0" {
			return v.Value + v.Unit
		}
	}
	return v.Value
}

func applyWords(apply string) string {
	if apply == plan.ApplyRestart {
		return ", then restart"
	}
	return ", then reload"
}

func anyListAdd(its []item) bool {
	for _, it := range its {
		if len(it.c.Setting.ListAdd) > 0 {
			return true
		}
	}
	return false
}

// fail2banBreaks: a setting that moves the server's log away from the
// file an enabled fail2ban jail watches (AUTH-20 found it) leaves the jail
// blind until it is rewritten.
func fail2banBreaks(s *snapshot.Snapshot, name string) string {
	switch strings.ToLower(name) {
	case "log_directory", "log_filename", "log_destination", "logging_collector":
	default:
		return ""
	}
	h := s.Host
	if h == nil || h.Fail2ban != "yes" || h.Fail2banLogPath == "" {
		return ""
	}
	return fmt.Sprintf("fail2ban jail %s watches %s: with %s changed the server may log elsewhere and the jail stops banning; rerun pgaegis fail2ban --write afterwards", textsafe.String(h.Fail2banJail), textsafe.String(h.Fail2banLogPath), name)
}

func stAppendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func stAppendRef(list []plan.FindingRef, r plan.FindingRef) []plan.FindingRef {
	for _, x := range list {
		if x == r {
			return list
		}
	}
	return append(list, r)
}

func stContainsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
