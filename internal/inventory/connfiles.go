package inventory

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// fileKeys are the connection keys whose value is a file that pgx reads
// while parsing the settings: a FIFO there would hang the parse, and a
// passfile open to others would be used where libpq ignores it.
var fileKeys = []string{"passfile", "servicefile", "sslrootcert", "sslcert", "sslkey", "sslcrl"}

// checkConnFiles checks the files a connection string names itself
// (the inventory's own passfile: and servicefile: keys are checked
// apart). Relative paths are relative to the working directory, as
// libpq reads them.
func checkConnFiles(conn string) error {
	settings := connSettings(conn)
	for _, k := range fileKeys {
		p := settings[k]
		if p == "" || (k == "sslrootcert" && p == "system") {
			continue
		}
		if k == "passfile" {
			if err := checkPrivate(p, "passfile"); err != nil {
				return err
			}
			continue
		}
		f, err := safefile.Open(p)
		if err != nil {
			return fmt.Errorf("%s: %s", k, plainErr(err))
		}
		f.Close()
	}
	return nil
}

// connSettings reads the keys of a URI's query or of a libpq key=value
// string (libpq's conninfo_parse: single quotes with backslash escapes,
// or a word with backslash escapes). Malformed input yields what could be
// read: pgx reports the error itself.
func connSettings(s string) map[string]string {
	out := map[string]string{}
	if isURI(s) {
		if u, err := url.Parse(s); err == nil {
			for k, v := range u.Query() {
				out[k] = v[len(v)-1]
			}
		}
		return out
	}
	i := 0
	skip := func() {
		for i < len(s) && strings.IndexByte(" \t\n\r\f\v", s[i]) >= 0 {
			i++
		}
	}
	for {
		skip()
		start := i
		for i < len(s) && s[i] != '=' && strings.IndexByte(" \t\n\r\f\v", s[i]) < 0 {
			i++
		}
		key := s[start:i]
		skip()
		if key == "" || i >= len(s) || s[i] != '=' {
			return out
		}
		i++
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			for i++; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
			}
			if i < len(s) { // the closing quote; an unterminated one ends the text
				i++
			}
		} else {
			for ; i < len(s) && strings.IndexByte(" \t\n\r\f\v", s[i]) < 0; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
			}
		}
		out[key] = v.String()
	}
}
