package report

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// A finding that stands for many objects (rules.Finding.Objects) lists
// them all in the JSON and SARIF reports; the human reports show the count
// and the first few, as they do for a rule with many findings, and --all
// (or -v) lists every one. Its fix, one statement per object, is clipped
// the same way: `pgaegis fix` runs all of it.

// shownObjects is how many objects of one finding the human reports list
// without --all.
const shownObjects = 8

// shownFixLines is how many lines of a long fix they show without --all.
const shownFixLines = 12

// objectsText renders a finding's objects: "6,667: role r0, role r3, …
// and 6,659 more (--all lists every one)"; "" for a finding about one
// object.
func objectsText(f rules.Finding, all bool) string {
	return objectsHint(f, all, " (--all lists every one)")
}

// objectsHint is objectsText with the hint after the count of the rest.
func objectsHint(f rules.Finding, all bool, hint string) string {
	if len(f.Objects) == 0 {
		return ""
	}
	n := f.Count
	if n < len(f.Objects) {
		n = len(f.Objects)
	}
	objs := f.Objects
	// "role r0 via function f" under "every login role via function f":
	// the shared " via …" is said once, by the finding's object.
	if _, via, ok := strings.Cut(f.Object, " via "); ok {
		suffix := " via " + via
		short := make([]string, len(objs))
		for i, o := range objs {
			if short[i], ok = strings.CutSuffix(o, suffix); !ok {
				short = nil
				break
			}
		}
		if short != nil {
			objs = short
		}
	}
	more := ""
	if !all && len(objs) > shownObjects {
		more = fmt.Sprintf(" … and %s more%s", textsafe.Thousands(n-shownObjects), hint)
		objs = objs[:shownObjects]
	} else if n > len(objs) {
		more = fmt.Sprintf(" … and %s more", textsafe.Thousands(n-len(objs)))
	}
	return textsafe.Thousands(n) + ": " + strings.Join(objs, ", ") + more
}

// clipFix keeps the first lines of a long fix, saying how many it left
// out in a comment (so what is shown still pastes as SQL).
func clipFix(fix string, all bool) string {
	if all || strings.Count(fix, "\n") < shownFixLines+3 {
		return fix
	}
	lines := strings.Split(fix, "\n")
	// Keep the trailing "(step N of `pgaegis fix`)" note: it says where the rest is.
	var tail []string
	for len(lines) > 0 && strings.HasPrefix(lines[len(lines)-1], "(") {
		tail = append([]string{lines[len(lines)-1]}, tail...)
		lines = lines[:len(lines)-1]
	}
	if len(lines) <= shownFixLines+2 {
		return fix
	}
	out := append(lines[:shownFixLines:shownFixLines], fmt.Sprintf("-- … and %s more lines (--all shows every one; `pgaegis fix` runs them all)", textsafe.Thousands(len(lines)-shownFixLines)))
	return strings.Join(append(out, tail...), "\n")
}

// clipped is f with its fix clipped for a human report.
func clipped(f rules.Finding, all bool) rules.Finding {
	f.Fix = clipFix(f.Fix, all)
	return f
}
