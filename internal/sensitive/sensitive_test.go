package sensitive

import (
	"strings"
	"testing"
)

func TestClassifyName(t *testing.T) {
	for _, c := range []struct {
		name, kind, label string
	}{
		{"password", Credential, "password"},
		{"user_password", Credential, "password"},
		{"passwordHash", Credential, "password"},
		{"PASS_HASH", Credential, "password"},
		{"pwd", Credential, "password"},
		{"passwort", Credential, "password"},
		{"kennwort", Credential, "password"},
		{"mot_de_passe", Credential, "password"},
		{"motDePasse", Credential, "password"},
		{"mdp", Credential, "password"},
		{"contraseña", Credential, "password"},
		{"clave", Credential, "password"},
		{"senha", Credential, "password"},
		{"parola_chiave", Credential, "password"},
		{"wachtwoord", Credential, "password"},
		{"api_key", Credential, "API key"},
		{"apiKey", Credential, "API key"},
		{"stripe_secret", Credential, "secret"},
		{"refresh_token", Credential, "token"},
		{"private_key", Credential, "private key"},
		{"card_number", Credential, "card number"},
		{"pan", Credential, "card number"},
		{"cvv", Credential, "card security code"},
		{"ssn", Personal, "social security number"},
		{"iban", Personal, "bank account"},
		{"email", Personal, "email"},
		{"email_token", Credential, "token"},
		{"phone", Personal, "phone"},
		{"telefon", Personal, "phone"},
		{"telephone", Personal, "phone"},
		{"telefono", Personal, "phone"},
		{"date_of_birth", Personal, "date of birth"},
		{"dateOfBirth", Personal, "date of birth"},
		{"dob", Personal, "date of birth"},
		{"birthdate", Personal, "date of birth"},
		{"geburtsdatum", Personal, "date of birth"},
		{"date_naissance", Personal, "date of birth"},
		{"fecha_nacimiento", Personal, "date of birth"},
		// not sensitive
		{"compass", "", ""},
		{"bypass", "", ""},
		{"passenger", "", ""},
		{"tokenizer_version", "", ""},
		{"password_changed_at", "", ""},
		{"token_expires", "", ""},
		{"secretary", "", ""},
		{"company", "", ""},
		{"panel", "", ""},
		{"id", "", ""},
		{"emails_sent_count", "", ""},
	} {
		m, ok := ClassifyName(c.name)
		if ok != (c.kind != "") || m.Kind != c.kind || m.Label != c.label {
			t.Errorf("%s: got %+v %v, want %s %s", c.name, m, ok, c.kind, c.label)
		}
	}
}

func TestClassifyValue(t *testing.T) {
	for _, c := range []struct {
		v            string
		class, fname string
	}{
		{"", Empty, ""},
		{"   ", Empty, ""},
		{"$2a$06$abcdefghijklmnopqrstuuZhc0Xv8kVcW0vkx1ST0bLdUuoG3k3Ba", Hash, "bcrypt"},
		{"$2b$12$abcdefghijklmnopqrstuuZhc0Xv8kVcW0vkx1ST0bLdUuoG3k3Ba", Hash, "bcrypt"},
		{"$2y$10$abcdefghijklmnopqrstuuZhc0Xv8kVcW0vkx1ST0bLdUuoG3k3Ba", Hash, "bcrypt"},
		{"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g", Hash, "argon2"},
		{"$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA", Hash, "scrypt"},
		{"$pbkdf2-sha256$29000$c2FsdA$aGFzaGhhc2g", Hash, "pbkdf2"},
		{"pbkdf2_sha256$260000$salt$aGFzaGhhc2hoYXNo", Hash, "pbkdf2"},
		{"$5$rounds=5000$salt$hashhashhash", Hash, "sha256-crypt"},
		{"$6$salt$hashhashhashhashhash", Hash, "sha512-crypt"},
		{"$1$saltsalt$hashhashhashhash", Hash, "md5-crypt"},
		{"SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy", Hash, "scram-sha-256"},
		{"md5" + strings.Repeat("a1", 16), Hash, "md5"},
		{strings.Repeat("0f", 16), Hash, "md5"},
		{strings.Repeat("0f", 32), Hash, "sha2"},
		{"-----BEGIN PGP MESSAGE-----\n\nww0EBwMC...", Encrypted, "pgp-armor"},
		{"\xc3\x0d\x04\x07\x03\x02" + strings.Repeat("\x11", 20), Encrypted, "pgp-symmetric"},
		{`\xc30d04070302` + strings.Repeat("11", 20), Encrypted, "pgp-symmetric"},
		{"\xc1\x4c\x03" + strings.Repeat("\x22", 20), Encrypted, "pgp-public-key"},
		{"hunter2", Plain, ""},
		{"correct horse battery staple", Plain, ""},
		{"$2a$", Plain, ""},
		{"password", Plain, ""},
		{"abcdefghijklm", Plain, ""},
		{"alice@example.com", Plain, ""},
	} {
		v := ClassifyValue([]byte(c.v))
		if v.Class != c.class || v.Format != c.fname {
			t.Errorf("%q: got %+v, want %s %s", c.v, v, c.class, c.fname)
		}
	}
}

func FuzzClassifyValue(f *testing.F) {
	for _, s := range []string{"", "$2a$06$x", "\xc3\x0d\x04", "\xc3\xff\x04\x07\x03", "\\xc30d", "\\x", "-----BEGIN PGP MESSAGE-----", "md5abc", "\x84\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v := ClassifyValue(b)
		switch v.Class {
		case Empty, Hash, Encrypted, Plain:
		default:
			t.Fatalf("class %q", v.Class)
		}
		// The verdict never carries the value.
		if len(b) > 3 && v.Format != "" && strings.Contains(v.Format, string(b)) {
			t.Fatalf("format %q echoes the value", v.Format)
		}
	})
}

func FuzzClassifyName(f *testing.F) {
	for _, s := range []string{"password", "dateOfBirth", "ÄÖÜ", "a__b", "x1Y2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		ClassifyName(name)
	})
}
