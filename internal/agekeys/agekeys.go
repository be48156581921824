// Package agekeys reads the recipients and identities files a backup is
// sealed to and opened with, in age's own formats: X25519 (age1...),
// SSH public keys (ssh-ed25519, ssh-rsa) and private keys, and age
// plugins (age1NAME1..., AGE-PLUGIN-NAME-1...) through age's plugin
// protocol.
package agekeys

import (
	"errors"

	"filippo.io/age"
)

// Recipient is one parsed recipient and how to name it in a manifest.
type Recipient struct {
	age.Recipient
	Public string // the line as written, normalised ("age1...", "ssh-ed25519 AAAA... comment")
	Kind   string // "x25519", "ssh-ed25519", "ssh-rsa", "plugin:NAME"
}

// ParseRecipientsFile reads a recipients file: one recipient per line,
// '#' comments and blank lines ignored, as age -R. Errors name the file
// and line and never quote a private key pasted there by mistake.
func ParseRecipientsFile(path string) ([]Recipient, error) {
	return nil, errors.New("agekeys: not implemented")
}

// ParseIdentitiesFile reads an identities file as age -i: age secret keys
// (AGE-SECRET-KEY-1...), plugin identities, or one SSH private key
// (unencrypted; passphrase-protected keys are refused with a clear error
// since pgaegis runs unattended). The file must not be readable by group
// or others.
func ParseIdentitiesFile(path string) ([]age.Identity, error) {
	return nil, errors.New("agekeys: not implemented")
}
