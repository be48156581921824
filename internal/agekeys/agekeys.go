// Package agekeys reads the recipients and identities files a backup is
// sealed to and opened with, in age's own formats: X25519 (age1...),
// SSH public keys (ssh-ed25519, ssh-rsa) and private keys, and age
// plugins (age1NAME1..., AGE-PLUGIN-NAME-1...) through age's plugin
// protocol.
package agekeys

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"filippo.io/age/plugin"
	"golang.org/x/crypto/ssh"
)

// Recipient is one parsed recipient and how to name it in a manifest.
type Recipient struct {
	age.Recipient
	Public string // the line as written, normalised ("age1...", "ssh-ed25519 AAAA... comment")
	Kind   string // "x25519", "ssh-ed25519", "ssh-rsa", "plugin:NAME"; also "mlkem768x25519" (age1pq1...)
}

// Limits: a keys file is small; a bigger one is a wrong path (a dump, a
// log), and reading it whole would be a waste or worse.
const (
	maxFileSize = 1 << 20
	maxLineLen  = 16 << 10 // an ssh-rsa 16384-bit key fits
	maxSSHKey   = 64 << 10
)

// ParseRecipientsFile reads a recipients file: one recipient per line,
// '#' comments and blank lines ignored, as age -R. Errors name the file
// and line and never quote a private key pasted there by mistake.
func ParseRecipientsFile(path string) ([]Recipient, error) {
	data, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%s: this is a private key (PEM), not a recipients file: give the public key (age-keygen -y, or the .pub file); its content is not shown", path)
	}
	var out []Recipient
	for n, line := range strings.Split(string(data), "\n") {
		where := fmt.Sprintf("%s:%d", path, n+1)
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if looksSecret(line) {
			return nil, fmt.Errorf("%s: a private key (identity) in a recipients file: remove it and give its public key (age-keygen -y); the line is not shown", where)
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("%s: not valid UTF-8", where)
		}
		if len(line) > maxLineLen {
			return nil, fmt.Errorf("%s: line too long (%d bytes) for a recipient", where, len(line))
		}
		r, err := parseRecipient(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no recipients (only blank lines and comments): a backup sealed to nobody could never be opened", path)
	}
	return out, nil
}

// Errors about a line say what is wrong and never quote it (nor pass on a
// parser's message that would): a line might be key material pasted in
// the wrong place.

// looksSecret is true for text that is, or starts, a private key: it must
// never be echoed into an error or a log.
func looksSecret(s string) bool {
	u := strings.ToUpper(s)
	return strings.Contains(u, "AGE-SECRET-KEY-") || strings.HasPrefix(u, "AGE-PLUGIN-") ||
		strings.HasPrefix(s, "-----BEGIN") || strings.Contains(s, "PRIVATE KEY-----")
}

func parseRecipient(line string) (Recipient, error) {
	lower := strings.ToLower(line)
	switch {
	case strings.HasPrefix(lower, "age1pq1"):
		r, err := age.ParseHybridRecipient(line)
		if err != nil {
			return Recipient{}, errors.New("malformed post-quantum age recipient (age1pq1...: bad checksum or length)")
		}
		return Recipient{Recipient: r, Public: r.String(), Kind: "mlkem768x25519"}, nil
	case strings.HasPrefix(lower, "age1tag"):
		return Recipient{}, errors.New("tagged (age1tag...) recipients are not supported")
	case strings.HasPrefix(lower, "age1") && strings.Count(lower, "1") > 1:
		name, _, err := plugin.ParseRecipient(line)
		if err != nil {
			return Recipient{}, errors.New("malformed age plugin recipient (age1NAME1...: bad checksum or encoding)")
		}
		ui := &unattendedUI{}
		r, err := plugin.NewRecipient(line, ui.client())
		if err != nil {
			return Recipient{}, errors.New("malformed age plugin recipient")
		}
		return Recipient{Recipient: pluginRecipient{r, ui}, Public: strings.ToLower(line), Kind: "plugin:" + name}, nil
	case strings.HasPrefix(lower, "age1"):
		r, err := age.ParseX25519Recipient(line)
		if err != nil {
			return Recipient{}, errors.New("malformed age X25519 recipient (age1...: bad checksum or length)")
		}
		return Recipient{Recipient: r, Public: r.String(), Kind: "x25519"}, nil
	case strings.HasPrefix(line, "ssh-"), strings.HasPrefix(line, "ecdsa-"), strings.HasPrefix(line, "sk-"):
		return parseSSHRecipient(line)
	}
	// Whatever this is, it may be confidential: say what was expected only.
	return Recipient{}, errors.New("not a recipient (expected age1..., ssh-ed25519 or ssh-rsa); the line is not shown")
}

func parseSSHRecipient(line string) (Recipient, error) {
	pk, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		// x/crypto/ssh's message quotes the line's key type field.
		return Recipient{}, errors.New("malformed SSH public key (its type, base64 or key data is wrong)")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return Recipient{}, errors.New("more than one SSH key on the line")
	}
	var r age.Recipient
	switch pk.Type() {
	case ssh.KeyAlgoED25519:
		r, err = agessh.NewEd25519Recipient(pk)
	case ssh.KeyAlgoRSA:
		r, err = agessh.NewRSARecipient(pk)
	default:
		// An unsupported key silently skipped (as age does, with a warning)
		// would leave a backup its owner believes they can open: refuse.
		return Recipient{}, fmt.Errorf("SSH key type %s cannot be an age recipient (only ssh-ed25519 and ssh-rsa)", pk.Type())
	}
	if err != nil {
		return Recipient{}, fmt.Errorf("SSH %s recipient: %v", pk.Type(), err)
	}
	pub := pk.Type() + " " + base64.StdEncoding.EncodeToString(pk.Marshal())
	if comment != "" {
		pub += " " + comment
	}
	return Recipient{Recipient: r, Public: pub, Kind: pk.Type()}, nil
}

// unattendedUI answers an age plugin that wants a person: pgaegis runs
// unattended (cron, systemd), so a request for a PIN or a confirmation is
// refused, and the plugin fails rather than hang. age discards the UI's
// error, so it is kept here and put in front of the plugin's own.
type unattendedUI struct {
	mu      sync.Mutex
	refused error
}

func (u *unattendedUI) refuse(err error) error {
	u.mu.Lock()
	u.refused = err
	u.mu.Unlock()
	return err
}

// explain adds the refusal (if any) to err from the plugin.
func (u *unattendedUI) explain(err error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err == nil || u.refused == nil {
		return err
	}
	return fmt.Errorf("%v: %w", u.refused, err)
}

func (u *unattendedUI) client() *plugin.ClientUI {
	return &plugin.ClientUI{
		DisplayMessage: func(name, message string) error {
			fmt.Fprintf(os.Stderr, "age-plugin-%s: %s\n", name, message)
			return nil
		},
		RequestValue: func(name, prompt string, secret bool) (string, error) {
			return "", u.refuse(fmt.Errorf("age-plugin-%s asked for input (%q) but pgaegis runs unattended and cannot answer; configure the plugin to work without a prompt", name, prompt))
		},
		Confirm: func(name, prompt, yes, no string) (bool, error) {
			return false, u.refuse(fmt.Errorf("age-plugin-%s asked for a confirmation (%q) but pgaegis runs unattended and cannot answer", name, prompt))
		},
	}
}

type pluginRecipient struct {
	r  *plugin.Recipient
	ui *unattendedUI
}

func (p pluginRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	s, err := p.r.Wrap(fileKey)
	return s, p.ui.explain(err)
}

// WrapWithLabels is forwarded: age checks labels to keep post-quantum
// recipients from being mixed with classic ones.
func (p pluginRecipient) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	s, l, err := p.r.WrapWithLabels(fileKey)
	return s, l, p.ui.explain(err)
}

type pluginIdentity struct {
	id *plugin.Identity
	ui *unattendedUI
}

func (p pluginIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	k, err := p.id.Unwrap(stanzas)
	return k, p.ui.explain(err)
}

// ParseIdentitiesFile reads an identities file as age -i: age secret keys
// (AGE-SECRET-KEY-1...), plugin identities, or one SSH private key
// (unencrypted; passphrase-protected keys are refused with a clear error
// since pgaegis runs unattended). The file must not be readable by group
// or others.
func ParseIdentitiesFile(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identities file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identities file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: identities file is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: identities file is accessible by group or others (mode %04o): a private key must be private; run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	data, err := readAllLimited(f, path)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("age-encryption.org/")), bytes.HasPrefix(trimmed, []byte(armor.Header)):
		return nil, fmt.Errorf("%s: a passphrase-encrypted age identity file: pgaegis runs unattended and cannot ask for the passphrase; decrypt it to a 0600 file (age -d) or use an unencrypted key", path)
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return parseSSHIdentity(path, trimmed)
	}
	var ids []age.Identity
	for n, line := range strings.Split(string(data), "\n") {
		where := fmt.Sprintf("%s:%d", path, n+1)
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := parseIdentity(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: no identities (only blank lines and comments)", path)
	}
	return ids, nil
}

// parseIdentity never puts the line or a parser's message about it into
// the error: both could carry key material.
func parseIdentity(line string) (age.Identity, error) {
	upper := strings.ToUpper(line)
	switch {
	case strings.HasPrefix(upper, "AGE-SECRET-KEY-PQ-1"):
		id, err := age.ParseHybridIdentity(line)
		if err != nil {
			return nil, errors.New("malformed post-quantum age secret key (not shown)")
		}
		return id, nil
	case strings.HasPrefix(upper, "AGE-SECRET-KEY-1"):
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, errors.New("malformed age secret key (not shown)")
		}
		return id, nil
	case strings.HasPrefix(upper, "AGE-PLUGIN-"):
		if _, _, err := plugin.ParseIdentity(line); err != nil {
			return nil, errors.New("malformed age plugin identity (not shown)")
		}
		ui := &unattendedUI{}
		id, err := plugin.NewIdentity(line, ui.client())
		if err != nil {
			return nil, errors.New("malformed age plugin identity (not shown)")
		}
		return pluginIdentity{id, ui}, nil
	case strings.HasPrefix(strings.ToLower(line), "age1"), strings.HasPrefix(line, "ssh-"):
		return nil, errors.New("a public key (recipient) in an identities file: give the private key")
	}
	return nil, errors.New("not an identity (expected AGE-SECRET-KEY-1..., AGE-PLUGIN-... or an SSH private key); the line is not shown")
}

func parseSSHIdentity(path string, pemBytes []byte) ([]age.Identity, error) {
	if len(pemBytes) > maxSSHKey {
		return nil, fmt.Errorf("%s: too large for an SSH private key", path)
	}
	id, err := agessh.ParseIdentity(pemBytes)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("%s: the SSH private key is passphrase-protected: pgaegis runs unattended and cannot ask for it; use an age key (age-keygen) or a key without passphrase kept 0600", path)
	}
	if err != nil {
		// agessh's messages describe the key type or structure, never its bytes.
		return nil, fmt.Errorf("%s: not a usable SSH private key: %v", path, err)
	}
	return []age.Identity{id}, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recipients file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("recipients file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: recipients file is not a regular file", path)
	}
	return readAllLimited(f, path)
}

func readAllLimited(r io.Reader, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a keys file", path, maxFileSize)
	}
	return data, nil
}
