// Package logscan reads PostgreSQL server logs (stderr/syslog text with a
// log_line_prefix, csvlog, jsonlog, pgaudit lines inside any of them) and
// finds security events: brute force, spraying, a success after failures,
// role and privilege changes, dangerous statements, secrets in the log.
// It streams: chunks are scanned in parallel, and only lines that can
// matter are parsed in full.
package logscan

import (
	"bytes"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/sqllex"
)

// Record is one log entry, with the fields the analysis uses.
type Record struct {
	File     string
	Line     int
	Time     time.Time
	PID      int
	User     string
	Database string
	Host     string // client address (no port)
	Severity string // LOG, FATAL, ERROR, ...
	Message  string
	Detail   string
	App      string // application_name (%a, csvlog, jsonlog, or the session's "connection authorized" line)
	// Query is the statement of an error record (csvlog's query column,
	// jsonlog's statement): what stderr writes on its own STATEMENT line.
	Query string
}

// Format of a log.
type Format string

// Formats.
const (
	Stderr Format = "stderr"
	CSV    Format = "csvlog"
	JSON   Format = "jsonlog"
)

// Prefix is a compiled log_line_prefix.
type Prefix struct {
	spec  string
	parts []prefixPart
}

type prefixPart struct {
	lit string // literal text, or
	esc byte   // escape letter
}

// CompilePrefix prepares a log_line_prefix for parsing.
func CompilePrefix(spec string) (*Prefix, error) {
	p := &Prefix{spec: spec}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.parts = append(p.parts, prefixPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(spec); i++ {
		c := spec[i]
		if c != '%' || i+1 >= len(spec) {
			lit.WriteByte(c)
			continue
		}
		i++
		// Padding (%-10u) is ignored for parsing.
		for i < len(spec) && (spec[i] == '-' || spec[i] >= '0' && spec[i] <= '9') {
			i++
		}
		if i >= len(spec) {
			break
		}
		e := spec[i]
		switch e {
		case '%':
			lit.WriteByte('%')
		case 'q':
			// "stop here in non-session processes": the rest is optional.
			flush()
			p.parts = append(p.parts, prefixPart{esc: 'q'})
		case 'a', 'u', 'd', 'r', 'h', 'b', 'p', 'P', 't', 'm', 'n', 'i', 'e', 'c', 'l', 's', 'v', 'x', 'Q':
			flush()
			p.parts = append(p.parts, prefixPart{esc: e})
		default:
			return nil, fmt.Errorf("log_line_prefix %q: unknown escape %%%c", spec, e)
		}
	}
	flush()
	return p, nil
}

var severities = []string{"LOG:", "FATAL:", "ERROR:", "WARNING:", "NOTICE:", "INFO:", "PANIC:", "STATEMENT:", "DETAIL:", "HINT:", "CONTEXT:", "DEBUG1:", "DEBUG2:", "DEBUG3:", "DEBUG4:", "DEBUG5:"}

// parse matches the prefix at the start of line and returns the record
// fields and the rest ("SEVERITY:  message").
func (p *Prefix) parse(line []byte, r *Record) ([]byte, bool) {
	pos := 0
	for i, part := range p.parts {
		if part.esc == 0 {
			if !bytes.HasPrefix(line[pos:], []byte(part.lit)) {
				return nil, false
			}
			pos += len(part.lit)
			continue
		}
		if part.esc == 'q' {
			continue
		}
		// The value runs to the next literal (or a space for the last).
		end := -1
		var next string
		for _, q := range p.parts[i+1:] {
			if q.esc == 0 {
				next = q.lit
				break
			}
		}
		from := pos // where the search for the value's end starts
		switch part.esc {
		case 'n':
			end = timeEnd(line[pos:], part.esc)
			if end < 0 {
				return nil, false
			}
			end += pos
		case 'm', 't':
			// Date and time hold a space; the zone then runs to the next
			// literal like any other value ("<%t|%p>" has no space after it).
			d := timeEnd(line[pos:], part.esc)
			if d < 0 {
				return nil, false
			}
			from = pos + d
		}
		if end < 0 {
			if next == "" {
				end = bytes.IndexByte(line[from:], ' ')
			} else {
				end = bytes.Index(line[from:], []byte(next))
			}
			if end < 0 {
				return nil, false
			}
			end += from
		}
		val := line[pos:end]
		switch part.esc {
		case 'm', 't':
			r.Time = parseTime(string(val))
		case 'n':
			if f, err := strconv.ParseFloat(string(val), 64); err == nil {
				r.Time = time.Unix(0, int64(f*1e9)).UTC()
			}
		case 'p':
			r.PID, _ = strconv.Atoi(string(val))
		case 'u':
			r.User = string(val)
		case 'a':
			r.App = string(val)
		case 'd':
			r.Database = string(val)
		case 'h':
			r.Host = string(val)
		case 'r':
			h := string(val)
			if i := strings.LastIndex(h, "("); i > 0 && strings.HasSuffix(h, ")") {
				h = h[:i]
			}
			r.Host = h
		}
		pos = end
	}
	return line[pos:], true
}

// timeEnd finds the end of a %n epoch, or where the zone of a %m/%t
// timestamp starts: "2026-11-22 08:30:00.123 UTC".
func timeEnd(b []byte, esc byte) int {
	if esc == 'n' {
		i := 0
		for i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == '.') {
			i++
		}
		return i
	}
	// date and time: where the zone starts, after the second space
	sp := 0
	for i := 0; i < len(b) && i < 40; i++ {
		if b[i] == ' ' {
			sp++
			if sp == 2 {
				return i + 1
			}
		}
	}
	return -1
}

// timeLayouts are the ways the server writes %m / %t and the csvlog and
// jsonlog timestamps: a zone abbreviation from log_timezone, or a numeric
// offset for zones without one (+03, +0545).
// Numeric layouts come first: Go's "MST" also accepts "+03", as a name.
var timeLayouts = []string{
	"2006-01-02 15:04:05.000 -07", "2006-01-02 15:04:05 -07",
	"2006-01-02 15:04:05.000 -0700", "2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05.000 MST", "2006-01-02 15:04:05 MST",
	"2006-01-02T15:04:05.000Z07:00", "2006-01-02 15:04:05.000-07",
}

// zoneOffsets resolves the abbreviations the tz database writes for
// common log_timezone settings. Go's time.Parse knows only the local
// zone's abbreviations and reads any other as UTC, which would shift
// every event of a Berlin or New York server by hours. Where an
// abbreviation is ambiguous, PostgreSQL's "Default" timezone_abbreviations
// set decides (CST is America/Chicago, IST is Israel).
var zoneOffsets = map[string]int{
	"WET": 0, "WEST": 1 * 3600, "BST": 1 * 3600, "CET": 1 * 3600, "CEST": 2 * 3600,
	"MET": 1 * 3600, "MEST": 2 * 3600, "EET": 2 * 3600, "EEST": 3 * 3600, "MSK": 3 * 3600,
	"IST": 2 * 3600, "SAST": 2 * 3600, "WAT": 1 * 3600, "CAT": 2 * 3600, "EAT": 3 * 3600,
	"PKT": 5 * 3600, "WIB": 7 * 3600, "HKT": 8 * 3600, "AWST": 8 * 3600, "JST": 9 * 3600,
	"KST": 9 * 3600, "ACST": 9*3600 + 1800, "ACDT": 10*3600 + 1800, "AEST": 10 * 3600,
	"AEDT": 11 * 3600, "NZST": 12 * 3600, "NZDT": 13 * 3600,
	"NST": -(3*3600 + 1800), "NDT": -(2*3600 + 1800), "AST": -4 * 3600, "ADT": -3 * 3600,
	"EST": -5 * 3600, "EDT": -4 * 3600, "CST": -6 * 3600, "CDT": -5 * 3600,
	"MST": -7 * 3600, "MDT": -6 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600,
	"AKST": -9 * 3600, "AKDT": -8 * 3600, "HST": -10 * 3600,
}

func parseTime(s string) time.Time {
	// Try the likely pair of layouts first: this runs for every
	// interesting record, and a failed time.Parse costs as much as a good one.
	likely := timeLayouts[4:6] // a zone name
	if sp := strings.LastIndexByte(s, ' '); sp >= 0 && sp+1 < len(s) && (s[sp+1] == '+' || s[sp+1] == '-') {
		likely = timeLayouts[:4]
	}
	for _, layouts := range [][]string{likely, timeLayouts} {
		for _, l := range layouts {
			if t, err := time.Parse(l, s); err == nil {
				return fixZone(t).UTC()
			}
		}
	}
	return time.Time{}
}

// fixZone gives an abbreviation unknown to this machine (parsed with
// offset 0) its real offset.
func fixZone(t time.Time) time.Time {
	if name, off := t.Zone(); off == 0 {
		if real, ok := zoneOffsets[name]; ok && real != 0 {
			return t.Add(-time.Duration(real) * time.Second)
		}
	}
	return t
}

// splitSeverity splits "FATAL:  message" into its parts.
func splitSeverity(rest []byte) (string, string, bool) {
	for _, s := range severities {
		if bytes.HasPrefix(rest, []byte(s)) {
			return s[:len(s)-1], string(bytes.TrimLeft(rest[len(s):], " ")), true
		}
	}
	return "", "", false
}

// Redact replaces passwords in a statement with *****, keeping its shape
// (PASSWORD '*****'). The statement is lexed as the server lexes SQL
// (sqllex), so no quoting, comment or dynamic SQL hides a literal from
// it; connection strings outside literals are masked too.
func Redact(s string) string {
	r, _ := redact(s)
	return r
}

// redact also reports whether there was a password.
func redact(s string) (string, bool) {
	if !sqllex.MayHoldSecret(s) {
		return s, false
	}
	sp := append(sqllex.Secrets(s), conninfo.SecretSpans(s)...)
	if len(sp) == 0 {
		return s, false
	}
	return conninfo.Replace(s, mergeSpans(sp), sqllex.Mask), true
}

// mergeSpans sorts spans and joins overlapping ones.
func mergeSpans(sp []conninfo.Span) []conninfo.Span {
	sort.Slice(sp, func(i, j int) bool { return sp[i].Start < sp[j].Start })
	out := sp[:0]
	for _, x := range sp {
		if x.End <= x.Start {
			continue
		}
		if n := len(out); n > 0 && x.Start <= out[n-1].End {
			if x.End > out[n-1].End {
				out[n-1].End = x.End
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// commonPrefixes are log_line_prefix values seen in the wild, tried in
// order when none is given.
var commonPrefixes = []string{
	"%m [%p] %q%u@%d %r ", "%m [%p] %q%u@%d from %h ", "%m [%p] %q%u@%d from %r ", "%m [%p] %q%u@%d ", "%m [%p] ", "%t [%p] ", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
	"%t [%p]: [%l-1] ", "%m [%p] %q[user=%u,db=%d,app=%a] ", "%m [%p] %u@%d %r %a ", "%m [%p] %q%u@%d %r %a ",
	// No prefix at all (log_line_prefix = ''): lines start with the
	// severity. Last, and never the pick on a tie.
	"",
}

var (
	commonOnce sync.Once
	commonList []*Prefix
)

// commonCompiled is commonPrefixes compiled once, most specific first
// (a shorter prefix would also "fit" a longer one's lines, leaving its
// fields in the message).
func commonCompiled() []*Prefix {
	commonOnce.Do(func() {
		for _, spec := range commonPrefixes {
			if p, err := CompilePrefix(spec); err == nil {
				commonList = append(commonList, p)
			}
		}
		sort.SliceStable(commonList, func(i, j int) bool { return len(commonList[i].spec) > len(commonList[j].spec) })
	})
	return commonList
}

// DetectPrefix picks the log_line_prefix that parses the most of the
// given lines (ties: the more specific one).
func DetectPrefix(head []byte) *Prefix {
	best, bestN := commonPrefixes[2], -1
	for _, spec := range commonPrefixes {
		p, err := CompilePrefix(spec)
		if err != nil {
			continue
		}
		n := 0
		for _, l := range bytes.Split(head, []byte{'\n'}) {
			var r Record
			if rest, ok := p.parse(l, &r); ok {
				if _, _, ok := splitSeverity(rest); ok {
					n++
					// A literal word of the prefix ("from") read as the
					// client's address fits as well as the real one:
					// a plausible address decides.
					if plausibleHost(r.Host) {
						n++
					}
				}
			}
		}
		if n > bestN || (n == bestN && len(spec) > len(best)) {
			best, bestN = spec, n
		}
	}
	p, _ := CompilePrefix(best)
	return p
}

// plausibleHost: what %h or %r can print: an address, [local], a
// host name with a dot; not a bare word.
func plausibleHost(h string) bool {
	if h == "" {
		return false
	}
	return h == "[local]" || net.ParseIP(h) != nil || strings.ContainsAny(h, ".:")
}
