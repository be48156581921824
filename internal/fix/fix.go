// Package fix is the planner: it turns the failing findings of an audit
// into one plan (internal/plan), merging what every rule asked for
// (remedy.Change) so that no step undoes another, and ordering the steps
// so that each is safe when it runs. The per-finding fix text of every
// report comes from here too, so a report never shows a fix that is not a
// step of the plan.
package fix

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Options filter and shape a plan.
type Options struct {
	// Only keeps the findings of these rules (an id also selects its
	// sub-rules: AUTH-11 selects AUTH-11.verifiers); empty keeps all.
	Only []string
	// Exclude drops the findings of these rules (same matching).
	Exclude []string
	// MinSeverity drops findings below it.
	MinSeverity rules.Severity
	// Now stamps the plan (tests set it); zero means time.Now.
	Now time.Time
	// Target describes the server in the plan (no secrets).
	Target string
}

// item is one change one finding asked for.
type item struct {
	f *rules.Finding
	c remedy.Change
}

// ref names the finding in a plan.
func (it item) ref() plan.FindingRef {
	return plan.FindingRef{Rule: it.f.Rule, Object: it.f.Object, Severity: it.f.Severity.String()}
}

// built is a step from one of the kind planners, before the driver
// numbers it. key names it for After references between steps.
type built struct {
	step  plan.Step
	key   string
	after []string // keys of steps that must run first
	// texts is the fix text of each finding the step closes (by
	// rules.Finding.Key), when it differs from the step's own text: the
	// one line of pg_hba.conf, the one setting.
	texts map[string]string
	order int // phase: see phase constants
}

// Phases order the steps: preparation first, then changes that take
// effect at once, then the reload (settings before pg_hba.conf, so that
// ssl is on before hostssl lines depend on it), the restart last.
const (
	phaseCommand = iota
	phaseFiles
	phaseSQL
	phaseSettingsReload
	phaseHBA
	phaseSettingsRestart
)

// Result is a plan with the fix text each finding should show.
type Result struct {
	Plan *plan.Plan
	// Texts maps rules.Finding.Key to the fix text reports show.
	Texts map[string]string
	// Steps maps rules.Finding.Key to the step that closes it: the step
	// that changes the server when a preparation step (a certificate)
	// closes it too.
	Steps map[string]*plan.Step
}

// Build plans the fixes of the failing findings.
func Build(s *snapshot.Snapshot, findings []rules.Finding, o Options) *Result {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	p := &plan.Plan{FormatVersion: plan.FormatVersion, ID: planID(now), Created: now.UTC(), Target: o.Target}
	res := &Result{Plan: p, Texts: map[string]string{}, Steps: map[string]*plan.Step{}}
	byKind := map[string][]item{}
	for i := range findings {
		f := &findings[i]
		if f.Status != rules.Fail {
			continue
		}
		if !o.wants(f) {
			p.Filtered++
			continue
		}
		if len(f.Changes) == 0 {
			p.Manual = append(p.Manual, plan.Manual{FindingRef: item{f: f}.ref(), What: manualText(f)})
			continue
		}
		for _, c := range f.Changes {
			if c.Kind() == "manual" {
				p.Manual = append(p.Manual, plan.Manual{FindingRef: item{f: f}.ref(), What: c.Manual})
				res.Texts[f.Key()] = c.Manual
				continue
			}
			byKind[c.Kind()] = append(byKind[c.Kind()], item{f: f, c: c})
		}
	}
	var steps []built
	var held []plan.Held
	add := func(b []built, h []plan.Held) {
		steps = append(steps, b...)
		held = append(held, h...)
	}
	add(planFiles(s, byKind["file"]))
	add(planSQL(s, byKind["sql"]))
	add(planSettings(s, byKind["setting"]))
	add(planHBA(s, byKind["hba"], sslAfter(s, steps)))
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].order < steps[j].order })
	ids := map[string]string{}
	for i := range steps {
		steps[i].step.ID = fmt.Sprint(i + 1)
		if steps[i].key != "" {
			ids[steps[i].key] = steps[i].step.ID
		}
	}
	for i := range steps {
		b := &steps[i]
		for _, k := range b.after {
			if id, ok := ids[k]; ok {
				b.step.After = append(b.step.After, id)
			}
		}
		p.Steps = append(p.Steps, b.step)
		own := stepText(b.step)
		for _, c := range b.step.Closes {
			key := c.Rule + "\x00" + c.Object
			t, ok := b.texts[key]
			if !ok {
				t = own
			}
			t = fmt.Sprintf("%s\n(step %s of `pgaegis fix`%s)", t, b.step.ID, applyNote(b.step.Apply))
			if prev, dup := res.Texts[key]; dup && prev != t {
				t = prev + "\n" + t
			}
			res.Texts[key] = t
		}
	}
	p.Held = held
	for i := range p.Steps {
		st := &p.Steps[i]
		for _, c := range st.Closes {
			key := c.Rule + "\x00" + c.Object
			if prev, ok := res.Steps[key]; !ok || prev.Kind == plan.KindCommand {
				res.Steps[key] = st
			}
		}
	}
	return res
}

// Annotate sets the Fix of every finding the plan covers to its step.
func (r *Result) Annotate(findings []rules.Finding) {
	for i := range findings {
		if t, ok := r.Texts[findings[i].Key()]; ok {
			findings[i].Fix = t
		}
		if st, ok := r.Steps[findings[i].Key()]; ok {
			findings[i].Step, findings[i].StepTitle = st.ID, st.Summary
			if st.Apply != plan.ApplyNow {
				findings[i].FixApply = st.Apply
			}
		}
	}
}

// sslAfter says whether ssl is on once the plan's settings are in force.
func sslAfter(s *snapshot.Snapshot, steps []built) bool {
	for _, b := range steps {
		for _, c := range b.step.Settings {
			if c.Name == "ssl" {
				return isTrue(c.To)
			}
		}
	}
	return sslOn(s)
}

func applyNote(apply string) string {
	switch apply {
	case plan.ApplyReload:
		return ", then a reload"
	case plan.ApplyRestart:
		return ", then a restart"
	}
	return ""
}

func manualText(f *rules.Finding) string {
	if f.Fix != "" {
		return f.Fix
	}
	return "no automatic fix: see the rule's rationale (pgaegis rules)"
}

func (o Options) wants(f *rules.Finding) bool {
	if f.Severity < o.MinSeverity {
		return false
	}
	if len(o.Only) > 0 && !matchAny(o.Only, f.Rule) {
		return false
	}
	return !matchAny(o.Exclude, f.Rule)
}

func matchAny(ids []string, rule string) bool {
	for _, id := range ids {
		if strings.EqualFold(id, rule) || len(rule) > len(id) && strings.EqualFold(rule[:len(id)], id) && rule[len(id)] == '.' {
			return true
		}
	}
	return false
}

func planID(t time.Time) string {
	return t.UTC().Format("20060102-150405") + fmt.Sprintf("-%04x", t.Nanosecond()>>16&0xffff)
}
