package fix_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// settingsSnap is a live-looking PostgreSQL 15 snapshot (superuser) with
// the given settings, pgaudit, passwordcheck and auth_delay installed and
// the TLS files present; change what a case needs.
func settingsSnap(settings map[string]string) *snapshot.Snapshot {
	s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, CollectedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Server:    &snapshot.Server{Version: "15.18", VersionNum: 150018, CurrentUser: "postgres", Superuser: true},
		Target:    snapshot.Target{Live: true, OnHost: true, DataDir: "/var/lib/postgresql/15/main"},
		Libraries: &snapshot.Libraries{Dir: "/usr/lib/postgresql/15/lib", Names: []string{"auth_delay", "passwordcheck", "pg_stat_statements", "pgaudit"}, Source: "pg_ls_dir"},
		TLSFiles: &snapshot.TLSFiles{CertFile: "/var/lib/postgresql/15/main/server.crt", KeyFile: "/var/lib/postgresql/15/main/server.key",
			CertExists: true, KeyExists: true, Source: "pg_stat_file"}}
	base := map[string]string{"ssl": "on", "listen_addresses": "localhost", "password_encryption": "scram-sha-256",
		"shared_preload_libraries": "", "authentication_timeout": "30", "archive_mode": "off", "archive_command": "", "archive_library": ""}
	for k, v := range settings {
		base[k] = v
	}
	ctx := map[string]string{"shared_preload_libraries": "postmaster", "archive_mode": "postmaster", "ssl": "sighup",
		"authentication_timeout": "sighup", "archive_command": "sighup", "auth_delay.milliseconds": "sighup"}
	for k, v := range base {
		st := snapshot.Setting{Name: k, Value: v, Origin: snapshot.FromServer, Source: "configuration file", Context: ctx[k]}
		if k == "authentication_timeout" {
			st.Unit = "s"
		}
		s.SetSetting(st)
	}
	return s
}

// filesOnly turns a snapshot into what a files-only audit sees.
func filesOnly(s *snapshot.Snapshot) *snapshot.Snapshot {
	s.Server = nil
	s.Target.Live = false
	for k, v := range s.Settings {
		v.Origin, v.Context, v.Source = snapshot.FromFile, "", "configuration file"
		s.Settings[k] = v
	}
	return s
}

// build runs the rules and plans the fixes of only.
func build(t *testing.T, s *snapshot.Snapshot, only ...string) (*fix.Result, []rules.Finding) {
	t.Helper()
	fs := rules.Run(s)
	return fix.Build(s, fs, fix.Options{Only: only}), fs
}

func failingOf(fs []rules.Finding, rule string) []rules.Finding {
	var out []rules.Finding
	for _, f := range fs {
		if f.Rule == rule && f.Status == rules.Fail {
			out = append(out, f)
		}
	}
	return out
}

// settingIn finds a setting change in the plan's settings steps.
func settingIn(p *plan.Plan, name string) (plan.SettingChange, *plan.Step, bool) {
	for i := range p.Steps {
		for _, c := range p.Steps[i].Settings {
			if c.Name == name {
				return c, &p.Steps[i], true
			}
		}
	}
	return plan.SettingChange{}, nil, false
}

func heldFor(p *plan.Plan, rule string) []string {
	var out []string
	for _, h := range p.Held {
		if h.Rule == rule {
			out = append(out, h.Why)
		}
	}
	return out
}

// allText is everything a plan and its findings would print.
func allText(r *fix.Result, fs []rules.Finding) string {
	var b strings.Builder
	for _, s := range r.Plan.Steps {
		b.WriteString(s.Summary + "\n" + strings.Join(s.Command, " ") + "\n")
	}
	for _, h := range r.Plan.Held {
		b.WriteString(h.Why + "\n")
	}
	for _, m := range r.Plan.Manual {
		b.WriteString(m.What + "\n")
	}
	for _, t := range r.Texts {
		b.WriteString(t + "\n")
	}
	for _, f := range fs {
		if f.Status == rules.Fail {
			b.WriteString(f.Fix + "\n")
		}
	}
	return b.String()
}
