// Package rules holds the audit rules: one small function per rule over a
// snapshot, with stable metadata. Rules never touch a server or a file;
// what the snapshot could not see becomes "not checked", never a pass.
package rules

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Severity orders findings; higher is worse.
type Severity int

const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var sevNames = []string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string { return sevNames[s] }

// ParseSeverity reads a severity name.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range sevNames {
		if strings.EqualFold(n, name) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (one of %s)", name, strings.Join(sevNames, ", "))
}

// MarshalText writes the severity name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Status of a finding.
type Status string

const (
	Fail       Status = "fail"
	Pass       Status = "pass"
	NotChecked Status = "not_checked"
	// Waived is a failure accepted in a waiver file that has not expired.
	Waived Status = "waived"
)

// Reference points at a section of a benchmark or guide.
type Reference struct {
	Source string `json:"source"`
	ID     string `json:"id"`
}

// Areas, in the order reports show them.
const (
	AreaInstall   = "installation"
	AreaFiles     = "filesystem"
	AreaNetwork   = "network"
	AreaTLS       = "transport"
	AreaAuth      = "authentication"
	AreaRoles     = "authorization"
	AreaLogging   = "accounting"
	AreaHardening = "hardening"
)

// AreaOrder lists the areas in report order.
var AreaOrder = []string{AreaNetwork, AreaTLS, AreaAuth, AreaRoles, AreaLogging, AreaFiles, AreaInstall, AreaHardening}

// Fix kinds.
const (
	FixSQL    = "sql"
	FixConfig = "config"
	FixShell  = "shell"
)

// Rule is one check with its metadata.
type Rule struct {
	ID         string
	Title      string
	Area       string
	Severity   Severity
	Rationale  string
	References []Reference
	// Access is what the audit needs to decide the rule (filled from the
	// area when the rule does not say).
	Access string
	// Volatile rules measure what no fix touches and what changes on its
	// own (the servers running on the host): verification after a fix
	// ignores them.
	Volatile bool
	Check    func(c *Check)
}

// Finding is one result of one rule about one object.
type Finding struct {
	Rule     string   `json:"rule"`
	Status   Status   `json:"status"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	Area     string   `json:"area"`
	Object   string   `json:"object"`
	// Objects lists every object a finding stands for when one weakness
	// repeats over many of them (PUBLIC opens a function to every login
	// role; one grant pattern covers thousands of tables): one finding,
	// not one per object. Count is how many there are (at least
	// len(Objects)); both are empty for a finding about one object.
	Objects  []string `json:"objects,omitempty"`
	Count    int      `json:"count,omitempty"`
	Location string   `json:"location,omitempty"`
	Evidence string   `json:"evidence,omitempty"`
	Expected string   `json:"expected,omitempty"`
	Fix      string   `json:"fix,omitempty"`
	FixKind  string   `json:"fix_kind,omitempty"`
	FixApply string   `json:"fix_apply,omitempty"` // "reload", "restart" or "" (immediate)
	// Database is the database a SQL fix must run in ("" for fixes that
	// run anywhere: roles, databases, server settings).
	Database   string      `json:"database,omitempty"`
	Reason     string      `json:"reason,omitempty"` // why not checked
	References []Reference `json:"references,omitempty"`
	// Waiver is the accepted-risk entry that matched, if any.
	Waiver *Waiver `json:"waiver,omitempty"`
	// Change is set with --baseline: "new" or "unchanged".
	Change string `json:"change,omitempty"`
	// Changes are what the finding needs, as data for the planner
	// (internal/fix), which merges them across findings and writes Fix.
	Changes []remedy.Change `json:"-"`
	// Step is the id of the `pgaegis fix` step that closes the finding
	// (set when the report's fixes come from the plan); StepTitle is that
	// step's summary. Findings that share a step are one change.
	Step      string `json:"step,omitempty"`
	StepTitle string `json:"-"`
	// group keeps an aggregated finding's members, so that a waiver
	// accepting some of them can split it (Split).
	group *group
}

// Waiver records an accepted finding.
type Waiver struct {
	Reason  string `json:"reason"`
	Expires string `json:"expires,omitempty"` // YYYY-MM-DD
	Expired bool   `json:"expired,omitempty"`
	Owner   string `json:"owner,omitempty"`
}

// Key identifies a finding across runs (waivers, baselines): the rule and
// the object, not the line number, which moves when files are edited.
func (f Finding) Key() string { return f.Rule + "\x00" + f.Object }

// Check is what a rule's function receives: the snapshot and ways to
// report.
type Check struct {
	S *snapshot.Snapshot
	// Profile is the benchmark being audited against ("all", "cis-17", ...):
	// a few expectations differ between benchmarks.
	Profile  string
	rule     *Rule
	findings []Finding
	funcs    map[*snapshot.Database]map[[3]string]snapshot.Function // see function
	rels     map[*snapshot.Database]map[string][]int                // see relationsIn
}

// Problem describes a failing object.
type Problem struct {
	Object, Location, Evidence, Expected string
	// Objects and Count: see Finding.Objects.
	Objects                []string
	Count                  int
	Fix, FixKind, FixApply string
	// Database: see Finding.Database.
	Database string
	// Changes: see Finding.Changes.
	Changes []remedy.Change
	// Severity overrides the rule's severity when set (SevSet true).
	Severity Severity
	SevSet   bool
	// members and describe: see group (set for aggregated problems).
	members  []Problem
	describe func(members []Problem) (object, evidence, manual string)
}

func (c *Check) base(status Status, object string) Finding {
	return Finding{Rule: c.rule.ID, Status: status, Severity: c.rule.Severity, Title: c.rule.Title,
		Area: c.rule.Area, Object: object, References: c.rule.References}
}

// Fail reports a problem.
func (c *Check) Fail(p Problem) {
	f := c.base(Fail, p.Object)
	f.Location, f.Evidence, f.Expected = p.Location, p.Evidence, p.Expected
	f.Objects, f.Count = p.Objects, p.Count
	if f.Count < len(f.Objects) {
		f.Count = len(f.Objects)
	}
	f.Fix, f.FixKind, f.FixApply, f.Database = p.Fix, p.FixKind, p.FixApply, p.Database
	f.Changes = p.Changes
	if p.SevSet {
		f.Severity = p.Severity
	}
	if p.members != nil && p.describe != nil {
		f.group = &group{members: p.members, describe: p.describe, severity: c.rule.Severity}
	}
	c.findings = append(c.findings, f)
}

// Pass records that an object was checked and is fine.
func (c *Check) Pass(object, evidence string) {
	f := c.base(Pass, object)
	f.Evidence = evidence
	c.findings = append(c.findings, f)
}

// NotChecked records that the rule could not decide, and why.
func (c *Check) NotChecked(object, reason string) {
	f := c.base(NotChecked, object)
	f.Reason = reason
	c.findings = append(c.findings, f)
}

var registry []*Rule

func register(r *Rule) {
	for _, x := range registry {
		if x.ID == r.ID {
			panic("duplicate rule id " + r.ID)
		}
	}
	r.References = append([]Reference{{"pgaegis", controlOf(r.ID)}}, r.References...)
	r.References = append(r.References, seeds(seedTopics[r.ID]...)...)
	if r.Access == "" {
		r.Access = defaultAccess[r.Area]
	}
	registry = append(registry, r)
}

// controlOf maps a rule id to its control in the catalogue (AUTH-11.md5 -> AUTH-11).
func controlOf(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return id[:i]
	}
	return id
}

// IsVolatile reports whether the rule id (or its parent) is Volatile.
func IsVolatile(id string) bool {
	for _, r := range registry {
		if r.ID == id || r.ID == controlOf(id) {
			if r.Volatile {
				return true
			}
		}
	}
	return false
}

// All returns every rule, sorted by id.
func All() []*Rule {
	out := append([]*Rule(nil), registry...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Profiles name the benchmarks a run can be limited to, by the reference
// source their rules carry.
var Profiles = map[string]string{
	"all":    "",
	"cis-16": srcCIS16,
	"cis-17": srcCIS17,
	"stig":   srcSTIG,
	"seeds":  srcSeeds,
}

const (
	srcCIS16  = "CIS PostgreSQL 16 v1.1.0"
	srcCIS17  = "CIS PostgreSQL 17 v1.0.0"
	srcSTIG   = "DISA STIG Crunchy Data PostgreSQL V3R1"
	srcDevSec = "dev-sec postgres-baseline"
	srcSeeds  = "pgaegis guides (shared/seeds)"
)

// ProfileNames lists the profiles for usage messages.
func ProfileNames() string { return "all, cis-16, cis-17, stig, seeds" }

// Select returns the rules of a profile.
func Select(profile string) ([]*Rule, error) {
	src, ok := Profiles[profile]
	if !ok {
		return nil, fmt.Errorf("unknown profile %q (one of %s)", profile, ProfileNames())
	}
	var out []*Rule
	for _, r := range All() {
		if src == "" || r.hasSource(src) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (r *Rule) hasSource(src string) bool {
	for _, ref := range r.References {
		if ref.Source == src {
			return true
		}
	}
	return false
}

// Run evaluates every rule (profile "all").
func Run(s *snapshot.Snapshot) []Finding {
	fs, _ := RunProfile(s, "all")
	return fs
}

// RunProfile evaluates the rules of a profile. A rule that reports nothing
// passes as a whole. A rule that panics is reported as not checked, so one
// bad rule cannot hide the others.
func RunProfile(s *snapshot.Snapshot, profile string) ([]Finding, error) {
	rs, err := Select(profile)
	if err != nil {
		return nil, err
	}
	// The server's view of pg_hba.conf drops quotes: where a token may be
	// a keyword or a quoted name, every rule also runs on the quoted
	// reading, and what differs is not a confident answer.
	var alt *snapshot.Snapshot
	if q := s.HBA.QuotedReading(); q != nil {
		c := *s
		c.HBA = q
		alt = &c
	}
	var out []Finding
	for _, r := range rs {
		fs := runOne(r, s, profile)
		if alt != nil {
			fs = reconcile(fs, runOne(r, alt, profile), func(f Finding) string { return ambiguityReason(s.HBA, f.Location) })
		}
		out = append(out, withErrors(r, s, fs)...)
	}
	return out, nil
}

// reconcile keeps the findings both readings agree on. Where they
// differ, a place that fails under both readings still fails, with the
// quoted reading's fix (a quoted name is narrower than the keyword, so
// that fix never widens access) and the doubt in the evidence; any other
// difference is reported not checked, so no pass rests on a guess.
func reconcile(a, b []Finding, reason func(Finding) string) []Finding {
	sig := func(f Finding) string {
		return strings.Join([]string{string(f.Status), f.Object, f.Location, f.Evidence, f.Expected, f.Fix, f.Severity.String()}, "\x00")
	}
	// The same place under both readings (the object names the line as
	// each reading renders it, the location does not change).
	place := func(f Finding) string {
		if f.Location != "" {
			return "@" + f.Location
		}
		return f.Object
	}
	count := map[string]int{}
	for _, f := range b {
		count[sig(f)]++
	}
	var out []Finding
	type pair struct{ a, b *Finding }
	diff := map[string]*pair{}
	var order []string
	note := func(f Finding, side int) {
		k := place(f)
		p, ok := diff[k]
		if !ok {
			p = &pair{}
			diff[k] = p
			order = append(order, k)
		}
		if side == 0 && (p.a == nil || f.Status == Fail) {
			p.a = &f
		}
		if side == 1 && (p.b == nil || f.Status == Fail) {
			p.b = &f
		}
	}
	for _, f := range a {
		if k := sig(f); count[k] > 0 {
			count[k]--
			out = append(out, f)
			continue
		}
		note(f, 0)
	}
	for _, f := range b {
		if k := sig(f); count[k] > 0 {
			count[k]--
			note(f, 1)
		}
	}
	for _, k := range order {
		p := diff[k]
		if p.a != nil && p.b != nil && p.a.Status == Fail && p.b.Status == Fail {
			f := *p.b
			f.Evidence += "\n(" + reason(f) + "; the fix keeps the quoted reading, which never widens access)"
			out = append(out, f)
			continue
		}
		f := p.a
		if f == nil {
			f = p.b
		}
		out = append(out, Finding{Rule: f.Rule, Status: NotChecked, Severity: f.Severity, Title: f.Title, Area: f.Area,
			Object: f.Object, Location: f.Location, Reason: reason(*f), References: f.References})
	}
	return out
}

// ambiguityReason names the ambiguous tokens of the finding's line (its
// location ends in :N), or of the whole file for a finding about no line.
func ambiguityReason(h *snapshot.HBA, location string) string {
	line := -1
	if i := strings.LastIndexByte(location, ':'); i >= 0 {
		if n, err := strconv.Atoi(location[i+1:]); err == nil {
			line = n
		}
	}
	onLine := false
	for _, a := range h.Ambiguous {
		onLine = onLine || a.Line == line
	}
	var parts []string
	seen := map[string]bool{}
	for _, a := range h.Ambiguous {
		if onLine && a.Line != line {
			continue
		}
		p := fmt.Sprintf("line %d %s %s", a.Line, a.Field, a.Value)
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
		if len(parts) == 5 {
			parts = append(parts, "…")
			break
		}
	}
	return "uncertain: the server's view of pg_hba.conf (pg_hba_file_rules) does not show quoting, and the result differs between reading " +
		strings.Join(parts, ", ") + " as a keyword and as a quoted name; audit the file itself (on the database host, or --hba-file) to decide"
}

// errorAreas maps the snapshot keys of collection errors to the areas of
// rules that read that data. A key not listed affects every area.
var errorAreas = map[string][]string{
	snapshot.GapRoles:         {AreaRoles, AreaAuth, AreaNetwork},
	snapshot.GapMemberships:   {AreaRoles, AreaAuth, AreaNetwork},
	snapshot.GapPasswords:     {AreaRoles, AreaAuth},
	snapshot.GapWeakPasswords: {AreaRoles, AreaAuth},
	snapshot.GapHBA:           {AreaAuth, AreaNetwork, AreaTLS, AreaRoles},
	snapshot.GapIdent:         {AreaAuth},
	"role_settings":           {AreaRoles, AreaAuth, AreaLogging, AreaHardening},
	snapshot.GapDatabases:     {AreaRoles, AreaHardening},
	"catalog":                 {AreaRoles, AreaHardening, AreaLogging},
}

func errorAffects(key, area string) bool {
	areas, ok := errorAreas[key]
	if !ok {
		if i := strings.IndexByte(key, '.'); i > 0 {
			areas, ok = errorAreas[key[:i]]
		}
	}
	if !ok {
		return true
	}
	for _, a := range areas {
		if a == area {
			return true
		}
	}
	return false
}

// withErrors makes the passes of a rule whose inputs failed to be read
// not checked, with the error: a broken query is never a pass. Failures
// found in what was read stay failures.
func withErrors(r *Rule, s *snapshot.Snapshot, fs []Finding) []Finding {
	if len(s.Errors) == 0 {
		return fs
	}
	var keys []string
	for k := range s.Errors {
		if errorAffects(k, r.Area) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return fs
	}
	sort.Strings(keys)
	var msgs []string
	for _, k := range keys {
		msgs = append(msgs, s.Errors[k])
	}
	reason := "collection error: " + strings.Join(msgs, "; ")
	out := make([]Finding, 0, len(fs))
	for _, f := range fs {
		if f.Status == Pass {
			f.Status, f.Reason, f.Evidence = NotChecked, reason, ""
		}
		out = append(out, f)
	}
	return out
}

func runOne(r *Rule, s *snapshot.Snapshot, profile string) (fs []Finding) {
	c := &Check{S: s, rule: r, Profile: profile}
	defer func() {
		if p := recover(); p != nil {
			f := c.base(NotChecked, "")
			f.Reason = fmt.Sprintf("internal error in rule: %v", p)
			fs = []Finding{f}
		}
	}()
	r.Check(c)
	if len(c.findings) == 0 {
		c.Pass("", "")
	}
	return c.findings
}

var defaultAccess = map[string]string{
	AreaNetwork:   "any login (pg_settings); file access for socket directories",
	AreaTLS:       "any login (pg_settings); file access for key files",
	AreaAuth:      "superuser (pg_hba_file_rules) or read access to pg_hba.conf",
	AreaRoles:     "any login (pg_roles, catalogs of each database); superuser for pg_authid",
	AreaLogging:   "pg_read_all_settings (or any login for most settings)",
	AreaFiles:     "OS access to the data directory and configuration files (cluster owner or root)",
	AreaInstall:   "any login (server version); root for package and process checks",
	AreaHardening: "pg_read_all_settings; superuser for pg_file_settings",
}

// MarshalJSON gives rules a stable JSON form for the docs.
func (r *Rule) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID         string      `json:"id"`
		Title      string      `json:"title"`
		Area       string      `json:"area"`
		Severity   Severity    `json:"severity"`
		Rationale  string      `json:"rationale"`
		References []Reference `json:"references"`
		Access     string      `json:"access"`
	}{r.ID, r.Title, r.Area, r.Severity, r.Rationale, r.References, r.Access})
}

// reference helpers
func cis(sections ...string) []Reference {
	var out []Reference
	for _, s := range sections {
		out = append(out, Reference{srcCIS16, s}, Reference{srcCIS17, s})
	}
	return out
}

func stig(ids ...string) []Reference {
	var out []Reference
	for _, id := range ids {
		out = append(out, Reference{srcSTIG, id})
	}
	return out
}

func devsec(ids ...string) []Reference {
	var out []Reference
	for _, id := range ids {
		out = append(out, Reference{srcDevSec, id})
	}
	return out
}

// seeds cites the practice guides in shared/seeds (file number: topic).
func seeds(ids ...string) []Reference {
	var out []Reference
	for _, id := range ids {
		out = append(out, Reference{srcSeeds, id})
	}
	return out
}

func refs(groups ...[]Reference) []Reference {
	var out []Reference
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// seedTitles are the titles of the practice guides in shared/seeds, by
// file number (002 has no title line: it is named by its publisher and author).
var seedTitles = map[string]string{
	"000": "How to Secure PostgreSQL Database – Tips and Tricks",
	"001": "How to Secure PostgreSQL for Production",
	"002": "Percona's guide to PostgreSQL security (Ibrar Ahmed)",
	"003": "How to Secure PostgreSQL",
	"004": "Intermediate PostgreSQL security",
}

// Name is how a reader sees the reference: the benchmark's proper name
// with the section ("CIS PostgreSQL 17 Benchmark v1.0.0 §5.2", "DISA STIG
// V-233511"), a guide by its title. Source and ID stay as they are in the
// JSON report and the profiles.
func (r Reference) Name() string {
	switch r.Source {
	case srcCIS16, srcCIS17:
		// "CIS PostgreSQL 17 v1.0.0" -> "CIS PostgreSQL 17 Benchmark v1.0.0 §5.2"
		name, ver, _ := strings.Cut(r.Source, " v")
		return fmt.Sprintf("%s Benchmark v%s §%s", name, ver, r.ID)
	case srcSTIG:
		return "DISA STIG " + r.ID + " (Crunchy Data PostgreSQL STIG V3R1)"
	case srcDevSec:
		return "dev-sec PostgreSQL baseline, control " + r.ID
	case srcSeeds:
		num, topic, _ := strings.Cut(r.ID, ": ")
		if t, ok := seedTitles[num]; ok {
			return "“" + t + "”: " + topic
		}
	case "pgaegis":
		return "pgaegis control " + r.ID
	case "pgdsat":
		return "pgdsat check " + r.ID
	}
	if r.ID == "" {
		return r.Source
	}
	return r.Source + " " + r.ID
}
