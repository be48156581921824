// Package pwcheck finds weak passwords offline from the verifiers the
// server stores (md5 and SCRAM-SHA-256), by trying the role's own name and
// a small dictionary: the same work an attacker does with a stolen
// pg_authid, without ever logging in. Verifiers stay in memory; only the
// verdict leaves this package.
package pwcheck

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// Verdicts.
const (
	RoleName = "equal to the role name (or a trivial variant)"
	Common   = "in the built-in list of common passwords"
	Empty    = "empty"
)

// common is a short list of passwords seen first in every credential-
// stuffing list, plus database-flavoured defaults.
var common = []string{
	"password", "Password", "password1", "Password1", "Password123", "P@ssw0rd", "p@ssw0rd", "passw0rd", "pass", "pass123",
	"123456", "1234567", "12345678", "123456789", "1234567890", "12345", "1234", "111111", "000000", "123123",
	"qwerty", "qwerty123", "abc123", "letmein", "welcome", "Welcome1", "changeme", "ChangeMe", "change_me", "secret",
	"admin", "admin123", "administrator", "root", "toor", "test", "test123", "testing", "guest", "demo",
	"default", "master", "dragon", "monkey", "iloveyou", "trustno1", "sunshine", "princess", "football", "baseball",
	"postgres", "postgresql", "Postgres", "postgres123", "postgres1", "pgsql", "psql", "database", "db", "dbadmin",
	"sql", "oracle", "mysql", "replication", "replicator", "backup", "readonly", "app", "application", "service",
	"user", "user123", "login", "access", "temp", "temp123", "hunter2", "zaq12wsx", "1q2w3e4r", "qazwsx",
}

// variants of the role name an administrator typically picks.
func variants(role string) []string {
	return []string{role, role + "1", role + "123", role + "!", strings.ToUpper(role[:1]) + role[1:], role + role}
}

// Candidates returns the passwords tried for a role, name variants first.
func Candidates(role string) (names, dict []string) {
	if role == "" {
		return nil, common
	}
	return variants(role), common
}

// Verifier is a parsed stored password.
type Verifier struct {
	kind       string // "md5", "scram"
	md5hex     string
	iterations int
	salt       []byte
	storedKey  []byte
}

// Parse reads a pg_authid.rolpassword value; ok is false for formats it
// does not know (plaintext is handled by the caller).
func Parse(stored string) (Verifier, bool) {
	if strings.HasPrefix(stored, "md5") && len(stored) == 35 {
		return Verifier{kind: "md5", md5hex: stored[3:]}, true
	}
	// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$")
	if !ok {
		return Verifier{}, false
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return Verifier{}, false
	}
	iterS, saltS, ok1 := strings.Cut(params, ":")
	storedS, _, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return Verifier{}, false
	}
	iter, err := strconv.Atoi(iterS)
	if err != nil || iter <= 0 || iter > 10_000_000 {
		return Verifier{}, false
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltS)
	sk, err2 := base64.StdEncoding.DecodeString(storedS)
	if err1 != nil || err2 != nil || len(sk) != sha256.Size {
		return Verifier{}, false
	}
	return Verifier{kind: "scram", iterations: iter, salt: salt, storedKey: sk}, true
}

// Cost is the relative work of one guess (SCRAM guesses cost iterations).
func (v Verifier) Cost() int {
	if v.kind == "scram" {
		return v.iterations
	}
	return 1
}

// Matches reports whether password produces the verifier for role.
func (v Verifier) Matches(role, password string) bool {
	switch v.kind {
	case "md5":
		sum := md5.Sum([]byte(password + role))
		return hmac.Equal([]byte(hex.EncodeToString(sum[:])), []byte(v.md5hex))
	case "scram":
		// SASLprep is the identity for the ASCII candidates we try.
		salted, err := pbkdf2.Key(sha256.New, password, v.salt, v.iterations, sha256.Size)
		if err != nil {
			return false
		}
		mac := hmac.New(sha256.New, salted)
		mac.Write([]byte("Client Key"))
		stored := sha256.Sum256(mac.Sum(nil))
		return hmac.Equal(stored[:], v.storedKey)
	}
	return false
}

// Weak tries the candidates; it returns the verdict ("" when none matched)
// and whether the whole list was tried within budget guesses.
func Weak(role, stored string, budget int) (verdict string, complete bool) {
	if stored == "" {
		return "", true
	}
	v, ok := Parse(stored)
	if !ok {
		// A plaintext password (pre-10 servers, or written by hand).
		for _, c := range variants(role) {
			if stored == c {
				return RoleName, true
			}
		}
		for _, c := range common {
			if stored == c {
				return Common, true
			}
		}
		return "", true
	}
	spent := 0
	names, dict := Candidates(role)
	for _, c := range names {
		if spent += v.Cost(); spent > budget {
			return "", false
		}
		if v.Matches(role, c) {
			return RoleName, true
		}
	}
	for _, c := range dict {
		if spent += v.Cost(); spent > budget {
			return "", false
		}
		if v.Matches(role, c) {
			return Common, true
		}
	}
	return "", true
}
