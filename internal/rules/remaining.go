package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// manual registers a control that needs a person (or a policy pgaegis
// does not have): it is reported as not checked, saying what to look at.
func manual(id, title, area string, sev Severity, what string, r []Reference) {
	register(&Rule{ID: id, Title: title, Area: area, Severity: sev, Rationale: "Manual control: " + what, References: r, Access: "a person",
		Check: func(c *Check) { c.NotChecked("", "manual: "+what) }})
}

func init() {
	register(&Rule{
		ID: "TLS-05", Title: "The server certificate is valid, not expiring, with a strong key and signature", Area: AreaTLS, Severity: High,
		Rationale:  "An expired certificate breaks verify-full clients (who then get told to use sslmode=require); weak keys or SHA-1 signatures can be forged.",
		References: refs(stig("V-233603"), []Reference{{"check_postgres", "#209"}}),
		Access:     "read access to ssl_cert_file on the host",
		Check: func(c *Check) {
			if v, ok := c.S.Setting("ssl"); ok && !isOn(v.Value) {
				c.NotChecked("server certificate", "not applicable: ssl is off (see TLS-01)")
				return
			}
			cert := c.S.ServerCert
			if cert == nil {
				reason := "the certificate file was not read (run on the database host; pgaegis tls probe checks it over the network)"
				if g := c.S.Gap(snapshot.GapFiles); g != "" {
					reason = g
				}
				c.NotChecked("server certificate", reason)
				return
			}
			obj := "certificate " + cert.Path
			if cert.Error != "" {
				c.Fail(Problem{Object: obj, Location: cert.Path, Evidence: cert.Error, Expected: "a readable PEM certificate", Fix: "pgaegis tls issue server --ca '<CA dir>' --host '<name>' --out " + quote.Shell(filepath.Dir(cert.Path)), FixKind: FixShell, FixApply: "reload"})
				return
			}
			now := Now()
			days := int(cert.NotAfter.Sub(now).Hours() / 24)
			var problems []string
			sev := Medium
			switch {
			case now.After(cert.NotAfter):
				problems = append(problems, fmt.Sprintf("expired on %s", cert.NotAfter.Format("2006-01-02")))
				sev = Critical
			case days < 30:
				problems = append(problems, fmt.Sprintf("expires in %d days (%s)", days, cert.NotAfter.Format("2006-01-02")))
				sev = High
			}
			if now.Before(cert.NotBefore) {
				problems = append(problems, "not valid before "+cert.NotBefore.Format("2006-01-02"))
				sev = max(sev, High)
			}
			if (cert.KeyType == "RSA" && cert.KeyBits < 2048) || (cert.KeyType == "ECDSA" && cert.KeyBits < 256) {
				problems = append(problems, fmt.Sprintf("weak %s key of %d bits", cert.KeyType, cert.KeyBits))
				sev = max(sev, High)
			}
			if strings.Contains(cert.SignatureAlg, "SHA1") || strings.Contains(cert.SignatureAlg, "MD5") {
				problems = append(problems, "signed with "+cert.SignatureAlg)
				sev = max(sev, High)
			}
			if cert.SelfSigned {
				problems = append(problems, "self-signed (clients cannot verify it without pinning it as their root)")
			}
			if len(problems) == 0 {
				c.Pass(obj, fmt.Sprintf("%s %d-bit, %s, valid until %s (%d days)", cert.KeyType, cert.KeyBits, cert.SignatureAlg, cert.NotAfter.Format("2006-01-02"), days))
				return
			}
			c.Fail(Problem{Object: obj, Location: cert.Path, Severity: sev, SevSet: true,
				Evidence: fmt.Sprintf("%s (subject %s, issuer %s): %s", cert.Path, cert.Subject, cert.Issuer, strings.Join(problems, "; ")),
				Expected: "issued by your CA, ECDSA P-256 or RSA ≥ 2048, SHA-256 or better, more than 30 days left",
				Fix:      "pgaegis tls issue server --ca '<CA dir>' --host '<name>' --out " + quote.Shell(filepath.Dir(cert.Path)) + "    # then SELECT pg_reload_conf();", FixKind: FixShell, FixApply: "reload"})
		},
	})

	register(&Rule{
		ID: "TLS-06", Title: "Client certificates can be verified (ssl_ca_file, and a CRL when used)", Area: AreaTLS, Severity: Low,
		Rationale:  "Without ssl_ca_file the server cannot ask for or check client certificates; without a CRL a revoked client certificate keeps working.",
		References: stig("V-233577", "V-233615"),
		Check: func(c *Check) {
			if v, ok := c.S.Setting("ssl"); ok && !isOn(v.Value) {
				c.NotChecked("setting ssl_ca_file", "not applicable: ssl is off (see TLS-01)")
				return
			}
			ca, ok := c.setting("ssl_ca_file")
			if !ok {
				return
			}
			usesCerts := false
			if c.S.HBA != nil {
				for _, r := range c.S.HBA.Rules {
					if r.Method == "cert" {
						usesCerts = true
					}
					if _, ok := r.Option("clientcert"); ok {
						usesCerts = true
					}
				}
			}
			if ca.Value == "" {
				p := c.setProblem(ca, "root.crt", "a CA file for client certificates (required by STIG where PKI authentication is mandated)")
				if !usesCerts && c.Profile != "stig" {
					c.NotChecked("setting ssl_ca_file", "no pg_hba.conf rule uses client certificates; required only where PKI authentication is policy (--profile stig)")
					return
				}
				c.Fail(p)
				return
			}
			crl, _ := c.S.Setting("ssl_crl_file")
			crlDir, _ := c.S.Setting("ssl_crl_dir")
			if usesCerts && crl.Value == "" && crlDir.Value == "" {
				p := c.setProblem(crl, "root.crl", "a certificate revocation list (ssl_crl_file or ssl_crl_dir)")
				p.Evidence = "client certificates are used but no CRL is configured"
				c.Fail(p)
				return
			}
			c.Pass("setting ssl_ca_file", settingEvidence(ca))
		},
	})

	register(&Rule{
		ID: "TLS-08", Title: "On the wire, the server refuses plaintext sessions and old TLS versions", Area: AreaTLS, Severity: High,
		Rationale:  "Settings can say one thing and a proxy or an old build another; only a handshake from outside shows what clients really get.",
		References: []Reference{{"pgaegis", "testssl practice"}},
		Access:     "network access to the server port",
		Check: func(c *Check) {
			p := c.S.Probe
			if p == nil {
				c.NotChecked("network", "no TLS probe in this audit (socket connection, files audit, or --no-probe): run pgaegis tls probe HOST:PORT")
				return
			}
			obj := "port " + p.Address
			fix := "ssl = on, ssl_min_protocol_version = 'TLSv1.2', and only hostssl rules (host/hostnossl only with reject); then reload"
			var bad []string
			if !p.TLSOffered {
				bad = append(bad, "the server does not offer TLS")
			}
			if p.PlaintextAccepted {
				bad = append(bad, "an unencrypted session reached authentication ("+p.PlaintextAnswer+")")
			}
			if p.TLSOffered && acceptedVersions(p.Protocols) == "no TLS version accepted" && len(p.Errors) == 0 {
				// A yes to SSLRequest and then no handshake at any version:
				// what the server really accepts is not known.
				bad = append(bad, "TLS is offered but no handshake succeeded (no version, suite or group in common with the probe)")
			}
			for _, v := range []string{"TLSv1.0", "TLSv1.1"} {
				if p.Protocols[v] {
					bad = append(bad, v+" accepted")
				}
				// Direct TLS (17+) is a second way in: a proxy in front
				// of the server may answer it with other versions.
				if p.DirectProtocols[v] && !p.Protocols[v] {
					bad = append(bad, v+" accepted over direct TLS")
				}
			}
			direct := directTLSNote(p, c.S.MajorVersion())
			if len(bad) > 0 {
				// What the probe saw is closed by other rules' steps (TLS-01
				// ssl, TLS-02 protocol, AUTH-05 hostssl lines): this finding
				// only says to look again after them.
				c.Fail(Problem{Object: obj, Evidence: "probe of " + p.Address + ": " + strings.Join(bad, "; ") + direct, Expected: "TLS only, 1.2 or newer", Fix: fix, FixKind: FixConfig, FixApply: "reload",
					Changes: manualChange(fix + ": the TLS-01, TLS-02 and AUTH-05 steps of the plan do this; probe again after them (pgaegis tls probe " + p.Address + ")")})
				return
			}
			c.Pass(obj, "TLS offered, plaintext refused, no TLS below 1.2"+direct)
		},
	})

	register(&Rule{
		ID: "FS-02", Title: "The extension directory is owned by root and not writable by others", Area: AreaFiles, Severity: High,
		Rationale:  "Whoever can write the extension directory can replace the SQL that CREATE EXTENSION runs as superuser.",
		References: refs(cis("2.2"), stig("V-233607")),
		Check:      rootOwnedCheck(snapshot.KindExtDir, "extension directory"),
	})

	register(&Rule{
		ID: "FS-08", Title: "Server binaries and libraries are owned by root and not writable by the cluster owner", Area: AreaFiles, Severity: High,
		Rationale:  "If the cluster owner can write the postgres binary or its libraries, a compromise of the server process survives restarts and upgrades.",
		References: stig("V-233517", "V-233609"),
		Check:      rootOwnedCheck(snapshot.KindBinDir, "binaries", snapshot.KindLibDir),
	})

	register(&Rule{
		ID: "FS-09", Title: "WAL and tablespace directories are protected like the data directory", Area: AreaFiles, Severity: Medium,
		Rationale:  "WAL holds every recent change in full; a tablespace directory holds its tables; each needs the data directory's protection.",
		References: refs(cis("8.1"), []Reference{{"pgdsat", "1.4.4"}}),
		Check: func(c *Check) {
			fs, ok := c.filesOrGap("WAL directory", snapshot.KindWALDir, snapshot.KindTablespace)
			if !ok {
				return
			}
			for _, f := range fs {
				c.checkMode(f, false, 0o700)
			}
		},
	})

	register(&Rule{
		ID: "FS-10", Title: "Unix socket directory and lock files are not writable by others", Area: AreaFiles, Severity: Low,
		Rationale:  "A world-writable socket directory without the sticky bit lets a local user replace the socket and capture passwords.",
		References: []Reference{{"pgdsat", "2.6"}},
		Check: func(c *Check) {
			fs, ok := c.filesOrGap("socket", snapshot.KindSocket)
			if !ok {
				return
			}
			for _, f := range fs {
				if !f.Exists {
					continue
				}
				if f.Mode&0o006 != 0 {
					if v, ok := c.S.Setting("unix_socket_permissions"); ok && v.Value == "0777" {
						continue // NET-04 reports the setting
					}
				}
				c.Pass("socket "+f.Path, "mode "+f.ModeString())
			}
		},
	})

	register(&Rule{
		ID: "LOG-30", Title: "Few roles can change what is audited", Area: AreaLogging, Severity: Medium,
		Rationale:  "Superusers can switch logging and pgAudit off for their session; more than a handful of them makes the audit trail optional.",
		References: stig("V-233534", "V-233600", "V-233607", "V-233609", "V-233618"),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			var supers []string
			for _, r := range roles {
				if r.Superuser {
					supers = append(supers, r.Name)
				}
			}
			if len(supers) > 3 {
				c.Fail(Problem{Object: "superusers", Evidence: fmt.Sprintf("%d roles are superusers and can turn auditing off: %s", len(supers), strings.Join(supers, ", ")),
					Expected: "at most a few administrators", Fix: "ALTER ROLE <role> NOSUPERUSER; for each one that is not an administrator", FixKind: FixSQL,
					Changes: manualChange("decide which of these superusers are administrators; for each other one: ALTER ROLE <role> NOSUPERUSER (PRIV-01 plans it for roles that are not designated)")})
				return
			}
			c.Pass("superusers", strings.Join(supers, ", "))
		},
	})

	register(&Rule{
		ID: "REPL-04.hba-ssl", Title: "Replication rules require TLS", Area: AreaAuth, Severity: High,
		Rationale:  "A 'host replication' rule lets a standby (or anyone with its credentials) stream the whole cluster in clear text.",
		References: cis("7.5"),
		Check: func(c *Check) {
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				if !hasReplication(r) || r.Method == "reject" || !r.IsHost() || r.Type == hba.HostSSL || r.Type == hba.HostGSSEnc || loopbackOnly(r) {
					continue
				}
				p := replaceLine(r, hba.HostSSL, r.Method)
				p.Evidence += ": replication without TLS"
				p.Expected = "hostssl replication ..."
				c.Fail(p)
			}
		},
	})

	register(&Rule{
		ID: "OTH-04", Title: "Functions do not build dynamic SQL by string concatenation", Area: AreaRoles, Severity: Medium,
		Rationale:  "EXECUTE 'SELECT ... ' || param is SQL injection inside the database; format() with %I and %L, or USING, is not.",
		References: stig("V-233527", "V-233528"),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			var ps problems
			for _, d := range dbs {
				for _, f := range d.Functions {
					if f.ConcatInExec && f.Extension == "" {
						sev := Medium
						if f.SecDef {
							sev = High
						}
						ps.add(d.Name+"\x00"+f.Schema+"\x00"+sev.String(), Problem{Object: fmt.Sprintf("function %s.%s", d.Name, f.Signature()), Severity: sev, SevSet: true,
							Evidence: fmt.Sprintf("%s runs EXECUTE on a concatenated string (security definer: %v)", f.Signature(), f.SecDef),
							Expected: "EXECUTE format('... %I ... %L', ...) or EXECUTE ... USING", Fix: funcFix(f, func(fn string) string {
								return "-- rewrite the dynamic SQL of " + fn + " with format()/USING, in database " + quote.Ident(d.Name)
							}), FixKind: FixSQL, Database: d.Name,
							Changes: manualChange(funcFix(f, func(fn string) string {
								return "rewrite the dynamic SQL of " + fn + " (in database " + quote.Ident(d.Name) + ") with format('%I', ...)/format('%L', ...) or EXECUTE ... USING: a program change only its author can make"
							}))})
					}
				}
			}
			c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
				parts := strings.Split(k, "\x00")
				return fmt.Sprintf("functions of schema %s.%s (%s)", parts[0], parts[1], parts[2]),
					fmt.Sprintf("%s functions in %s.%s run EXECUTE on a concatenated string: %s", textsafe.Thousands(len(members)), parts[0], parts[1], someNames(memberNames(members))),
					"rewrite the dynamic SQL of each of these functions with format('%I', ...)/format('%L', ...) or EXECUTE ... USING: a program change only its author can make"
			})
		},
	})

	register(&Rule{
		ID: "OTH-02", Title: "Security labels are enforced where required (sepgsql)", Area: AreaHardening, Severity: Low,
		Rationale:  "Where classification labels are mandated (STIG), sepgsql or label-based RLS must enforce them.",
		References: stig("V-233521", "V-233525", "V-233595"),
		Check: func(c *Check) {
			if c.Profile != "stig" {
				c.NotChecked("sepgsql", "conditional on a labelling mandate: evaluated with --profile stig")
				return
			}
			v, ok := c.setting("shared_preload_libraries")
			if !ok {
				return
			}
			if hasListItem(v.Value, "sepgsql") {
				c.Pass("sepgsql", "loaded")
				return
			}
			c.Fail(c.setProblem(v, strings.Trim(v.Value+",sepgsql", ","), "sepgsql loaded where labels are mandated (or label-based RLS policies)"))
		},
	})

	manual("INST-01", "Packages come only from approved repositories", AreaInstall, Medium, "list the enabled package repositories (apt-cache policy / dnf repolist) and the origin of every postgresql package; compare with the approved list", cis("1.1"))
	manual("INST-09", "Access to the cluster owner's OS account is limited to named administrators", AreaInstall, High, "review who can become the owner account (sudoers, groups, authorized_keys) against the approved list", stig("V-233540"))
	manual("INST-10", "Database software lives in dedicated directories", AreaInstall, Low, "check that bin, lib and share directories hold only PostgreSQL files", stig("V-233541"))
	manual("AUTH-17", "Administrators can end a role's sessions when policy requires", AreaAuth, Low, "document who holds pg_signal_backend and the procedure (pg_terminate_backend) for forced re-authentication", stig("V-233601"))
	manual("PRIV-04", "Delegated tasks use predefined roles instead of superuser", AreaRoles, Medium, "for each superuser, check whether pg_monitor, pg_read_all_data, pg_signal_backend or pg_checkpoint would do", cis("4.9"))
	manual("PRIV-05", "Unused login roles are locked", AreaRoles, Medium, "compare login roles with connection logs (pgaegis logs scan lists who connected) and set NOLOGIN on the unused", cis("4.4"))
	manual("PRIV-07", "Table privileges match the documented entitlements", AreaRoles, High, "compare grants with the entitlement baseline; pgaegis access policy check FILE.yaml automates this once the baseline is written", refs(cis("4.6"), stig("V-233520", "V-233523", "V-233530")))
	manual("PRIV-19", "Effective access is reviewed per role", AreaRoles, Info, "review what each role can reach and how: pgaegis access --role R", []Reference{{"pgaegis", "access report"}})
	manual("LOG-27", "Denied and failed operations really appear in the log", AreaLogging, Medium, "trigger a failed login and a permission error with a throwaway role and confirm both in the newest log (pgaegis logs scan)", stig("V-233512", "V-233544", "V-233547", "V-233552", "V-233553"))
	manual("EXT-10", "Extension scripts are safe and trusted extensions are reviewed", AreaHardening, Medium, "review share/extension/*.sql of installed extensions (schema-qualified calls) and which trusted extensions non-superusers may create", []Reference{{"pgspot", "extension script checks"}})
	manual("OTH-03", "Inputs are validated by the applications", AreaHardening, Low, "review application code for parameterised queries", stig("V-233526", "V-233544"))
	manual("OTH-05", "Production data is not copied unprotected to lower environments", AreaHardening, Medium, "confirm masking or anonymisation (postgresql_anonymizer) for copies", stig("V-233616"))
}

// rootOwnedCheck fails directories (and, for the extension directory, the
// files in them were not walked) not owned by root or writable by others.
func rootOwnedCheck(kind, object string, more ...string) func(c *Check) {
	return func(c *Check) {
		fs, ok := c.filesOrGap(object, append([]string{kind}, more...)...)
		if !ok {
			return
		}
		for _, f := range fs {
			if !f.Exists {
				continue
			}
			switch {
			case f.UID != 0:
				c.Fail(Problem{Object: "directory " + f.Path, Location: f.Path, Evidence: fmt.Sprintf("%s is owned by %s, not root", f.Path, ownerName(f)),
					Expected: "owned by root, 0755", Fix: "chown -R root:root " + quote.Shell(f.Path), FixKind: FixShell,
					// Ownership of installed software is the package
					// manager's: a recursive chown is a person's decision.
					Changes: manualChange("make " + quote.Shell(f.Path) + " and its contents owned by root (reinstall the package, or chown -R root:root after checking what is in it)")})
			case f.Mode&0o022 != 0:
				c.Fail(Problem{Object: "directory " + f.Path, Location: f.Path, Evidence: fmt.Sprintf("%s mode %s is writable by group or others", f.Path, f.ModeString()),
					Expected: "0755", Fix: "chmod go-w " + quote.Shell(f.Path), FixKind: FixShell,
					Changes: []remedy.Change{{File: &remedy.FileMode{Path: f.Path, Mode: os.FileMode(f.Mode&0o777) &^ 0o022, From: os.FileMode(f.Mode & 0o777)}}}})
			default:
				c.Pass("directory "+f.Path, "root-owned, mode "+f.ModeString())
			}
		}
	}
}

func init() {
	register(&Rule{
		ID: "EXT-07", Title: "Per-role and per-database settings do not weaken security", Area: AreaHardening, Severity: Medium,
		Rationale:  "ALTER ROLE/DATABASE ... SET can quietly undo server-wide settings for one role: md5 password storage, row security off, extra libraries loaded into its sessions. (Logging overrides: LOG-26.overrides.)",
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
					var why string
					switch name {
					case "password_encryption":
						if val != "scram-sha-256" {
							why = "stores new passwords as " + val
						}
					case "row_security":
						if !isOn(val) {
							why = "turns row security into an error instead of a filter (dumps and tools then fail or bypass)"
						}
					case "session_preload_libraries", "local_preload_libraries":
						why = "loads " + val + " into every session"
					case "client_min_messages":
						if i := levelIndex(val); i >= 0 && i < levelIndex("notice") {
							why = "sends debug output to the client"
						}
					}
					if why == "" {
						continue
					}
					who, reset := overrideTarget(rs, name)
					c.Fail(Problem{Object: who, Evidence: fmt.Sprintf("%s has %s: %s", who, kv, why), Expected: "no override that weakens the server-wide setting", Fix: reset, FixKind: FixSQL,
						Changes: []remedy.Change{{SQL: &remedy.SQL{Statements: []string{reset}, Undo: []string{overrideSet(rs, name, val)}, Superuser: true},
							Breaks: who + " gets the server-wide " + name + " again"}}})
				}
			}
		},
	})
}

// overrideTarget names the role/database of an override and the SQL that
// removes it.
func overrideTarget(rs snapshot.DBRoleSetting, name string) (string, string) {
	switch {
	case rs.Role != "" && rs.Database != "":
		return fmt.Sprintf("role %q in database %q", rs.Role, rs.Database), fmt.Sprintf("ALTER ROLE %s IN DATABASE %s RESET %s;", quote.Ident(rs.Role), quote.Ident(rs.Database), paramSQL(name))
	case rs.Role != "":
		return fmt.Sprintf("role %q", rs.Role), fmt.Sprintf("ALTER ROLE %s RESET %s;", quote.Ident(rs.Role), paramSQL(name))
	}
	return fmt.Sprintf("database %q", rs.Database), fmt.Sprintf("ALTER DATABASE %s RESET %s;", quote.Ident(rs.Database), paramSQL(name))
}

// directTLSNote says what the probe saw of direct TLS (sslnegotiation=
// direct, PostgreSQL 17+): from 17 a server with ssl = on always accepts
// it, with the same TLS settings, so it is evidence, not a finding; a
// mismatch with the server's major says something else answers the port.
func directTLSNote(p *snapshot.TLSProbe, major int) string {
	switch {
	case p.DirectTLS && major > 0 && major < 17:
		return "; direct TLS answered although PostgreSQL " + strconv.Itoa(major) + " has none (something in front of the server answers the port)"
	case p.DirectTLS:
		return "; direct TLS (sslnegotiation=direct) offered, " + acceptedVersions(p.DirectProtocols)
	case major >= 17 && p.TLSOffered && acceptedVersions(p.Protocols) != "no TLS version accepted":
		return "; direct TLS not offered although PostgreSQL " + strconv.Itoa(major) + " accepts it with ssl = on (something in front of the server answers the port)"
	case major >= 17:
		return "; direct TLS not offered"
	}
	return ""
}

func acceptedVersions(m map[string]bool) string {
	var vs []string
	for _, v := range []string{"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"} {
		if m[v] {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return "no TLS version accepted"
	}
	return strings.Join(vs, ", ")
}
