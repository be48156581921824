// Package waiver applies a file of accepted findings (rule, object,
// reason, expiry) to audit results: a waived finding is reported as
// waived until its waiver expires, then it fails again.
package waiver

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Entry is one accepted finding.
type Entry struct {
	Rule string `yaml:"rule"`
	// Object matches the finding's object exactly, or by shell pattern
	// ("role app_*"); empty matches every object of the rule.
	Object  string `yaml:"object"`
	Reason  string `yaml:"reason"`
	Expires string `yaml:"expires"`
	Owner   string `yaml:"owner"`
	line    int
	expires time.Time
}

// File is a parsed waiver file.
type File struct {
	Path    string
	Entries []Entry
}

// Load reads a waiver file:
//
//	waivers:
//	  - rule: AUTH-05
//	    object: "hba rule: host all all 127.0.0.1/32 scram-sha-256"
//	    reason: loopback only, TLS terminates in the local proxy
//	    expires: 2027-03-31
//	    owner: dba-team
//
// Every entry needs a rule, a reason and an expiry date: an acceptance
// that never expires is a finding nobody will look at again.
func Load(path string) (*File, error) {
	data, err := safefile.ReadFile(path, safefile.ConfigMax) // regular files only, capped
	if err != nil {
		return nil, err
	}
	var doc struct {
		Waivers []yaml.Node `yaml:"waivers"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	f := &File{Path: path}
	known := map[string]bool{"rule": true, "object": true, "reason": true, "expires": true, "owner": true}
	for _, n := range doc.Waivers {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: a waiver is a mapping (rule:, object:, reason:, expires:)", path, n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !known[k.Value] {
				return nil, fmt.Errorf("%s:%d: unknown field %q in waiver", path, k.Line, k.Value)
			}
		}
		var e Entry
		if err := n.Decode(&e); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n.Line, err)
		}
		e.line = n.Line
		switch {
		case e.Rule == "":
			return nil, fmt.Errorf("%s:%d: waiver without a rule", path, n.Line)
		case strings.TrimSpace(e.Reason) == "":
			return nil, fmt.Errorf("%s:%d: waiver for %s without a reason", path, n.Line, e.Rule)
		case e.Expires == "":
			return nil, fmt.Errorf("%s:%d: waiver for %s without an expiry date (expires: YYYY-MM-DD)", path, n.Line, e.Rule)
		}
		t, err := time.Parse("2006-01-02", e.Expires)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: expires %q is not a date (YYYY-MM-DD)", path, n.Line, e.Expires)
		}
		e.expires = t.Add(24 * time.Hour) // valid through the whole day
		if e.Object != "" {
			if _, err := filepath.Match(e.Object, ""); err != nil {
				return nil, fmt.Errorf("%s:%d: object pattern %q: %v", path, n.Line, e.Object, err)
			}
		}
		f.Entries = append(f.Entries, e)
	}
	return f, nil
}

func (e *Entry) matches(f *rules.Finding) bool {
	if e.Rule != f.Rule {
		return false
	}
	if e.Object == "" || e.Object == f.Object {
		return true
	}
	ok, _ := filepath.Match(e.Object, f.Object)
	return ok
}

// Apply marks matching failures as waived (or, past expiry, keeps them
// failing with the expired waiver attached). It returns warnings for
// entries that matched nothing, so stale waivers get cleaned up.
func (w *File) Apply(fs []rules.Finding, now time.Time) []string {
	used := make([]bool, len(w.Entries))
	for i := range fs {
		f := &fs[i]
		if f.Status != rules.Fail {
			continue
		}
		for j := range w.Entries {
			e := &w.Entries[j]
			if !e.matches(f) {
				continue
			}
			used[j] = true
			f.Waiver = &rules.Waiver{Reason: e.Reason, Expires: e.Expires, Owner: e.Owner}
			if now.After(e.expires) {
				f.Waiver.Expired = true
			} else {
				f.Status = rules.Waived
			}
			break
		}
	}
	var warns []string
	for j, e := range w.Entries {
		if !used[j] {
			warns = append(warns, fmt.Sprintf("%s:%d: waiver for %s %q matched no failing finding", w.Path, e.line, e.Rule, e.Object))
		}
	}
	return warns
}
