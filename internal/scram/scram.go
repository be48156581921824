// Package scram computes PostgreSQL's SCRAM-SHA-256 password verifier on
// the client, so a password is set with ALTER ROLE ... PASSWORD
// 'SCRAM-SHA-256$...' and the clear text never reaches the server (nor its
// log, pg_stat_statements or a replica). It prepares the password the way
// PostgreSQL does (src/common/saslprep.c, src/common/scram-common.c), so
// libpq's login with the clear password matches the stored keys.
package scram

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// DefaultIterations is PostgreSQL's scram_iterations default.
const DefaultIterations = 4096

// saltLen is PostgreSQL's SCRAM_DEFAULT_SALT_LEN.
const saltLen = 16

// maxIterations keeps a typo from costing hours of PBKDF2; PostgreSQL's
// own limit (INT_MAX) is far beyond any useful value.
const maxIterations = 1 << 24

// Verifier returns the SCRAM-SHA-256 verifier of password with a fresh
// random salt: "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>".
// iterations 0 means DefaultIterations. Errors never contain the password.
func Verifier(password []byte, iterations int) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram: reading random salt: %w", err)
	}
	return verifier(password, salt, iterations)
}

func verifier(password, salt []byte, iterations int) (string, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if iterations < 1 || iterations > maxIterations {
		return "", fmt.Errorf("scram: iterations %d out of range 1..%d", iterations, maxIterations)
	}
	if len(password) == 0 {
		// The server refuses an empty password too (and clears it).
		return "", errors.New("scram: the password is empty")
	}
	if bytes.IndexByte(password, 0) >= 0 {
		// A C string ends there: no client could ever send the rest.
		return "", errors.New("scram: the password contains a NUL byte")
	}
	prepared := Prepare(password)
	salted, err := pbkdf2.Key(sha256.New, string(prepared), salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(iterations) + ":" + b64(salt) + "$" + b64(storedKey[:]) + ":" + b64(serverKey), nil
}

// Matches reports whether password is the one stored was computed
// from (after SASLprep), as a SCRAM login would find.
func Matches(stored string, password []byte) bool {
	if !IsVerifier(stored) {
		return false
	}
	rest := strings.TrimPrefix(stored, "SCRAM-SHA-256$")
	head, _, _ := strings.Cut(rest, "$")
	iter, salt64, _ := strings.Cut(head, ":")
	n, _ := strconv.Atoi(iter)
	salt, _ := base64.StdEncoding.DecodeString(salt64)
	again, err := verifier(password, salt, n)
	return err == nil && subtle.ConstantTimeCompare([]byte(again), []byte(stored)) == 1
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// IsVerifier reports whether s has the shape of a SCRAM-SHA-256 verifier
// (the form PostgreSQL stores as is instead of hashing it again).
func IsVerifier(s string) bool {
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	head, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iter, salt, ok := strings.Cut(head, ":")
	if !ok {
		return false
	}
	if n, err := strconv.Atoi(iter); err != nil || n < 1 {
		return false
	}
	stored, server, ok := strings.Cut(keys, ":")
	if !ok {
		return false
	}
	if _, err := base64.StdEncoding.DecodeString(salt); err != nil || salt == "" {
		return false
	}
	for _, k := range []string{stored, server} {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(b) != sha256.Size {
			return false
		}
	}
	return true
}

// Prepare is SASLprep as PostgreSQL's pg_saslprep applies it to a
// password: ASCII as is; otherwise map (non-ASCII spaces to U+0020, B.1 to
// nothing), NFKC, then the prohibited, unassigned and bidi checks. A
// password that is not valid UTF-8 or fails a check is used as raw bytes,
// as the server and libpq do. Two details follow PostgreSQL, not RFC 4013:
// the checks look at the mapped string before normalization, and an
// all-ASCII string skips them (control characters pass).
func Prepare(password []byte) []byte {
	if isASCII(password) || !utf8.Valid(password) {
		return password
	}
	mapped := make([]rune, 0, len(password))
	for _, r := range string(password) {
		switch {
		case nonASCIISpace.has(r):
			mapped = append(mapped, ' ')
		case mappedToNothing.has(r):
		default:
			mapped = append(mapped, r)
		}
	}
	if len(mapped) == 0 || !allowed(mapped) {
		return password
	}
	return norm.NFKC.Bytes([]byte(string(mapped)))
}

// allowed is steps 3 and 4 (prohibit, bidi) over the mapped runes.
func allowed(rs []rune) bool {
	rtl := false
	for _, r := range rs {
		if prohibitedOutput.has(r) || unassigned.has(r) {
			return false
		}
		if randALCat.has(r) {
			rtl = true
		}
	}
	if !rtl {
		return true
	}
	for _, r := range rs {
		if lCat.has(r) {
			return false
		}
	}
	return randALCat.has(rs[0]) && randALCat.has(rs[len(rs)-1])
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// table is sorted, non-overlapping inclusive code point ranges.
type table [][2]rune

func (t table) has(r rune) bool {
	i := sort.Search(len(t), func(i int) bool { return t[i][1] >= r })
	return i < len(t) && t[i][0] <= r
}
