package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pgaegis/pgaegis/internal/guc"

	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func init() {
	boolSetting("TLS-01", "TLS is enabled (ssl = on)", AreaTLS, High, "ssl", true,
		"Without TLS, passwords (for password/md5 methods), queries and results cross the network in clear text and connections can be hijacked.",
		refs(cis("6.8"), stig("V-233538", "V-233579", "V-233584", "V-233611"), devsec("postgres-11")))

	register(&Rule{
		ID: "TLS-02", Title: "Minimum TLS protocol version is TLSv1.2 or newer", Area: AreaTLS, Severity: High,
		Rationale:  "TLS 1.0 and 1.1 are deprecated (RFC 8996) and allow downgrade attacks.",
		References: cis("6.9"),
		Check: func(c *Check) {
			v, ok := c.setting("ssl_min_protocol_version")
			if !ok {
				return
			}
			// CIS 17 §6.9 asks for TLS 1.3 only; CIS 16 and the others accept 1.2.
			if c.Profile == "cis-17" {
				if v.Value == "TLSv1.3" {
					c.Pass("setting ssl_min_protocol_version", settingEvidence(v))
				} else {
					c.Fail(c.setProblem(v, "TLSv1.3", "ssl_min_protocol_version = TLSv1.3 (CIS PostgreSQL 17 §6.9; check that every client supports TLS 1.3)"))
				}
				return
			}
			switch v.Value {
			case "TLSv1.2", "TLSv1.3":
				c.Pass("setting ssl_min_protocol_version", settingEvidence(v))
			default:
				c.Fail(c.setProblem(v, "TLSv1.2", "ssl_min_protocol_version = TLSv1.2 or TLSv1.3"))
			}
		},
	})

	register(&Rule{
		ID: "TLS-03", Title: "Only strong TLS 1.2 cipher suites are allowed", Area: AreaTLS, Severity: Medium,
		Rationale:  "ssl_ciphers governs TLS 1.2 and older; classes such as MEDIUM, 3DES, RC4, NULL or export suites allow weak or unauthenticated encryption.",
		References: refs(cis("6.10"), devsec("postgres-12")),
		Check: func(c *Check) {
			v, ok := c.setting("ssl_ciphers")
			if !ok {
				return
			}
			if weak := weakCipherTokens(v.Value); len(weak) > 0 {
				p := c.setProblem(v, "HIGH:!aNULL:!eNULL:!MD5:!3DES:!RC4:!CAMELLIA:!SHA1", "no weak cipher classes enabled")
				p.Evidence += fmt.Sprintf("; enables %s", strings.Join(weak, ", "))
				c.Fail(p)
			} else {
				c.Pass("setting ssl_ciphers", settingEvidence(v))
			}
			major := c.S.MajorVersion()
			// 18 lets ssl_tls13_ciphers choose the TLS 1.3 suites (before,
			// OpenSSL's default, which leaves out CCM_8); its truncated
			// 8-byte tag is "not recommended" in the IANA registry.
			if v, ok := c.S.Setting("ssl_tls13_ciphers"); ok && (major == 0 || major >= 18) {
				if weak := weakTLS13Suites(v.Value); len(weak) > 0 {
					p := c.setProblem(v, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256", "only full-length-tag TLS 1.3 suites (AES-GCM, ChaCha20-Poly1305)")
					p.Evidence += "; enables " + strings.Join(weak, ", ")
					c.Fail(p)
				} else {
					c.Pass("setting ssl_tls13_ciphers", settingEvidence(v))
				}
			}
			// The key exchange groups: ssl_groups on 18 (a list),
			// ssl_ecdh_curve before (one curve; an alias of ssl_groups on 18).
			groups := map[string]string{"ssl_ecdh_curve": "prime256v1"}
			switch {
			case major >= 18:
				groups = map[string]string{"ssl_groups": "X25519:prime256v1"}
			case major == 0: // a configuration file alone: either may be set
				groups["ssl_groups"] = "X25519:prime256v1"
			}
			for _, name := range []string{"ssl_ecdh_curve", "ssl_groups"} {
				want, ok := groups[name]
				if !ok {
					continue
				}
				v, ok := c.S.Setting(name)
				if !ok {
					continue
				}
				if weak := weakGroups(v.Value); len(weak) > 0 {
					p := c.setProblem(v, want, "key exchange groups of at least 128-bit strength (X25519, prime256v1 or larger)")
					p.Evidence += "; allows " + strings.Join(weak, ", ")
					c.Fail(p)
				} else {
					c.Pass("setting "+name, settingEvidence(v))
				}
			}
		},
	})

	register(&Rule{
		ID: "TLS-04", Title: "The TLS private key is readable only by the server", Area: AreaTLS, Severity: High,
		Rationale:  "Anyone who can read the server's private key can impersonate the server or decrypt recorded sessions (without forward secrecy).",
		References: stig("V-233602"),
		Check: func(c *Check) {
			if c.S.Gap(snapshot.GapFiles) != "" {
				c.NotChecked("ssl_key_file", c.S.Gap(snapshot.GapFiles))
				return
			}
			if v, ok := c.S.Setting("ssl"); ok && !isOn(v.Value) {
				c.NotChecked("ssl_key_file", "not applicable: ssl is off (see TLS-01)")
				return
			}
			keys := c.S.FilesOfKind(snapshot.KindSSLKey)
			if len(keys) == 0 {
				c.NotChecked("ssl_key_file", "the server's files were not read")
				return
			}
			for _, k := range keys {
				switch {
				case !k.Exists:
					c.Fail(Problem{Object: "file " + k.Path, Location: k.Path, Evidence: "ssl is on but the key file is missing" + errSuffix(k),
						Expected: "a readable key file", Fix: "pgaegis tls issue server --ca '<CA dir>' --host '<name>' --out " + quote.Shell(filepath.Dir(k.Path)) + "    # or install the key there", FixKind: FixShell,
						Changes: []remedy.Change{{Manual: "install the server's key at " + quote.Shell(k.Path) + " (or issue a new certificate and key: pgaegis tls issue server --pgdata DATADIR), then reload: with ssl on and no key the next restart fails"}}})
				case k.Mode&0o077 == 0, k.UID == 0 && k.Mode&0o037 == 0:
					c.Pass("file "+k.Path, "mode "+k.ModeString())
				default:
					// chmod 0600 is only right for a key the server's own
					// account owns: a key owned by root or another account
					// would become unreadable to the server.
					ch := remedy.Change{File: &remedy.FileMode{Path: k.Path, Mode: 0o600, From: os.FileMode(k.Mode)}}
					if k.UID == 0 || c.S.Host != nil && c.S.Host.Owner != "" && k.Owner != c.S.Host.Owner {
						ch = remedy.Change{Manual: "give " + quote.Shell(k.Path) + " to the cluster owner with mode 0600 (or keep it owned by root with mode 0640 and the server's group), then reload"}
					}
					c.Fail(Problem{Object: "file " + k.Path, Location: k.Path,
						Evidence: fmt.Sprintf("mode %s owner %s", k.ModeString(), ownerName(k)),
						Expected: "0600 owned by the cluster owner (or 0640 owned by root)",
						Fix:      "chmod 0600 " + quote.Shell(k.Path), FixKind: FixShell, FixApply: "reload",
						Changes: []remedy.Change{ch}})
				}
			}
		},
	})
}

func errSuffix(f *snapshot.File) string {
	if f.Error != "" {
		return " (" + f.Error + ")"
	}
	return ""
}

// weakCipherTokens lists the OpenSSL cipher-string elements that enable
// weak suites (elements prefixed with ! or - remove, + reorders).
func weakCipherTokens(spec string) []string {
	weak := map[string]bool{"ALL": true, "DEFAULT": true, "COMPLEMENTOFALL": true, "LOW": true, "MEDIUM": true,
		"EXP": true, "EXPORT": true, "NULL": true, "eNULL": true, "aNULL": true, "ADH": true, "AECDH": true,
		"RC4": true, "DES": true, "3DES": true, "MD5": true, "IDEA": true, "SEED": true, "RC2": true, "PSK": true, "SRP": true}
	var out []string
	for _, t := range strings.FieldsFunc(spec, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		if t == "" || t[0] == '!' || t[0] == '-' || t[0] == '+' { // +X only reorders
			continue
		}
		base := strings.TrimPrefix(t, "+")
		for _, part := range strings.Split(base, "+") {
			if weak[part] {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// weakTLS13Suites lists the TLS 1.3 suites of an ssl_tls13_ciphers value
// (colon-separated names) that are weaker than the defaults.
func weakTLS13Suites(spec string) []string {
	var out []string
	for _, t := range strings.Split(spec, ":") {
		if strings.EqualFold(strings.TrimSpace(t), "TLS_AES_128_CCM_8_SHA256") {
			out = append(out, strings.TrimSpace(t))
		}
	}
	return out
}

// weakGroup: OpenSSL's curves below 256 bits (under 128-bit strength).
var weakGroup = regexp.MustCompile(`(?i)^(secp(112|128|160|192|224)|prime(192|239)|sect(113|131|163|193|233|239)|brainpoolP(160|192|224)|c2[pt]nb|c2tnb|wap-wsg|Oakley-EC2N)`)

// weakGroups lists the groups of an ssl_groups or ssl_ecdh_curve value
// that are weaker than 128 bits.
func weakGroups(spec string) []string {
	var out []string
	for _, t := range strings.Split(spec, ":") {
		if t = strings.TrimSpace(t); weakGroup.MatchString(t) {
			out = append(out, t)
		}
	}
	return out
}

func isOn(v string) bool {
	on, ok := guc.ParseBool(v)
	return ok && on
}
