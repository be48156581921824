package scram

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// pools the generator draws runes from: each exercises one part of
// SASLprep (mapping, NFKC, prohibition, the 3.2 unassigned table, bidi).
var pools = map[string][]rune{
	"ascii":      []rune("abcXYZ019 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
	"control":    {0x01, 0x09, 0x0A, 0x1B, 0x7F},
	"latin":      {0xE9, 0xDF, 0xF1, 0xC5, 0x0151, 0x0133},
	"combining":  {0x0301, 0x0308, 0x0327, 0x0345},
	"compat":     {0xFB01, 0xFB00, 0x2168, 0x2460, 0x2126, 0x212B, 0xFF21, 0xFF41, 0x00BD, 0x00B2, 0x3392, 0xFE37, 0x1D400},
	"spaces":     {0x00A0, 0x1680, 0x2003, 0x200B, 0x202F, 0x205F, 0x3000},
	"nothing":    {0x00AD, 0x034F, 0x1806, 0x180B, 0x200C, 0x200D, 0x2060, 0xFE00, 0xFE0F, 0xFEFF},
	"prohibited": {0x0085, 0x06DD, 0x200E, 0x2028, 0x206A, 0x2FF0, 0xE000, 0xFDD0, 0xFFFD, 0xFFFE, 0x1D173, 0xE0001, 0xF0000},
	"unassigned": {0x0221, 0x0560, 0x08A0, 0x1F600, 0x20AC + 0x10, 0x9FA6, 0x2B740, 0x0237},
	"rtl":        {0x05D0, 0x05D1, 0x05EA, 0x0627, 0x0644, 0x0710, 0xFB1D, 0xFE70, 0x05BE},
	"neutral":    {'1', '-', ' ', 0x0660, 0x06F0},
	"hangul":     {0xAC00, 0x1100, 0x1161, 0x11A8, 0x3131},
	"cjk":        {0x4E00, 0x9FA5, 0xF900, 0x2F800},
}

var poolNames = func() []string {
	var n []string
	for k := range pools {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}()

// genPassword draws a password from two or three pools; some get an
// invalid UTF-8 byte sequence spliced in.
func genPassword(r *rand.Rand) ([]byte, string) {
	var b strings.Builder
	var kinds []string
	picked := []string{"ascii"}
	for range 1 + r.IntN(2) {
		picked = append(picked, poolNames[r.IntN(len(poolNames))])
	}
	if r.IntN(3) == 0 { // pure RTL strings, so the bidi rule passes sometimes
		picked = []string{"rtl", "neutral"}
	}
	kinds = append(kinds, picked...)
	n := 1 + r.IntN(12)
	for i := range n {
		p := pools[picked[r.IntN(len(picked))]]
		if picked[0] == "rtl" && (i == 0 || i == n-1) {
			p = pools["rtl"]
		}
		b.WriteRune(p[r.IntN(len(p))])
	}
	pw := []byte(b.String())
	if r.IntN(8) == 0 {
		bad := [][]byte{{0xFF}, {0xC3}, {0xED, 0xA0, 0x80}, {0xC0, 0xAF}, {0xF4, 0x90, 0x80, 0x80}, {0xE2, 0x82}}[r.IntN(6)]
		at := r.IntN(len(pw) + 1)
		pw = append(pw[:at:at], append(bad, pw[at:]...)...)
		kinds = append(kinds, "invalid-utf8")
	}
	return pw, strings.Join(kinds, "+")
}

// variant is a second password for the same verifier: equivalent under
// SASLprep or not, as Prepare says; the login decides.
func variant(r *rand.Rand, pw []byte) ([]byte, string) {
	switch r.IntN(8) {
	case 0:
		return norm.NFD.Bytes(pw), "nfd"
	case 1:
		return norm.NFKC.Bytes(pw), "nfkc"
	case 2:
		at := r.IntN(len(pw) + 1)
		for at > 0 && at < len(pw) && pw[at]&0xC0 == 0x80 {
			at--
		}
		return append(pw[:at:at], append([]byte("\u00AD"), pw[at:]...)...), "soft-hyphen"
	case 3:
		return bytes.Replace(pw, []byte(" "), []byte("\u3000"), 1), "ideographic-space"
	case 4:
		return append(bytes.Clone(pw), 'x'), "appended"
	case 5:
		out := bytes.Clone(pw)
		out[r.IntN(len(out))] ^= 0x01
		if bytes.IndexByte(out, 0) >= 0 {
			return append(bytes.Clone(pw), 'y'), "appended"
		}
		return out, "bit-flip"
	case 6:
		var b strings.Builder
		for _, c := range string(pw) {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
				c += 0xFF21 - 'A'
			}
			b.WriteRune(c)
		}
		if !utf8.Valid(pw) {
			return append(bytes.Clone(pw), 'z'), "appended"
		}
		return []byte(b.String()), "fullwidth"
	default:
		return []byte(strings.ToUpper(string(pw))), "upper"
	}
}

// TestVerifierOracle stores client-side verifiers with ALTER ROLE and logs
// in through libpq (psql) with clear passwords over TCP, where pg_hba
// requires scram-sha-256: the clear password must get in, and a variant
// gets in exactly when Prepare maps both to the same bytes, and pgx with
// ForPgx gets in exactly when PgxCanLogIn says it can. Passwords
// reach psql through its environment only, never argv or test output.
func TestVerifierOracle(t *testing.T) {
	srv := pgtest.Shared(t)
	psql := findPsql(t, srv)
	ctx := pgtest.Ctx(t)
	admin := pgtest.Conn(t, srv, "postgres")
	loginRole(t, admin, "oracle_login")
	login := func(pw []byte) (bool, string) { return psqlLogin(ctx, psql, srv, "oracle_login", pw) }

	r := rand.New(rand.NewPCG(16, uint64(time.Now().UnixNano())))
	const cases = 80
	start := time.Now()
	disagreements := 0
	// What the cases covered: passwords SASLprep changed, non-ASCII ones
	// used raw (invalid UTF-8 or a failed check), equivalent variants.
	normalized, raw, equivalent, pgxUncovered := 0, 0, 0, 0
	for i := range cases {
		pw, kind := genPassword(r)
		v, err := Verifier(pw, 0)
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, kind, err)
		}
		if _, err := admin.Exec(ctx, `ALTER ROLE oracle_login PASSWORD '`+v+`'`); err != nil {
			t.Fatalf("case %d: storing the verifier: %v", i, err)
		}
		if ok, odd := login(pw); !ok {
			disagreements++
			t.Errorf("case %d (%s, %d bytes): the clear password does not log in %s", i, kind, len(pw), odd)
		}
		// pgx with ForPgx gets in exactly when PgxCanLogIn says so.
		can := PgxCanLogIn(pw)
		if !can {
			pgxUncovered++
		}
		if ok, odd := pgxLogin(ctx, srv, "oracle_login", ForPgx(pw)); ok != can || odd != "" {
			disagreements++
			t.Errorf("case %d (%s): pgx login with ForPgx ok=%v, PgxCanLogIn says %v %s", i, kind, ok, can, odd)
		}
		switch p := Prepare(pw); {
		case !bytes.Equal(p, pw):
			normalized++
		case !isASCII(pw):
			raw++
		}
		other, how := variant(r, pw)
		want := bytes.Equal(Prepare(other), Prepare(pw))
		if want {
			equivalent++
		}
		if ok, odd := login(other); ok != want || odd != "" {
			disagreements++
			t.Errorf("case %d (%s, variant %s): login ok=%v, Prepare says %v %s", i, kind, how, ok, want, odd)
		}
	}
	t.Logf("covered: %d normalized, %d non-ASCII used raw, %d equivalent variants, %d pgx cannot log in with", normalized, raw, equivalent, pgxUncovered)
	t.Logf("ORACLE scram-verifier pg%d: cases=%d disagreements=%d seconds=%.1f", srv.Major, 3*cases, disagreements, time.Since(start).Seconds())
}
