package logscan

// mayMatter is a necessary condition, checked without allocating, for a
// statement to match any of statementRules or to hold a secret: every
// rule needs one of the words below (as a substring, in any case) and
// every secret one of sqllex's and conninfo's trigger words. A statement
// with a byte outside ASCII is always let through: strings.ToUpper, which
// the rules see, maps some letters beyond ASCII onto ASCII ones (ı to I,
// ſ to S), and the slow path decides those exactly as before. A jsonlog
// message is checked still escaped, so \u (any letter) and \/ count too.
//
// Most statements of a busy server (pgbench's UPDATE ... SET, INSERT,
// SELECT) hold none of these words, so neither the lexer nor the eleven
// regular expressions run for them.
func mayMatter[T string | []byte](b T) bool {
	n := len(b)
	if n == 0 {
		return false
	}
	for i := 0; i+1 < n; i++ {
		// The first two bytes of every word, in every case, are marked in
		// a bit table: most positions cost a load and a bit test.
		k := uint16(b[i])<<8 | uint16(b[i+1])
		if bigrams[k>>3]&(1<<(k&7)) == 0 {
			continue
		}
		if b[i] >= 0x80 {
			return true
		}
		rest := b[i:]
		for _, w := range wordsAt[b[i]|0x20] {
			if hasWord(rest, w) {
				return true
			}
		}
	}
	return b[n-1] >= 0x80
}

// matterWords are the words mayMatter looks for (lower-case ASCII;
// letters match in any case, other bytes exactly).
var matterWords = []string{
	// statementRules
	"copy", "pg_", "lo_", "pgaudit", "log_", "privileges", "role", "user", "group", "grant", "revoke",
	"system", "language", "definer",
	// secrets (sqllex.MayHoldSecret, conninfo)
	"passw", "secret", "conninfo", "://", "u&",
	// jsonlog escapes
	`\u`, `\/`,
}

var (
	bigrams [1 << 13]byte // bit (c0<<8 | c1): a word can start with c0 c1
	wordsAt [256][]string // words by first byte (folded with |0x20)
	_       = initMatterWords()
)

func initMatterWords() bool {
	set := func(c0, c1 byte) {
		k := uint16(c0)<<8 | uint16(c1)
		bigrams[k>>3] |= 1 << (k & 7)
	}
	cases := func(c byte) []byte {
		if c >= 'a' && c <= 'z' {
			return []byte{c, c - 'a' + 'A'}
		}
		return []byte{c}
	}
	for _, w := range matterWords {
		for _, c0 := range cases(w[0]) {
			for _, c1 := range cases(w[1]) {
				set(c0, c1)
			}
		}
		wordsAt[w[0]|0x20] = append(wordsAt[w[0]|0x20], w)
	}
	for c0 := 0x80; c0 < 0x100; c0++ {
		for c1 := 0; c1 < 0x100; c1++ {
			set(byte(c0), byte(c1))
		}
	}
	return true
}

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
