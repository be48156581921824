package pgconf

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/guc"
)

// Server is what Settle needs to know about the running server a
// configuration is read into.
type Server struct {
	Major int
	// Current holds the running values of the postmaster parameters
	// (lower-case name to pg_settings.setting): a file can only repeat
	// them until a restart.
	Current map[string]string
	// FromFile lists the postmaster parameters (as pg_settings spells
	// them) whose value came from a configuration file: removing them
	// needs a restart.
	FromFile map[string]bool
	// Placeholders lists custom (dotted) names the reading backend has
	// seen before (lower-case): it then treats them as known parameters.
	// Settle adds the ones it makes.
	Placeholders map[string]bool
}

// Outcome is what the server does with one entry at a reload.
type Outcome struct {
	Applied bool
	// Error is pg_file_settings.error: "unrecognized configuration
	// parameter", "setting could not be applied", or empty.
	Error string
}

// Settlement is a reload of the configuration as pg_file_settings shows it.
type Settlement struct {
	Entries []Outcome // parallel to Config.Entries
	// Restart lists the rows with no file: postmaster parameters taken
	// out of the files, which keep their value until a restart.
	Restart []string
	// Applied is false when nothing was applied: a syntax or include
	// error, or an unrecognized parameter, anywhere.
	Applied bool
}

// Settle works out which entries a reload would apply, the way the
// server's ProcessConfigFile does: any syntax or include error, or any
// unrecognized name, and nothing is applied; a later line for the same
// name (spelled the same) makes the earlier one unused; a value the
// parameter refuses, or a new value for a parameter that needs a
// restart, is "setting could not be applied".
func (c *Config) Settle(s Server) Settlement {
	out := Settlement{Entries: make([]Outcome, len(c.Entries))}
	if s.Placeholders == nil {
		s.Placeholders = map[string]bool{}
	}
	if len(c.Errors) > 0 {
		return out
	}
	ignore := make([]bool, len(c.Entries))
	inFile := map[string]bool{}
	failed := false
	for i, e := range c.Entries {
		lname := strings.ToLower(e.Name)
		p, known := guc.Resolve(e.Name, s.Major)
		if known {
			lname = strings.ToLower(p.Name) // an old name marks the parameter it stands for
		}
		if known || s.Placeholders[lname] {
			if inFile[lname] {
				// The server compares the names as spelled (strcmp).
				for j := 0; j < i; j++ {
					if !ignore[j] && c.Entries[j].Name == e.Name {
						ignore[j] = true
					}
				}
			}
			inFile[lname] = true
		} else if !validCustomName(e.Name) {
			out.Entries[i].Error = "unrecognized configuration parameter"
			failed = true
		}
	}
	if failed {
		return out
	}
	var restart []string
	for name := range s.FromFile {
		if !inFile[strings.ToLower(name)] {
			restart = append(restart, fmt.Sprintf("parameter \"%s\" cannot be changed without restarting the server", name))
		}
	}
	sort.Strings(restart)
	out.Restart = restart
	out.Applied = true
	for i, e := range c.Entries {
		if ignore[i] {
			continue
		}
		if err := s.check(e); err != nil {
			out.Entries[i].Error = "setting could not be applied"
			continue
		}
		out.Entries[i].Applied = true
	}
	return out
}

// check is the server's set_config_option at a reload, without the
// change: nil when the value would be taken.
func (s Server) check(e Entry) error {
	lname := strings.ToLower(e.Name)
	p, ok := guc.Resolve(e.Name, s.Major)
	if !ok {
		s.Placeholders[lname] = true // a custom name: a placeholder takes any string
		return nil
	}
	switch p.Context {
	case "internal":
		return fmt.Errorf("parameter %q cannot be changed", e.Name)
	}
	if err := guc.CheckValue(p, e.Value, s.Major); err != nil {
		return err
	}
	if p.Context == "postmaster" {
		cur, ok := s.Current[strings.ToLower(p.Name)]
		if !ok {
			return nil
		}
		if same, err := guc.SameValue(p, e.Value, cur); err != nil || !same {
			return fmt.Errorf("parameter %q cannot be changed without restarting the server", e.Name)
		}
	}
	return nil
}

// validCustomName is the server's test for a placeholder name: two or
// more identifiers joined by dots (the lexer only makes two).
func validCustomName(name string) bool {
	parts := strings.Split(name, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || p[0] >= '0' && p[0] <= '9' {
			return false
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80) {
				return false
			}
		}
	}
	return true
}
