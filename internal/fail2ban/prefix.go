// Package fail2ban writes a fail2ban filter and jail for PostgreSQL's
// authentication failures, matched to the server's log_line_prefix and log
// destination. The regular expressions are Python's (fail2ban runs them):
// no Go-only syntax.
package fail2ban

import (
	"fmt"
	"strings"
)

// Prefix is log_line_prefix translated for fail2ban.
type Prefix struct {
	// Regex matches what the prefix prints, with the first timestamp
	// left out: fail2ban cuts the date its datepattern found out of the
	// line before it applies the failregex.
	Regex string
	// Host: %h or %r is in the prefix (Regex holds <HOST>).
	Host bool
	// Date is the escape the datepattern matches ('m', 't', 'n'), 0 none.
	Date byte
	// DateFirst: nothing is printed before that timestamp.
	DateFirst bool
	// ClientBeforeHost: application_name (%a), which the client chooses
	// and which may hold spaces, comes before the host: a crafted name
	// could try to look like another address.
	ClientBeforeHost bool
}

// pyEscape escapes literal text for a Python regular expression: its
// metacharacters get a backslash, < and > become classes so fail2ban's
// <TAG> substitution never sees a tag in them, and % is doubled for
// fail2ban's %(name)s interpolation.
func pyEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '%':
			b.WriteString(`%%`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '<':
			b.WriteString(`[<]`)
		case '>':
			b.WriteString(`[>]`)
		case '.', '^', '$', '*', '+', '?', '{', '}', '[', ']', '\\', '|', '(', ')', '-', '#':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// escape regexes: what PostgreSQL prints for each (elog.c's
// log_status_format). Fields the client chooses match no whitespace, so a
// crafted role or database name cannot carry a fake message with a fake
// address (the messages all have spaces); compilePrefix lets %u and %d
// after the host hold spaces.
var escapes = map[byte]string{
	'a': `[^\n]*?`,                            // application_name: the client's, may hold spaces
	'u': `\S*`,                                // user name
	'd': `\S*`,                                // database name
	'b': `[A-Za-z ]*?`,                        // backend type ("client backend")
	'p': `\d+`,                                // process id
	'P': `\d*`,                                // parallel group leader's pid
	'c': `[0-9a-f]+\.[0-9a-f]+`,               // session id
	'l': `\d+`,                                // session line number
	's': `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+`, // session start
	'v': `(?:\d+/\d+)?`,                       // virtual transaction id
	'x': `\d+`,                                // transaction id
	'e': `[0-9A-Z]{5}`,                        // SQLSTATE
	'i': `[^\n]*?`,                            // command tag (ps display)
	'Q': `-?\d+`,                              // query id
	'L': `\S*`,                                // local address (PG 17+)
	// The remote host: a socket's "[local]" has no address to ban.
	'h': `<HOST>`,
	'r': `<HOST>\(\d+\)`,
	'm': `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+`,
	't': `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+`,
	'n': `\d+\.\d{3}`,
}

// CompilePrefix translates log_line_prefix. It never fails: PostgreSQL
// prints nothing for an unknown escape, and so does the regex.
func CompilePrefix(spec string) Prefix { return compilePrefix(spec, false) }

// compilePrefix with keepDate matches the timestamp too: the journal
// (fail2ban's systemd backend) dates entries itself and cuts nothing.
func compilePrefix(spec string, keepDate bool) Prefix {
	var p Prefix
	var b strings.Builder
	lit := strings.Builder{}
	flush := func() {
		if lit.Len() > 0 {
			b.WriteString(pyEscape(lit.String()))
			lit.Reset()
		}
	}
	client := false
	printed := false // something before the date
	for i := 0; i < len(spec); i++ {
		c := spec[i]
		if c != '%' {
			lit.WriteByte(c)
			printed = true
			continue
		}
		if i+1 >= len(spec) {
			break // a lone % at the end prints nothing
		}
		i++
		// Padding: an optional '-' and digits (%-10u, %10p).
		padded := false
		for i < len(spec) && (spec[i] == '-' || spec[i] >= '0' && spec[i] <= '9') {
			padded = true
			i++
		}
		if i >= len(spec) {
			break
		}
		c = spec[i]
		if c == '%' {
			lit.WriteByte('%')
			printed = true
			continue
		}
		if c == 'q' {
			// %q: what follows is left out for processes without a
			// session; backends (the ones that log auth failures) print it.
			continue
		}
		re, ok := escapes[c]
		if !ok {
			continue
		}
		flush()
		if (c == 'm' || c == 't' || c == 'n') && p.Date == 0 && !keepDate {
			p.Date, p.DateFirst = c, !printed
			// The datepattern takes the date and time; the zone stays in
			// the line (%n has none).
			if c != 'n' {
				re = ` \S+`
			} else {
				re = ``
			}
		}
		printed = true
		switch c {
		case 'a':
			client = true
		case 'u', 'd':
			// After the host, a name cannot move it: text the client put
			// in the name comes after the captured address, so the name
			// may hold spaces ("John Smith"). Before the host it stays
			// \S*: a spaced name could carry a fake address.
			if p.Host {
				re = `[^\n]*?`
			}
		case 'h', 'r':
			if p.Host {
				// A second host escape matches without capturing: fail2ban
				// allows one <HOST>.
				re = strings.ReplaceAll(re, "<HOST>", `\S+`)
			}
			p.Host = true
			p.ClientBeforeHost = p.ClientBeforeHost || client
		}
		if padded {
			re = ` *` + re + ` *`
		}
		b.WriteString(re)
	}
	flush()
	p.Regex = b.String()
	return p
}

// String describes the prefix for messages.
func (p Prefix) String() string {
	return fmt.Sprintf("regex %q host=%v date=%q", p.Regex, p.Host, p.Date)
}
