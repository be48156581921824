package rules

import (
	"fmt"
	"os"
	"time"

	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// filesOrGap returns the files of the kinds asked for, or reports the rule
// as not checked when files were not read at all.
func (c *Check) filesOrGap(object string, kinds ...string) ([]*snapshot.File, bool) {
	if g := c.S.Gap(snapshot.GapFiles); g != "" {
		c.NotChecked(object, g)
		return nil, false
	}
	if !c.S.Target.OnHost {
		c.NotChecked(object, "the server's files were not read: run on the database host, or pass --pgdata / --config-file")
		return nil, false
	}
	var out []*snapshot.File
	for _, k := range kinds {
		out = append(out, c.S.FilesOfKind(k)...)
	}
	if len(out) == 0 {
		c.NotChecked(object, "no such file was read in this audit")
		return nil, false
	}
	return out, true
}

// checkMode fails a file whose permissions exceed what is allowed.
// groupRead tolerates 0640-style group read.
func (c *Check) checkMode(f *snapshot.File, groupRead bool, want uint32) {
	switch {
	case !f.Exists && f.Error != "":
		c.NotChecked("file "+f.Path, "cannot stat: "+f.Error)
		return
	case !f.Exists:
		return
	}
	perm := f.Mode & 0o777
	what := "file"
	if f.IsDir {
		what = "directory"
	}
	obj := what + " " + f.Path
	ev := fmt.Sprintf("%s %s mode %s, owner %s", what, f.Path, f.ModeString(), ownerName(f))
	// The new mode only takes bits away: group read stays where it is
	// tolerated, and nothing the file lacks is added.
	allowed := want
	if groupRead {
		allowed |= 0o040
	}
	ch := []remedy.Change{{File: &remedy.FileMode{Path: f.Path, Mode: os.FileMode(perm & allowed), From: os.FileMode(perm)}}}
	fix := fmt.Sprintf("chmod %04o %s", perm&allowed, quote.Shell(f.Path))
	expected := fmt.Sprintf("%04o", want)
	if groupRead {
		// The fix keeps a group read bit the file has: say so, or the
		// finding's "expected" and its chmod disagree.
		expected = fmt.Sprintf("%04o, or %04o (group read is tolerated)", want, allowed)
	}
	switch {
	case perm&0o022 != 0:
		c.Fail(Problem{Object: obj, Location: f.Path, Evidence: ev + ": writable by group or others",
			Expected: expected, Fix: fix, FixKind: FixShell, Severity: High, SevSet: true, Changes: ch})
	case perm&0o007 != 0:
		c.Fail(Problem{Object: obj, Location: f.Path, Evidence: ev + ": accessible by others",
			Expected: expected, Fix: fix, FixKind: FixShell, Severity: Medium, SevSet: true, Changes: ch})
	case !groupRead && perm&0o070 != 0:
		c.Fail(Problem{Object: obj, Location: f.Path, Evidence: ev + ": group has access",
			Expected: fmt.Sprintf("%04o", want), Fix: fix, FixKind: FixShell, Severity: Medium, SevSet: true, Changes: ch})
	default:
		c.Pass(obj, ev)
	}
}

// eolDates are the community end-of-life dates of each major version.
var eolDates = map[int]string{
	10: "2022-11-10", 11: "2023-11-09", 12: "2024-11-21", 13: "2025-11-13", 14: "2026-11-12",
	15: "2027-11-11", 16: "2028-11-09", 17: "2029-11-08", 18: "2030-11-14",
}

// Now is the clock the end-of-life rule reads (tests pin it).
var Now = time.Now

func init() {
	register(&Rule{
		ID: "FS-05", Title: "The data directory is accessible only by the cluster owner (0700)", Area: AreaFiles, Severity: High,
		Rationale:  "The data directory holds every table, the WAL and pg_authid; group or world access exposes all of it.",
		References: refs(stig("V-233523", "V-233534", "V-233609", "V-233617"), devsec("postgres-20")),
		Check: func(c *Check) {
			fs, ok := c.filesOrGap("data directory", snapshot.KindDataDir)
			if !ok {
				return
			}
			for _, f := range fs {
				c.checkMode(f, false, 0o700)
			}
		},
	})
	register(&Rule{
		ID: "FS-06", Title: "Server configuration files are not writable or readable by others", Area: AreaFiles, Severity: High,
		Rationale:  "Whoever can write postgresql.conf can load libraries into the server (shared_preload_libraries) or turn logging off; it may also hold secrets (primary_conninfo).",
		References: refs(stig("V-233517", "V-233518", "V-233547", "V-233618"), devsec("postgres-10")),
		Check: func(c *Check) {
			fs, ok := c.filesOrGap("postgresql.conf", snapshot.KindConfig, snapshot.KindAutoConf, snapshot.KindInclude)
			if !ok {
				return
			}
			for _, f := range fs {
				c.checkMode(f, true, 0o600)
			}
		},
	})
	register(&Rule{
		ID: "FS-07", Title: "pg_hba.conf and pg_ident.conf are not writable or readable by others", Area: AreaFiles, Severity: High,
		Rationale:  "Write access to pg_hba.conf is write access to who may log in; read access maps the attack surface.",
		References: refs(devsec("postgres-10"), []Reference{{"pgdsat", "2.5"}}),
		Check: func(c *Check) {
			fs, ok := c.filesOrGap("pg_hba.conf", snapshot.KindHBA, snapshot.KindHBAInclude, snapshot.KindIdent)
			if !ok {
				return
			}
			for _, f := range fs {
				c.checkMode(f, true, 0o600)
			}
		},
	})
	register(&Rule{
		ID: "INST-06", Title: "The major version is still supported by the PostgreSQL community", Area: AreaInstall, Severity: High,
		Rationale:  "End-of-life majors get no security fixes: every later CVE stays open.",
		References: refs(stig("V-265871"), devsec("postgres-02")),
		Check: func(c *Check) {
			major := c.S.MajorVersion()
			if major == 0 {
				c.NotChecked("server version", "the server version is unknown (no connection, no PG_VERSION file)")
				return
			}
			eol, ok := eolDates[major]
			obj := fmt.Sprintf("PostgreSQL %d", major)
			if !ok {
				if major < 10 {
					c.Fail(Problem{Object: obj, Evidence: fmt.Sprintf("PostgreSQL %d is long out of support", major), Expected: "a supported major version",
						Fix: "# upgrade with pg_upgrade to a supported major version", FixKind: FixShell, Changes: manualChange("upgrade with pg_upgrade to a supported major version")})
				} else {
					c.NotChecked(obj, "this pgaegis does not know the support window of this version")
				}
				return
			}
			day, _ := time.Parse("2006-01-02", eol)
			if Now().After(day) {
				c.Fail(Problem{Object: obj, Evidence: fmt.Sprintf("PostgreSQL %d reached end of life on %s", major, eol), Expected: "a supported major version",
					Fix: "# upgrade with pg_upgrade to a supported major version", FixKind: FixShell, Changes: manualChange("upgrade with pg_upgrade to a supported major version")})
				return
			}
			c.Pass(obj, fmt.Sprintf("supported until %s", eol))
		},
	})
	register(&Rule{
		ID: "EXT-05.config-errors", Title: "postgresql.conf and its includes load without errors", Area: AreaHardening, Severity: Medium,
		Rationale:  "With an error in its configuration files the server ignores the whole file at reload: settings on disk are not in force, and a restart may fail.",
		References: cis("6.1"),
		Check: func(c *Check) {
			if c.S.Config == nil && c.S.Gap(snapshot.GapConfigFiles) != "" && c.S.ConfigErrors == nil {
				c.NotChecked("postgresql.conf", c.S.Gap(snapshot.GapConfigFiles))
				return
			}
			for _, e := range c.S.ConfigErrors {
				loc := e.File
				if e.Line > 0 {
					loc = fmt.Sprintf("%s:%d", e.File, e.Line)
				}
				c.Fail(Problem{Object: "file " + e.File, Location: loc, Evidence: loc + ": " + e.Msg, Expected: "no errors",
					Fix: "correct " + loc + ", then check with SELECT * FROM pg_file_settings WHERE error IS NOT NULL", FixKind: FixConfig,
					Changes: manualChange("correct " + loc + " (what it meant is not knowable), then check with SELECT * FROM pg_file_settings WHERE error IS NOT NULL")})
			}
		},
	})
}
