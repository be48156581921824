package scram

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/pwgen"
)

// loginCase is a password rotate may set, and what pgx does with it.
type loginCase struct {
	name string
	pw   []byte
	// pgxClear: pgx logs in with the clear password (no ForPgx).
	pgxClear bool
	// uncovered: not even ForPgx makes pgx's login work (see ForPgx).
	uncovered bool
}

// handPicked are passwords SASLprep changes or refuses, and pgx's answer
// to each (found against the server, explained in pgx.go).
var handPicked = []loginCase{
	{name: "fullwidth NFKC", pw: []byte("ｐａｓｓｗｏｒｄ"), pgxClear: false},
	{name: "ligatures NFKC", pw: []byte("ﬁne-ﬂow-Ⅻ"), pgxClear: false},
	{name: "soft hyphen mapped to nothing", pw: []byte("pass\u00ADword"), pgxClear: false},
	{name: "zero width joiner mapped to nothing", pw: []byte("пароль\u200Dключ"), pgxClear: false},
	{name: "no-break space", pw: []byte("pass\u00A0word"), pgxClear: true},
	{name: "ideographic space", pw: []byte("密码\u3000pass"), pgxClear: true},
	{name: "decomposed accent", pw: []byte("cafe\u0301-latte"), pgxClear: true},
	{name: "scripts unchanged", pw: []byte("Пароль密码Κωδικός"), pgxClear: true},
	{name: "prohibited private use, raw", pw: []byte("pass\uE000word"), pgxClear: true},
	{name: "prohibited and fullwidth, raw", pw: []byte("ｐａｓｓ\uE000"), pgxClear: true},
	{name: "unassigned in 3.2, raw", pw: []byte("pass\U0001F600word"), pgxClear: true},
	// PostgreSQL uses these raw, PRECIS changes them (invalid UTF-8 becomes
	// U+FFFD): no input gets pgx there.
	{name: "invalid UTF-8, raw", pw: []byte("pass\xffword"), uncovered: true},
	{name: "prohibited U+FFFD, decomposed accent", pw: []byte("cafe\u0301\uFFFD"), uncovered: true},
	{name: "bidi failure with no-break space", pw: []byte("\u05D0\u00A0abc"), uncovered: true},
}

// generated are pwgen's passwords for every alphabet at every length
// rotate documents (1024 only once per alphabet: it is the slow one).
func generated(t *testing.T) []loginCase {
	var cs []loginCase
	for _, a := range pwgen.Alphabets {
		for _, n := range []int{16, 32, 64, 128, 1024} {
			pw, err := pwgen.Generate(pwgen.Options{Length: n, Alphabet: a})
			if err != nil {
				t.Fatal(err)
			}
			// pgx leaves every alphabet's passwords alone (pwgen's tests
			// check each rune with PRECIS), so ForPgx is the clear text.
			cs = append(cs, loginCase{name: a + "/" + strconv.Itoa(n), pw: pw, pgxClear: true})
		}
	}
	return cs
}

// TestRotatePasswordsLogIn sets the client-computed verifier of each
// password and logs in with libpq (psql) and pgx.
// ORACLE: the server's SCRAM login (pg_hba scram-sha-256 on loopback TCP).
// The clear password gets in through libpq, a wrong one does not; pgx
// gets in with ForPgx(password) except where PgxCanLogIn says it cannot,
// never with ForPgx of a wrong one, and with the clear text exactly where
// the case says.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func TestRotatePasswordsLogIn(t *testing.T) {
	srv := pgtest.Shared(t)
	psql := findPsql(t, srv)
	ctx := pgtest.Ctx(t)
	admin := pgtest.Conn(t, srv, "postgres")
	const role = "oracle_rotate"
	loginRole(t, admin, role)
	cases := append(generated(t), handPicked...)
	start := time.Now()
	logins, disagreements := 0, 0
	var libpqTime, pgxTime time.Duration
	libpq := func(pw []byte) (bool, string) {
		t0 := time.Now()
		defer func() { libpqTime += time.Since(t0) }()
		return psqlLogin(ctx, psql, srv, role, pw)
	}
	viaPgx := func(pw string) (bool, string) {
		t0 := time.Now()
		defer func() { pgxTime += time.Since(t0) }()
		return pgxLogin(ctx, srv, role, pw)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Verifier(c.pw, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := admin.Exec(ctx, `ALTER ROLE `+role+` PASSWORD '`+v+`'`); err != nil {
				t.Fatalf("storing the verifier: %v", err)
			}
			wrong := append(bytes.Clone(c.pw), 'x')
			check := func(what string, ok bool, odd string, want bool) {
				t.Helper()
				logins++
				if ok != want || odd != "" {
					disagreements++
					t.Errorf("%s: login ok=%v, want %v %s", what, ok, want, odd)
				}
			}
			ok, odd := libpq(c.pw)
			check("libpq, clear password", ok, odd, true)
			ok, odd = libpq(wrong)
			check("libpq, wrong password", ok, odd, false)
			if can := PgxCanLogIn(c.pw); can == c.uncovered {
				t.Errorf("PgxCanLogIn = %v, the case says uncovered=%v", can, c.uncovered)
			}
			forPgx := ForPgx(c.pw)
			ok, odd = viaPgx(forPgx)
			check("pgx, ForPgx", ok, odd, !c.uncovered)
			if forPgx == string(c.pw) {
				// The same login as with the clear text: not repeated.
				if !c.pgxClear && !c.uncovered {
					t.Errorf("ForPgx returns the clear text, which the case says pgx cannot log in with")
				}
			} else {
				ok, odd = viaPgx(string(c.pw))
				check("pgx, clear password", ok, odd, c.pgxClear)
			}
			if !isASCII(c.pw) {
				// A wrong password through pgx where preparation matters;
				// for ASCII ones libpq's wrong login said all there is.
				ok, odd = viaPgx(ForPgx(wrong))
				check("pgx, ForPgx of a wrong password", ok, odd, false)
			}
		})
	}
	t.Logf("logins: libpq %.0f ms, pgx %.0f ms on average", ms(libpqTime)/float64(2*len(cases)), ms(pgxTime)/float64(logins-2*len(cases)))
	t.Logf("ORACLE scram-rotate-logins pg%d: cases=%d logins=%d disagreements=%d seconds=%.1f", srv.Major, len(cases), logins, disagreements, time.Since(start).Seconds())
}
