package fix

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// lstat is how the planner looks at a path it would chmod; tests swap it.
var lstat = os.Lstat

// planFiles merges every chmod into one step: one mode per path (the
// strictest asked, and never a bit the file does not have now), symlinks
// left out (chmod follows them to whatever they point at).
func planFiles(s *snapshot.Snapshot, items []item) ([]built, []plan.Held) {
	type want struct {
		from, to os.FileMode
		items    []item
	}
	byPath := map[string]*want{}
	var held []plan.Held
	for _, it := range items {
		fm := it.c.File
		if fm.Path == "" {
			held = append(held, plan.Held{FindingRef: it.ref(), Why: "no path to change"})
			continue
		}
		if symlinked(s, fm.Path) {
			held = append(held, plan.Held{FindingRef: it.ref(), Why: fmt.Sprintf("%s is a symbolic link: change the file it points to by hand", quote.Shell(fm.Path))})
			continue
		}
		w := byPath[fm.Path]
		if w == nil {
			from := fm.From.Perm()
			if fi, err := lstat(fm.Path); err == nil {
				from = fi.Mode().Perm() // what it is now, if it changed since the audit
			}
			w = &want{from: from, to: from}
			byPath[fm.Path] = w
		}
		// Only take bits away: the intersection of every request.
		w.to &= fm.Mode.Perm()
		w.items = append(w.items, it)
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	step := plan.Step{Kind: plan.KindFileMode}
	texts := map[string]string{}
	seen := map[string]bool{}
	for _, p := range paths {
		w := byPath[p]
		if w.to == w.from {
			continue
		}
		step.Modes = append(step.Modes, plan.ModeChange{Path: p, From: w.from, To: w.to})
		line := fmt.Sprintf("chmod %04o %s    # was %04o", uint32(w.to), quote.Shell(p), uint32(w.from))
		for _, it := range w.items {
			texts[it.f.Key()] = line
			if !seen[it.f.Key()] {
				seen[it.f.Key()] = true
				step.Closes = append(step.Closes, it.ref())
			}
		}
	}
	if len(step.Modes) == 0 {
		return nil, held
	}
	var names []string
	for _, m := range step.Modes {
		names = append(names, quote.Shell(m.Path))
	}
	step.Summary = fmt.Sprintf("tighten the modes of %d path(s): %s", len(step.Modes), strings.Join(names, " "))
	return []built{{step: step, key: "files", texts: texts, order: phaseFiles}}, held
}

// symlinked reports whether the path is a symbolic link, as the audit saw
// it or as it is now on this host.
func symlinked(s *snapshot.Snapshot, path string) bool {
	for _, f := range s.Files {
		if f.Path == path && f.Symlink {
			return true
		}
	}
	if s.Host != nil {
		for _, f := range s.Host.PgpassFiles {
			if f.Path == path && f.Symlink {
				return true
			}
		}
	}
	if fi, err := lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return true
	}
	return false
}
