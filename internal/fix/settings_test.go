package fix_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/fixtest"
	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Issue 12: LOG-26, AUTH-13 and AUTH-14 each set the whole list and the
// last one pasted won; the plan has one shared_preload_libraries value
// holding all of them (and what was there), written as separate literals.
func TestPreloadLibrariesMergeIntoOneValue(t *testing.T) {
	s := settingsSnap(map[string]string{"shared_preload_libraries": "pg_stat_statements"})
	r, fs := build(t, s, "LOG-26", "AUTH-13", "AUTH-14")
	for _, rule := range []string{"LOG-26", "AUTH-13", "AUTH-14"} {
		if len(failingOf(fs, rule)) == 0 {
			t.Fatalf("%s does not fail", rule)
		}
	}
	var steps int
	for _, st := range r.Plan.Steps {
		for _, c := range st.Settings {
			if c.Name == "shared_preload_libraries" {
				steps++
			}
		}
	}
	if steps != 1 {
		t.Fatalf("shared_preload_libraries is set by %d steps, want 1: %+v", steps, r.Plan.Steps)
	}
	c, st, _ := settingIn(r.Plan, "shared_preload_libraries")
	if c.To != "pg_stat_statements, passwordcheck, auth_delay, pgaudit" || c.From != "pg_stat_statements" || !c.Restart || st.Apply != plan.ApplyRestart {
		t.Errorf("merged value: %+v (apply %q)", c, st.Apply)
	}
	if got := plan.AlterSystem(c); got != "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements', 'passwordcheck', 'auth_delay', 'pgaudit';" {
		t.Errorf("statement: %s", got)
	}
	// The settings that only exist once the library is loaded come right
	// after that restart (ALTER SYSTEM refuses them before, on 15).
	for _, name := range []string{"pgaudit.log", "auth_delay.milliseconds"} {
		c2, st2, ok := settingIn(r.Plan, name)
		if !ok || st2.Kind != plan.KindSettings || len(st2.After) != 1 || st2.After[0] != st.ID || st2.ID <= st.ID {
			t.Errorf("%s not in a step after the restart: %+v %+v", name, c2, st2)
		}
	}
	// Every finding's text is the one merged statement, never a list
	// in one literal.
	for _, f := range fs {
		if f.Status != rules.Fail || f.Object != "setting shared_preload_libraries" {
			continue
		}
		txt := r.Texts[f.Key()]
		if !strings.Contains(txt, "'pg_stat_statements', 'passwordcheck', 'auth_delay', 'pgaudit'") {
			t.Errorf("%s text: %q", f.Rule, txt)
		}
	}
}

// Issue 12: AUTH-13 recommended credcheck, which is not installed, instead
// of the installed passwordcheck.
func TestAUTH13RecommendsInstalledLibrary(t *testing.T) {
	for _, c := range []struct {
		name string
		libs []string
		want string
	}{
		{"passwordcheck installed", []string{"auth_delay", "passwordcheck"}, "passwordcheck"},
		{"credcheck installed", []string{"credcheck", "passwordcheck"}, "credcheck"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := settingsSnap(nil)
			s.Libraries.Names = c.libs
			r, fs := build(t, s, "AUTH-13")
			sc, _, ok := settingIn(r.Plan, "shared_preload_libraries")
			if !ok || sc.To != c.want {
				t.Errorf("plan: %+v held %v", sc, r.Plan.Held)
			}
			for _, f := range failingOf(fs, "AUTH-13") {
				if c.want == "passwordcheck" && strings.Contains(f.Fix+r.Texts[f.Key()], "credcheck") {
					t.Errorf("names credcheck, which is not installed: %q", f.Fix)
				}
			}
		})
	}
}

// A library that is not installed is never put into the list (the next
// start would fail): the change is held with how to install it.
func TestMissingLibraryIsHeld(t *testing.T) {
	s := settingsSnap(nil)
	s.Libraries.Names = []string{"auth_delay", "passwordcheck"}
	r, _ := build(t, s, "LOG-26", "AUTH-14")
	c, _, _ := settingIn(r.Plan, "shared_preload_libraries")
	if c.To != "auth_delay" {
		t.Errorf("shared_preload_libraries = %q, want auth_delay alone", c.To)
	}
	if _, _, ok := settingIn(r.Plan, "pgaudit.log"); ok {
		t.Errorf("pgaudit.log planned without pgaudit")
	}
	h := heldFor(r.Plan, "LOG-26")
	if len(h) != 1 || !strings.Contains(h[0], "install postgresql-15-pgaudit") {
		t.Errorf("LOG-26 held: %q", h)
	}
	// Unknown library directory (not superuser, not on the host): held.
	s = settingsSnap(nil)
	s.Libraries = nil
	r, _ = build(t, s, "AUTH-14")
	if _, _, ok := settingIn(r.Plan, "shared_preload_libraries"); ok || len(heldFor(r.Plan, "AUTH-14")) == 0 {
		t.Errorf("unknown library directory: steps %+v held %+v", r.Plan.Steps, r.Plan.Held)
	}
}

// Issue 12: AUTH-14 passed with auth_delay loaded and
// auth_delay.milliseconds = 0; the fix sets the delay.
func TestAUTH14DelayZeroFails(t *testing.T) {
	for _, c := range []struct {
		name string
		set  map[string]string
	}{
		{"zero", map[string]string{"shared_preload_libraries": "auth_delay", "auth_delay.milliseconds": "0"}},
		{"not set (files: default 0)", map[string]string{"shared_preload_libraries": "auth_delay"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, fs := build(t, settingsSnap(c.set), "AUTH-14")
			if len(failingOf(fs, "AUTH-14")) != 1 {
				t.Fatalf("AUTH-14 failures: %+v", failingOf(fs, "AUTH-14"))
			}
			sc, st, ok := settingIn(r.Plan, "auth_delay.milliseconds")
			if !ok || sc.To != "500" || st.Apply != plan.ApplyReload {
				t.Errorf("plan: %+v %+v", sc, st)
			}
		})
	}
	_, fs := build(t, settingsSnap(map[string]string{"shared_preload_libraries": "auth_delay", "auth_delay.milliseconds": "500"}), "AUTH-14")
	if len(failingOf(fs, "AUTH-14")) != 0 {
		t.Errorf("AUTH-14 fails with a delay set: %+v", failingOf(fs, "AUTH-14"))
	}
}

// Issue 12: TLS-01 printed ssl = on with no certificate in place. The plan
// issues one first (a command step the settings step comes after), or
// holds the change when the data directory is not on this host.
func TestSSLNeedsCertificate(t *testing.T) {
	t.Run("certificate present", func(t *testing.T) {
		r, _ := build(t, settingsSnap(map[string]string{"ssl": "off"}), "TLS-01")
		c, st, ok := settingIn(r.Plan, "ssl")
		if !ok || c.To != "on" || len(st.After) != 0 || len(r.Plan.Steps) != 1 {
			t.Errorf("plan: %+v", r.Plan.Steps)
		}
	})
	t.Run("no certificate, on the host", func(t *testing.T) {
		s := settingsSnap(map[string]string{"ssl": "off"})
		s.TLSFiles.CertExists, s.TLSFiles.KeyExists = false, false
		r, _ := build(t, s, "TLS-01")
		if len(r.Plan.Steps) != 2 {
			t.Fatalf("steps: %+v", r.Plan.Steps)
		}
		cmd, set := r.Plan.Steps[0], r.Plan.Steps[1]
		want := []string{"pgaegis", "tls", "issue", "server", "--pgdata", "/var/lib/postgresql/15/main"}
		if cmd.Kind != plan.KindCommand || strings.Join(cmd.Command, " ") != strings.Join(want, " ") {
			t.Errorf("command step: %+v", cmd)
		}
		if set.Kind != plan.KindSettings || len(set.After) != 1 || set.After[0] != cmd.ID {
			t.Errorf("settings step does not come after the certificate: %+v", set)
		}
	})
	t.Run("no certificate, remote", func(t *testing.T) {
		s := settingsSnap(map[string]string{"ssl": "off"})
		s.Target = snapshot.Target{Live: true}
		s.TLSFiles = &snapshot.TLSFiles{CertFile: "/srv/pg/server.crt", KeyFile: "/srv/pg/server.key", Source: "pg_stat_file"}
		r, fs := build(t, s, "TLS-01")
		r.Annotate(fs)
		// Held: the report keeps the rule's own text, which must say
		// that the certificate comes first.
		for _, f := range failingOf(fs, "TLS-01") {
			if !strings.Contains(f.Fix, "pgaegis tls issue server") {
				t.Errorf("TLS-01 fix text: %q", f.Fix)
			}
		}
		h := heldFor(r.Plan, "TLS-01")
		if len(r.Plan.Steps) != 0 || len(h) != 1 || !strings.Contains(h[0], "issue a certificate first: pgaegis tls issue server") {
			t.Errorf("steps %+v held %q", r.Plan.Steps, h)
		}
	})
}

// Issue 12: BKP-02 set archive_mode = on with no archive command (WAL
// then piles up in pg_wal), named pgbackrest, which is not installed, and
// had a blank setting name in a files-only audit.
func TestArchiveModeNeedsArchiver(t *testing.T) {
	r, fs := build(t, settingsSnap(nil), "BKP-02")
	if len(r.Plan.Steps) != 0 {
		t.Errorf("archive_mode proposed without an archiver: %+v", r.Plan.Steps)
	}
	if h := heldFor(r.Plan, "BKP-02"); len(h) != 1 || !strings.Contains(h[0], "pg_wal") {
		t.Errorf("held: %q", h)
	}
	if strings.Contains(strings.ToLower(allText(r, fs)), "pgbackrest") {
		t.Errorf("names pgbackrest: %s", allText(r, fs))
	}
	// With an archiver the setting is proposed, for a restart.
	r, _ = build(t, settingsSnap(map[string]string{"archive_command": "/usr/local/bin/ship %p"}), "BKP-02")
	if c, st, ok := settingIn(r.Plan, "archive_mode"); !ok || c.To != "on" || st.Apply != plan.ApplyRestart {
		t.Errorf("with an archive_command: %+v", r.Plan.Steps)
	}
	// Files only, archive_mode on, archive_command not in the files.
	s := filesOnly(settingsSnap(map[string]string{"archive_mode": "on"}))
	delete(s.Settings, "archive_command")
	r, fs = build(t, s, "BKP-02")
	got := failingOf(fs, "BKP-02")
	if len(got) != 1 || got[0].Object != "setting archive_command" {
		t.Fatalf("files-only BKP-02: %+v", got)
	}
	if len(r.Plan.Manual) != 1 || strings.Contains(strings.ToLower(allText(r, fs)), "pgbackrest") {
		t.Errorf("manual: %+v", r.Plan.Manual)
	}
}

// Issue 12: a files-only audit of the broken data directory did not notice
// shared_preload_libraries = '"pgaudit,auth_delay"' (one library whose
// name holds a comma) or a library that is not installed.
func TestPreloadValueTheNextStartFailsOn(t *testing.T) {
	for _, c := range []struct {
		name, value, fixed string
	}{
		{"one item with a comma", `"pgaudit,auth_delay"`, "pgaudit, auth_delay"},
		{"not installed", "pgaudit, credcheck", "pgaudit"},
		{"unterminated quote", `"pgaudit`, "pgaudit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := filesOnly(settingsSnap(map[string]string{"shared_preload_libraries": c.value}))
			s.Libraries.Source = "filesystem"
			r, fs := build(t, s, "EXT-05.preload")
			got := failingOf(fs, "EXT-05.preload")
			if len(got) != 1 || got[0].Severity != rules.High {
				t.Fatalf("EXT-05.preload: %+v", got)
			}
			sc, st, ok := settingIn(r.Plan, "shared_preload_libraries")
			if !ok || sc.To != c.fixed || st.Apply != plan.ApplyRestart {
				t.Errorf("repair: %+v", sc)
			}
		})
	}
	// Repaired and extended at once: LOG-26 adds to the repaired list.
	s := settingsSnap(map[string]string{"shared_preload_libraries": `"pg_stat_statements,auth_delay"`})
	r, _ := build(t, s, "EXT-05.preload", "LOG-26")
	if sc, _, _ := settingIn(r.Plan, "shared_preload_libraries"); sc.To != "pg_stat_statements, auth_delay, pgaudit" {
		t.Errorf("repair + LOG-26: %q", sc.To)
	}
	// Without the repair in the plan, adding to a broken list is held.
	r, _ = build(t, s, "LOG-26")
	if _, _, ok := settingIn(r.Plan, "shared_preload_libraries"); ok || len(heldFor(r.Plan, "LOG-26")) != 1 {
		t.Errorf("LOG-26 onto a broken list: steps %+v held %+v", r.Plan.Steps, r.Plan.Held)
	}
	// Nothing left to load: manual (ALTER SYSTEM cannot write an empty
	// list on 15: it stores '""', a library with an empty name).
	r, _ = build(t, filesOnly(settingsSnap(map[string]string{"shared_preload_libraries": "credcheck"})), "EXT-05.preload")
	if !r.Plan.Empty() || len(r.Plan.Manual) != 1 {
		t.Errorf("empty repair: steps %+v manual %+v", r.Plan.Steps, r.Plan.Manual)
	}
	// A good value passes.
	_, fs := build(t, filesOnly(settingsSnap(map[string]string{"shared_preload_libraries": "pgaudit, auth_delay"})), "EXT-05.preload")
	if f := failingOf(fs, "EXT-05.preload"); len(f) != 0 {
		t.Errorf("good value fails: %+v", f)
	}
}

// Reload and restart settings land in one step each, whatever the number
// of rules; a setting two rules want at different values is held, never
// planned twice.
func TestSettingsStepsMerge(t *testing.T) {
	s := settingsSnap(map[string]string{"log_connections": "off", "log_disconnections": "off", "logging_collector": "off",
		"log_statement": "all", "password_encryption": "md5", "unix_socket_permissions": "0777"})
	s.Settings["logging_collector"] = snapshot.Setting{Name: "logging_collector", Value: "off", Context: "postmaster", Origin: snapshot.FromServer}
	s.Settings["unix_socket_permissions"] = snapshot.Setting{Name: "unix_socket_permissions", Value: "0777", Context: "postmaster", Origin: snapshot.FromServer}
	r, _ := build(t, s, "LOG-19", "LOG-20", "LOG-02", "LOG-24", "LOG-33", "AUTH-11", "NET-04")
	var kinds []string
	for _, st := range r.Plan.Steps {
		kinds = append(kinds, st.Kind+"/"+st.Apply)
	}
	if strings.Join(kinds, " ") != "settings/reload settings/restart" {
		t.Fatalf("steps: %v", kinds)
	}
	reload, restart := r.Plan.Steps[0], r.Plan.Steps[1]
	names := func(st plan.Step) (out []string) {
		for _, c := range st.Settings {
			out = append(out, c.Name+"="+c.To)
		}
		return
	}
	if got := strings.Join(names(reload), " "); got != "log_connections=on log_disconnections=on log_statement=ddl password_encryption=scram-sha-256" {
		t.Errorf("reload step: %s", got)
	}
	if got := strings.Join(names(restart), " "); got != "logging_collector=on unix_socket_permissions=0770" {
		t.Errorf("restart step: %s", got)
	}
	if len(restart.Breaks) == 0 {
		t.Errorf("unix_socket_permissions says nothing of what it breaks")
	}
	c, _, _ := settingIn(r.Plan, "log_statement")
	if strings.Join(c.Rules, ",") != "LOG-33" {
		// LOG-24 passes with log_statement = all; LOG-33 wants ddl.
		t.Errorf("log_statement rules: %v", c.Rules)
	}
}

// What only the administrator can choose is manual, with what to do.
func TestManualSettings(t *testing.T) {
	s := settingsSnap(map[string]string{"listen_addresses": "*", "logging_collector": "on", "log_directory": "log"})
	r, _ := build(t, s, "NET-01", "LOG-03")
	if len(r.Plan.Steps) != 0 || len(r.Plan.Manual) != 2 {
		t.Fatalf("steps %+v manual %+v", r.Plan.Steps, r.Plan.Manual)
	}
	for _, m := range r.Plan.Manual {
		if !strings.Contains(m.What, "listen_addresses") && !strings.Contains(m.What, "log_directory") {
			t.Errorf("manual text: %+v", m)
		}
	}
}

// settingsCase plants a weakness with ALTER SYSTEM (and a restart when the
// plant needs one) and proves the planned fix on the server.
type settingsCase struct {
	rules          []string
	plant          []string
	restart        bool     // the plant needs a restart to take effect
	plantAfter     []string // run after that restart (settings of a loaded library)
	allowNew       []string
	wantHeld       bool // the fix must be held, not planned
	wantCommand    bool // a certificate step comes first
	check          func(t *testing.T, p *plan.Plan)
	why            string // for allowNew: why another rule may newly fail
	filesOnlyFails string // a files-only audit after the plant must fail this rule
}

// Every automatic setting fix, proven on a real server: the plan's steps
// are applied as written (fixtest), the server reloads and restarts, the
// findings are gone, nothing that passed fails, and a second plan is
// empty. One server, reset between cases (ALTER SYSTEM RESET ALL).
func TestSettingsFixesProven(t *testing.T) {
	// Each proof has its own server: they run side by side.
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{})
	sel := func(name string) func(t *testing.T, p *plan.Plan) {
		return func(t *testing.T, p *plan.Plan) {
			if _, _, ok := settingIn(p, name); !ok {
				t.Errorf("no change of %s in %+v", name, p.Steps)
			}
		}
	}
	cases := map[string]settingsCase{
		"TLS-01 with a certificate issued first": {rules: []string{"TLS-01"}, wantCommand: true,
			// With ssl on, the certificate rules apply: the test's
			// self-signed certificate is what they report.
			allowNew: []string{"TLS-05", "TLS-06", "TLS-07", "TLS-08"}},
		"TLS-02":                 {rules: []string{"TLS-02"}, plant: []string{"ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1'"}},
		"TLS-03":                 {rules: []string{"TLS-03"}, plant: []string{"ALTER SYSTEM SET ssl_ciphers = 'ALL'"}},
		"LOG-19 LOG-20":          {rules: []string{"LOG-19", "LOG-20"}},
		"LOG-02":                 {rules: []string{"LOG-02"}, allowNew: []string{"LOG-03"}, why: "log_directory matters once the collector runs"},
		"LOG-13 LOG-14":          {rules: []string{"LOG-13", "LOG-14"}, plant: []string{"ALTER SYSTEM SET log_min_messages = 'fatal'", "ALTER SYSTEM SET log_min_error_statement = 'panic'"}},
		"LOG-15 LOG-16 LOG-17":   {rules: []string{"LOG-15", "LOG-16", "LOG-17"}, plant: []string{"ALTER SYSTEM SET debug_print_parse = on", "ALTER SYSTEM SET debug_print_rewritten = on", "ALTER SYSTEM SET debug_print_plan = on"}},
		"LOG-23 LOG-24":          {rules: []string{"LOG-23", "LOG-24"}},
		"LOG-05":                 {rules: []string{"LOG-05"}, plant: []string{"ALTER SYSTEM SET log_file_mode = '0644'"}},
		"LOG-06 LOG-07 LOG-08":   {rules: []string{"LOG-06", "LOG-07", "LOG-08"}, plant: []string{"ALTER SYSTEM SET log_truncate_on_rotation = off", "ALTER SYSTEM SET log_rotation_age = 0", "ALTER SYSTEM SET log_rotation_size = 0"}},
		"LOG-22 LOG-25 LOG-31":   {rules: []string{"LOG-22", "LOG-25", "LOG-31"}, plant: []string{"ALTER SYSTEM SET log_hostname = on", "ALTER SYSTEM SET log_timezone = 'Europe/Paris'", "ALTER SYSTEM SET client_min_messages = 'debug1'"}},
		"LOG-04 LOG-18":          {rules: []string{"LOG-04", "LOG-18"}, plant: []string{"ALTER SYSTEM SET log_filename = 'postgresql.log'", "ALTER SYSTEM SET debug_pretty_print = off"}},
		"LOG-10 LOG-11 (syslog)": {rules: []string{"LOG-10", "LOG-11"}, plant: []string{"ALTER SYSTEM SET log_destination = 'syslog'", "ALTER SYSTEM SET syslog_sequence_numbers = off", "ALTER SYSTEM SET syslog_split_messages = off"}},
		"LOG-29":                 {rules: []string{"LOG-29"}, check: sel("log_destination")},
		"LOG-32 LOG-33":          {rules: []string{"LOG-32", "LOG-33"}, plant: []string{"ALTER SYSTEM SET log_statement = 'all'", "ALTER SYSTEM SET log_min_duration_statement = 0"}},
		"REPL-02":                {rules: []string{"REPL-02"}},
		"AUTH-11":                {rules: []string{"AUTH-11"}, plant: []string{"ALTER SYSTEM SET password_encryption = 'md5'"}},
		"AUTH-14 timeout":        {rules: []string{"AUTH-14"}, plant: []string{"ALTER SYSTEM SET authentication_timeout = '5min'", "ALTER SYSTEM SET shared_preload_libraries = 'auth_delay'"}, restart: true, plantAfter: []string{"ALTER SYSTEM SET auth_delay.milliseconds = 200"}},
		"AUTH-14 delay 0":        {rules: []string{"AUTH-14"}, plant: []string{"ALTER SYSTEM SET shared_preload_libraries = 'auth_delay'"}, restart: true, check: sel("auth_delay.milliseconds")},
		"LOG-26 AUTH-13 AUTH-14 in one list": {rules: []string{"LOG-26", "AUTH-13", "AUTH-14"}, check: func(t *testing.T, p *plan.Plan) {
			c, _, _ := settingIn(p, "shared_preload_libraries")
			if got, _ := guc.SplitQuotedList(c.To); len(got) != 3 {
				t.Errorf("shared_preload_libraries = %q", c.To)
			}
		}},
		"LOG-26 pgaudit.log":                 {rules: []string{"LOG-26"}, plant: []string{"ALTER SYSTEM SET shared_preload_libraries = 'pgaudit'"}, restart: true, plantAfter: []string{"ALTER SYSTEM SET pgaudit.log = 'read,-ddl'"}, check: sel("pgaudit.log")},
		"NET-04":                             {rules: []string{"NET-04"}},
		"NET-06":                             {rules: []string{"NET-06"}},
		"EXT-04":                             {rules: []string{"EXT-04"}, plant: []string{"ALTER SYSTEM SET dynamic_library_path = '/tmp:$libdir'"}},
		"EXT-06":                             {rules: []string{"EXT-06"}, plant: []string{"ALTER SYSTEM SET ignore_system_indexes = on", "ALTER SYSTEM SET post_auth_delay = 1"}},
		"EXT-08":                             {rules: []string{"EXT-08"}, plant: []string{"ALTER SYSTEM SET zero_damaged_pages = on", "ALTER SYSTEM SET lo_compat_privileges = on", "ALTER SYSTEM SET ignore_checksum_failure = on"}},
		"BKP-02 with an archiver":            {rules: []string{"BKP-02"}, plant: []string{"ALTER SYSTEM SET archive_command = '/bin/true'"}, check: sel("archive_mode")},
		"BKP-02 without an archiver is held": {rules: []string{"BKP-02"}, wantHeld: true},
		"EXT-05.preload pending bad value": {rules: []string{"EXT-05.preload"}, plant: []string{"ALTER SYSTEM SET shared_preload_libraries = 'pgaudit,auth_delay'"},
			// Loading the libraries the value meant makes their own
			// settings rules apply (both at their defaults).
			allowNew:       []string{"AUTH-14", "LOG-26"},
			filesOnlyFails: "EXT-05.preload", check: func(t *testing.T, p *plan.Plan) {
				if c, _, _ := settingIn(p, "shared_preload_libraries"); c.To != "pgaudit, auth_delay" {
					t.Errorf("repair: %q", c.To)
				}
			}},
	}
	var names []string
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c := cases[name]
		t.Run(name, func(t *testing.T) {
			ctx := pgtest.Ctx(t)
			t.Cleanup(func() {
				ctx := context.Background()
				// Back to the initdb configuration for the next case.
				if err := srv.Exec(ctx, "ALTER SYSTEM RESET ALL"); err != nil {
					t.Errorf("reset: %v", err)
				}
				os.Remove(filepath.Join(srv.DataDir, "server.crt"))
				os.Remove(filepath.Join(srv.DataDir, "server.key"))
				if err := srv.Restart(ctx); err != nil {
					t.Fatalf("restart after reset: %v", err)
				}
			})
			if err := srv.Exec(ctx, c.plant...); err != nil {
				t.Fatalf("plant: %v", err)
			}
			if c.restart {
				if err := srv.Restart(ctx); err != nil {
					t.Fatalf("restart after plant: %v", err)
				}
			}
			if err := srv.Exec(ctx, append(c.plantAfter, "SELECT pg_reload_conf()")...); err != nil {
				t.Fatalf("plant: %v", err)
			}
			if c.filesOnlyFails != "" {
				snap, err := collect.Collect(ctx, collect.Options{DataDir: srv.DataDir})
				if err != nil {
					t.Fatal(err)
				}
				if len(failingOf(rules.Run(snap), c.filesOnlyFails)) == 0 {
					t.Errorf("a files-only audit does not see the value the next start fails on (%s)", c.filesOnlyFails)
				}
			}
			snap, before := fixtest.Audit(t, srv)
			res := fix.Build(snap, before, fix.Options{Only: c.rules})
			if c.wantHeld {
				if !res.Plan.Empty() || len(res.Plan.Held) == 0 {
					t.Fatalf("want held: steps %+v held %+v", res.Plan.Steps, res.Plan.Held)
				}
				for _, h := range res.Plan.Held {
					t.Logf("held %s: %s", h.Rule, h.Why)
				}
				return
			}
			if res.Plan.Empty() {
				t.Fatalf("no steps for %v: held %+v manual %+v", c.rules, res.Plan.Held, res.Plan.Manual)
			}
			for _, h := range res.Plan.Held {
				t.Errorf("held %s: %s", h.Rule, h.Why)
			}
			if c.wantCommand {
				st := res.Plan.Steps[0]
				want := []string{"pgaegis", "tls", "issue", "server", "--pgdata", srv.DataDir}
				if st.Kind != plan.KindCommand || strings.Join(st.Command, "\x00") != strings.Join(want, "\x00") {
					t.Fatalf("first step is not the certificate: %+v", st)
				}
			}
			if c.check != nil {
				c.check(t, res.Plan)
			}
			fixtest.Verify(t, srv, before, res.Plan, c.rules, fixtest.Options{AllowNewFailures: c.allowNew,
				RunCommand: func(tb testing.TB, argv []string) {
					// The tls command is another part of issue 12; the
					// certificate it would issue is made here.
					if err := pgtest.SelfSignedTLS(srv); err != nil {
						tb.Fatal(err)
					}
				}})
		})
	}
}

// The SQL changes of the setting rules (LOG-26.overrides, NET-05) name
// roles and databases that are data: with hostile names, the statements
// close exactly their finding and the undo statements restore exactly
// what was there (pg_db_role_setting, rolconnlimit).
func TestSettingsSQLChangesHostileNames(t *testing.T) {
	// Each proof has its own server: they run side by side.
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	roles := []string{"current_user", `r"; DROP TABLE canary; --`, "nl\nDROP TABLE canary; --", `back\slash'q`}
	db := "z\nDROP TABLE canary; --"
	plant := []string{"CREATE TABLE canary ()", "CREATE DATABASE " + quote.Ident(db)}
	for _, r := range roles {
		plant = append(plant, "CREATE ROLE "+quote.Ident(r)+" LOGIN",
			"ALTER ROLE "+quote.Ident(r)+" SET log_statement = 'none'",
			"ALTER ROLE "+quote.Ident(r)+" IN DATABASE "+quote.Ident(db)+" SET log_min_messages = 'panic'")
	}
	plant = append(plant, "ALTER DATABASE "+quote.Ident(db)+" SET log_statement = 'none'")
	if err := srv.Exec(ctx, plant...); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		c, err := srv.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var s string
		if err := c.QueryRow(ctx, `SELECT coalesce(string_agg(format('%s/%s=%s', coalesce(r.rolname,'-'), coalesce(d.datname,'-'), s.setconfig), ';' ORDER BY 1), '')
			|| '|' || (SELECT string_agg(rolname || ':' || rolconnlimit, ';' ORDER BY rolname) FROM pg_roles WHERE rolcanlogin)
			|| '|' || (SELECT count(*) FROM pg_class WHERE relname = 'canary')
			FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	orig := state()
	_, fs := fixtest.Audit(t, srv)
	var n int
	for _, f := range fs {
		if f.Status != rules.Fail || f.Rule != "LOG-26.overrides" && f.Rule != "NET-05" {
			continue
		}
		for _, ch := range f.Changes {
			if ch.SQL == nil {
				t.Fatalf("%s %s: not an SQL change: %+v", f.Rule, f.Object, ch)
			}
			if err := srv.Exec(ctx, ch.SQL.Statements...); err != nil {
				t.Fatalf("%s %s: %v", f.Rule, f.Object, err)
			}
			undo := append([]string(nil), ch.SQL.Undo...)
			for i, j := 0, len(undo)-1; i < j; i, j = i+1, j-1 {
				undo[i], undo[j] = undo[j], undo[i]
			}
			if err := srv.Exec(ctx, undo...); err != nil {
				t.Fatalf("%s %s undo: %v", f.Rule, f.Object, err)
			}
			n++
		}
	}
	if n < 2*len(roles)+1 {
		t.Errorf("only %d SQL changes for %d hostile roles", n, len(roles))
	}
	if got := state(); got != orig {
		t.Errorf("undo does not restore the catalog:\nbefore %q\nafter  %q", orig, got)
	}
	// Applied for good: every such finding is gone, nothing else changed.
	_, fs = fixtest.Audit(t, srv)
	for _, f := range fs {
		if f.Status == rules.Fail && (f.Rule == "LOG-26.overrides" || f.Rule == "NET-05") {
			for _, ch := range f.Changes {
				if err := srv.Exec(ctx, ch.SQL.Statements...); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	_, fs = fixtest.Audit(t, srv)
	for _, f := range fs {
		if f.Status == rules.Fail && (f.Rule == "LOG-26.overrides" || f.Rule == "NET-05") {
			t.Errorf("still fails after its SQL: %s %s", f.Rule, f.Object)
		}
	}
	if !strings.HasSuffix(state(), "|1") {
		t.Errorf("the canary table is gone")
	}
}
