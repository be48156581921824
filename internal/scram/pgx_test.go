package scram

import "testing"

// What ForPgx hands pgx, without a server (the oracle test logs in with
// each).
func TestForPgx(t *testing.T) {
	for _, tc := range []struct {
		name, pw, want string
		can            bool
	}{
		{"ascii", "Secret-42", "Secret-42", true},
		{"fullwidth folds", "ｐａｓｓ", "pass", true},
		{"soft hyphen removed", "pass\u00ADword", "password", true},
		{"no-break space", "pass\u00A0word", "pass word", true},
		{"decomposed composes", "cafe\u0301", "caf\u00E9", true},
		{"unchanged scripts", "Пароль密码Κωδικός", "Пароль密码Κωδικός", true},
		{"private use raw", "pass\uE000", "pass\uE000", true},
		{"unassigned in 3.2 raw", "pass\U0001F600", "pass\U0001F600", true},
		{"invalid UTF-8", "pass\xff", "pass\xff", false},
		{"U+FFFD with decomposed accent", "cafe\u0301\uFFFD", "cafe\u0301\uFFFD", false},
		{"bidi failure with no-break space", "\u05D0\u00A0abc", "\u05D0\u00A0abc", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ForPgx([]byte(tc.pw)); got != tc.want {
				t.Errorf("ForPgx = %+q, want %+q", got, tc.want)
			}
			if got := PgxCanLogIn([]byte(tc.pw)); got != tc.can {
				t.Errorf("PgxCanLogIn = %v, want %v", got, tc.can)
			}
		})
	}
}
