// Package sensitive recognises columns that look like credentials or
// personal data by their names, and classifies sampled values of
// credential columns (hash, ciphertext, plain text) without keeping them.
package sensitive

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kinds of sensitive columns.
const (
	Credential = "credential"
	Personal   = "personal"
)

// term is one word (or run of words, joined by "_") that marks a column.
type term struct {
	words []string
	kind  string
	label string
}

// terms are matched against the word tokens of a column name: whole words
// only, so that "compass" or "bypass" never read as "pass".
var terms = func() []term {
	var out []term
	add := func(kind, label string, spellings ...string) {
		for _, s := range spellings {
			out = append(out, term{strings.Split(s, "_"), kind, label})
		}
	}
	add(Credential, "password", "password", "passwd", "pwd", "pass", "pw", "pass_hash", "passhash", "passwordhash", "pwhash",
		"passphrase", "passwort", "kennwort", "mot_de_passe", "motdepasse", "mdp", "contrasena", "contraseña", "clave",
		"senha", "parola_chiave", "parola_d_ordine", "wachtwoord", "losenord", "lösenord", "haslo", "hasło", "heslo")
	add(Credential, "secret", "secret", "client_secret", "otp_secret", "totp_secret", "mfa_secret", "geheimnis")
	add(Credential, "token", "token", "access_token", "refresh_token", "auth_token", "session_token", "reset_token", "bearer")
	add(Credential, "API key", "api_key", "apikey", "api_secret", "access_key", "secret_key")
	add(Credential, "private key", "private_key", "privatekey", "priv_key", "privkey", "signing_key")
	add(Credential, "card number", "card_number", "cardnumber", "card_no", "cc_number", "ccnumber", "cc_num", "pan", "credit_card", "creditcard", "kreditkarte", "numero_carte", "numero_tarjeta")
	add(Credential, "card security code", "cvv", "cvc", "cvv2", "cvc2", "card_code")
	add(Personal, "social security number", "ssn", "social_security", "social_security_number", "sozialversicherungsnummer", "nir", "nss", "codice_fiscale", "cpf", "bsn")
	add(Personal, "bank account", "iban", "bic", "account_number", "bank_account", "kontonummer")
	add(Personal, "email", "email", "e_mail", "email_address", "courriel", "correo_electronico")
	add(Personal, "phone", "phone", "phone_number", "telephone", "telefon", "telefonnummer", "telefono", "teléfono", "téléphone", "mobile_phone", "cellphone", "telefone", "celular", "msisdn")
	add(Personal, "date of birth", "dob", "date_of_birth", "birthdate", "birth_date", "birthday", "geburtsdatum", "geburtstag",
		"date_naissance", "date_de_naissance", "fecha_nacimiento", "fecha_de_nacimiento", "data_nascimento", "data_de_nascimento", "data_di_nascita", "geboortedatum")
	add(Personal, "national id", "passport", "passport_number", "national_id", "tax_id", "personalausweis", "dni", "nif")
	return out
}()

// notCredential are words that, next to a credential word, say the column
// is about it rather than it ("password_changed_at", "token_expires",
// "tokenizer" never reaches here: tokens are whole words).
var notCredential = map[string]bool{
	"changed": true, "updated": true, "expires": true, "expiry": true, "expired": true, "expiration": true, "at": true,
	"date": true, "time": true, "ts": true, "count": true, "attempts": true, "policy": true, "length": true, "len": true,
	"type": true, "kind": true, "id": true, "version": true, "required": true, "enabled": true, "set": true, "last": true,
	"verified": true, "confirmed": true, "valid": true, "validated": true, "is": true, "has": true,
	"algorithm": true, "algo": true, "scheme": true, "hint": true, "strength": true, "age": true, "rotated": true, "used": true,
}

// Words splits a column name into lower-case word tokens: at anything that
// is not a letter or digit, at lower-to-upper case changes (passwordHash),
// and at letter-digit boundaries (cvv2 stays whole: digits join the word
// before them).
func Words(name string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	var prev rune
	for _, r := range name {
		switch {
		case unicode.IsLetter(r):
			if unicode.IsUpper(r) && prev != 0 && (unicode.IsLower(prev) || unicode.IsDigit(prev)) {
				flush()
			}
			cur = append(cur, r)
		case unicode.IsDigit(r):
			cur = append(cur, r)
		default:
			flush()
		}
		prev = r
	}
	flush()
	return out
}

// Match is what a column name says about its content.
type Match struct {
	Kind  string // Credential or Personal
	Label string // "password", "email", ...
}

// ClassifyName says whether a column name looks like a credential or
// personal data. Credential wins over personal ("email_token" is a token).
func ClassifyName(name string) (Match, bool) {
	ws := Words(name)
	var best Match
	found := false
	for _, t := range terms {
		for i := 0; i+len(t.words) <= len(ws); i++ {
			if !equalWords(ws[i:i+len(t.words)], t.words) {
				continue
			}
			if t.kind == Credential && describes(ws, i, len(t.words)) {
				continue
			}
			if !found || (best.Kind == Personal && t.kind == Credential) {
				best, found = Match{t.kind, t.label}, true
			}
		}
	}
	return best, found
}

// describes: the words around a credential term make the column metadata
// about it (password_changed_at, is_token_valid), not the secret itself.
func describes(ws []string, at, n int) bool {
	for j, w := range ws {
		if j >= at && j < at+n {
			continue
		}
		if notCredential[w] {
			return true
		}
	}
	return false
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Value verdicts.
const (
	Empty     = "empty"
	Hash      = "hash"
	Encrypted = "encrypted"
	Plain     = "plain"
)

// Verdict is what one value looks like, and the format when known.
type Verdict struct {
	Class  string // Empty, Hash, Encrypted or Plain
	Format string // "bcrypt", "scram-sha-256", "pgp", ...
}

// hashPrefixes are modular-crypt and framework formats, by prefix.
var hashPrefixes = []struct{ prefix, format string }{
	{"$2a$", "bcrypt"}, {"$2b$", "bcrypt"}, {"$2y$", "bcrypt"}, {"$2x$", "bcrypt"},
	{"$argon2id$", "argon2"}, {"$argon2i$", "argon2"}, {"$argon2d$", "argon2"},
	{"$scrypt$", "scrypt"}, {"$7$", "scrypt"}, {"scrypt:", "scrypt"},
	{"$pbkdf2-sha256$", "pbkdf2"}, {"$pbkdf2-sha512$", "pbkdf2"}, {"$pbkdf2$", "pbkdf2"},
	{"pbkdf2_sha256$", "pbkdf2"}, {"pbkdf2_sha1$", "pbkdf2"}, {"pbkdf2:sha256:", "pbkdf2"},
	{"$5$", "sha256-crypt"}, {"$6$", "sha512-crypt"}, {"$1$", "md5-crypt"}, {"$apr1$", "md5-crypt"},
	{"SCRAM-SHA-256$", "scram-sha-256"}, {"$y$", "yescrypt"}, {"_J9", "bsdi-crypt"},
	{"{SSHA}", "ssha"}, {"{SSHA256}", "ssha"}, {"{SSHA512}", "ssha"}, {"{CRYPT}", "crypt"},
	{"bcrypt$", "bcrypt"}, {"argon2$", "argon2"}, {"sha1$", "sha1"}, {"md5$", "md5"},
}

// ClassifyValue says what one sampled value of a credential column looks
// like. It keeps nothing of the value.
func ClassifyValue(v []byte) Verdict {
	t := bytes.TrimSpace(v)
	if len(t) == 0 {
		return Verdict{Class: Empty}
	}
	if bytes.HasPrefix(t, []byte("-----BEGIN PGP MESSAGE-----")) {
		return Verdict{Class: Encrypted, Format: "pgp-armor"}
	}
	if f, ok := pgpPacket(t); ok {
		return Verdict{Class: Encrypted, Format: f}
	}
	// bytea read as text: \x followed by hex.
	if len(t) > 2 && t[0] == '\\' && t[1] == 'x' && isHex(t[2:]) && len(t)%2 == 0 {
		raw := make([]byte, (len(t)-2)/2)
		for i := range raw {
			raw[i] = unhex(t[2+2*i])<<4 | unhex(t[3+2*i])
		}
		if f, ok := pgpPacket(raw); ok {
			return Verdict{Class: Encrypted, Format: f}
		}
		t = raw
	}
	s := string(t)
	for _, p := range hashPrefixes {
		if strings.HasPrefix(s, p.prefix) && len(s) > len(p.prefix)+8 {
			return Verdict{Class: Hash, Format: p.format}
		}
	}
	// PostgreSQL's own md5 verifier, and bare hex digests (md5, sha-1, sha-2).
	if strings.HasPrefix(s, "md5") && len(s) == 35 && isHex(t[3:]) {
		return Verdict{Class: Hash, Format: "md5"}
	}
	if isHex(t) {
		switch len(t) {
		case 32:
			return Verdict{Class: Hash, Format: "md5"}
		case 40:
			return Verdict{Class: Hash, Format: "sha1"}
		case 56, 64, 96, 128:
			return Verdict{Class: Hash, Format: "sha2"}
		}
	}
	// Traditional DES crypt (crypt(..., gen_salt('des'))): 13 chars of ./0-9A-Za-z.
	if len(t) == 13 && isCryptAlphabet(t) && !isLetters(t) {
		return Verdict{Class: Hash, Format: "des-crypt"}
	}
	// Raw binary that is not text: a digest or ciphertext of some kind.
	if !utf8.Valid(t) || hasControl(t) {
		if len(t) >= 16 {
			return Verdict{Class: Encrypted, Format: "binary"}
		}
	}
	return Verdict{Class: Plain}
}

// pgpPacket recognises the start of an OpenPGP message as pgcrypto's
// pgp_sym_encrypt (a symmetric-key session packet, tag 3) and
// pgp_pub_encrypt (a public-key session packet, tag 1) write it, in new
// (0xc3, 0xc1) or old (0x8c, 0x84) packet format, followed by a plausible
// packet version.
func pgpPacket(b []byte) (string, bool) {
	if len(b) < 16 {
		return "", false
	}
	switch b[0] {
	case 0xc3, 0x8c, 0x8d, 0x8e:
		// tag 3: length byte(s), then version 4 (or 5/6).
		if v := afterLength(b); v == 4 || v == 5 || v == 6 {
			return "pgp-symmetric", true
		}
	case 0xc1, 0x84, 0x85, 0x86:
		if v := afterLength(b); v == 3 || v == 6 {
			return "pgp-public-key", true
		}
	}
	return "", false
}

// afterLength returns the byte after the packet header's length field
// (the packet's version), or 0.
func afterLength(b []byte) byte {
	if b[0]&0x40 != 0 { // new format
		switch l := b[1]; {
		case l < 192:
			return b[2]
		case l < 224:
			return b[3]
		case l == 255:
			return b[6]
		}
		return 0
	}
	switch b[0] & 3 { // old format length type
	case 0:
		return b[2]
	case 1:
		return b[3]
	case 2:
		return b[5]
	}
	return 0
}

func isHex(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isCryptAlphabet(b []byte) bool {
	for _, c := range b {
		if !(c == '.' || c == '/' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func isLetters(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return true
		}
	}
	return false
}

// Counts tallies verdicts over a sample.
type Counts struct {
	Rows      int
	Empty     int
	Hashed    int
	Encrypted int
	Plain     int
	Formats   map[string]int
}

// Add counts one verdict.
func (c *Counts) Add(v Verdict) {
	c.Rows++
	switch v.Class {
	case Empty:
		c.Empty++
	case Hash:
		c.Hashed++
	case Encrypted:
		c.Encrypted++
	default:
		c.Plain++
	}
	if v.Format != "" {
		if c.Formats == nil {
			c.Formats = map[string]int{}
		}
		c.Formats[v.Format]++
	}
}
