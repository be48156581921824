package rules

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// host returns the host facts, or reports the rule as not checked.
func (c *Check) host(object string) (*snapshot.Host, bool) {
	if c.S.Host != nil {
		return c.S.Host, true
	}
	reason := "host checks run only on the database host (with a live server whose data directory is local, or --pgdata)"
	if g := c.S.Gap(snapshot.GapFiles); g != "" {
		reason = g
	}
	c.NotChecked(object, reason)
	return nil, false
}

// latestMinor is the newest minor release of each major this pgaegis
// knows; update it with every PostgreSQL release. 15.20 is confirmed by
// the Debian archive on the table's date; the other branches are released
// together with it (the npm registry's 13.23, 14.23, 15.18, 16.14, 17.10,
// 18.4 are one release, two before 15.20). 13 ended with 13.23 on
// 2025-11-13; 14's last release is 14.25, out with 15.20 on its end of
// life, 2026-11-12 (INST-06 fails both majors whatever their minor).
var latestMinor = map[int]int{13: 23, 14: 25, 15: 20, 16: 16, 17: 12, 18: 6}

const releaseTableDate = "2026-11-22"

var prerelease = regexp.MustCompile(`(?i)(devel|alpha|beta|rc)\d*`)

func secretLines(h *snapshot.Host, what string) []snapshot.SecretLine {
	var out []snapshot.SecretLine
	for _, l := range h.SecretLines {
		if strings.Contains(l.What, what) {
			out = append(out, l)
		}
	}
	return out
}

func init() {
	register(&Rule{
		ID: "INST-05", Title: "The running minor release has all known security fixes", Area: AreaInstall, Severity: High,
		Rationale:  "Minor releases are mostly security and data-loss fixes; running an old minor leaves known CVEs open. Pre-release builds are not for production.",
		References: refs(cis("1.5"), stig("V-233513"), devsec("postgres-02")),
		Access:     "any login (server_version); the package manager on the host",
		Check: func(c *Check) {
			if c.S.Server == nil {
				c.NotChecked("server version", "the running version is only known from a live server")
				return
			}
			v := c.S.Server
			obj := "PostgreSQL " + v.Version
			if prerelease.MatchString(v.Version) {
				c.Fail(Problem{Object: obj, Evidence: "pre-release build " + v.Version, Expected: "a released minor version",
					Fix: "# install the current release of the major version", FixKind: FixShell, FixApply: "restart", Changes: manualChange("install the current release of the major version")})
				return
			}
			major, minor := v.VersionNum/10000, v.VersionNum%100
			latest, known := latestMinor[major]
			if h := c.S.Host; h != nil && h.PackageCandidate != "" && h.PackageVersion != "" && h.PackageCandidate != h.PackageVersion {
				c.Fail(Problem{Object: obj, Evidence: fmt.Sprintf("package %s %s is installed; the package manager offers %s", h.Package, h.PackageVersion, h.PackageCandidate),
					Expected: "the newest package of this major", Fix: fmt.Sprintf("apt-get install --only-upgrade %s && systemctl restart postgresql", quote.Shell(h.Package)), FixKind: FixShell, FixApply: "restart",
					Changes: manualChange(fmt.Sprintf("upgrade the package (apt-get install --only-upgrade %s) and restart the server in a maintenance window", quote.Shell(h.Package)))})
				return
			}
			switch {
			case !known:
				c.NotChecked(obj, fmt.Sprintf("this pgaegis knows releases up to %s; PostgreSQL %d is not in its table", releaseTableDate, major))
			case minor < latest:
				c.Fail(Problem{Object: obj, Evidence: fmt.Sprintf("running %d.%d; %d.%d is available (releases known up to %s)", major, minor, major, latest, releaseTableDate),
					Expected: fmt.Sprintf("%d.%d or newer", major, latest), Fix: "# upgrade the server packages to the newest minor release and restart", FixKind: FixShell, FixApply: "restart", Changes: manualChange("upgrade the server packages to the newest minor release and restart")})
			default:
				c.Pass(obj, fmt.Sprintf("%d.%d is the newest minor release known (%s)", major, minor, releaseTableDate))
			}
		},
	})

	register(&Rule{
		ID: "INST-04", Title: "Data checksums are enabled", Area: AreaInstall, Severity: Medium,
		Rationale: "Checksums detect silent corruption (and tampering) of data files; without them damage spreads into backups unnoticed. " +
			"initdb enables them by default from PostgreSQL 18 (before 18 only with --data-checksums); an 18 cluster without them was made with --no-data-checksums or upgraded with pg_upgrade from an older cluster without them (pg_upgrade needs both clusters to agree).",
		References: refs(cis("1.4"), []Reference{{"pgdsat", "1.4.3"}}),
		Check: func(c *Check) {
			v, ok := c.S.Setting("data_checksums")
			if !ok {
				c.NotChecked("setting data_checksums", c.missingSetting("data_checksums"))
				return
			}
			if isOn(v.Value) {
				c.Pass("setting data_checksums", "data_checksums = on")
				return
			}
			fix := "pg_checksums --enable -D <data directory>    # with the server stopped"
			if c.S.Target.DataDir != "" {
				fix = "pg_checksums --enable -D " + quote.Shell(c.S.Target.DataDir) + "    # with the server stopped"
			}
			// pg_checksums needs the server stopped for as long as it
			// rewrites every data file: a maintenance window, not a fix step.
			ev, expected := "data_checksums = off", "on (initdb --data-checksums, or pg_checksums --enable)"
			if m := c.S.MajorVersion(); m >= 18 {
				ev += fmt.Sprintf(" (PostgreSQL %d's initdb enables checksums by default: this cluster was made with --no-data-checksums, or upgraded from one without them)", m)
				expected = "on (the default of initdb from 18; pg_checksums --enable for this cluster)"
			}
			c.Fail(Problem{Object: "setting data_checksums", Evidence: ev, Expected: expected,
				Fix: fix, FixKind: FixShell, FixApply: "restart", Changes: manualChange("in a maintenance window, stop the server and run " + fix)})
		},
	})

	register(&Rule{
		ID: "INST-07", Title: "PGPASSWORD is not set in shell profiles or system environment files", Area: AreaInstall, Severity: Medium,
		Rationale:  "A password exported from a profile is readable by anyone who can read the file and is inherited by every process of the session.",
		References: cis("1.6"), Access: "root (reads every home directory)",
		Check: func(c *Check) {
			h, ok := c.host("shell profiles")
			if !ok {
				return
			}
			for _, l := range secretLines(h, "PGPASSWORD set") {
				loc := fmt.Sprintf("%s:%d", l.File, l.Line)
				c.Fail(Problem{Object: "file " + l.File, Location: loc, Evidence: loc + ": " + l.What + " (value not shown)",
					Expected: "no PGPASSWORD; use ~/.pgpass (0600) or a service file without passwords",
					Fix:      fmt.Sprintf("sed -i '%dd' %s    # then move the password to ~/.pgpass", l.Line, quote.Shell(l.File)), FixKind: FixShell})
			}
		},
	})

	register(&Rule{
		ID: "INST-08", Title: "No running process has PGPASSWORD in its environment", Area: AreaInstall, Severity: Medium, Volatile: true,
		Rationale:  "Process environments are readable through /proc by the same user and by root, and leak into core dumps and crash reports.",
		References: cis("1.7"), Access: "root (reads /proc/<pid>/environ of every process)",
		Check: func(c *Check) {
			h, ok := c.host("processes")
			if !ok {
				return
			}
			if h.ProcsScanned == 0 {
				c.NotChecked("processes", "no process environment was readable (run as root)")
				return
			}
			// One finding per program and user: backends come and go.
			type key struct{ cmd, user string }
			groups := map[key][]int{}
			var order []key
			for _, p := range h.ProcsWithPGPASSWORD {
				k := key{p.Command, p.User}
				if _, ok := groups[k]; !ok {
					order = append(order, k)
				}
				groups[k] = append(groups[k], p.PID)
			}
			sort.Slice(order, func(i, j int) bool { return order[i].cmd+order[i].user < order[j].cmd+order[j].user })
			for _, k := range order {
				c.Fail(Problem{Object: fmt.Sprintf("program %s (user %s)", k.cmd, k.user), Evidence: fmt.Sprintf("%d process(es) of %s run by %s have PGPASSWORD in their environment (value not shown)", len(groups[k]), k.cmd, k.user),
					Expected: "passwords from ~/.pgpass or a passfile, not the environment", Fix: fmt.Sprintf("# remove PGPASSWORD from the service or script that starts %s, use a passfile (0600), restart it", k.cmd), FixKind: FixShell})
			}
		},
	})

	register(&Rule{
		ID: "AUTH-16", Title: "No passwords on command lines or in shell history", Area: AreaAuth, Severity: Medium,
		Rationale:  "Command lines are visible to every local user (ps), and shell histories keep passwords long after they were typed.",
		References: cis("5.1"), Access: "root",
		Check: func(c *Check) {
			h, ok := c.host("command lines")
			if !ok {
				return
			}
			for _, p := range h.ProcsWithPasswordArgs {
				c.Fail(Problem{Object: fmt.Sprintf("process %d (%s)", p.PID, p.Command), Evidence: fmt.Sprintf("process %d %s of user %s has a password on its command line (not shown)", p.PID, p.Command, p.User),
					Expected: "passwords in ~/.pgpass or PGPASSFILE", Fix: "# change the caller to read the password from a passfile; restart it", FixKind: FixShell, Changes: manualChange("change the caller to read the password from a passfile; restart it")})
			}
			for _, l := range secretLines(h, "history") {
				loc := fmt.Sprintf("%s:%d", l.File, l.Line)
				c.Fail(Problem{Object: "file " + l.File, Location: loc, Evidence: loc + ": " + l.What + " (not shown)", Expected: "no passwords in history files",
					Fix: fmt.Sprintf("sed -i '%dd' %s; then change that password", l.Line, quote.Shell(l.File)), FixKind: FixShell})
			}
		},
	})

	register(&Rule{
		ID: "FS-04", Title: "No passwords in service files; .pgpass files are 0600", Area: AreaFiles, Severity: Medium,
		Rationale: "libpq skips a password file with any group or world permission, so such a file is exposed and does not even work; a password in pg_service.conf is readable by everyone who can read the file. " +
			"Files are looked for wherever libpq finds them: PGPASSFILE, PGSERVICEFILE and PGSYSCONFDIR of every running process, ~/.pgpass and ~/.pg_service.conf of every account, the system service file, passfile= in service files, and the clusters' own directories (a file in the data directory is also copied into every base backup).",
		References: cis("2.4"), Access: "root",
		Check: func(c *Check) {
			h, ok := c.host("service files")
			if !ok {
				return
			}
			if h.ConnFiles == nil {
				legacyConnFiles(c, h) // a snapshot from before conn_files
				return
			}
			for _, f := range h.ConnFiles {
				connFileFinding(c, h, f)
			}
		},
	})

	register(&Rule{
		ID: "FS-03", Title: "psql history is not kept", Area: AreaFiles, Severity: Low,
		Rationale:  "psql history keeps every statement typed, including ALTER ROLE ... PASSWORD and data looked at.",
		References: cis("2.3"), Access: "root",
		Check: func(c *Check) {
			h, ok := c.host("psql history")
			if !ok {
				return
			}
			for _, f := range h.PsqlHistory {
				if f.Symlink && strings.HasSuffix(f.Error, "/dev/null") {
					continue
				}
				c.Fail(Problem{Object: "file " + f.Path, Location: f.Path, Evidence: f.Path + " exists", Expected: "absent, or a symlink to /dev/null",
					Fix: fmt.Sprintf("rm -f %s && ln -s /dev/null %s", quote.Shell(f.Path), quote.Shell(f.Path)), FixKind: FixShell})
			}
		},
	})

	register(&Rule{
		ID: "INST-12", Title: "The cluster owner's OS account cannot log in interactively", Area: AreaInstall, Severity: Medium,
		Rationale:  "The owner account reads every data file; a usable password on it is a direct path to the data and to superuser (peer).",
		References: cis("4.1"), Access: "root (reads /etc/shadow)",
		Check: func(c *Check) {
			h, ok := c.host("cluster owner account")
			if !ok {
				return
			}
			if h.Owner == "" || h.OwnerPwState == "" {
				c.NotChecked("cluster owner account", "the owner's password state is unknown (reading /etc/shadow needs root)")
				return
			}
			if h.OwnerPwState == "locked" {
				c.Pass("user "+h.Owner, "password locked")
				return
			}
			c.Fail(Problem{Object: "user " + h.Owner, Evidence: fmt.Sprintf("OS account %s has a %s password (shell %s)", h.Owner, h.OwnerPwState, h.OwnerShell),
				Expected: "password locked; administrators use sudo -u " + h.Owner, Fix: "passwd -l " + quote.Shell(h.Owner), FixKind: FixShell})
		},
	})

	register(&Rule{
		ID: "INST-13", Title: "sudo to the cluster owner needs a password and is limited to administrators", Area: AreaInstall, Severity: Medium,
		Rationale:  "NOPASSWD sudo to the owner turns any compromise of a sudoer's session into full database access without a prompt.",
		References: cis("4.2"), Access: "root (reads /etc/sudoers)",
		Check: func(c *Check) {
			h, ok := c.host("sudoers")
			if !ok {
				return
			}
			for _, r := range h.SudoRules {
				if !strings.Contains(r.What, "NOPASSWD") {
					continue
				}
				loc := fmt.Sprintf("%s:%d", r.File, r.Line)
				c.Fail(Problem{Object: "file " + r.File, Location: loc, Evidence: loc + ": " + r.What, Expected: "sudo rules for the owner require a password and name a DBA group",
					Fix: "visudo -f " + quote.Shell(r.File) + "    # remove NOPASSWD from line " + strconv.Itoa(r.Line), FixKind: FixShell})
			}
		},
	})

	register(&Rule{
		ID: "FS-01", Title: "The cluster owner's umask is 0077", Area: AreaFiles, Severity: Low,
		Rationale:  "A permissive umask leaves files the owner creates (dumps, logs, scripts) readable by others.",
		References: cis("2.1"), Access: "root",
		Check: func(c *Check) {
			h, ok := c.host("umask")
			if !ok {
				return
			}
			if h.OwnerUmask == "" {
				c.NotChecked("user "+h.Owner, "no umask set in the owner's profile files: check the login environment by hand (su - "+h.Owner+" -c umask)")
				return
			}
			if m, err := strconv.ParseInt(h.OwnerUmask, 8, 32); err == nil && m&0o077 == 0o077 {
				c.Pass("user "+h.Owner, "umask "+h.OwnerUmask)
				return
			}
			c.Fail(Problem{Object: "user " + h.Owner, Evidence: "umask " + h.OwnerUmask + " in the owner's profile", Expected: "0077",
				Fix: fmt.Sprintf("echo 'umask 0077' >> %s", quote.Shell(h.OwnerHome+"/.bash_profile")), FixKind: FixShell})
		},
	})

	register(&Rule{
		ID: "INST-03", Title: "PostgreSQL is started by an enabled system service", Area: AreaInstall, Severity: Low,
		Rationale:  "A server started by hand does not come back after a reboot with its hardened settings, and escapes service supervision.",
		References: cis("1.3"),
		Check: func(c *Check) {
			h, ok := c.host("systemd")
			if !ok {
				return
			}
			switch h.ServiceEnabled {
			case "yes":
				c.Pass("systemd", "a postgresql unit is enabled")
			case "no":
				c.Fail(Problem{Object: "systemd", Evidence: "no enabled postgresql unit in /etc/systemd/system/*.wants", Expected: "the cluster's unit enabled",
					Fix: "systemctl enable postgresql", FixKind: FixShell})
			default:
				c.NotChecked("systemd", "no systemd configuration found (container or another init system)")
			}
		},
	})

	register(&Rule{
		ID: "INST-02", Title: "Only one major version of the server is installed", Area: AreaInstall, Severity: Low,
		Rationale:  "Leftover majors keep vulnerable binaries and libraries on the host and invite starting the wrong one.",
		References: refs(cis("1.2"), stig("V-233550", "V-233594")),
		Check: func(c *Check) {
			h, ok := c.host("packages")
			if !ok {
				return
			}
			if len(h.InstalledMajors) > 1 {
				c.Fail(Problem{Object: "server packages", Evidence: fmt.Sprintf("server binaries of majors %v are installed", h.InstalledMajors),
					Expected: "only the running major", Fix: "apt-get purge 'postgresql-<old major>'    # after upgrading every cluster", FixKind: FixShell, Changes: manualChange("after upgrading every cluster, remove the old majors' server packages")})
			} else {
				c.Pass("server packages", fmt.Sprintf("majors installed: %v", h.InstalledMajors))
			}
		},
	})

	register(&Rule{
		ID: "INST-11", Title: "One PostgreSQL instance per host", Area: AreaInstall, Severity: Info, Volatile: true,
		Rationale:  "Several clusters on one host share its accounts and resources; one compromised cluster exposes the others (dev-sec policy).",
		References: devsec("postgres-03"),
		Check: func(c *Check) {
			h, ok := c.host("postmasters")
			if !ok {
				return
			}
			if h.Postmasters > 1 {
				var names []string
				for _, cl := range h.Clusters {
					if cl.Running && cl.DataDir != "" {
						names = append(names, clusterName(h, cl.DataDir))
					}
				}
				ev := fmt.Sprintf("%d PostgreSQL servers are running", h.Postmasters)
				if len(names) > 0 {
					ev += ": " + strings.Join(names, ", ")
				}
				c.Fail(Problem{Object: "host", Evidence: ev, Expected: "one", Fix: "# move the other clusters to their own hosts", FixKind: FixShell, Changes: manualChange("move the other clusters to their own hosts")})
			} else {
				c.Pass("host", map[bool]string{true: "1 server running", false: "no server running"}[h.Postmasters == 1])
			}
		},
	})

	register(&Rule{
		ID: "TLS-07", Title: "FIPS mode is on where FIPS-validated cryptography is required", Area: AreaTLS, Severity: Info,
		Rationale:  "Where policy requires FIPS 140 (US federal systems, STIG), the OS must run OpenSSL in FIPS mode.",
		References: refs(cis("6.7"), stig("V-233583", "V-233584", "V-233585", "V-233619", "V-233623")),
		Check: func(c *Check) {
			h, ok := c.host("FIPS mode")
			if !ok {
				return
			}
			switch h.FIPS {
			case "1":
				c.Pass("kernel", "fips_enabled = 1")
			case "":
				c.NotChecked("kernel", "/proc/sys/crypto/fips_enabled is not present")
			default:
				p := Problem{Object: "kernel", Evidence: "fips_enabled = " + h.FIPS, Expected: "1 where FIPS is required (waive otherwise)",
					Fix: "fips-mode-setup --enable && reboot    # RHEL; Debian has no validated module", FixKind: FixShell, Changes: manualChange("enable the host's FIPS mode (fips-mode-setup --enable on RHEL) and reboot; Debian has no validated module")}
				if c.Profile == "stig" {
					p.Severity, p.SevSet = High, true
				}
				c.Fail(p)
			}
		},
	})

	register(&Rule{
		ID: "OTH-01", Title: "The data directory is on an encrypted volume", Area: AreaHardening, Severity: Medium,
		Rationale:  "A stolen disk, snapshot or decommissioned drive exposes every table unless the volume is encrypted (dm-crypt, cloud volume encryption).",
		References: refs(cis("6.11"), stig("V-233586", "V-233590", "V-233605"), []Reference{{"pgdsat", "1.4.5"}}),
		Check: func(c *Check) {
			h, ok := c.host("data directory volume")
			if !ok {
				return
			}
			switch h.Encrypted {
			case "yes":
				c.Pass("data directory volume", "dm-crypt")
			case "no":
				c.Fail(Problem{Object: "data directory volume", Location: c.S.Target.DataDir, Evidence: "the data directory's block device is not dm-crypt",
					Expected: "LUKS/dm-crypt or provider volume encryption (waive with evidence of the latter)", Fix: "# move the cluster to a LUKS volume (cryptsetup luksFormat ...) or an encrypted cloud volume", FixKind: FixShell, Changes: manualChange("move the cluster to a LUKS volume (cryptsetup luksFormat ...) or an encrypted cloud volume")})
			default:
				c.NotChecked("data directory volume", "the block device behind the data directory could not be identified (container or network storage): confirm encryption with the provider")
			}
		},
	})

	register(&Rule{
		ID: "LOG-28", Title: "The log volume has room (less than 75% used)", Area: AreaLogging, Severity: Medium,
		Rationale:  "When the log volume fills, PostgreSQL stops writing logs (and may stop): the audit trail ends exactly when something is going wrong.",
		References: stig("V-233529", "V-233535", "V-233536", "V-233537", "V-233599"),
		Check: func(c *Check) {
			h, ok := c.host("log volume")
			if !ok {
				return
			}
			if h.LogDiskUsedPct == 0 {
				c.NotChecked("log volume", "the logging collector is off or its directory is not readable")
				return
			}
			if h.LogDiskUsedPct >= 75 {
				c.Fail(Problem{Object: "log volume", Evidence: fmt.Sprintf("the file system holding the logs is %d%% full", h.LogDiskUsedPct),
					Expected: "below 75%, with an alert at 75%", Fix: "# archive or remove old logs, set log_truncate_on_rotation and a retention, grow the volume", FixKind: FixShell, Changes: manualChange("archive or remove old logs, set log_truncate_on_rotation and a retention, grow the volume")})
				return
			}
			c.Pass("log volume", fmt.Sprintf("%d%% used", h.LogDiskUsedPct))
		},
	})

	register(&Rule{
		ID: "AUTH-20", Title: "Repeated login failures trigger a response (fail2ban or equivalent)", Area: AreaAuth, Severity: Low,
		Rationale:  "PostgreSQL has no lockout: without an external response, password guessing can go on forever.",
		References: []Reference{{"user demand", "fail2ban/CrowdSec for PostgreSQL"}},
		Check: func(c *Check) {
			h, ok := c.host("fail2ban")
			if !ok {
				return
			}
			fix := "pgaegis fail2ban --write " + fail2banConn(c.S) + " && fail2ban-client reload    # apt-get install fail2ban first"
			if h.Fail2ban == "yes" {
				if h.Fail2banLogOK == "no" {
					c.Fail(Problem{Object: "fail2ban", Evidence: fmt.Sprintf("jail %s watches %s, which is not where the server logs", h.Fail2banJail, h.Fail2banLogPath),
						Expected: "the jail's logpath on the server's log", Fix: fix, FixKind: FixShell, Changes: manualChange(fix)})
					return
				}
				ev := "a jail watches PostgreSQL"
				if h.Fail2banJail != "" {
					ev = "jail " + h.Fail2banJail + " is enabled"
					if h.Fail2banLogPath != "" {
						ev += " on " + h.Fail2banLogPath
					}
				}
				c.Pass("fail2ban", ev)
				return
			}
			c.Fail(Problem{Object: "fail2ban", Evidence: "no enabled fail2ban jail for PostgreSQL", Expected: "a jail on the server log (or credcheck's ban, or the provider's threat detection)",
				Fix: fix, FixKind: FixShell, Changes: manualChange(fix)})
		},
	})
}

// fail2banConn is how the fix reaches the server: its first socket
// directory and its port, when the snapshot knows them.
func fail2banConn(s *snapshot.Snapshot) string {
	dirs, okDir := s.Setting("unix_socket_directories")
	port, okPort := s.Setting("port")
	if !okDir && !okPort {
		return "[connection options]"
	}
	conn := ""
	if okDir {
		for _, d := range strings.Split(dirs.Value, ",") {
			if d = strings.TrimSpace(d); d != "" && !strings.HasPrefix(d, "@") {
				conn = "-h " + quote.Shell(d) + " "
				break
			}
		}
	}
	if okPort && port.Value != "" && port.Value != "5432" {
		conn += "-p " + quote.Shell(port.Value) + " "
	}
	if conn == "" {
		return "[connection options]"
	}
	return conn + "-U postgres"
}

// legacyConnFiles judges a snapshot taken before conn_files: password=
// lines found in service files and the .pgpass modes.
func legacyConnFiles(c *Check, h *snapshot.Host) {
	for _, l := range secretLines(h, "service file") {
		loc := fmt.Sprintf("%s:%d", l.File, l.Line)
		c.Fail(Problem{Object: "file " + l.File, Location: loc, Evidence: loc + ": password= in a connection service file (value not shown)",
			Expected: "no password= lines; use ~/.pgpass", Fix: fmt.Sprintf("sed -i '%dd' %s    # and add the entry to ~/.pgpass (0600)", l.Line, quote.Shell(l.File)), FixKind: FixShell})
	}
	for _, f := range h.PgpassFiles {
		if !f.Symlink && f.Mode&0o077 != 0 {
			c.Fail(Problem{Object: "file " + f.Path, Location: f.Path, Evidence: fmt.Sprintf("%s mode %s", f.Path, f.ModeString()),
				Expected: "0600", Fix: "chmod 0600 " + quote.Shell(f.Path), FixKind: FixShell, Changes: chmod600(f.Path, f.Mode)})
		}
	}
}

func chmod600(path string, mode uint32) []remedy.Change {
	return []remedy.Change{{File: &remedy.FileMode{Path: path, Mode: os.FileMode(mode & 0o600), From: os.FileMode(mode & 0o777)}}}
}

// connFileFinding judges one password or service file. The evidence says
// how libpq reaches it (which process, whose home, which cluster) and how
// many passwords it holds, never what they are.
func connFileFinding(c *Check, h *snapshot.Host, f snapshot.ConnFile) {
	obj := "file " + f.Path
	mode := fmt.Sprintf("%04o", f.Mode)
	readable := f.Mode&0o044 != 0
	held := "holds no password"
	switch {
	case f.Passwords < 0:
		held = "could not be read (whether it holds passwords is unknown)"
	case f.Passwords == 1:
		held = "holds 1 password (not shown)"
	case f.Passwords > 1:
		held = fmt.Sprintf("holds %d passwords (not shown)", f.Passwords)
	}
	where := connFileWhere(h, f)
	inData := false
	for _, cl := range h.Clusters {
		if cl.DataDir != "" && strings.HasPrefix(f.Path, cl.DataDir+"/") && !strings.Contains(strings.TrimPrefix(f.Path, cl.DataDir+"/"), "/") {
			inData = true
		}
	}
	if f.Kind == "pgpass" {
		if f.File.Symlink && f.Mode == 0 {
			return // a dangling link: nothing for libpq to read
		}
		if f.Ignored && f.Mode&0o077 != 0 {
			exposure := "group/world access"
			if readable {
				exposure = "readable by group or others"
			}
			c.Fail(Problem{Object: obj, Location: f.Path,
				Evidence: fmt.Sprintf("password file %s mode %s: %s (exposed) and ignored by libpq, which skips a password file with group or world access; it %s; %s", f.Path, mode, exposure, held, where),
				Expected: "0600 (u=rw) or less", Fix: "chmod 0600 " + quote.Shell(f.Path), FixKind: FixShell, Changes: chmod600(f.Path, f.Mode)})
			return
		}
		if inData && f.Passwords != 0 {
			c.Fail(Problem{Object: obj, Location: f.Path,
				Evidence: fmt.Sprintf("password file %s (mode %s) sits in a data directory and %s: it is copied into every base backup and replica; %s", f.Path, mode, held, where),
				Expected: "password files outside the data directory (the owner's ~/.pgpass, or a passfile beside it)", Fix: fmt.Sprintf("# move %s out of the data directory (merge it into the owner's ~/.pgpass, 0600) and point passfile= at its new place", quote.Shell(f.Path)), FixKind: FixShell,
				Changes: manualChange("move " + f.Path + " out of the data directory and point passfile= (primary_conninfo) at its new place")})
			return
		}
		note := ""
		if f.Ignored {
			note = " (libpq ignores it: " + f.Why + ")"
		}
		c.Pass(obj, fmt.Sprintf("password file mode %s%s; %s; %s", mode, note, held, where))
		return
	}
	if f.Passwords > 0 {
		lines := make([]string, len(f.PasswordLines))
		del := make([]string, len(f.PasswordLines))
		for i, n := range f.PasswordLines {
			lines[i], del[i] = strconv.Itoa(n), strconv.Itoa(n)+"d"
		}
		exposure := "readable by the owner only"
		if readable {
			exposure = "readable by group or others"
		}
		loc := f.Path
		if len(lines) > 0 {
			loc += ":" + lines[0]
		}
		c.Fail(Problem{Object: obj, Location: loc,
			Evidence: fmt.Sprintf("service file %s (mode %s, %s) has password= on line(s) %s (value not shown); %s", f.Path, mode, exposure, strings.Join(lines, ", "), where),
			Expected: "no password= lines; passwords in a 0600 password file", Fix: fmt.Sprintf("sed -i '%s' %s    # and add the entries to ~/.pgpass (0600)", strings.Join(del, ";"), quote.Shell(f.Path)), FixKind: FixShell})
		return
	}
	if f.Passwords < 0 {
		c.NotChecked(obj, fmt.Sprintf("service file %s could not be read (run as root); %s", f.Path, where))
		return
	}
	c.Pass(obj, fmt.Sprintf("service file mode %s; no password= lines; %s", mode, where))
}

// connFileWhere says how libpq reaches a file: its sources, the processes
// that name it, and, when several clusters run here, which ones it
// belongs to.
func connFileWhere(h *snapshot.Host, f snapshot.ConnFile) string {
	parts := []string{"found as " + strings.Join(f.Sources, ", ")}
	if len(f.Procs) > 0 {
		const show = 5
		var ps []string
		for i, p := range f.Procs {
			if i == show {
				ps = append(ps, fmt.Sprintf("and %d more", len(f.Procs)-show))
				break
			}
			ps = append(ps, fmt.Sprintf("pid %d (%s, user %s) as %s", p.PID, p.Command, p.User, p.Var))
		}
		parts = append(parts, "named in the environment of "+strings.Join(ps, ", "))
	}
	if h.Postmasters > 1 && len(f.Clusters) > 0 {
		var cs []string
		for _, d := range f.Clusters {
			cs = append(cs, clusterName(h, d))
		}
		parts = append(parts, "belongs to "+strings.Join(cs, " and "))
	}
	return strings.Join(parts, "; ")
}

// clusterName names a cluster by its data directory and port.
func clusterName(h *snapshot.Host, dataDir string) string {
	for _, c := range h.Clusters {
		if c.DataDir == dataDir && c.Port != 0 {
			return fmt.Sprintf("cluster %s (port %d)", dataDir, c.Port)
		}
	}
	return "cluster " + dataDir
}
