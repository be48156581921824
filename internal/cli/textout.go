package cli

import (
	"strings"

	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// textEnv returns env with Stdout escaping control and bidi characters
// (textsafe.Writer), for a command's human-readable output: names, log
// fields and certificate subjects come from whoever created them. Fields
// are also escaped one by one with esc (which escapes newlines and tabs
// too, so a name cannot fake a line or a column); the writer is the net
// for a field added later without it.
func textEnv(env *Env) *Env {
	c := *env
	c.Stdout = textsafe.NewWriter(env.Stdout)
	return &c
}

// esc escapes one untrusted value for a line of text output.
func esc(s string) string { return textsafe.String(s) }

// escAll escapes each value.
func escAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = esc(s)
	}
	return out
}

// csvRow prepares untrusted values for a CSV row that a spreadsheet may
// open or a terminal may show: control and bidi characters are escaped, and
// a value a spreadsheet would run as a formula (=, +, -, @, or a tab or CR
// first) is prefixed with ' (the OWASP CSV-injection advice): a role named
// =HYPERLINK(...) is data, not a link.
func csvRow(vals ...string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		v = textsafe.String(v)
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			v = "'" + v
		}
		out[i] = v
	}
	return out
}
