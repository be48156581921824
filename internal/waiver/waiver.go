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

func (e *Entry) matches(object string) bool {
	if e.Object == "" || e.Object == object {
		return true
	}
	ok, _ := filepath.Match(e.Object, object)
	return ok
}

// accept attaches the waiver to f and waives it unless it has expired.
func (e *Entry) accept(f *rules.Finding, now time.Time) {
	f.Waiver = &rules.Waiver{Reason: e.Reason, Expires: e.Expires, Owner: e.Owner}
	if now.After(e.expires) {
		f.Waiver.Expired = true
	} else {
		f.Status = rules.Waived
	}
}

// Apply marks matching failures as waived (or, past expiry, keeps them
// failing with the expired waiver attached), and returns the findings with
// warnings for entries that matched nothing, so stale waivers get cleaned
// up.
//
// A waiver matches a finding by rule and object. A finding that stands
// for many objects (Finding.Objects: every login role via one function,
// one pattern over many roles or tables) also matches by its members, so
// a waiver written for one object keeps working when the rule reports it
// inside such a finding: a waiver that matches every member waives the
// finding; one that matches some splits them off into a finding of their
// own (its object is the waiver's object, its objects the members it
// accepts), and the rest keep failing. Each part is described, counted
// and fixed by its own members (rules.Finding.Split), so plan after
// Apply: the rest's changes then leave the waived members alone.
func (w *File) Apply(fs []rules.Finding, now time.Time) ([]rules.Finding, []string) {
	used := make([]bool, len(w.Entries))
	out := make([]rules.Finding, 0, len(fs))
	for _, f := range fs {
		if f.Status != rules.Fail {
			out = append(out, f)
			continue
		}
		// Notes on the parts split off, added once the rest is final
		// (a split describes the rest afresh).
		var notes []string
		for j := range w.Entries {
			e := &w.Entries[j]
			if e.Rule != f.Rule {
				continue
			}
			if e.matches(f.Object) {
				used[j] = true
				e.accept(&f, now)
				break
			}
			var in, rest []string
			for _, o := range f.Objects {
				if e.matches(o) {
					in = append(in, o)
				} else {
					rest = append(rest, o)
				}
			}
			if len(in) == 0 {
				continue
			}
			used[j] = true
			if len(rest) == 0 {
				e.accept(&f, now)
				break
			}
			part, left, ok := f.Split(e.matches)
			if !ok {
				// Not made by an aggregating rule: split the objects only.
				part, left = f, f
				part.Objects, part.Count = in, len(in)
				part.Evidence = fmt.Sprintf("%d of the objects of %q: %s", len(in), f.Object, strings.Join(in, ", "))
				left.Objects, left.Count = rest, f.Count-len(in)
			}
			part.Object = e.Object
			e.accept(&part, now)
			out = append(out, part)
			f = left
			if part.Status == rules.Waived {
				notes = append(notes, fmt.Sprintf("(%d of these objects are accepted by a waiver of %q and reported apart)", len(in), e.Object))
			} else {
				notes = append(notes, fmt.Sprintf("(%d of these objects had a waiver of %q that expired on %s: they are reported apart)", len(in), e.Object, e.Expires))
			}
		}
		if len(notes) > 0 {
			f.Evidence += "\n" + strings.Join(notes, "\n")
		}
		out = append(out, f)
	}
	var warns []string
	for j, e := range w.Entries {
		if !used[j] {
			warns = append(warns, fmt.Sprintf("%s:%d: waiver for %s %q matched no failing finding", w.Path, e.line, e.Rule, e.Object))
		}
	}
	return out, warns
}
