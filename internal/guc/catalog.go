package guc

import (
	_ "embed"
	"encoding/json"
	"sort"
	"strings"
	"sync"
)

// catalog.json is what pg_settings says on each supported major
// (regenerated from the servers by TestUpdateCatalog, held to them by
// TestCatalogAgreesWithPgSettings): one entry per parameter and run of
// majors over which nothing about it changed.
//
//go:embed catalog.json
var catalogJSON []byte

// Oldest and Newest are the majors the catalogue was read from. A
// parameter with Since == Oldest may be older than that; one with
// Until == Newest is still there.
const (
	Oldest = 13
	Newest = 18
)

type catalogEntry struct {
	Name     string   `json:"name"`
	From     int      `json:"from"`
	To       int      `json:"to"`
	VarType  string   `json:"vartype"`
	Unit     string   `json:"unit,omitempty"`
	Context  string   `json:"context"`
	BootVal  string   `json:"boot_val,omitempty"`
	Min      string   `json:"min,omitempty"`
	Max      string   `json:"max,omitempty"`
	EnumVals []string `json:"enumvals,omitempty"`
	// BuildDependent: the boot value, range or labels depend on how the
	// server was built (or are computed at startup), not on the major;
	// they are left out.
	BuildDependent bool `json:"build_dependent,omitempty"`
	// NotEveryMinor: the parameter is missing from some builds of its
	// majors (seen: Debian's 15.18 lacks two that another 15 had), so a
	// server without it does not contradict the catalogue.
	NotEveryMinor bool `json:"not_every_minor,omitempty"`
}

func (e catalogEntry) sameAs(o catalogEntry) bool {
	return e.VarType == o.VarType && e.Unit == o.Unit && e.Context == o.Context && e.BootVal == o.BootVal &&
		e.Min == o.Min && e.Max == o.Max && strings.Join(e.EnumVals, "\x00") == strings.Join(o.EnumVals, "\x00") &&
		e.BuildDependent == o.BuildDependent
}

// Param is what one major's pg_settings says about a built-in parameter.
type Param struct {
	Name string
	// Since and Until are the first and last majors that have the
	// parameter (see Oldest and Newest).
	Since, Until int
	VarType      string // bool, integer, real, string, enum
	Unit         string // pg_settings.unit: kB, 8kB, ms, s, min, ...
	Context      string // internal, postmaster, sighup, superuser-backend, backend, superuser, user
	BootVal      string // the built-in default, in the base unit; empty when BuildDependent
	Min, Max     string
	EnumVals     []string
	// BuildDependent: BootVal, Min, Max and EnumVals are not a property of
	// the major (they depend on the build, or are computed at startup) and
	// are left empty.
	BuildDependent bool
	major          int // the major this is for
}

var catalog struct {
	once   sync.Once
	byName map[string][]catalogEntry
}

func entries(name string) []catalogEntry {
	catalog.once.Do(func() {
		var list []catalogEntry
		if err := json.Unmarshal(catalogJSON, &list); err != nil {
			panic("guc: catalog.json: " + err.Error()) // embedded, checked by the tests
		}
		catalog.byName = map[string][]catalogEntry{}
		for _, e := range list {
			k := strings.ToLower(e.Name)
			catalog.byName[k] = append(catalog.byName[k], e)
		}
	})
	return catalog.byName[strings.ToLower(name)]
}

// Lookup returns what the server of a major knows about a built-in
// parameter (names are case-insensitive). major 0 means the newest.
func Lookup(name string, major int) (Param, bool) {
	es := entries(name)
	if len(es) == 0 {
		return Param{}, false
	}
	if major == 0 {
		major = Newest
	}
	since, until := es[0].From, es[len(es)-1].To
	for _, e := range es {
		if major >= e.From && major <= e.To {
			return Param{Name: e.Name, Since: since, Until: until, VarType: e.VarType, Unit: e.Unit, Context: e.Context,
				BootVal: e.BootVal, Min: e.Min, Max: e.Max, EnumVals: e.EnumVals, BuildDependent: e.BuildDependent, major: major}, true
		}
	}
	return Param{}, false
}

// Exists reports whether a major's server has the parameter built in.
func Exists(name string, major int) bool {
	_, ok := Lookup(name, major)
	return ok
}

// Lifetime returns the first and last major that have the parameter:
// since == Oldest means "13 or earlier", until == Newest "still there".
// A parameter removed and brought back is not in the catalogue.
func Lifetime(name string) (since, until int, ok bool) {
	es := entries(name)
	if len(es) == 0 {
		return 0, 0, false
	}
	return es[0].From, es[len(es)-1].To, true
}

// Names lists the built-in parameters of a major, sorted.
func Names(major int) []string {
	entries("") // load
	var out []string
	for _, es := range catalog.byName {
		for _, e := range es {
			if major >= e.From && major <= e.To {
				out = append(out, e.Name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// ContextIn returns the parameter's pg_settings.context on a major.
func ContextIn(name string, major int) (string, bool) {
	p, ok := Lookup(name, major)
	return p.Context, ok
}

// oldNames are the spellings the server still takes for renamed
// parameters (its map_old_guc_names), with the major they were renamed
// in; pg_settings does not list them.
var oldNames = []struct {
	old, name string
	since     int
}{
	{"sort_mem", "work_mem", 0},
	{"vacuum_mem", "maintenance_work_mem", 0},
	{"ssl_ecdh_curve", "ssl_groups", 18},
}

// Resolve is Lookup that also takes the old names a major still accepts
// in a configuration file or SET (ssl_ecdh_curve for ssl_groups on 18).
func Resolve(name string, major int) (Param, bool) {
	if p, ok := Lookup(name, major); ok {
		return p, true
	}
	if major == 0 {
		major = Newest
	}
	for _, o := range oldNames {
		if strings.EqualFold(name, o.old) && major >= o.since {
			return Lookup(o.name, major)
		}
	}
	return Param{}, false
}
