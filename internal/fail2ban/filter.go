package fail2ban

import (
	"fmt"
	"strings"
)

// Settings are what the server says about its logs (SHOW or
// postgresql.conf; an empty value is PostgreSQL's default).
type Settings struct {
	LogLinePrefix    string
	LogDestination   string // "stderr", "csvlog", "jsonlog", "syslog", a list
	LoggingCollector bool
	LogDirectory     string
	LogFilename      string
	DataDirectory    string
	Port             int
	LcMessages       string
	LogTimezone      string
	ClusterName      string // Debian: "15/main"
	Major            int
	SyslogIdent      string
}

// Marker starts every file pgaegis writes: --write replaces only files
// that carry it (unless --force).
const Marker = "# Written by pgaegis fail2ban"

// The messages PostgreSQL logs (FATAL, SQLSTATE 28P01 or 28000) when a
// login fails, in src/backend/libpq/auth.c of 13 to 18: auth_failed()
// names the method ("password authentication failed for user" for
// password, md5 and scram-sha-256; "Ident", "Peer", "LDAP", "PAM",
// "RADIUS" (up to 17), "certificate", "GSSAPI", "SSPI", "BSD"), and
// ClientAuthentication() reports hba rejects with the client's address in
// the message itself.
//
// q is how the log writes a double quote inside the message: " in a
// stderr line, "" in csvlog, \" in jsonlog.
func messages(q string) (authFailed, noEntry, rejects string) {
	// authFailed carries no address: it needs %h/%r (or csvlog/jsonlog).
	authFailed = `(?:[A-Za-z-]+ )?authentication failed for user ` + q
	// noEntry and rejects carry the address quoted.
	noEntry = `no pg_hba\.conf entry for (?:replication connection from )?host ` + q
	rejects = `pg_hba\.conf rejects (?:replication )?connection for host ` + q
	return
}

// severity is the "FATAL:  " of a stderr line, with the SQLSTATE that
// log_error_verbosity = verbose adds.
const severity = `FATAL:  (?:28(?:P01|000): )?`

// Filter is a generated filter.d file.
type Filter struct {
	Text string
	// Destination is the log the filter reads: stderr, csvlog, jsonlog
	// or syslog.
	Destination string
	// Notes are what the operator should know (a time zone fail2ban has
	// to assume, a prefix field a client can craft).
	Notes []string
}

// NoHostError: the log says who failed, but not from where.
type NoHostError struct{ Prefix string }

// RecommendedPrefix puts the host before anything the client chooses.
const RecommendedPrefix = "%m [%p] %h %q%u@%d "

func (e *NoHostError) Error() string {
	return fmt.Sprintf("log_line_prefix %q prints no client address (%%h or %%r): 'password authentication failed' lines would carry nothing to ban, so a filter would miss every password guess; "+
		"set one that does, e.g. ALTER SYSTEM SET log_line_prefix = '%s'; SELECT pg_reload_conf(); (or log to csvlog or jsonlog, which always record the address)", e.Prefix, RecommendedPrefix)
}

// destinations lists log_destination's words.
func destinations(s string) []string {
	if strings.TrimSpace(s) == "" {
		return []string{"stderr"}
	}
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// pickDestination chooses the log to watch: a stderr log whose prefix
// names the host, else csvlog or jsonlog (they always record it), else
// stderr or syslog (which then fail for want of a host).
func pickDestination(s Settings) string {
	ds := destinations(s.LogDestination)
	has := map[string]bool{}
	for _, d := range ds {
		has[d] = true
	}
	p := CompilePrefix(prefixOf(s))
	switch {
	case has["stderr"] && p.Host && s.LoggingCollector:
		return "stderr"
	case has["csvlog"] && s.LoggingCollector:
		return "csvlog"
	case has["jsonlog"] && s.LoggingCollector:
		return "jsonlog"
	case has["stderr"]:
		return "stderr"
	case has["syslog"]:
		return "syslog"
	}
	return ds[0]
}

func prefixOf(s Settings) string { return s.LogLinePrefix }

// utcZone: fail2ban can be told the log's zone outright.
func utcZone(tz string) bool {
	switch strings.ToUpper(tz) {
	case "UTC", "GMT", "ETC/UTC", "ETC/GMT", "Z", "UCT", "ETC/UCT", "ZULU", "UNIVERSAL", "ETC/UNIVERSAL", "GREENWICH":
		return true
	}
	return false
}

// englishMessages: lc_messages that leave the messages untranslated.
func englishMessages(lc string) bool {
	l := strings.ToLower(lc)
	return l == "" || l == "c" || l == "posix" || strings.HasPrefix(l, "en") || strings.HasPrefix(l, "c.")
}

// BuildFilter writes the filter for the server's settings.
func BuildFilter(s Settings) (*Filter, error) {
	f := &Filter{Destination: pickDestination(s)}
	var fail []string
	var datepattern string
	switch f.Destination {
	case "csvlog":
		// log_time, user_name, database_name, process_id, connection_from,
		// ... error_severity, sql_state_code, message (csvlog.c). The
		// datepattern cuts the time out of the first field, the zone stays.
		q := `(?:"(?:[^"]|"")*")?`
		head := `^[^,]*,` + q + `,` + q + `,\d*,"?<HOST>(?::\d+)?"?,[^,]*,\d*,` + q + `,[^,]*,[^,]*,[^,]*,FATAL,28(?:P01|000),"`
		headNoHost := `^[^,]*,` + q + `,` + q + `,\d*,"?[^,]*"?,[^,]*,\d*,` + q + `,[^,]*,[^,]*,[^,]*,FATAL,28(?:P01|000),"`
		auth, noEntry, rejects := messages(`""`)
		fail = []string{head + auth, headNoHost + noEntry + `<HOST>""`, headNoHost + rejects + `<HOST>""`}
		datepattern = `{^LN-BEG}%%Y-%%m-%%d %%H:%%M:%%S\.%%f`
	case "jsonlog":
		// jsonlog.c writes the keys in a fixed order; a role or database
		// name's quotes are escaped (\"), so "remote_host":" cannot be
		// forged by one.
		str := `"(?:[^"\\]|\\.)*"`
		head := `^\{[^,]*,(?:"user":` + str + `,)?(?:"dbname":` + str + `,)?"pid":\d+,"remote_host":"<HOST>",.*?"error_severity":"FATAL","state_code":"28(?:P01|000)","message":"`
		headAny := `^\{[^,]*,(?:"user":` + str + `,)?(?:"dbname":` + str + `,)?"pid":\d+,(?:"remote_host":"[^"]*",)?.*?"error_severity":"FATAL","state_code":"28(?:P01|000)","message":"`
		auth, noEntry, rejects := messages(`\\"`)
		fail = []string{head + auth, headAny + noEntry + `<HOST>\\"`, headAny + rejects + `<HOST>\\"`}
		datepattern = `"timestamp":"%%Y-%%m-%%d %%H:%%M:%%S\.%%f`
	default:
		p := compilePrefix(s.LogLinePrefix, f.Destination == "syslog")
		if !p.Host {
			return nil, &NoHostError{Prefix: s.LogLinePrefix}
		}
		lead := `^`
		if f.Destination == "syslog" {
			// The journal (fail2ban's systemd backend) gives
			// "host ident[pid]: MESSAGE"; PostgreSQL adds "[seq-part] ".
			lead = `^(?:\S+ )?\S+\[\d+\]: (?:\[\d+(?:-\d+)?\] )?`
		}
		// The prefix's host is the one to ban, for hba rejects too: the
		// message's copy is the same address, and fail2ban allows one
		// <HOST> per regex.
		auth, noEntry, rejects := messages(`"`)
		fail = []string{lead + p.Regex + severity + auth, lead + p.Regex + severity + noEntry, lead + p.Regex + severity + rejects}
		switch p.Date {
		case 'm':
			datepattern = `%%Y-%%m-%%d %%H:%%M:%%S\.%%f`
		case 't':
			datepattern = `%%Y-%%m-%%d %%H:%%M:%%S`
		case 'n':
			datepattern = `EPOCH`
		default:
			datepattern = `{NONE}`
			f.Notes = append(f.Notes, "log_line_prefix has no timestamp (%m, %t, %n): fail2ban dates each line when it reads it, which is right while it follows the log but not for old lines")
		}
		if p.Date != 0 && p.DateFirst && f.Destination != "syslog" {
			datepattern = `{^LN-BEG}` + datepattern
		}
		if p.ClientBeforeHost {
			f.Notes = append(f.Notes, "log_line_prefix prints application_name (%a), which the client chooses, before the host: a crafted name could make fail2ban ban another address; put %h before %a (e.g. '"+RecommendedPrefix+"')")
		}
	}
	if !englishMessages(s.LcMessages) {
		f.Notes = append(f.Notes, fmt.Sprintf("lc_messages is %q: a server built with translations logs the failures in that language, which this filter does not match; set lc_messages = 'C' (the messages the filter matches are English)", s.LcMessages))
	}
	if s.LogTimezone != "" && !utcZone(s.LogTimezone) && f.Destination != "syslog" {
		f.Notes = append(f.Notes, fmt.Sprintf("log_timezone is %q: fail2ban reads the log's times as its own local time, so the host's time zone must be the same (log_timezone = 'UTC' needs no such assumption)", s.LogTimezone))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: PostgreSQL authentication failures (%s log).\n", Marker, f.Destination)
	b.WriteString("# Matches: <method> authentication failed for user, no pg_hba.conf entry for host,\n# pg_hba.conf rejects connection for host (FATAL, SQLSTATE 28P01/28000).\n")
	if f.Destination == "stderr" || f.Destination == "syslog" {
		fmt.Fprintf(&b, "# log_line_prefix = '%s'\n", strings.ReplaceAll(s.LogLinePrefix, "\n", `\n`))
	}
	b.WriteString("\n[Definition]\n\nfailregex = ")
	b.WriteString(strings.Join(fail, "\n            "))
	b.WriteString("\n\nignoreregex =\n\n")
	if f.Destination == "syslog" {
		// The journal supplies each entry's time.
		b.WriteString("[Init]\n\njournalmatch = SYSLOG_IDENTIFIER=" + ident(s) + "\n")
	} else {
		b.WriteString("datepattern = " + datepattern + "\n")
	}
	f.Text = b.String()
	return f, nil
}

func ident(s Settings) string {
	if s.SyslogIdent != "" {
		return s.SyslogIdent
	}
	return "postgres"
}
