// Package pwcheck finds weak passwords offline from the verifiers the
// server stores (md5 and SCRAM-SHA-256), by trying the role's own name and
// lists of common passwords: the same work an attacker does with a stolen
// pg_authid, without ever logging in. Verifiers stay in memory; only the
// verdict leaves this package (and, for SCRAM, a keyed hash of the
// verifier in the result cache, see Cache).
package pwcheck

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Verdicts.
const (
	RoleName = "equal to the role name (or a trivial variant)"
	Common   = "in the built-in list of common passwords"
	WordList = "in the word list"
	Empty    = "empty"
)

// DictVersion names the built-in lists: it changes whenever one of them
// does, so that a cached "not found" of an older list is not trusted.
const DictVersion = "1"

// common is a short list of passwords seen first in every credential-
// stuffing list, plus database-flavoured defaults. The first topN are the
// ones the default search tries against SCRAM verifiers, where every
// guess costs thousands of HMACs.
var common = []string{
	"password", "postgres", "changeme", "123456", "admin",
	"Password", "password1", "Password1", "Password123", "P@ssw0rd", "p@ssw0rd", "passw0rd", "pass", "pass123",
	"1234567", "12345678", "123456789", "1234567890", "12345", "1234", "111111", "000000", "123123",
	"qwerty", "qwerty123", "abc123", "letmein", "welcome", "Welcome1", "ChangeMe", "change_me", "secret",
	"admin123", "administrator", "root", "toor", "test", "test123", "testing", "guest", "demo",
	"default", "master", "dragon", "monkey", "iloveyou", "trustno1", "sunshine", "princess", "football", "baseball",
	"postgresql", "Postgres", "postgres123", "postgres1", "pgsql", "psql", "database", "db", "dbadmin",
	"sql", "oracle", "mysql", "replication", "replicator", "backup", "readonly", "app", "application", "service",
	"user", "user123", "login", "access", "temp", "temp123", "hunter2", "zaq12wsx", "1q2w3e4r", "qazwsx",
}

const topN = 5

// variants of the role name an administrator typically picks, the name
// itself excluded (it is a list of its own, tried first).
func variants(role string) []string {
	if role == "" {
		return nil
	}
	out := []string{role + "1", role + "123", role + "!", role + role}
	r, n := utf8.DecodeRuneInString(role)
	if up := string(unicode.ToUpper(r)) + role[n:]; r != utf8.RuneError && up != role {
		out = append(out, up)
	}
	return out
}

// A List is a named set of candidates. Its ID (with a version) is what
// the result cache records as tried.
type List struct {
	ID string
	// Verdict is what a match means ("equal to the role name ...").
	Verdict string
	// perRole lists are built from the role name; words are fixed.
	perRole func(role string) []string
	words   []string
	// Word lists are streamed from open (see LoadWordList); n is how
	// many words the checking pass counted.
	name string
	open func() (io.ReadCloser, error)
	n    int
	// builtin lists are short: against cheap verifiers they are tried in
	// full whatever the budget, so md5 verdicts never depend on load.
	builtin bool
}

func (l *List) candidates(role string) []string {
	if l.perRole != nil {
		return l.perRole(role)
	}
	return l.words
}

// Len is the number of words of a fixed list (per-role lists: 0).
func (l *List) Len() int {
	if l.open != nil {
		return l.n
	}
	return len(l.words)
}

// The built-in lists, in the order the searches try them.
var (
	ListName = &List{ID: "name/" + DictVersion, Verdict: RoleName, builtin: true, perRole: func(r string) []string {
		if r == "" {
			return nil
		}
		return []string{r}
	}}
	ListTop      = &List{ID: "top/" + DictVersion, Verdict: Common, builtin: true, words: common[:topN]}
	ListVariants = &List{ID: "variants/" + DictVersion, Verdict: RoleName, builtin: true, perRole: variants}
	ListCommon   = &List{ID: "common/" + DictVersion, Verdict: Common, builtin: true, words: common[topN:]}
)

// Verifier is a parsed stored password.
type Verifier struct {
	kind       string // "md5", "scram"
	md5sum     [md5.Size]byte
	iterations int
	salt       []byte
	storedKey  []byte
}

// Parse reads a pg_authid.rolpassword value; ok is false for formats it
// does not know (plaintext is handled by the caller).
func Parse(stored string) (Verifier, bool) {
	if strings.HasPrefix(stored, "md5") && len(stored) == 35 {
		v := Verifier{kind: "md5"}
		if n, err := hex.Decode(v.md5sum[:], []byte(stored[3:])); err != nil || n != md5.Size {
			return Verifier{}, false
		}
		return v, true
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
	var buf []byte
	return v.match(role, password, &buf)
}

// match is Matches with a scratch buffer: md5 guesses are cheap enough
// that an allocation per guess would dominate them.
func (v *Verifier) match(role, password string, buf *[]byte) bool {
	switch v.kind {
	case "md5":
		b := append(append((*buf)[:0], password...), role...)
		*buf = b
		return md5.Sum(b) == v.md5sum
	case "scram":
		// SASLprep is the identity for ASCII; a non-ASCII candidate is
		// tried as given (see docs/passwords.md).
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

// Target is one role's stored password, ready to be searched.
type Target struct {
	Role string
	// Kind is "md5", "scram-sha-256" or "plaintext".
	Kind string
	// Priority orders the search: lower first (superusers, say).
	Priority int
	stored   string
	v        Verifier
	parsed   bool
}

// NewTarget parses a stored password (a verifier, or plaintext from a
// pre-10 server or written by hand).
func NewTarget(role, stored string, priority int) Target {
	t := Target{Role: role, Priority: priority, stored: stored, Kind: "plaintext"}
	if v, ok := Parse(stored); ok {
		t.v, t.parsed = v, true
		t.Kind = "md5"
		if v.kind == "scram" {
			t.Kind = "scram-sha-256"
		}
	}
	return t
}

// cost of one guess against t.
func (t *Target) cost() int64 {
	if !t.parsed {
		return 1
	}
	return int64(t.v.Cost())
}

// cheap: md5 and plaintext, where the whole dictionary costs microseconds.
func (t *Target) cheap() bool { return t.Kind != "scram-sha-256" }

func (t *Target) match(c string, buf *[]byte) bool {
	if !t.parsed {
		return t.stored == c
	}
	return t.v.match(t.Role, c, buf)
}
