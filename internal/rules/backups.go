package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// The backup rules read two sources: the backup directories an audit is
// told about (--backup-dir: pgaegis backup sets, and anything else lying
// there), and the configuration of pgBackRest, WAL-G and Barman on the
// database host. Neither is guessed: a directory or file that could not
// be read makes its rule not checked.

const backupDirAccess = "read access to the backup directories named with --backup-dir (or PGAEGIS_BACKUP_DIR)"

const noBackupDir = "no backup directory given (audit --backup-dir DIR, or PGAEGIS_BACKUP_DIR)"

// backupDirs returns the directories that were read, reporting the ones
// that could not be, and whether any directory was named at all.
func (c *Check) backupDirs(object string) []snapshot.BackupDir {
	return c.backupDirsOr(object, nil)
}

// backupDirsOr is backupDirs with missing directories handed to missing
// instead of reported as not checked (nil: not checked like any error).
func (c *Check) backupDirsOr(object string, missing func(snapshot.BackupDir)) []snapshot.BackupDir {
	b := c.S.Backups
	if b == nil || len(b.Dirs) == 0 {
		c.NotChecked(object, noBackupDir)
		return nil
	}
	var out []snapshot.BackupDir
	for _, d := range b.Dirs {
		if d.Missing && missing != nil {
			missing(d)
			continue
		}
		if d.Error != "" {
			c.NotChecked("backup directory "+d.Path, "not checked: "+d.Error)
			continue
		}
		out = append(out, d)
	}
	return out
}

// backupTools names the backup tools whose configuration the host checks
// found ("" when none): where they are, their own catalogue is what says
// whether backups succeed.
func backupTools(s *snapshot.Snapshot) string {
	h := s.Host
	if h == nil {
		return ""
	}
	var tools []string
	if h.PgBackRest != nil {
		tools = append(tools, "pgBackRest ("+h.PgBackRest.Config+"; check `pgbackrest info`)")
	}
	if len(h.WALG) > 0 {
		tools = append(tools, "WAL-G ("+h.WALG[0].Path+"; check `wal-g backup-list`)")
	}
	if h.Barman != nil && len(h.Barman.Files) > 0 {
		tools = append(tools, "Barman ("+h.Barman.Files[0].Path+"; check `barman list-backups`)")
	}
	return strings.Join(tools, ", ")
}

// setTime is when a set finished (nil when its manifest has no end:
// such a set never completed).
func setTime(s snapshot.BackupSet) *time.Time {
	if s.Finished != nil {
		return s.Finished
	}
	return nil
}

// age renders a duration for evidence: "3 days 4 h", "5 h 12 min", "40 min".
func age(d time.Duration) string {
	if d < 0 {
		return "in the future (" + (-d).Round(time.Minute).String() + " ahead of the scan: check the clocks)"
	}
	d = d.Round(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0:
		return fmt.Sprintf("%d days %d h", days, hours)
	case hours > 0:
		return fmt.Sprintf("%d h %d min", hours, mins)
	}
	return fmt.Sprintf("%d min", mins)
}

func limit(seconds int64) time.Duration { return time.Duration(seconds) * time.Second }

func init() {
	register(&Rule{
		ID: "BKP-01", Title: "Base backups are scheduled and succeed", Area: AreaHardening, Severity: Medium,
		Rationale:  "A backup that stopped being taken weeks ago is found when it is needed. The newest complete backup set in each backup directory must have finished within the allowed age (--backup-max-age, default 26 h: a daily backup with slack). Sites using pgBackRest, WAL-G or Barman check that tool's catalogue.",
		References: cis("7.3"),
		Access:     backupDirAccess,
		Check: func(c *Check) {
			if b := c.S.Backups; b == nil || len(b.Dirs) == 0 {
				if t := backupTools(c.S); t != "" {
					c.NotChecked("backups", "the catalogue of "+t+" is not read by pgaegis: confirm a recent successful full backup there")
					return
				}
				c.NotChecked("backups", noBackupDir+" and no pgBackRest, WAL-G or Barman configuration found: nothing tells pgaegis where backups are")
				return
			}
			maxAge := limit(c.S.Backups.MaxAgeSeconds)
			// A directory that is not there holds no backup: a typo in
			// --backup-dir or a mount that went away must not read as "not checked".
			noDir := func(d snapshot.BackupDir) {
				c.Fail(Problem{Object: "backup directory " + d.Path, Location: d.Path, Evidence: d.Error + ": no backup is kept there",
					Expected: "a backup set finished within " + age(maxAge), Fix: "pgaegis backup --recipients FILE --out " + quote.Shell(d.Path) + "    # and schedule it (cron, systemd timer)", FixKind: FixShell,
					Changes: manualChange("check the backup directory's path (or its mount), then schedule pgaegis backup into " + quote.Shell(d.Path))})
			}
			for _, d := range c.backupDirsOr("backups", noDir) {
				obj := "backup directory " + d.Path
				if d.SetsError != "" {
					c.NotChecked(obj, d.SetsError)
					continue
				}
				var newest *snapshot.BackupSet
				var broken []string
				for i := range d.Sets {
					s := &d.Sets[i]
					if s.Problem != "" || setTime(*s) == nil {
						broken = append(broken, s.Name)
						continue
					}
					if newest == nil || setTime(*s).After(*setTime(*newest)) {
						newest = s
					}
				}
				note := ""
				if len(broken) > 0 {
					note = fmt.Sprintf("; %d incomplete or unreadable sets not counted (%s)", len(broken), someNames(broken))
				}
				if newest == nil {
					c.Fail(Problem{Object: obj, Location: d.Path, Evidence: fmt.Sprintf("no complete backup set in %s%s", d.Path, note),
						Expected: "a backup set finished within " + age(maxAge), Fix: "pgaegis backup --recipients FILE --out " + quote.Shell(d.Path) + "    # and schedule it (cron, systemd timer)", FixKind: FixShell,
						Changes: manualChange("schedule pgaegis backup into " + quote.Shell(d.Path) + " (daily) and check that it succeeds")})
					continue
				}
				a := c.S.Backups.ScannedAt.Sub(*setTime(*newest))
				ev := fmt.Sprintf("newest backup %s finished %s (%s before the scan)%s", newest.Name, setTime(*newest).UTC().Format(time.RFC3339), age(a), note)
				if a > maxAge {
					c.Fail(Problem{Object: obj, Location: newest.Dir, Evidence: ev, Expected: "a backup set finished within " + age(maxAge),
						Fix: "# find why the scheduled backup stopped (cron/systemd journal), then: pgaegis backup --recipients FILE --out " + quote.Shell(d.Path), FixKind: FixShell,
						Changes: manualChange("find why the scheduled backup into " + quote.Shell(d.Path) + " stopped and repair it")})
					continue
				}
				c.Pass(obj, ev)
			}
		},
	})

	register(&Rule{
		ID: "BKP-06", Title: "Restores are tested on a schedule", Area: AreaHardening, Severity: Medium,
		Rationale:  "Only a restore proves a backup: `pgaegis backup verify --restore-test` restores a set into a throwaway server and compares row counts. The newest passing restore test must be within the allowed age (--restore-test-max-age, default 8 days: weekly with slack).",
		References: []Reference{{"pgaegis", "CIS 7.3 'functional'"}},
		Access:     backupDirAccess,
		Check: func(c *Check) {
			if b := c.S.Backups; b == nil || len(b.Dirs) == 0 {
				c.NotChecked("restore tests", noBackupDir+": keep evidence of the last successful restore test by hand")
				return
			}
			maxAge := limit(c.S.Backups.RestoreTestMaxAgeSeconds)
			for _, d := range c.backupDirs("restore tests") {
				obj := "backup directory " + d.Path
				if d.SetsError != "" {
					c.NotChecked(obj, d.SetsError)
					continue
				}
				var good, bad *snapshot.BackupSet
				for i := range d.Sets {
					s := &d.Sets[i]
					if s.RestoreTested == nil {
						continue
					}
					if s.VerifyOK && !s.Verified {
						// Changed since its test (a file truncated or replaced,
						// the manifest edited): the test was of another set.
						continue
					}
					if len(s.RestoreMismatches) == 0 && s.VerifyOK {
						if good == nil || s.RestoreTested.After(*good.RestoreTested) {
							good = s
						}
					} else if bad == nil || s.RestoreTested.After(*bad.RestoreTested) {
						bad = s
					}
				}
				note := ""
				if bad != nil && (good == nil || bad.RestoreTested.After(*good.RestoreTested)) {
					why := strings.Join(append(append([]string(nil), bad.RestoreMismatches...), bad.VerifyProblems...), "; ")
					note = fmt.Sprintf("; a later restore test of %s (%s) failed: %s", bad.Name, bad.RestoreTested.UTC().Format(time.RFC3339), firstN(why, 300))
				}
				fix := "pgaegis backup verify --identity FILE --restore-test " + quote.Shell(d.Path) + "/NEWEST    # weekly"
				if good == nil {
					c.Fail(Problem{Object: obj, Location: d.Path, Evidence: "no passing restore test recorded in " + d.Path + note,
						Expected: "a restore test within " + age(maxAge), Fix: fix, FixKind: FixShell,
						Changes: manualChange("schedule pgaegis backup verify --restore-test of the newest set in " + quote.Shell(d.Path))})
					continue
				}
				a := c.S.Backups.ScannedAt.Sub(*good.RestoreTested)
				ev := fmt.Sprintf("newest passing restore test: %s at %s (%s before the scan)%s", good.Name, good.RestoreTested.UTC().Format(time.RFC3339), age(a), note)
				if a > maxAge || note != "" {
					c.Fail(Problem{Object: obj, Location: good.Dir, Evidence: ev, Expected: "a passing restore test within " + age(maxAge) + ", the newest test passing",
						Fix: fix, FixKind: FixShell, Changes: manualChange("run pgaegis backup verify --restore-test on the newest set in " + quote.Shell(d.Path) + " and schedule it")})
					continue
				}
				c.Pass(obj, ev)
			}
		},
	})

	register(&Rule{
		ID: "BKP-06.verified", Title: "The newest backup has been verified", Area: AreaHardening, Severity: Medium,
		Rationale:  "A backup counts only once `pgaegis backup verify` has decrypted it and checked it against its manifest; a verification record whose hashes no longer match the files on disk means a file was replaced since.",
		References: []Reference{{"pgaegis", "issue 18: verified backups"}},
		Access:     backupDirAccess,
		Check: func(c *Check) {
			for _, d := range c.backupDirs("backup verification") {
				obj := "backup directory " + d.Path
				if d.SetsError != "" {
					c.NotChecked(obj, d.SetsError)
					continue
				}
				var newest *snapshot.BackupSet
				for i := range d.Sets {
					s := &d.Sets[i]
					if s.Started != nil && (newest == nil || s.Started.After(*newest.Started)) {
						newest = s
					}
				}
				if newest == nil {
					// BKP-01 fails a directory without a set.
					c.NotChecked(obj, "no backup set with a readable manifest in "+d.Path)
					continue
				}
				fix := "pgaegis backup verify --identity FILE " + quote.Shell(newest.Dir)
				p := Problem{Object: obj, Location: newest.Dir, Expected: "the newest set verified: its verification says ok and names the manifest's files with matching hashes",
					Fix: fix, FixKind: FixShell, Changes: manualChange("verify " + quote.Shell(newest.Dir) + " with pgaegis backup verify (and after every backup)")}
				switch {
				case newest.VerifiedAt == nil:
					p.Evidence = "the newest set " + newest.Name + " was never verified"
				case !newest.VerifyOK:
					p.Evidence = fmt.Sprintf("the verification of the newest set %s (%s) failed: %s", newest.Name, newest.VerifiedAt.UTC().Format(time.RFC3339), firstN(strings.Join(newest.VerifyProblems, "; "), 300))
					p.Severity, p.SevSet = High, true
				case !newest.Verified:
					why := "its record does not name every file of the manifest with the same hash, or a file's size changed since"
					if newest.Problem != "" {
						why = newest.Problem
					}
					p.Evidence = fmt.Sprintf("the newest set %s was verified at %s but no longer matches: %s", newest.Name, newest.VerifiedAt.UTC().Format(time.RFC3339), why)
					p.Severity, p.SevSet = High, true
				default:
					c.Pass(obj, fmt.Sprintf("the newest set %s was verified at %s, hashes matching", newest.Name, newest.VerifiedAt.UTC().Format(time.RFC3339)))
					continue
				}
				c.Fail(p)
			}
		},
	})

	register(&Rule{
		ID: "BKP-04.files", Title: "Backup files are encrypted", Area: AreaHardening, Severity: Critical,
		Rationale:  "A dump is a full copy of the data. Every file of a backup set must start with the age header; a plaintext dump (pg_dump's PGDMP archive, a tar archive, SQL text, or a gzip/zstd/xz/bzip2/lz4 stream) lying in a backup directory is the easiest place to steal the data from. Only the first 64 bytes of each file are read.",
		References: []Reference{{"pgaegis", "encrypted backups (seeds 001)"}},
		Access:     backupDirAccess,
		Check: func(c *Check) {
			for _, d := range c.backupDirs("backup files") {
				obj := "backup directory " + d.Path
				byPath := map[string]snapshot.BackupEntry{}
				var ps problems
				files, unreadable := 0, 0
				for _, e := range d.Entries {
					byPath[e.Path] = e
					if e.IsDir || e.Symlink {
						continue
					}
					files++
					switch {
					case e.Content == snapshot.ContentUnreadable:
						unreadable++
						c.NotChecked("file "+e.Path, "not checked: "+e.Detail)
					case e.Plaintext():
						ps.add(d.Path, Problem{Object: "file " + e.Path, Location: e.Path,
							Evidence: fmt.Sprintf("%s is %s, not encrypted (%d bytes)", e.Path, plainKind(e), e.Size),
							Expected: "only age-encrypted files (pgaegis backup)", Fix: "# encrypt it or take a new encrypted backup (pgaegis backup), then remove it: shred -u " + quote.Shell(e.Path), FixKind: FixShell,
							Changes: manualChange("take an encrypted backup (pgaegis backup) to replace " + quote.Shell(e.Path) + ", then remove the plaintext file (shred -u)")})
					}
				}
				// A set's own files must be age files whatever they are otherwise.
				for _, s := range d.Sets {
					for _, name := range s.Files {
						p := filepath.Join(s.Dir, name)
						e, ok := byPath[p]
						if !ok || e.Content == snapshot.ContentAge || e.Plaintext() || e.Content == snapshot.ContentUnreadable {
							continue // missing files are the set's problem (BKP-01, BKP-06.verified)
						}
						ps.add(d.Path, Problem{Object: "file " + p, Location: p, Evidence: fmt.Sprintf("%s, named in the manifest of %s, does not start with the age header", p, s.Name),
							Expected: "every file of a set starts with " + fmt.Sprintf("%q", "age-encryption.org/v1"), Fix: "# take a new backup (pgaegis backup) and remove " + quote.Shell(s.Dir), FixKind: FixShell,
							Severity: High, SevSet: true, Changes: manualChange("replace set " + quote.Shell(s.Dir) + " with a new encrypted backup")})
					}
				}
				c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
					return "files in backup directory " + k, fmt.Sprintf("%s files in %s are not encrypted: %s", textsafe.Thousands(len(members)), k, someNames(memberNames(members))),
						"take encrypted backups (pgaegis backup) to replace them, then remove the plaintext files (shred -u)"
				})
				switch {
				case d.Truncated:
					c.NotChecked(obj, fmt.Sprintf("only the first %d entries of %s were looked at", len(d.Entries), d.Path))
				case len(ps.keys) == 0 && unreadable == 0:
					c.Pass(obj, fmt.Sprintf("%d files in %d sets and beside them: no plaintext dump, every set file starts with the age header", files, len(d.Sets)))
				}
			}
		},
	})

	register(&Rule{
		ID: "BKP-05.dirs", Title: "Backup directories and files are private to the backup account", Area: AreaFiles, Severity: High,
		Rationale:  "Encrypted or not, a backup that others can replace or delete is not a backup, and a plaintext one they can read is the data. Backup directories should be 0700 and their files 0600, owned by the account that runs the audit or backups, postgres, or the cluster owner.",
		References: stig("V-233617"),
		Access:     backupDirAccess,
		Check: func(c *Check) {
			b := c.S.Backups
			owners := map[string]bool{"postgres": true}
			if b != nil && b.User != "" {
				owners[b.User] = true
			}
			if c.S.Host != nil && c.S.Host.Owner != "" {
				owners[c.S.Host.Owner] = true
			}
			var ownerList []string
			for o := range owners {
				ownerList = append(ownerList, o)
			}
			sort.Strings(ownerList)
			for _, d := range c.backupDirs("backup directories") {
				dir := d.Dir
				note := ""
				if d.Target != nil {
					dir = *d.Target
					note = " (" + d.Path + " is a symlink to " + d.Resolved + ")"
				}
				var ps problems
				check := func(f snapshot.File, isRoot bool) {
					want := uint32(0o600)
					what := "file"
					if f.IsDir {
						want, what = 0o700, "directory"
					}
					perm := f.Mode & 0o777
					obj := what + " " + f.Path
					ev := fmt.Sprintf("%s %s mode %04o, owner %s", what, f.Path, perm, ownerName(&f))
					if isRoot {
						ev += note
					}
					switch {
					case perm&^want != 0:
						sev := Medium
						if perm&0o022 != 0 {
							sev = High
						}
						ps.add(d.Path, Problem{Object: obj, Location: f.Path, Evidence: ev + ": " + accessWho(perm), Expected: fmt.Sprintf("%04o or stricter", want),
							Fix: fmt.Sprintf("chmod %04o %s", perm&want, quote.Shell(f.Path)), FixKind: FixShell, Severity: sev, SevSet: true,
							Changes: []remedy.Change{{File: &remedy.FileMode{Path: f.Path, Mode: os.FileMode(perm & want), From: os.FileMode(perm)}}}})
					case f.Owner == "" || !owners[f.Owner]:
						ps.add(d.Path, Problem{Object: obj, Location: f.Path, Evidence: ev + ": not owned by the backup account", Expected: "owned by " + strings.Join(ownerList, ", "),
							Fix: "chown postgres " + quote.Shell(f.Path), FixKind: FixShell, Severity: Medium, SevSet: true,
							Changes: manualChange("make " + quote.Shell(f.Path) + " owned by the account that runs the backups")})
					case isRoot:
						c.Pass(obj, ev)
					}
				}
				check(dir, true)
				for _, e := range d.Entries {
					switch {
					case e.Symlink:
						c.NotChecked("file "+e.Path, "not checked: "+e.Error+" (links in a backup directory are not followed)")
					case e.Exists:
						check(e.File, false)
					}
				}
				c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
					return "files in backup directory " + k, fmt.Sprintf("%s files and directories in %s are open to others or owned by another account: %s", textsafe.Thousands(len(members)), k, someNames(memberNames(members))),
						"chmod 0700 the directories and 0600 the files of " + quote.Shell(k) + " (find " + quote.Shell(k) + " -type d -exec chmod 0700 {} + ; find " + quote.Shell(k) + " -type f -exec chmod 0600 {} +), owned by the backup account"
				})
				if d.Truncated {
					c.NotChecked("backup directory "+d.Path, fmt.Sprintf("only the first %d entries of %s were looked at", len(d.Entries), d.Path))
				}
			}
		},
	})

	register(&Rule{
		ID: "BKP-03", Title: "A backup tool is configured", Area: AreaHardening, Severity: Medium,
		Rationale:  "A backup tool with a repository and retention is what makes a restore possible after ransomware or an operator error.",
		References: cis("8.2"),
		Check: func(c *Check) {
			if b := c.S.Backups; b != nil {
				for _, d := range b.Dirs {
					if len(d.Sets) > 0 {
						c.Pass("pgaegis backups", fmt.Sprintf("%d backup sets in %s", len(d.Sets), d.Path))
						return
					}
				}
			}
			h, ok := c.host("backup tool")
			if !ok {
				return
			}
			if h.PgBackRest != nil && len(h.PgBackRest.Repos) > 0 {
				c.Pass("pgBackRest", fmt.Sprintf("%d repositories in %s", len(h.PgBackRest.Repos), h.PgBackRest.Config))
				return
			}
			if len(h.WALG) > 0 {
				c.Pass("WAL-G", "WAL-G configuration in "+h.WALG[0].Path)
				return
			}
			if h.Barman != nil && len(h.Barman.Servers) > 0 {
				c.Pass("Barman", fmt.Sprintf("%d Barman servers configured (%s)", len(h.Barman.Servers), h.Barman.Servers[0].Config))
				return
			}
			if v, ok := c.S.Setting("archive_command"); ok && (strings.Contains(v.Value, "wal-g") || strings.Contains(v.Value, "barman") || strings.Contains(v.Value, "pgbackrest")) {
				c.Pass("backup tool", "archive_command hands WAL to a backup tool")
				return
			}
			if h.PgBackRest != nil && h.PgBackRest.Unreadable != "" {
				c.NotChecked("pgBackRest", "not checked: "+h.PgBackRest.Unreadable)
				return
			}
			c.NotChecked("backup tool", "no pgBackRest, WAL-G or Barman configuration found, no pgaegis backup directory given, and archive_command names no known tool: confirm backups (provider snapshots, other tools) by hand")
		},
	})

	register(&Rule{
		ID: "BKP-04", Title: "Backup repositories are encrypted", Area: AreaHardening, Severity: High,
		Rationale:  "A backup is a full copy of the data; an unencrypted repository (or bucket) is the easiest place to steal it from. pgBackRest needs repoN-cipher-type; WAL-G a libsodium or OpenPGP key (WALG_LIBSODIUM_KEY[_PATH], WALG_PGP_KEY[_PATH]) or KMS client-side encryption, and a build that has the cipher; Barman (3.14 and later) encryption = gpg with encryption_key_id, which encrypts tar-format backups and WAL only after they are written. A configuration file that cannot be read is not checked.",
		References: []Reference{{"pgaegis", "encrypted backups (seeds 001)"}},
		Check: func(c *Check) {
			h, ok := c.host("backup repositories")
			if !ok {
				return
			}
			found := false
			if pb := h.PgBackRest; pb != nil {
				found = true
				if pb.Unreadable != "" {
					c.NotChecked("pgBackRest "+pb.Config, "not checked: "+pb.Unreadable)
				}
				for _, r := range pb.Repos {
					if r.CipherType == "" || r.CipherType == "none" {
						c.Fail(Problem{Object: "pgBackRest " + r.Name, Location: pb.Config, Evidence: fmt.Sprintf("%s (%s %s) has no repo cipher", r.Name, r.Type, r.Path),
							Expected: r.Name + "-cipher-type=aes-256-cbc with a cipher pass", Fix: fmt.Sprintf("%s-cipher-type=aes-256-cbc\n%s-cipher-pass=<random>    # in %s (new repository)", textsafe.String(r.Name), textsafe.String(r.Name), textsafe.String(pb.Config)), FixKind: FixConfig,
							// An existing repository cannot be encrypted in place.
							Changes: manualChange(fmt.Sprintf("create a new encrypted pgBackRest repository (%s-cipher-type=aes-256-cbc with a random cipher pass kept apart from the backups), take a full backup into it, then retire %s", textsafe.String(r.Name), textsafe.String(r.Name)))})
						continue
					}
					c.Pass("pgBackRest "+r.Name, fmt.Sprintf("%s cipher %s (the passphrase cannot be rotated for an existing repository)", r.Name, r.CipherType))
				}
			}
			if len(h.WALG) > 0 {
				found = true
				walgCheck(c, h.WALG)
			}
			if h.Barman != nil {
				found = true
				barmanCheck(c, h.Barman)
			}
			if !found {
				c.NotChecked("backup repositories", "no pgBackRest, WAL-G or Barman configuration found (pgaegis backup directories: BKP-04.files)")
			}
		},
	})

	register(&Rule{
		ID: "BKP-05", Title: "Backup configuration is readable only by the backup account", Area: AreaFiles, Severity: High,
		Rationale:  "The backup configuration holds repository credentials and cipher passes (pgbackrest.conf, .walg.json or WAL-G's env directory with its keys, Barman's files).",
		References: stig("V-233617"),
		Check: func(c *Check) {
			h, ok := c.host("backup configuration")
			if !ok {
				return
			}
			found := false
			if h.PgBackRest != nil && h.PgBackRest.File != nil {
				found = true
				c.checkMode(h.PgBackRest.File, true, 0o640)
			}
			for _, w := range h.WALG {
				if w.File != nil && !w.File.Symlink {
					found = true
					want := uint32(0o600)
					if w.File.IsDir {
						want = 0o700
					}
					c.checkMode(w.File, false, want)
				}
			}
			if h.Barman != nil {
				for _, f := range h.Barman.Files {
					if f.File != nil && !f.File.Symlink {
						found = true
						c.checkMode(f.File, true, 0o640)
					}
				}
			}
			if !found {
				c.NotChecked("backup configuration", "no pgBackRest, WAL-G or Barman configuration found")
			}
		},
	})
}

// walgCheck: WAL-G merges its config file and environment, so one source
// with a key is taken to encrypt; each unreadable source is not checked.
func walgCheck(c *Check, cfgs []snapshot.WALGConfig) {
	var keyed, sse, plain, unread []string
	for _, w := range cfgs {
		switch {
		case w.Unreadable != "":
			unread = append(unread, w.Path)
			c.NotChecked("WAL-G "+w.Path, "not checked: "+w.Unreadable)
		case len(w.Encryption) > 0:
			keyed = append(keyed, w.Path+" ("+strings.Join(w.Encryption, ", ")+")")
		case len(w.ServerSide) > 0:
			sse = append(sse, w.Path+" ("+strings.Join(w.ServerSide, ", ")+")")
		default:
			plain = append(plain, w.Path)
		}
	}
	switch {
	case len(keyed) > 0:
		c.Pass("WAL-G", "client-side encryption configured in "+strings.Join(keyed, "; ")+" (names only; WAL-G before 1.1 built without libsodium ignored the key: check `wal-g --version`)")
	case len(sse) > 0:
		c.Pass("WAL-G", "storage-side encryption only, in "+strings.Join(sse, "; ")+": the storage provider holds the key; WALG_LIBSODIUM_KEY_PATH or WALG_PGP_KEY_PATH would encrypt before upload")
	case len(plain) > 0 && len(unread) == 0:
		c.Fail(Problem{Object: "WAL-G", Location: plain[0], Evidence: "WAL-G configuration sets no encryption key (" + strings.Join(plain, "; ") + "): backups and WAL are uploaded in clear",
			Expected: "WALG_LIBSODIUM_KEY_PATH (or WALG_PGP_KEY_PATH) naming a key file readable only by the backup account", Fix: "# in " + plain[0] + ": WALG_LIBSODIUM_KEY_PATH=/etc/wal-g/libsodium.key (32 random bytes, mode 0600), WALG_LIBSODIUM_KEY_TRANSFORM=none", FixKind: FixConfig,
			Changes: manualChange("configure WAL-G client-side encryption (WALG_LIBSODIUM_KEY_PATH with a key file kept apart from the backups), then take a new full backup")})
	}
}

// barmanCheck reads each server's effective options (its own, else the
// [barman] section's).
func barmanCheck(c *Check, b *snapshot.Barman) {
	for _, f := range b.Files {
		if f.Unreadable != "" {
			c.NotChecked("Barman "+f.Path, "not checked: "+f.Unreadable)
		}
	}
	for _, s := range b.Servers {
		obj := "Barman server " + s.Name
		method := s.BackupMethod
		if method == "" {
			method = "rsync" // Barman's default
		}
		switch {
		case s.Encryption != "gpg":
			enc := s.Encryption
			if enc == "" {
				enc = "not set"
			}
			c.Fail(Problem{Object: obj, Location: s.Config, Evidence: fmt.Sprintf("server %s: encryption %s: Barman encrypts nothing itself without encryption = gpg (Barman 3.14 and later)", s.Name, enc),
				Expected: "encryption = gpg with encryption_key_id (Barman 3.14+), backup_method = postgres with backup_compression, or an encrypted file system for barman_home",
				Fix:      "# in the [" + s.Name + "] section of " + strings.SplitN(s.Config, ":", 2)[0] + ":\nbackup_method = postgres\nbackup_compression = gzip\nencryption = gpg\nencryption_key_id = <GPG key id>", FixKind: FixConfig,
				Changes: manualChange("enable Barman's GPG encryption for server " + s.Name + " (Barman 3.14+, tar backups) or keep barman_home on an encrypted volume")})
		case !s.EncryptionKeyID:
			c.Fail(Problem{Object: obj, Location: s.Config, Evidence: fmt.Sprintf("server %s: encryption = gpg without encryption_key_id", s.Name),
				Expected: "encryption_key_id naming the GPG key", Fix: "encryption_key_id = <GPG key id>", FixKind: FixConfig,
				Changes: manualChange("set encryption_key_id for Barman server " + s.Name)})
		case method != "postgres" || s.BackupCompression == "" || s.BackupCompression == "none":
			c.Fail(Problem{Object: obj, Location: s.Config, Evidence: fmt.Sprintf("server %s: encryption = gpg, but backup_method = %s, backup_compression %q: Barman encrypts tar-format backups (backup_method = postgres with backup_compression) and WAL, so these base backups stay in clear", s.Name, method, s.BackupCompression),
				Expected: "backup_method = postgres with backup_compression (tar format) so that base backups are encrypted", Fix: "backup_method = postgres\nbackup_compression = gzip", FixKind: FixConfig,
				Changes: manualChange("switch Barman server " + s.Name + " to backup_method = postgres with backup_compression so its base backups are encrypted")})
		default:
			c.Pass(obj, fmt.Sprintf("server %s: encryption = gpg with a key id, tar backups (%s): Barman writes each backup in clear first and encrypts it at the end", s.Name, s.BackupCompression))
		}
	}
}

func plainKind(e snapshot.BackupEntry) string {
	switch e.Content {
	case snapshot.ContentPgDump:
		return "a plaintext pg_dump archive (" + e.Detail + ")"
	case snapshot.ContentPgDumpTar:
		return "a plaintext pg_dump tar archive"
	case snapshot.ContentSQLDump:
		return "a plaintext SQL dump"
	}
	return "a " + e.Detail + " stream (a compressed plaintext dump)"
}

func accessWho(perm uint32) string {
	switch {
	case perm&0o022 != 0:
		return "writable by group or others"
	case perm&0o007 != 0:
		return "accessible by others"
	}
	return "group has access"
}

func firstN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
