package policy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/policy/rlstest/missingok"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// Options shape a diff.
type Options struct {
	// Mode overrides the file's mode (Authoritative when both are empty).
	Mode string
	// ConnectDatabase is where cluster-wide statements (roles,
	// memberships) run when no listed database is readable.
	ConnectDatabase string
	// ReassignOwnedTo and DropOwned let the removal of a role that still
	// owns objects or holds privileges go ahead: REASSIGN OWNED BY ... TO
	// ReassignOwnedTo, then DROP OWNED BY, in every database.
	ReassignOwnedTo string
	DropOwned       bool
}

// Note is something the diff wants the user to know: a named object that
// does not exist, a role removal held by the preflight, a policy that
// calls current_setting without missing_ok.
type Note struct {
	Level  string `json:"level"` // "held", "warning", "info"
	Object string `json:"object"`
	Text   string `json:"text"`
}

// Note levels.
const (
	NoteHeld    = "held"
	NoteWarning = "warning"
	NoteInfo    = "info"
)

// maxNames is how many objects one GRANT or REVOKE names: big enough
// that 140,000 tables take a few hundred statements, small enough that
// no statement grows past what a log line or an error can show.
const maxNames = 1000

// Difference is one grantee's privileges on one object that differ
// from the file: what the plan grants (Missing) or revokes (Extra). The
// names are as the server has them (objects quoted as in the SQL).
type Difference struct {
	Database string `json:"database"`
	Object   string `json:"object"`
	Role     string `json:"role"`
	Missing  string `json:"missing,omitempty"`
	Extra    string `json:"extra,omitempty"`
}

// Diff plans the changes that make live match desired.
//
// The modes, exactly:
//   - authoritative: within the file's scope everything is exact; roles
//     not in roles: (when roles: is given) are dropped through the removal
//     preflight; grants to grantees the file does not name are revoked.
//   - adopt: exact only for the grantees the file names: every role in
//     roles: and every grantee of any Grants map in the file (PUBLIC when
//     it appears, so `PUBLIC: []` revokes PUBLIC's privileges). Other
//     grantees' grants, memberships and attributes are left alone; no
//     role is ever dropped.
//   - additive: grants, creates and raises only; never revokes, drops or
//     lowers.
//
// Steps, in order: cluster additions (CREATE ROLE, memberships, raised
// attributes, settings) in one step; CREATE DATABASE (autocommit); one
// step per database (ownership, grants, default privileges and RLS
// additions, then revocations, so no privilege a role keeps is missing
// mid-apply); cluster removals (memberships revoked, attributes lowered,
// REASSIGN/DROP OWNED per database where asked, DROP ROLE).
func Diff(desired *File, live *Live, o Options) (*plan.Plan, []Note, error) {
	p, notes, _, err := DiffDetail(desired, live, o)
	return p, notes, err
}

// DiffDetail is Diff with the grant differences listed one by one (for
// `access policy check`), sorted by database, object and role.
//
// An error about a role the file names but neither it nor the server
// has is a *LineError when desired came from Parse.
func DiffDetail(desired *File, live *Live, o Options) (*plan.Plan, []Note, []Difference, error) {
	p, notes, diffs, err := diffDetail(desired, live, o)
	if err != nil {
		return nil, nil, nil, placeErr(desired, err)
	}
	return p, notes, diffs, nil
}

func diffDetail(desired *File, live *Live, o Options) (*plan.Plan, []Note, []Difference, error) {
	if desired == nil || live == nil || live.File == nil {
		return nil, nil, nil, errors.New("policy: diff needs a desired file and the live state")
	}
	mode := o.Mode
	if mode == "" {
		mode = desired.Mode
	}
	if mode == "" {
		mode = Authoritative
	}
	if mode != Authoritative && mode != Adopt && mode != Additive {
		return nil, nil, nil, fmt.Errorf("policy: unknown mode %q (want authoritative, adopt or additive)", oneLineText(mode))
	}
	desired = expandAllDatabases(desired, live)
	d := &differ{f: desired, live: live, l: live.File, mode: mode, o: o, major: live.Major, dbs: map[string]*dbWork{}}
	d.named = namedGrantees(desired)
	if o.ReassignOwnedTo != "" && !d.exists(o.ReassignOwnedTo) {
		return nil, nil, nil, fmt.Errorf("policy: --reassign-owned-to %q: no such role in the file or on the server", oneLineText(o.ReassignOwnedTo))
	}
	if err := d.roles(); err != nil {
		return nil, nil, nil, err
	}
	for _, name := range sortedKeys(desired.Databases) {
		if err := d.database(name); err != nil {
			return nil, nil, nil, err
		}
	}
	sort.SliceStable(d.diffs, func(i, j int) bool {
		a, b := d.diffs[i], d.diffs[j]
		if a.Database != b.Database {
			return a.Database < b.Database
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Role < b.Role
	})
	return d.plan(), d.notes, d.diffs, nil
}

type differ struct {
	f     *File
	live  *Live
	l     *File
	mode  string
	o     Options
	major int
	named map[string]bool

	roleCreates                      []string
	clusterAdd, clusterRemove, drops []string
	creates, afterCreate             []string
	reassign                         map[string][]string
	dbs                              map[string]*dbWork
	dbOrder                          []string
	verifier                         bool
	diffs                            []Difference
	noted                            map[Note]bool
	notes                            []Note
}

// dbWork is one database's statements by phase.
type dbWork struct {
	name    string
	diffs   *[]Difference
	stepDB  string // where they run (the connect database for an unreadable one)
	owners  []string
	grants  batches
	after   []string // default privileges granted, RLS added
	revokes batches
	// colGrants run after the revokes: a table-level REVOKE takes the
	// same privilege off every column too (one transaction, so no
	// session sees the gap).
	colGrants batches
	last      []string       // default privileges revoked, policies dropped, RLS lowered
	totals    map[string]int // live objects per kind and schema, for ON ALL ... IN SCHEMA
}

func (d *differ) note(level, object, format string, args ...any) {
	n := Note{Level: level, Object: object, Text: fmt.Sprintf(format, args...)}
	if d.noted[n] {
		return
	}
	if d.noted == nil {
		d.noted = map[Note]bool{}
	}
	d.noted[n] = true
	d.notes = append(d.notes, n)
}

// namedGrantees is adopt mode's scope: every role in roles: and every
// grantee of any Grants map in the file.
func namedGrantees(f *File) map[string]bool {
	n := map[string]bool{}
	for r := range f.Roles {
		n[r] = true
	}
	add := func(g Grants) {
		for k := range g {
			n[k] = true
		}
	}
	addObjs := func(objs Objects) {
		for _, o := range objs {
			if o == nil {
				continue
			}
			add(o.Grants)
			for _, c := range o.Columns {
				add(c)
			}
		}
	}
	addDefaults := func(dp DefaultPrivilegesByRole) {
		for _, p := range dp {
			if p != nil {
				add(p.Tables)
				add(p.Sequences)
				add(p.Functions)
				add(p.Types)
				add(p.Schemas)
			}
		}
	}
	for _, db := range f.Databases {
		if db == nil {
			continue
		}
		add(db.Grants)
		addDefaults(db.DefaultPrivileges)
		for _, s := range db.Schemas {
			if s == nil {
				continue
			}
			add(s.Grants)
			addObjs(s.Tables)
			addObjs(s.Sequences)
			addObjs(s.Functions)
			addDefaults(s.DefaultPrivileges)
		}
	}
	return n
}

// ignored: predefined roles and the file's ignore_roles are never managed.
func (d *differ) ignored(role string) bool {
	if role == Public {
		return false
	}
	if strings.HasPrefix(role, "pg_") {
		return true
	}
	for _, p := range d.f.IgnoreRoles {
		if ok, _ := path.Match(p, role); ok {
			return true
		}
	}
	return false
}

// Public is the grantee every role holds through.
const Public = "PUBLIC"

func (d *differ) exists(role string) bool {
	if role == Public {
		return true
	}
	if _, ok := d.f.Roles[role]; ok {
		return true
	}
	if _, ok := d.l.Roles[role]; ok {
		return true
	}
	// Predefined roles are not always in the live read; the server
	// refuses the statement if one is not there.
	return strings.HasPrefix(role, "pg_")
}

// mayRevoke: whether a privilege or membership of grantee that the file
// does not list is taken away.
func (d *differ) mayRevoke(grantee string) bool {
	switch {
	case d.mode == Additive || d.ignored(grantee):
		return false
	case d.mode == Authoritative:
		return true
	default:
		return d.named[grantee]
	}
}

// protected: the executing role and the bootstrap superuser are never
// dropped, demoted or cut from a membership.
func (d *differ) protected(role string) bool {
	return role != "" && (role == d.live.CurrentUser || role == d.live.Bootstrap)
}

func who(role string) string {
	if role == Public {
		return "PUBLIC"
	}
	return quote.Ident(role)
}

func whoList(roles []string) string {
	q := make([]string, len(roles))
	for i, r := range roles {
		q[i] = who(r)
	}
	return strings.Join(q, ", ")
}

// ---- grants ----

// change is one GRANT or REVOKE of a privilege list, before the grantees
// and objects it applies to are known.
type change struct {
	revoke      bool
	optionFor   bool // REVOKE GRANT OPTION FOR
	grantOption bool // GRANT ... WITH GRANT OPTION
	privs       string
}

// grantChanges compares one object's grants. want nil is not managed;
// owner's implicit privileges are left out unless want lists the owner.
func (d *differ) grantChanges(kind string, want, have Grants, owner string) (map[change][]string, error) {
	if want == nil {
		return nil, nil
	}
	out := map[change][]string{}
	grantees := map[string]bool{}
	for g := range want {
		grantees[g] = true
	}
	for g := range have {
		grantees[g] = true
	}
	render := func(ps []string) string { return strings.Join(ps, ", ") }
	for _, g := range sortedKeys(grantees) {
		if d.ignored(g) {
			if _, listed := want[g]; listed {
				d.note(NoteWarning, "role "+g, "is a predefined role or matches ignore_roles: its grants are never managed, the file's entries for it are left out")
			}
			continue
		}
		wl, listed := want[g]
		if !listed && (g == owner || !d.mayRevoke(g)) {
			continue
		}
		if listed && !d.exists(g) {
			return nil, &unknownRole{role: g, text: fmt.Sprintf("grantee %q is neither in roles: nor on the server", oneLineText(g))}
		}
		ws, err := toSet(kind, wl, d.major)
		if err != nil {
			return nil, fmt.Errorf("grantee %s: %w", oneLineText(g), err)
		}
		hl, held := have[g]
		if g == owner && !held && kind != kindColumn {
			// The live read leaves out an owner holding its full default.
			hl = []string{"ALL"}
		}
		hs, err := toSet(kind, hl, d.major)
		if err != nil {
			return nil, fmt.Errorf("live grants of %s: %w", oneLineText(g), err)
		}
		var plain, withOpt, gone, optGone []string
		for _, p := range ws.ordered(kind) {
			hg, ok := hs[p]
			switch {
			case ws[p] && !hg:
				withOpt = append(withOpt, p)
			case !ok:
				plain = append(plain, p)
			}
		}
		if d.mode != Additive {
			for _, p := range hs.ordered(kind) {
				wg, ok := ws[p]
				switch {
				case !ok:
					gone = append(gone, p)
				case hs[p] && !wg:
					optGone = append(optGone, p)
				}
			}
		}
		for _, c := range []struct {
			ps []string
			ch change
		}{{plain, change{}}, {withOpt, change{grantOption: true}}, {gone, change{revoke: true}}, {optGone, change{revoke: true, optionFor: true}}} {
			if len(c.ps) > 0 {
				c.ch.privs = render(c.ps)
				out[c.ch] = append(out[c.ch], g)
			}
		}
	}
	return out, nil
}

// batchKey groups objects that get the same change for the same grantees.
type batchKey struct {
	change
	kind     string // TABLE, SEQUENCE, ROUTINE, SCHEMA, DATABASE
	grantees string // rendered
	schema   string // for ON ALL ... IN SCHEMA
}

// batches collects objects per key, in first-seen order.
type batches struct {
	keys []batchKey
	objs map[batchKey][]string
}

func (b *batches) add(k batchKey, obj string) {
	if b.objs == nil {
		b.objs = map[batchKey][]string{}
	}
	if _, ok := b.objs[k]; !ok {
		b.keys = append(b.keys, k)
	}
	b.objs[k] = append(b.objs[k], obj)
}

// record files an object's changes into the database's batches.
func (w *dbWork) record(kind, schema, obj string, changes map[change][]string) {
	for ch, gs := range changes {
		for _, g := range gs {
			df := Difference{Database: w.name, Object: strings.ToLower(kind) + " " + obj, Role: g}
			switch {
			case !ch.revoke && ch.grantOption:
				df.Missing = ch.privs + withGrantOption
			case !ch.revoke:
				df.Missing = ch.privs
			case ch.optionFor:
				df.Extra = "GRANT OPTION FOR " + ch.privs
			default:
				df.Extra = ch.privs
			}
			*w.diffs = append(*w.diffs, df)
		}
		k := batchKey{change: ch, kind: kind, grantees: whoList(gs), schema: schema}
		if ch.revoke {
			w.revokes.add(k, obj)
		} else if strings.HasPrefix(schema, "\x00") { // columns
			w.colGrants.add(k, obj)
		} else {
			w.grants.add(k, obj)
		}
	}
}

// render writes the batches: one statement per key and chunk of names,
// ON ALL TABLES/SEQUENCES IN SCHEMA for a grant that every object of
// the kind in the schema gets. Revocations always name the objects: the
// ALL form would also reach an extension's objects, which are not managed.
func (b *batches) render(totals map[string]int) []string {
	var out []string
	sort.SliceStable(b.keys, func(i, j int) bool { return keyOrder(b.keys[i]) < keyOrder(b.keys[j]) })
	for _, k := range b.keys {
		objs := b.objs[k]
		verb, to := "GRANT "+k.privs, " TO "
		if k.revoke {
			verb, to = "REVOKE "+k.privs, " FROM "
			if k.optionFor {
				verb = "REVOKE GRANT OPTION FOR " + k.privs
			}
		}
		tail := ""
		if k.grantOption {
			tail = " WITH GRANT OPTION"
		}
		if !k.revoke && (k.kind == "TABLE" || k.kind == "SEQUENCE") && len(objs) > 1 && len(objs) == totals[k.kind+"\x00"+k.schema] {
			out = append(out, verb+" ON ALL "+k.kind+"S IN SCHEMA "+quote.Ident(k.schema)+to+k.grantees+tail)
			continue
		}
		for i := 0; i < len(objs); i += maxNames {
			chunk := objs[i:min(i+maxNames, len(objs))]
			out = append(out, verb+" ON "+k.kind+" "+strings.Join(chunk, ", ")+to+k.grantees+tail)
		}
	}
	return out
}

// keyOrder sorts statements: databases, schemas, then objects; within a
// kind by schema, privileges, grantees.
func keyOrder(k batchKey) string {
	rank := map[string]string{"DATABASE": "0", "SCHEMA": "1", "TABLE": "2", "SEQUENCE": "3", "ROUTINE": "4"}[k.kind]
	return rank + "\x00" + k.schema + "\x00" + k.privs + "\x00" + k.grantees + fmt.Sprint(k.optionFor, k.grantOption)
}

// ---- databases ----

func (d *differ) work(db string) *dbWork {
	w := d.dbs[db]
	if w == nil {
		w = &dbWork{stepDB: db, name: db, diffs: &d.diffs}
		d.dbs[db] = w
		d.dbOrder = append(d.dbOrder, db)
	}
	return w
}

func (d *differ) onServer(db string) bool {
	for _, n := range d.live.Databases {
		if n == db {
			return true
		}
	}
	return d.l.Databases[db] != nil
}

func (d *differ) checkRole(role, what string) error {
	if role != "" && (role == Public || !d.exists(role)) {
		return &unknownRole{role: role, text: fmt.Sprintf("%s: role %q is neither in roles: nor on the server", what, oneLineText(role))}
	}
	return nil
}

func (d *differ) database(name string) error {
	want := d.f.Databases[name]
	if want == nil {
		return nil
	}
	obj := "database " + name
	if err := d.checkRole(want.Owner, obj+" owner"); err != nil {
		return err
	}
	have := d.l.Databases[name]
	w := d.work(name)
	switch {
	case !d.onServer(name):
		// Created after the cluster additions; it starts as the server
		// makes a database: PUBLIC may CONNECT and create TEMPORARY tables,
		// and a public schema (owned by pg_database_owner on 15+).
		owner := want.Owner
		stmt := "CREATE DATABASE " + quote.Ident(name)
		if owner != "" {
			stmt += " OWNER " + quote.Ident(owner)
			d.needSet(owner, "CREATE DATABASE "+quote.Ident(name)+" OWNER "+quote.Ident(owner))
		} else {
			owner = d.live.CurrentUser
		}
		d.creates = append(d.creates, stmt)
		d.note(NoteInfo, obj, "does not exist: it is created")
		public := &Schema{Owner: "pg_database_owner", Grants: Grants{Public: {"USAGE"}}}
		if d.major > 0 && d.major < 15 {
			public = &Schema{Owner: d.live.Bootstrap, Grants: Grants{Public: {"USAGE", "CREATE"}}}
		}
		have = &Database{Owner: owner, Grants: Grants{Public: {"CONNECT", "TEMPORARY"}}, Schemas: map[string]*Schema{"public": public}}
	case have == nil || d.live.Unreadable[name] != "":
		// Its owner and ACL were not read: a plan for it would re-plan
		// what is already true and fail where the connection was refused.
		why := d.live.Unreadable[name]
		if why == "" {
			why = "it was not read"
		}
		advice := "plan as a role that can connect to it"
		if strings.HasPrefix(why, "a lock timeout") {
			advice = "plan again once the lock is released"
		} else {
			why = oneLineText(why)
		}
		d.note(NoteWarning, obj, "could not be read (%s): nothing is planned for it (owner, database grants, schemas); %s", why, advice)
		return nil
	}
	owner := have.Owner
	if want.Owner != "" && want.Owner != have.Owner {
		w.owners = append(w.owners, "ALTER DATABASE "+quote.Ident(name)+" OWNER TO "+quote.Ident(want.Owner))
		d.needSet(want.Owner, "ALTER DATABASE "+quote.Ident(name)+" OWNER TO "+quote.Ident(want.Owner))
		owner = want.Owner
	}
	ch, err := d.grantChanges(kindDatabase, want.Grants, have.Grants, owner)
	if err != nil {
		return fmt.Errorf("%s: %w", obj, err)
	}
	d.keepConnect(name, owner, want.Grants, ch)
	w.record("DATABASE", "", quote.Ident(name), ch)
	if err := d.defaults(w, name, "", want.DefaultPrivileges, have.DefaultPrivileges); err != nil {
		return err
	}
	for _, sn := range sortedKeys(want.Schemas) {
		if err := d.schema(w, name, sn, want.Schemas[sn], have.Schemas[sn]); err != nil {
			return err
		}
	}
	return nil
}

func (d *differ) schema(w *dbWork, db, name string, want, have *Schema) error {
	if want == nil {
		return nil
	}
	obj := db + "." + name
	if have == nil {
		d.note(NoteWarning, "schema "+obj, "does not exist: nothing is planned for it")
		return nil
	}
	owner := have.Owner
	if want.Owner != "" && want.Owner != have.Owner {
		if err := d.checkRole(want.Owner, "schema "+obj+" owner"); err != nil {
			return err
		}
		w.owners = append(w.owners, "ALTER SCHEMA "+quote.Ident(name)+" OWNER TO "+quote.Ident(want.Owner))
		d.needSet(want.Owner, "ALTER SCHEMA "+quote.Ident(name)+" OWNER TO "+quote.Ident(want.Owner))
		owner = want.Owner
	}
	ch, err := d.grantChanges(kindSchema, want.Grants, have.Grants, owner)
	if err != nil {
		return fmt.Errorf("schema %s: %w", obj, err)
	}
	w.record("SCHEMA", "", quote.Ident(name), ch)
	for _, k := range []struct {
		kind, sql, alter string
		want, have       Objects
	}{
		{kindTable, "TABLE", "TABLE", want.Tables, have.Tables},
		{kindSequence, "SEQUENCE", "SEQUENCE", want.Sequences, have.Sequences},
		{kindFunction, "ROUTINE", "ROUTINE", want.Functions, have.Functions},
	} {
		if err := d.objects(w, db, name, k.kind, k.sql, k.alter, k.want, k.have); err != nil {
			return err
		}
	}
	if err := d.defaults(w, db, name, want.DefaultPrivileges, have.DefaultPrivileges); err != nil {
		return err
	}
	return d.rls(w, db, name, want, have)
}

// objects diffs one kind in one schema: a named entry wins over "*"
// field by field.
func (d *differ) objects(w *dbWork, db, schema, kind, kindSQL, alter string, want, have Objects) error {
	if want == nil {
		return nil
	}
	star := want["*"]
	for _, n := range sortedKeys(want) {
		if n != "*" && have[n] == nil {
			d.note(NoteWarning, kind+" "+db+"."+schema+"."+n, "does not exist: nothing is planned for it")
		}
	}
	if w.totals == nil {
		w.totals = map[string]int{}
	}
	w.totals[kindSQL+"\x00"+schema] += len(have)
	for _, n := range sortedKeys(have) {
		h := have[n]
		if h == nil {
			continue
		}
		e := want[n]
		var owner string
		var grants Grants
		var cols ColumnGrants
		for _, src := range []*Object{e, star} {
			if src == nil {
				continue
			}
			if owner == "" {
				owner = src.Owner
			}
			if grants == nil {
				grants = src.Grants
			}
			if cols == nil {
				cols = src.Columns
			}
		}
		if owner == "" && grants == nil && cols == nil {
			continue
		}
		where := kind + " " + db + "." + schema + "." + n
		name, err := objectName(kind, schema, n)
		if err != nil {
			return fmt.Errorf("%s: %w", oneLineText(where), err)
		}
		effOwner := h.Owner
		if owner != "" && owner != h.Owner {
			if err := d.checkRole(owner, where+" owner"); err != nil {
				return err
			}
			w.owners = append(w.owners, "ALTER "+alter+" "+name+" OWNER TO "+quote.Ident(owner))
			d.needSet(owner, "ALTER ... OWNER TO "+quote.Ident(owner))
			effOwner = owner
		}
		ch, err := d.grantChanges(kind, grants, h.Grants, effOwner)
		if err != nil {
			return fmt.Errorf("%s: %w", oneLineText(where), err)
		}
		w.record(kindSQL, schema, name, ch)
		if cols != nil && kind == kindTable {
			names := map[string]bool{}
			for c := range cols {
				names[c] = true
			}
			for c := range h.Columns {
				names[c] = true
			}
			var tc tableColumns
			for _, c := range sortedKeys(names) {
				wc := cols[c]
				if wc == nil {
					wc = Grants{} // a column the file leaves out has none
				}
				ch, err := d.grantChanges(kindColumn, wc, h.Columns[c], effOwner)
				if err != nil {
					return fmt.Errorf("%s column %s: %w", oneLineText(where), oneLineText(c), err)
				}
				tc.add(c, ch)
			}
			w.record("TABLE", "\x00"+schema, name, tc.changes()) // never ON ALL for columns
		}
	}
	return nil
}

// tableColumns folds one table's column changes into one statement per
// change and grantee set: GRANT SELECT (id, customer), UPDATE (customer)
// rather than one per column.
type tableColumns struct {
	byGrantee map[change]map[string]*columnPrivs // change without privs
}

// columnPrivs are privileges in first-seen order, each with its columns.
type columnPrivs struct {
	order []string
	cols  map[string][]string
}

func (t *tableColumns) add(col string, ch map[change][]string) {
	if t.byGrantee == nil {
		t.byGrantee = map[change]map[string]*columnPrivs{}
	}
	for c, gs := range ch {
		privs := strings.Split(c.privs, ", ")
		c.privs = ""
		m := t.byGrantee[c]
		if m == nil {
			m = map[string]*columnPrivs{}
			t.byGrantee[c] = m
		}
		for _, g := range gs {
			cp := m[g]
			if cp == nil {
				cp = &columnPrivs{cols: map[string][]string{}}
				m[g] = cp
			}
			for _, p := range privs {
				if cp.cols[p] == nil {
					cp.order = append(cp.order, p)
				}
				cp.cols[p] = append(cp.cols[p], quote.Ident(col))
			}
		}
	}
}

// changes are the folded changes: grantees that get the same column
// list share one statement.
func (t *tableColumns) changes() map[change][]string {
	if len(t.byGrantee) == 0 {
		return nil // the common case at scale: nothing per column
	}
	out := map[change][]string{}
	for c, m := range t.byGrantee {
		for _, g := range sortedKeys(m) {
			cp := m[g]
			parts := make([]string, len(cp.order))
			for i, p := range cp.order {
				parts[i] = p + " (" + strings.Join(cp.cols[p], ", ") + ")"
			}
			k := c
			k.privs = strings.Join(parts, ", ")
			out[k] = append(out[k], g)
		}
	}
	return out
}

// objectName renders a table or sequence as schema.name, a function key
// "name(args)" as schema.name(args) through quote.Function.
func objectName(kind, schema, key string) (string, error) {
	if kind != kindFunction {
		return quote.Qualified(schema, key), nil
	}
	name, args, ok := splitFunctionKey(key)
	if !ok {
		return "", fmt.Errorf("function key %q: want name(identity arguments)", oneLineText(key))
	}
	return quote.Function(schema, name, args)
}

// splitFunctionKey splits "name(args)" at the parenthesis that matches
// the final one, so a name holding "(" still splits right.
func splitFunctionKey(key string) (name, args string, ok bool) {
	if !strings.HasSuffix(key, ")") {
		return "", "", false
	}
	depth, inQuote := 0, false
	for i := len(key) - 1; i >= 0; i-- {
		switch c := key[i]; {
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == ')':
			depth++
		case c == '(':
			depth--
			if depth == 0 {
				if i == 0 {
					return "", "", false
				}
				return key[:i], key[i+1 : len(key)-1], true
			}
		}
	}
	return "", "", false
}

// ---- default privileges ----

var defaultKinds = []struct {
	field, kind, sql string
	get              func(*DefaultPrivileges) Grants
}{
	{"tables", kindTable, "TABLES", func(p *DefaultPrivileges) Grants { return p.Tables }},
	{"sequences", kindSequence, "SEQUENCES", func(p *DefaultPrivileges) Grants { return p.Sequences }},
	{"functions", kindFunction, "FUNCTIONS", func(p *DefaultPrivileges) Grants { return p.Functions }},
	{"types", kindType, "TYPES", func(p *DefaultPrivileges) Grants { return p.Types }},
	{"schemas", kindSchema, "SCHEMAS", func(p *DefaultPrivileges) Grants { return p.Schemas }},
}

// builtinDefault is what objects start with when no database-wide
// pg_default_acl row exists: PUBLIC may EXECUTE functions and USE types.
func builtinDefault(kind string) Grants {
	switch kind {
	case kindFunction:
		return Grants{Public: {"EXECUTE"}}
	case kindType:
		return Grants{Public: {"USAGE"}}
	}
	return Grants{}
}

// defaults diffs ALTER DEFAULT PRIVILEGES. A database-wide entry
// replaces the built-in default (so an absent live entry for functions
// means PUBLIC EXECUTE); an IN SCHEMA entry adds to it. A map given
// is exact: creators it does not name go back to the built-in default.
func (d *differ) defaults(w *dbWork, db, schema string, want, have DefaultPrivilegesByRole) error {
	if want == nil {
		return nil
	}
	creators := map[string]bool{}
	for c := range want {
		creators[c] = true
	}
	for c := range have {
		creators[c] = true
	}
	in := ""
	if schema != "" {
		in = " IN SCHEMA " + quote.Ident(schema)
	}
	for _, c := range sortedKeys(creators) {
		if d.ignored(c) {
			continue
		}
		wd, named := want[c]
		if named {
			if err := d.checkRole(c, "default privileges of "+db); err != nil {
				return err
			}
		}
		if !named && d.mode == Additive {
			continue
		}
		hd := have[c]
		for _, k := range defaultKinds {
			if k.kind == kindSchema && schema != "" {
				continue
			}
			var wg, hg Grants
			if hd != nil {
				hg = k.get(hd)
			}
			builtin := Grants{}
			if schema == "" {
				builtin = builtinDefault(k.kind)
			}
			switch {
			case named && wd != nil:
				wg = k.get(wd)
				if wg == nil {
					continue
				}
			case named: // `role: {}` or null: every kind at its default
				wg = builtin
			default:
				if hg == nil {
					continue
				}
				wg = builtin
			}
			if hg == nil {
				hg = builtin
			}
			ch, err := d.grantChanges(k.kind, wg, hg, c)
			if err != nil {
				return fmt.Errorf("default privileges of %s on %s in %s: %w", oneLineText(c), k.field, oneLineText(db), err)
			}
			head := "ALTER DEFAULT PRIVILEGES FOR ROLE " + quote.Ident(c) + in + " "
			for _, chg := range sortedChanges(ch) {
				gs := whoList(ch[chg])
				switch {
				case !chg.revoke:
					tail := ""
					if chg.grantOption {
						tail = " WITH GRANT OPTION"
					}
					w.after = append(w.after, head+"GRANT "+chg.privs+" ON "+k.sql+" TO "+gs+tail)
				case chg.optionFor:
					w.last = append(w.last, head+"REVOKE GRANT OPTION FOR "+chg.privs+" ON "+k.sql+" FROM "+gs)
				default:
					w.last = append(w.last, head+"REVOKE "+chg.privs+" ON "+k.sql+" FROM "+gs)
				}
			}
		}
	}
	return nil
}

func sortedChanges(m map[change][]string) []change {
	out := make([]change, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

// ---- row-level security ----

func (d *differ) rls(w *dbWork, db, schema string, want, have *Schema) error {
	for _, t := range sortedKeys(want.RLS) {
		wr := want.RLS[t]
		if wr == nil {
			continue
		}
		where := db + "." + schema + "." + t
		if have.Tables[t] == nil {
			d.note(NoteWarning, "table "+where, "does not exist: its row-level security is not planned")
			continue
		}
		tbl := quote.Qualified(schema, t)
		hr := have.RLS[t]
		if hr == nil {
			hr = &RLS{}
		}
		lower := d.mode != Additive
		if wr.Enabled && !hr.Enabled {
			w.after = append(w.after, "ALTER TABLE "+tbl+" ENABLE ROW LEVEL SECURITY")
		} else if !wr.Enabled && hr.Enabled && lower {
			w.last = append(w.last, "ALTER TABLE "+tbl+" DISABLE ROW LEVEL SECURITY")
		}
		if wr.Force && !hr.Force {
			w.after = append(w.after, "ALTER TABLE "+tbl+" FORCE ROW LEVEL SECURITY")
		} else if !wr.Force && hr.Force && lower {
			w.last = append(w.last, "ALTER TABLE "+tbl+" NO FORCE ROW LEVEL SECURITY")
		}
		if wr.Policies == nil {
			continue
		}
		for _, pn := range sortedKeys(wr.Policies) {
			wp := wr.Policies[pn]
			if wp == nil {
				wp = &RowPolicy{}
			}
			for _, r := range wp.Roles {
				if !strings.EqualFold(r, Public) {
					if err := d.checkRole(r, "policy "+where+"."+pn); err != nil {
						return err
					}
				}
			}
			for _, e := range []string{wp.Using, wp.Check} {
				for _, c := range missingok.Unsafe(e) {
					d.note(NoteWarning, "policy "+where+"."+pn, "current_setting(%s) without missing_ok: %s", c.Setting, missingok.Why)
				}
			}
			hp := hr.Policies[pn]
			pname := quote.Ident(pn)
			switch {
			case hp == nil:
				w.after = append(w.after, createPolicy(pname, tbl, wp))
			case policyCommand(wp) != policyCommand(hp) || wp.Restrictive != hp.Restrictive ||
				(wp.Using == "") != (hp.Using == "") || (wp.Check == "") != (hp.Check == ""):
				// The command and the kind cannot be altered, nor a clause removed.
				w.after = append(w.after, "DROP POLICY "+pname+" ON "+tbl, createPolicy(pname, tbl, wp))
			default:
				var set []string
				if !sameRoles(wp.Roles, hp.Roles) {
					set = append(set, " TO "+policyRoles(wp.Roles))
				}
				if !SameExpr(wp.Using, hp.Using) {
					set = append(set, " USING ("+wp.Using+")")
				}
				if !SameExpr(wp.Check, hp.Check) {
					set = append(set, " WITH CHECK ("+wp.Check+")")
				}
				if len(set) > 0 {
					w.after = append(w.after, "ALTER POLICY "+pname+" ON "+tbl+strings.Join(set, ""))
				}
			}
		}
		if d.mode != Additive {
			for _, pn := range sortedKeys(hr.Policies) {
				if _, ok := wr.Policies[pn]; !ok {
					w.last = append(w.last, "DROP POLICY "+quote.Ident(pn)+" ON "+tbl)
				}
			}
		}
	}
	return nil
}

func policyCommand(p *RowPolicy) string {
	if p.Command == "" {
		return "ALL"
	}
	return strings.ToUpper(p.Command)
}

func policyRoles(roles []string) string {
	if len(roles) == 0 {
		return "PUBLIC"
	}
	q := make([]string, len(roles))
	for i, r := range roles {
		if strings.EqualFold(r, Public) {
			q[i] = "PUBLIC"
		} else {
			q[i] = quote.Ident(r)
		}
	}
	return strings.Join(q, ", ")
}

func sameRoles(a, b []string) bool {
	norm := func(rs []string) string {
		if len(rs) == 0 {
			return Public
		}
		c := make([]string, len(rs))
		for i, r := range rs {
			if strings.EqualFold(r, Public) {
				r = Public
			}
			c[i] = r
		}
		sort.Strings(c)
		return strings.Join(c, "\x00")
	}
	return norm(a) == norm(b)
}

func createPolicy(name, tbl string, p *RowPolicy) string {
	s := "CREATE POLICY " + name + " ON " + tbl
	if p.Restrictive {
		s += " AS RESTRICTIVE"
	}
	s += " FOR " + policyCommand(p) + " TO " + policyRoles(p.Roles)
	if p.Using != "" {
		s += " USING (" + p.Using + ")"
	}
	if p.Check != "" {
		s += " WITH CHECK (" + p.Check + ")"
	}
	return s
}

// SameExpr compares two policy expressions up to whitespace and the
// outer parentheses pg_get_expr adds; Normalize asks the server for the
// rest (casts, added parentheses).
func SameExpr(a, b string) bool {
	return squeeze(a) == squeeze(b)
}

func squeeze(e string) string {
	e = strings.Join(strings.Fields(e), " ")
	for strings.HasPrefix(e, "(") && strings.HasSuffix(e, ")") && balanced(e[1:len(e)-1]) {
		e = strings.TrimSpace(e[1 : len(e)-1])
	}
	return e
}

// balanced: the parentheses outside quotes never close more than opened.
func balanced(s string) bool {
	depth := 0
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0 && q == 0
}

// ---- the plan ----

func (d *differ) clusterDB() string {
	if d.o.ConnectDatabase != "" {
		return d.o.ConnectDatabase
	}
	for _, n := range sortedKeys(d.f.Databases) {
		if d.l.Databases[n] != nil && d.live.Unreadable[n] == "" {
			return n
		}
	}
	return "postgres"
}

func (d *differ) plan() *plan.Plan {
	p := &plan.Plan{FormatVersion: plan.FormatVersion, ID: planID(), Created: time.Now().UTC(), Source: "policy", Steps: []plan.Step{}}
	add := func(s plan.Step) {
		s.ID = fmt.Sprint(len(p.Steps) + 1)
		s.Kind = plan.KindSQL
		s.Closes = []plan.FindingRef{}
		p.Steps = append(p.Steps, s)
	}
	cdb := d.clusterDB()
	if adds := append(d.roleCreates, d.clusterAdd...); len(adds) > 0 {
		sum := fmt.Sprintf("%s: create roles, add memberships, raise attributes (%d statement(s))", clusterWhere(cdb), len(adds))
		if d.verifier {
			sum += "; sets a password verifier"
		}
		add(plan.Step{Summary: sum, Database: cdb, SQL: adds, Cluster: true})
	}
	if len(d.creates) > 0 {
		add(plan.Step{Summary: fmt.Sprintf("create %d database(s)", len(d.creates)), Database: cdb, SQL: d.creates, Autocommit: true})
	}
	if len(d.afterCreate) > 0 {
		add(plan.Step{Summary: fmt.Sprintf("%s: role settings in the new database(s) (%d statement(s))", clusterWhere(cdb), len(d.afterCreate)), Database: cdb, SQL: d.afterCreate, Cluster: true})
	}
	for _, db := range d.dbOrder {
		w := d.dbs[db]
		var sql []string
		sql = append(sql, w.owners...)
		sql = append(sql, w.grants.render(w.totals)...)
		sql = append(sql, w.after...)
		sql = append(sql, w.revokes.render(nil)...)
		sql = append(sql, w.colGrants.render(nil)...)
		sql = append(sql, w.last...)
		if len(sql) == 0 {
			continue
		}
		add(plan.Step{Summary: fmt.Sprintf("database %s: ownership, grants, default privileges, RLS (%d statement(s))", db, len(sql)), Database: w.stepDB, SQL: sql})
	}
	if len(d.clusterRemove) > 0 {
		add(plan.Step{Summary: fmt.Sprintf("%s: revoke memberships, lower attributes, reset settings (%d statement(s))", clusterWhere(cdb), len(d.clusterRemove)), Database: cdb, SQL: d.clusterRemove, Cluster: true})
	}
	for _, db := range sortedKeys(d.reassign) {
		add(plan.Step{Summary: "database " + db + ": revoke (DROP OWNED), reassign or drop what roles being removed hold or own", Database: db, SQL: d.reassign[db]})
	}
	if len(d.drops) > 0 {
		add(plan.Step{Summary: fmt.Sprintf("%s: drop %d role(s)", clusterWhere(cdb), len(d.drops)), Database: cdb, SQL: d.drops, Cluster: true})
	}
	return p
}

// clusterWhere heads a cluster step's summary: its statements change the
// shared catalogs (roles, memberships), whichever database they run from.
func clusterWhere(db string) string {
	return "roles (shared catalogs, run from database " + quote.Ident(db) + ")"
}

func planID() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// expandAllDatabases applies a legacy file's database-less entry
// (AllDatabases) to every database read that holds its schemas.
func expandAllDatabases(f *File, live *Live) *File {
	all := f.Databases[AllDatabases]
	if all == nil {
		return f
	}
	c := *f
	c.Databases = map[string]*Database{}
	for n, db := range f.Databases {
		if n != AllDatabases {
			c.Databases[n] = db
		}
	}
	for _, n := range sortedKeys(live.File.Databases) {
		ld := live.File.Databases[n]
		if _, named := c.Databases[n]; named || ld == nil {
			continue
		}
		db := &Database{Schemas: map[string]*Schema{}}
		for sn, s := range all.Schemas {
			if ld.Schemas[sn] != nil {
				db.Schemas[sn] = s
			}
		}
		if len(db.Schemas) > 0 {
			c.Databases[n] = db
		}
	}
	return &c
}

// keepConnect holds back a revocation of CONNECT from PUBLIC or from the
// executing role when that role is not a superuser, does not own the
// database and the file does not grant it CONNECT itself: the apply
// connects to each database after the revocations of the ones before,
// and must not lock itself out halfway.
func (d *differ) keepConnect(db, owner string, want Grants, ch map[change][]string) {
	me := d.live.CurrentUser
	if d.live.Superuser || me == "" || owner == me {
		return
	}
	if s, err := toSet(kindDatabase, want[me], d.major); err == nil {
		if _, ok := s["CONNECT"]; ok {
			return
		}
	}
	for c, gs := range ch {
		if !c.revoke || !strings.Contains(", "+c.privs+", ", ", CONNECT, ") {
			continue
		}
		var keep, held []string
		for _, g := range gs {
			if g == Public || g == me {
				held = append(held, g)
			} else {
				keep = append(keep, g)
			}
		}
		if len(held) == 0 {
			continue
		}
		d.note(NoteHeld, "database "+db, "CONNECT is not revoked from %s: %s is not a superuser and would lose the connection it applies with; grant it CONNECT in the file", strings.Join(held, ", "), me)
		delete(ch, c)
		if len(keep) > 0 {
			ch[c] = keep
		}
		var rest []string
		for _, p := range strings.Split(c.privs, ", ") {
			if p != "CONNECT" {
				rest = append(rest, p)
			}
		}
		if len(rest) > 0 {
			r := c
			r.privs = strings.Join(rest, ", ")
			ch[r] = append(ch[r], held...)
		}
	}
}
