package logscan

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"hash/maphash"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"
)

var (
	reQuoted = regexp.MustCompile(`"((?:[^"]|"")*)"`)
	reHost   = regexp.MustCompile(`host "([^"]*)"`)
	reUser   = regexp.MustCompile(`user "([^"]*)"`)
	reDB     = regexp.MustCompile(`database "([^"]*)"`)
	reStmt   = regexp.MustCompile(`^(?:duration: [0-9.]+ ms\s+)?(?:statement|execute [^:]*): `)
)

func firstQuoted(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return strings.ReplaceAll(m[1], `""`, `"`)
	}
	return ""
}

// classify turns a parsed record into a signal.
func classify(r *Record) (signal, bool) {
	m := r.Message
	switch r.Severity {
	case "FATAL":
		reason := ""
		switch {
		case strings.Contains(m, "password authentication failed"):
			reason = "password authentication failed"
			// Password auth fails an unknown role as a wrong password; the
			// DETAIL says which (csvlog and jsonlog carry it in the record,
			// stderr on a line of its own: see sigDetail).
			if roleMissingDetail(r.Detail) != "" {
				reason = "role does not exist"
			}
		case strings.HasPrefix(m, "no pg_hba.conf entry"):
			reason = "no pg_hba.conf entry"
		case strings.HasPrefix(m, "pg_hba.conf rejects"):
			reason = "rejected by pg_hba.conf"
		case strings.HasPrefix(m, "role \"") && strings.HasSuffix(m, "does not exist"):
			reason = "role does not exist"
		case strings.HasPrefix(m, "database \"") && strings.HasSuffix(m, "does not exist"):
			reason = "database does not exist"
		case strings.Contains(m, "authentication failed for user"):
			reason = m[:strings.Index(m, " failed")] + " failed"
		default:
			return signal{}, false
		}
		if h := firstQuoted(reHost, m); h != "" {
			r.Host = h
		}
		if u := firstQuoted(reUser, m); u != "" {
			r.User = u
		}
		if reason == "role does not exist" {
			r.User = firstQuoted(reQuoted, m)
		}
		if d := firstQuoted(reDB, m); d != "" {
			r.Database = d
		} else if reason == "database does not exist" {
			r.Database = firstQuoted(reQuoted, m)
		}
		return signal{kind: sigAuthFail, rec: *r, text: reason}, true
	case "LOG":
		switch {
		case strings.HasPrefix(m, "connection received:"):
			if h := wordAfter(m, " host="); h != "" {
				r.Host = h
			}
			return signal{kind: sigReceived, rec: *r}, true
		case strings.HasPrefix(m, "connection authorized:"):
			if u := wordAfter(m, " user="); u != "" {
				r.User, r.Database = u, wordAfter(m, " database=")
			}
			if a := wordAfter(m, " application_name="); a != "" {
				r.App = a
			}
			return signal{kind: sigAuthorized, rec: *r}, true
		case strings.HasPrefix(m, "AUDIT: "):
			text, id := auditStatement(m)
			return statementSignal(r, text, srcAudit, id)
		case strings.HasPrefix(m, "invalid "), strings.HasPrefix(m, "incomplete startup"), strings.HasPrefix(m, "could not accept SSL"), strings.HasPrefix(m, "unsupported frontend"):
			return signal{kind: sigNoise, rec: *r, text: m}, true
		}
		if loc := reStmt.FindStringIndex(m); loc != nil {
			return statementSignal(r, m[loc[1]:], srcLogStatement, "")
		}
	case "ERROR":
		return statementSignal(r, m, srcError, "")
	case "STATEMENT":
		return statementSignal(r, m, srcErrorStatement, "")
	case "DETAIL":
		if role := roleMissingDetail(m); role != "" {
			return signal{kind: sigDetail, rec: *r, text: role}, true
		}
	}
	return signal{}, false
}

// roleMissingDetail returns the role of a `Role "x" does not exist.`
// DETAIL (its first line: a "Connection matched" line may follow), or "".
func roleMissingDetail(d string) string {
	if !strings.HasPrefix(d, `Role "`) {
		return ""
	}
	if i := strings.IndexByte(d, '\n'); i >= 0 {
		d = d[:i]
	}
	if !strings.HasSuffix(d, `" does not exist.`) {
		return ""
	}
	return strings.ReplaceAll(d[len(`Role "`):len(d)-len(`" does not exist.`)], `""`, `"`)
}

// wordAfter returns the word after key in a "connection ..." message
// (one in ten lines of a server with log_connections: no regexp here).
func wordAfter(m, key string) string {
	i := strings.Index(m, key)
	if i < 0 {
		return ""
	}
	w := m[i+len(key):]
	if j := strings.IndexAny(w, " \t\n"); j >= 0 {
		w = w[:j]
	}
	return w
}

// maxStatement bounds the text of one statement that is classified and
// lexed for secrets, so a record near MaxRecord costs bounded work.
const maxStatement = 1 << 20

// statementSignal classifies a statement where it is parsed (in the
// workers): ordinary statements are dropped here.
func statementSignal(r *Record, text string, src byte, auditID string) (signal, bool) {
	if len(text) > maxStatement {
		// Only the start is shown (clip); a literal the cut leaves open is
		// redacted to the end, like any truncated statement.
		text = text[:maxStatement]
	}
	if !mayMatter(text) {
		return signal{}, false // no rule can match it, and it holds no secret
	}
	s := signal{kind: sigStatement, rec: *r, rule: -1}
	red, secret := redact(text)
	s.secret = secret
	up := strings.ToUpper(text)
	for i, sr := range statementRules {
		if sr.re.MatchString(up) {
			s.rule = i
			break
		}
	}
	if s.rule < 0 && !s.secret {
		return signal{}, false
	}
	s.text = clip(red)
	s.src, s.auditID = src, auditID
	// Blanks collapsed: a multi-line statement ends in a newline on
	// stderr's statement line and not inside pgaudit's quoted field.
	s.hash = maphash.String(stmtSeed, strings.Join(strings.Fields(text), " "))
	s.own = ownStatement(text)
	if s.own {
		// The audit's fixed text holds no password (its "rolpassword = ''"
		// reads as one to the lexer): whoever runs it leaks none.
		s.secret = false
		if s.rule < 0 {
			return signal{}, false
		}
	}
	return s, true
}

// statementOfInterest is the byte-level fast path for statements: the
// first keyword, or a few tell-tale substrings, decide whether the
// statement is worth classifying at all.
func statementOfInterest(b []byte) bool {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '(') {
		i++
	}
	var w [8]byte
	n := 0
	for j := i; j < len(b) && n < len(w); j++ {
		c := b[j] &^ 0x20 // upper case for letters
		if c < 'A' || c > 'Z' {
			break
		}
		w[n] = c
		n++
	}
	switch string(w[:n]) { // no allocation: the compiler compares in place
	case "CREATE", "ALTER", "DROP", "GRANT", "REVOKE", "COPY", "SET", "RESET", "DO":
		return true
	}
	// pg_read_file, lo_import, pg_authid ... : look at each underscore.
	for k := 0; ; {
		u := bytes.IndexByte(b[k:], '_')
		if u < 0 {
			break
		}
		u += k
		if u >= 2 {
			a, c := b[u-2]|0x20, b[u-1]|0x20
			if (a == 'p' && c == 'g') || (a == 'l' && c == 'o') {
				return true
			}
		}
		k = u + 1
	}
	return mayHoldSecret(b)
}

// mayHoldSecret is the per-line fast path for secrets: only statements
// that pass it are lexed (sqllex). It looks, with SIMD byte searches and
// no allocation, for "passw" in any case (password, passwd), "secret" in
// lower or upper case, "://" (URIs) and "U&" (escapes that can spell any
// word). A conninfo needs no word of its own: its password always follows
// "password=" or sits in a URI.
func mayHoldSecret(b []byte) bool {
	for _, w := range [2]byte{'w', 'W'} {
		for k := 0; ; {
			i := bytes.IndexByte(b[k:], w)
			if i < 0 {
				break
			}
			i += k
			if i >= 4 && hasFold(b[i-4:], "passw") {
				return true
			}
			k = i + 1
		}
	}
	if bytes.Contains(b, []byte("ecret")) || bytes.Contains(b, []byte("ECRET")) || bytes.Contains(b, []byte("://")) {
		return true
	}
	for k := 0; ; {
		i := bytes.IndexByte(b[k:], '&')
		if i < 0 {
			return false
		}
		i += k
		if i > 0 && b[i-1]|0x20 == 'u' {
			return true
		}
		k = i + 1
	}
}

// hasFold reports whether b starts with w (lower-case ASCII) in any case.
func hasFold(b []byte, w string) bool {
	if len(b) < len(w) {
		return false
	}
	for k := 1; k < len(w); k++ {
		if b[k]|0x20 != w[k] {
			return false
		}
	}
	return true
}

// auditStatement takes the statement text out of a pgaudit line:
// AUDIT: SESSION,1,1,ROLE,CREATE ROLE,,,"CREATE ROLE ...",<not logged>
// It also returns the statement id (the second field): every line of
// one statement (its classes, its objects) has the same.
func auditStatement(m string) (string, string) {
	rd := csv.NewReader(strings.NewReader(strings.TrimPrefix(m, "AUDIT: ")))
	rd.FieldsPerRecord = -1
	rd.LazyQuotes = true
	f, err := rd.Read()
	if err != nil || len(f) < 8 {
		return m, ""
	}
	return f[7], f[0] + "," + f[1]
}

// Event is something a security reviewer should see.
type Event struct {
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Title    string    `json:"title"`
	Source   string    `json:"source,omitempty"`
	Role     string    `json:"role,omitempty"`
	Database string    `json:"database,omitempty"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	Count    int       `json:"count"`
	Evidence []string  `json:"evidence"` // file:line, the first few
	Sample   string    `json:"sample,omitempty"`
}

// Thresholds tune the detectors.
type Thresholds struct {
	Window      time.Duration // sliding window for bursts
	BruteForce  int           // failures from one source (or against one role) in Window
	Spray       int           // distinct roles tried from one source in Window
	AfterFails  int           // failures before a success that counts as suspicious
	Allow       []netip.Prefix
	Superusers  map[string]bool
	MaxEvidence int
	// Flood: connections received from one source within Window.
	Flood int
	// Known sources (a saved baseline): an authorized connection from any
	// other address is reported. Nil disables the check.
	Known map[string]bool
}

// DefaultThresholds are the defaults of the CLI.
func DefaultThresholds() Thresholds {
	return Thresholds{Window: 5 * time.Minute, BruteForce: 10, Spray: 5, AfterFails: 3, MaxEvidence: 5, Flood: 500,
		Superusers: map[string]bool{"postgres": true}}
}

// Analysis accumulates signals in log order.
type Analysis struct {
	T Thresholds
	// OnEvent, when set, is called each time an event is raised or
	// repeated (logs watch streams these).
	OnEvent func(Event)
	pidHost map[int]string
	pidSess map[int]session // who a process's session is, from "connection authorized"
	// pending: a password failure held until the next signal, which may
	// be the stderr DETAIL saying the role does not exist.
	pending *signal
	// lastStmt: per process, the last statement signal, so one statement
	// logged by log_statement, pgaudit and an error's STATEMENT counts once.
	lastStmt map[int]stmtSeen
	seq      uint64                 // failures recorded so far
	afterAt  map[string]uint64      // source\x00role: seq when success-after-failures last fired
	fails    map[string][]failure   // by source
	conns    map[string][]time.Time // connections received, by source
	Seen     map[string]bool        // sources that logged in (for a baseline)
	events   map[string]*Event
	order    []string
	bySource map[string]int
	byRole   map[string]int
	timeline map[string]int // hour -> failures
}

type failure struct {
	t    time.Time
	user string
	seq  uint64
}

type session struct{ user, db, app string }

type stmtSeen struct {
	hash      uint64
	plain, er bool   // seen from log_statement, from an error's STATEMENT
	auditID   string // pgaudit statement id seen
}

// NewAnalysis starts an empty analysis (for Watch).
func NewAnalysis(t Thresholds) *Analysis {
	a := newAnalysis()
	a.T = t
	return a
}

func newAnalysis() *Analysis {
	return &Analysis{T: DefaultThresholds(), pidHost: map[int]string{}, pidSess: map[int]session{}, lastStmt: map[int]stmtSeen{}, afterAt: map[string]uint64{},
		fails: map[string][]failure{}, events: map[string]*Event{},
		conns: map[string][]time.Time{}, Seen: map[string]bool{},
		bySource: map[string]int{}, byRole: map[string]int{}, timeline: map[string]int{}}
}

func (a *Analysis) event(key, kind, sev, title string, s *signal) *Event {
	e, ok := a.events[key]
	if !ok {
		e = &Event{Kind: kind, Severity: sev, Title: title, Source: s.rec.Host, Role: s.rec.User, Database: s.rec.Database, First: s.rec.Time}
		a.events[key] = e
		a.order = append(a.order, key)
	}
	e.Count++
	e.Last = s.rec.Time
	if len(e.Evidence) < a.T.MaxEvidence {
		e.Evidence = append(e.Evidence, fmt.Sprintf("%s:%d", s.rec.File, s.rec.Line))
	}
	if a.OnEvent != nil {
		defer func() { a.OnEvent(*e) }() // after the caller has filled in the event
	}
	if len(a.events) > 50000 { // bounded, however long a watch runs
		a.events, a.order = map[string]*Event{key: e}, []string{key}
	}
	return e
}

// probeRole is the role pgaegis's TLS probe logs in as (it must not
// exist: the probe wants the server's refusal, not a session).
const probeRole = "pgaegis_probe"

func (a *Analysis) add(s *signal) {
	r := &s.rec
	if r.Host == "" && r.PID != 0 {
		r.Host = a.pidHost[r.PID]
	}
	if r.PID != 0 && (r.User == "" || r.App == "") {
		// A prefix without %u/%d/%a ("%m [%p] "): the session's line says.
		if ss, ok := a.pidSess[r.PID]; ok {
			if r.User == "" {
				r.User, r.Database = ss.user, ss.db
			}
			if r.App == "" {
				r.App = ss.app
			}
		}
	}
	if s.kind == sigDetail {
		if p := a.pending; p != nil && p.rec.PID == r.PID && p.rec.User == s.text {
			p.text = "role does not exist"
		}
		a.flush()
		return
	}
	a.flush()
	if s.kind == sigAuthFail && s.text == "password authentication failed" {
		c := *s
		a.pending = &c
		return
	}
	a.process(s)
}

// flush processes a held password failure (at the end of a scan, or of
// a batch that logs watch read).
func (a *Analysis) flush() {
	if p := a.pending; p != nil {
		a.pending = nil
		a.process(p)
	}
}

func (a *Analysis) process(s *signal) {
	r := &s.rec
	switch s.kind {
	case sigReceived:
		// Kept for the whole session (until the PID is reused): with a
		// prefix without %h/%r ("%m [%p] ") this is where a session's
		// statements get their source.
		a.pidHost[r.PID] = r.Host
		delete(a.pidSess, r.PID)
		if len(a.pidHost) > 100000 { // bounded: stale PIDs are dropped
			a.pidHost = map[int]string{r.PID: r.Host}
			a.pidSess = map[int]session{}
		}
		if a.T.Flood > 0 && !r.Time.IsZero() {
			ts := append(a.conns[r.Host], r.Time)
			cut := 0
			for cut < len(ts) && r.Time.Sub(ts[cut]) > a.T.Window {
				cut++
			}
			ts = ts[cut:]
			if len(ts) > a.T.Flood*2 {
				ts = ts[len(ts)-a.T.Flood*2:]
			}
			a.conns[r.Host] = ts
			if len(ts) >= a.T.Flood {
				e := a.event("flood\x00"+r.Host, "connection-flood", "medium", fmt.Sprintf("%d or more connections from one source within %s", a.T.Flood, a.T.Window), s)
				if len(ts) > e.Count {
					e.Count = len(ts)
				}
			}
		}
	case sigNoise:
		a.event("noise\x00"+r.Host, "scanner-noise", "low", "protocol noise (scanners, broken clients)", s)
	case sigAuthFail:
		delete(a.pidHost, r.PID)
		if r.User == probeRole && s.text != "password authentication failed" {
			// pgaegis's TLS probe, refused as it means to be: not a failure
			// that could lead up to a success (the role does not exist).
			a.event("probe\x00"+r.Host, "pgaegis-probe", "info", "pgaegis's TLS probe (role "+probeRole+") refused, as intended", s)
			return
		}
		a.bySource[r.Host]++
		a.byRole[r.User]++
		if !r.Time.IsZero() {
			a.timeline[r.Time.Format("2006-01-02 15:00")]++
		}
		switch s.text {
		case "no pg_hba.conf entry":
			a.event("nohba\x00"+r.Host, "no-hba-entry", "medium", "connections refused: no pg_hba.conf entry", s)
		case "rejected by pg_hba.conf":
			a.event("reject\x00"+r.Host, "hba-reject", "medium", "connections rejected by a pg_hba.conf reject line", s)
		case "role does not exist":
			a.event("norole\x00"+r.Host, "unknown-role", "medium", "logins for roles that do not exist", s)
		case "database does not exist":
			a.event("nodb\x00"+r.Host, "unknown-database", "low", "connections to databases that do not exist", s)
		}
		a.recordFailure(s)
	case sigAuthorized:
		host := r.Host
		if r.PID != 0 {
			if len(a.pidSess) > 100000 {
				a.pidSess = map[int]session{}
			}
			a.pidSess[r.PID] = session{user: r.User, db: r.Database, app: r.App}
		}
		// Once per round of failures for a source and role: the failures
		// before the last time this fired do not count again.
		key := host + "\x00" + r.User
		if n, last := a.recentFailures(host, r.User, r.Time, a.afterAt[key]); n >= a.T.AfterFails {
			from := "from the same source"
			if host == "" {
				// No %r/%h in the prefix and no connection line: the
				// failures are only known to be for this role.
				from = "for this role (source not in the log)"
			}
			e := a.event("success\x00"+key, "success-after-failures", "critical",
				fmt.Sprintf("login succeeded after %d or more failures %s (likely compromise)", a.T.AfterFails, from), s)
			e.Source, e.Role = host, r.User
			if len(a.afterAt) > 100000 {
				a.afterAt = map[string]uint64{}
			}
			a.afterAt[key] = last
		}
		if a.T.Superusers[r.User] && host != "" && host != "[local]" && !isLoopback(host) {
			a.event("supertcp\x00"+host+"\x00"+r.User, "superuser-over-tcp", "medium", "superuser session over TCP", s)
		}
		if len(a.T.Allow) > 0 && host != "" && host != "[local]" && !allowed(host, a.T.Allow) {
			a.event("outside\x00"+host, "outside-allow-list", "high", "connection from an address outside the allowed networks", s)
		}
		if host != "" {
			if a.T.Known != nil && !a.T.Known[host] && !a.Seen[host] {
				a.event("new\x00"+host, "new-source", "medium", "login from an address never seen before (not in the baseline)", s)
			}
			if len(a.Seen) < 1000000 {
				a.Seen[host] = true
			}
		}
	case sigStatement:
		a.statement(s)
	}
}

func isLoopback(h string) bool {
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

func allowed(h string, allow []netip.Prefix) bool {
	a, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	for _, p := range allow {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// recordFailure keeps the recent failures of a source and raises burst
// and spraying events when a threshold is crossed.
func (a *Analysis) recordFailure(s *signal) {
	r := &s.rec
	host := r.Host
	a.seq++
	fs := append(a.fails[host], failure{t: r.Time, user: r.User, seq: a.seq})
	// Bounded memory: only the window is kept.
	cut := 0
	for cut < len(fs) && !r.Time.IsZero() && r.Time.Sub(fs[cut].t) > a.T.Window {
		cut++
	}
	fs = fs[cut:]
	if len(fs) > 10000 {
		fs = fs[len(fs)-10000:]
	}
	a.fails[host] = fs
	if len(fs) >= a.T.BruteForce {
		e := a.event("brute\x00"+host, "brute-force", "high", fmt.Sprintf("%d or more failed logins from one source within %s", a.T.BruteForce, a.T.Window), s)
		e.Role = ""
		if len(fs) > e.Count {
			e.Count = len(fs) // the failures in the window, not the times the threshold was crossed
		}
		startAtFirstFailure(e, fs)
	}
	users := map[string]bool{}
	for _, f := range fs {
		users[f.user] = true
	}
	if len(users) >= a.T.Spray {
		e := a.event("spray\x00"+host, "password-spraying", "high", fmt.Sprintf("one source tried %d or more roles within %s", a.T.Spray, a.T.Window), s)
		e.Role = ""
		startAtFirstFailure(e, fs)
	}
}

// startAtFirstFailure makes a burst event begin at the first failure of
// the window, not at the one that crossed the threshold.
func startAtFirstFailure(e *Event, fs []failure) {
	if t := fs[0].t; !t.IsZero() && (e.First.IsZero() || t.Before(e.First)) {
		e.First = t
	}
}

// recentFailures counts the failures of a source within the window and
// after seq since that lead up to a login as user: failures for that
// role (a guessed password), or for any role once the source sprayed
// several (the one that worked is the compromise). Someone else's typos
// from the same address are not a compromise of this login. It returns
// the last counted failure's seq.
func (a *Analysis) recentFailures(host, user string, t time.Time, since uint64) (int, uint64) {
	n, last, all, allLast := 0, since, 0, since
	roles := map[string]bool{}
	for _, f := range a.fails[host] {
		if f.seq > since && (t.IsZero() || t.Sub(f.t) <= a.T.Window) {
			all, allLast = all+1, f.seq
			roles[f.user] = true
			if f.user == user {
				n, last = n+1, f.seq
			}
		}
	}
	if len(roles) >= a.T.Spray {
		return all, allLast
	}
	return n, last
}

type stmtRule struct {
	kind, severity, title string
	re                    *regexp.Regexp
}

// statementRules classify statements (upper-cased before matching).
var statementRules = []stmtRule{
	{"copy-program", "critical", "COPY ... PROGRAM runs a shell command as the server", regexp.MustCompile(`\bCOPY\b[\s\S]*\b(TO|FROM)\s+PROGRAM\b`)},
	{"server-file-access", "high", "server file functions (pg_read_file, lo_import ...)", regexp.MustCompile(`\b(PG_READ_FILE|PG_READ_BINARY_FILE|PG_LS_DIR|PG_STAT_FILE|LO_IMPORT|LO_EXPORT|PG_FILE_WRITE)\s*\(`)},
	{"credential-read", "high", "reads of pg_authid / pg_shadow", regexp.MustCompile(`\b(PG_AUTHID|PG_SHADOW)\b`)},
	{"superuser-granted", "critical", "SUPERUSER, BYPASSRLS or REPLICATION granted", regexp.MustCompile(`\b(CREATE|ALTER)\s+(ROLE|USER)\b[\s\S]*\b(SUPERUSER|BYPASSRLS|REPLICATION)\b`)},
	{"powerful-role-granted", "critical", "membership in a predefined OS-access role granted", regexp.MustCompile(`\bGRANT\b[\s\S]*\b(PG_EXECUTE_SERVER_PROGRAM|PG_READ_SERVER_FILES|PG_WRITE_SERVER_FILES)\b`)},
	{"audit-tampering", "high", "logging or auditing changed for a session or role", regexp.MustCompile(`\b(SET|ALTER\s+(ROLE|USER|DATABASE)\b[\s\S]*\bSET)\s+(LOG_STATEMENT|PGAUDIT\.\w+|LOG_MIN_\w+|LOG_CONNECTIONS|LOG_DISCONNECTIONS)\b`)},
	{"alter-system", "high", "ALTER SYSTEM changed the server configuration", regexp.MustCompile(`\bALTER\s+SYSTEM\b`)},
	{"role-change", "medium", "role created, changed or dropped", regexp.MustCompile(`\b(CREATE|ALTER|DROP)\s+(ROLE|USER|GROUP)\b`)},
	{"privilege-change", "medium", "privileges granted or revoked", regexp.MustCompile(`\b(GRANT|REVOKE)\b|\bALTER\s+DEFAULT\s+PRIVILEGES\b`)},
	{"untrusted-language", "high", "function in an untrusted language", regexp.MustCompile(`\bLANGUAGE\s+'?(PLPYTHON3?U|PLPERLU|PLTCLU|C)\b'?`)},
	{"security-definer", "medium", "SECURITY DEFINER function created", regexp.MustCompile(`\bSECURITY\s+DEFINER\b`)},
}

func (a *Analysis) statement(s *signal) {
	if a.repeated(s) {
		return
	}
	if s.secret {
		e := a.event("secret\x00"+s.rec.User, "secret-in-log", "high", "a password was written to the log in clear text", s)
		if e.Sample == "" {
			e.Sample = s.text
		}
	}
	if s.rule >= 0 {
		sr := statementRules[s.rule]
		key, sev, title := sr.kind+"\x00"+s.rec.User, sr.severity, sr.title
		if ownReadKinds[sr.kind] && (s.own || s.rec.App == ownApp) {
			// pgaegis's own audit reads these catalogs and files. Both marks
			// can be imitated (application_name is the client's to set, and
			// anyone may run the same text), so the event is only lowered,
			// never dropped.
			key, sev = "own\x00"+key, "low"
			title += ": as pgaegis's own audit runs it (application_name pgaegis or its exact statement; both can be imitated)"
		}
		e := a.event(key, sr.kind, sev, title, s)
		if e.Sample == "" {
			e.Sample = s.text
		}
	}
}

// repeated reports whether s is a statement already counted: the same
// text from the same process, written once more by another log
// (log_statement, then pgaudit's AUDIT line, then an error's STATEMENT).
// The same log writing it again is a new execution; pgaudit numbers its
// statements, so its lines of one statement share an id.
func (a *Analysis) repeated(s *signal) bool {
	if s.src == srcError {
		return false
	}
	pid := s.rec.PID
	last, ok := a.lastStmt[pid]
	dup := ok && last.hash == s.hash
	if dup {
		switch s.src {
		case srcLogStatement:
			dup = !last.plain
		case srcErrorStatement:
			dup = !last.er
		case srcAudit:
			dup = last.auditID == "" || last.auditID == s.auditID
		}
	}
	if !dup {
		last = stmtSeen{hash: s.hash}
	}
	switch s.src {
	case srcLogStatement:
		last.plain = true
	case srcErrorStatement:
		last.er = true
	case srcAudit:
		last.auditID = s.auditID
	}
	if len(a.lastStmt) > 100000 {
		a.lastStmt = map[int]stmtSeen{}
	}
	a.lastStmt[pid] = last
	return dup
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Events returns the events, worst first.
func (a *Analysis) Events() []Event {
	rank := map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
	out := make([]Event, 0, len(a.order))
	for _, k := range a.order {
		out = append(out, *a.events[k])
	}
	sort.SliceStable(out, func(i, j int) bool {
		if rank[out[i].Severity] != rank[out[j].Severity] {
			return rank[out[i].Severity] < rank[out[j].Severity]
		}
		return out[i].Count > out[j].Count
	})
	return out
}

// Top lists the sources (or roles) with the most failures.
func (a *Analysis) Top(roles bool, n int) []Count {
	src := a.bySource
	if roles {
		src = a.byRole
	}
	var out []Count
	for k, v := range src {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Key < out[j].Key
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Count is a key and its tally.
type Count struct {
	Key string `json:"key"`
	N   int    `json:"count"`
}

// Timeline is failures per hour.
func (a *Analysis) Timeline() []Count {
	var out []Count
	for k, v := range a.timeline {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// ownApp is the application_name pgaegis's audit sessions set
// (internal/collect: sessionConfig).
const ownApp = "pgaegis"

// ownReadKinds are the statement events pgaegis's own read-only audit
// raises: it reads pg_authid and, through the server, files.
var ownReadKinds = map[string]bool{"credential-read": true, "server-file-access": true}

var stmtSeed = maphash.MakeSeed()

// ownStatements are the statements of pgaegis's audit (internal/collect)
// that match a statement rule, with blanks collapsed: recognised by their
// exact text when the log does not say the application (no %a, no
// log_connections). TestOwnAuditNotAlarming runs a real audit and fails
// when one is missing here.
var ownStatements = map[string]bool{
	// live.go: password storage
	`SELECT oid, CASE WHEN rolpassword IS NULL OR rolpassword = '' THEN 'none' WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram-sha-256' WHEN rolpassword ~ '^md5[0-9a-f]{32}$' THEN 'md5' ELSE 'plaintext' END FROM pg_authid`: true,
	// live.go: pg_hba.conf through the server
	`SELECT pg_read_binary_file($1, 0, $2)`: true,
	// libraries.go
	`SELECT f FROM pg_ls_dir($1) AS f WHERE f LIKE '%.so'`:                                        true,
	`SELECT (pg_stat_file($1, true)).size IS NOT NULL, (pg_stat_file($2, true)).size IS NOT NULL`: true,
	// catalogs.go: the ACLs of the sensitive catalogs
	`SELECT c.relname, pg_get_userbyid(c.relowner), c.relacl::text[] FROM pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relname IN ('pg_authid', 'pg_shadow', 'pg_user_mapping', 'pg_statistic', 'pg_largeobject', 'pg_subscription')`: true,
}

// ownStatement reports whether text is one of ownStatements.
func ownStatement(text string) bool {
	if len(text) > 4096 {
		return false
	}
	return ownStatements[strings.Join(strings.Fields(text), " ")]
}
