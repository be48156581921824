package scram

import (
	"bytes"

	"golang.org/x/text/secure/precis"
)

// pgx v5 (pgconn/auth_scram.go, v5.12) does not apply SASLprep to the
// password of a SCRAM login. It sends the password as given when it holds
// a code point unassigned in Unicode 3.2 (RFC 3454 table A.1) or when
// PRECIS OpaqueString (RFC 8265) rejects it, and otherwise the
// OpaqueString form: non-ASCII spaces mapped to U+0020 and NFC. SASLprep
// also removes the characters mapped to nothing (U+00AD soft hyphen,
// zero-width joiners, variation selectors: PRECIS rejects those, so pgx
// keeps them) and applies NFKC, not NFC (pgx keeps fullwidth "ｐａｓｓ" or
// the ligature "ﬁ", SASLprep folds them to "pass" and "fi"). For such
// passwords pgx's login with the clear text fails where libpq's works.

// pgxPrepare is the password pgx v5 derives its SCRAM keys from.
func pgxPrepare(password string) []byte {
	for _, r := range password {
		if unassigned.has(r) {
			return []byte(password)
		}
	}
	s, err := precis.OpaqueString.String(password)
	if err != nil {
		return []byte(password)
	}
	return []byte(s)
}

// forPgx returns the candidate and whether pgx derives exactly the bytes
// the server's verifier was computed from (Prepare).
func forPgx(password []byte) (string, bool) {
	want := Prepare(password)
	// The SASLprep-ed form first: it is what the keys were derived from,
	// and PRECIS leaves it alone (it is NFKC, so NFC too, and holds no
	// non-ASCII space) or rejects it (then pgx sends it as is).
	for _, c := range [][]byte{want, password} {
		if bytes.Equal(pgxPrepare(string(c)), want) {
			return string(c), true
		}
	}
	return string(want), false
}

// ForPgx returns the string to give pgx as ConnConfig.Password so that
// pgx's SCRAM login with it succeeds exactly when libpq's login with
// password does (the verifier was computed from the same password).
//
// It cannot cover a password PostgreSQL uses as raw bytes that PRECIS
// accepts but changes, since pgx then sends the changed form whatever it
// is given: invalid UTF-8 (x/text's PRECIS replaces it with U+FFFD), and
// a password SASLprep rejects (a prohibited character such as U+FFFD or
// U+2FF0, or right-to-left letters mixed with left-to-right ones) that is
// not NFC or holds a non-ASCII space. PgxCanLogIn reports those; ForPgx
// then returns password unchanged and pgx's login fails. Passwords from
// pwgen are never among them.
func ForPgx(password []byte) string {
	s, _ := forPgx(password)
	return s
}

// PgxCanLogIn reports whether a pgx login with ForPgx(password) matches
// the verifier of password (see ForPgx for the passwords it cannot).
func PgxCanLogIn(password []byte) bool {
	_, ok := forPgx(password)
	return ok
}
