package hba

import (
	"strings"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// IdentMap is one pg_ident.conf line: system user (or /regex) to role.
type IdentMap struct {
	File       string `json:"file"`
	Line       int    `json:"line"`
	Map        string `json:"map"`
	SystemUser string `json:"system_user"`
	PGUser     string `json:"pg_user"`
	// Regex is true when SystemUser starts with a slash.
	Regex bool `json:"regex,omitempty"`
}

// IdentFile is a parsed pg_ident.conf.
type IdentFile struct {
	Path   string       `json:"path"`
	Maps   []IdentMap   `json:"maps"`
	Errors []ParseError `json:"errors,omitempty"`
}

// ParseIdentFile reads and parses a pg_ident.conf.
func ParseIdentFile(path string, o Options) (*IdentFile, error) {
	read := o.ReadFile
	if read == nil {
		read = safefile.ReadConfig
	}
	data, err := read(path)
	if err != nil {
		return nil, err
	}
	return ParseIdent(path, data, o), nil
}

// ParseIdent parses pg_ident.conf content.
func ParseIdent(name string, data []byte, o Options) *IdentFile {
	f := &IdentFile{Path: name}
	for _, tl := range newTokenizer(o).tokenizeFile(name, data, 0) {
		if tl.err != "" {
			f.Errors = append(f.Errors, ParseError{tl.file, tl.line, renderErr(tl.err, tl.quotable())})
			continue
		}
		m, err := parseIdentLine(tl.file, tl)
		if err != "" {
			f.Errors = append(f.Errors, ParseError{tl.file, tl.line, renderErr(err, tl.quotable())})
			continue
		}
		f.Maps = append(f.Maps, m)
	}
	return f
}

func parseIdentLine(file string, tl tokenLine) (IdentMap, string) {
	m := IdentMap{File: file, Line: tl.line}
	var vals [3]string
	for i := 0; i < 3; i++ {
		if i >= len(tl.fields) {
			return m, "missing entry at end of line"
		}
		if len(tl.fields[i]) > 1 {
			return m, "multiple values in ident field"
		}
		vals[i] = tl.fields[i][0].Value
	}
	m.Map, m.SystemUser, m.PGUser = vals[0], vals[1], vals[2]
	if strings.HasPrefix(m.SystemUser, "/") {
		m.Regex = true
		// PostgreSQL's regex dialect (ARE) is close to RE2 for the
		// patterns used in ident maps; a pattern RE2 rejects is reported.
		if _, err := compileRegex(m.SystemUser[1:]); err != nil {
			return m, "invalid regular expression " + q(m.SystemUser[1:]) + ": " + q(err.Error())
		}
	}
	return m, ""
}
