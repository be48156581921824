package logscan

// mayMatter is a necessary condition, checked without allocating, for a
// statement to match any of statementRules or to hold a secret: every
// rule needs one of ruleWords (as a substring, in any case) and every
// secret one of sqllex's and conninfo's trigger words. A statement with a
// byte outside ASCII is always let through: strings.ToUpper, which the
// rules see, maps some letters beyond ASCII onto ASCII ones (ı to I,
// ſ to S), and the slow path decides those exactly as before.
//
// Most statements of a busy server (pgbench's UPDATE ... SET, INSERT,
// SELECT) hold none of these words, so neither the lexer nor the eleven
// regular expressions run for them.
func mayMatter[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 0x80 {
			return true
		}
		if !wordStart[c] {
			continue
		}
		rest := b[i:]
		switch c {
		case 'c', 'C':
			if hasWord(rest, "copy") || hasWord(rest, "conninfo") {
				return true
			}
		case 'p', 'P':
			if hasWord(rest, "pg_") || hasWord(rest, "pgaudit") || hasWord(rest, "privileges") || hasWord(rest, "passw") {
				return true
			}
		case 'l', 'L':
			if hasWord(rest, "lo_") || hasWord(rest, "log_") || hasWord(rest, "language") {
				return true
			}
		case 'r', 'R':
			if hasWord(rest, "role") || hasWord(rest, "revoke") {
				return true
			}
		case 'u', 'U':
			if hasWord(rest, "user") || hasWord(rest, "u&") {
				return true
			}
		case 'g', 'G':
			if hasWord(rest, "grant") || hasWord(rest, "group") {
				return true
			}
		case 's', 'S':
			if hasWord(rest, "system") || hasWord(rest, "secret") {
				return true
			}
		case 'd', 'D':
			if hasWord(rest, "definer") {
				return true
			}
		case ':':
			if len(rest) >= 3 && rest[1] == '/' && rest[2] == '/' {
				return true
			}
		case '\\':
			// A jsonlog message is checked still escaped: \u0070 can spell
			// any letter and \/ a slash.
			if len(rest) >= 2 && (rest[1] == 'u' || rest[1] == '/') {
				return true
			}
		}
	}
	return false
}

// wordStart marks the bytes a trigger word of mayMatter starts with.
var wordStart = func() (t [256]bool) {
	for _, c := range "cpl rugsd" {
		if c != ' ' {
			t[c], t[c-0x20] = true, true
		}
	}
	t[':'], t['\\'] = true, true
	return t
}()

// hasWord reports whether b starts with w (lower-case ASCII) in any case;
// only letters are folded ('_' and '&' are not '\x7f' and '\x06').
func hasWord[T string | []byte](b T, w string) bool {
	if len(b) < len(w) {
		return false
	}
	for k := 0; k < len(w); k++ {
		c := b[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[k] {
			return false
		}
	}
	return true
}
