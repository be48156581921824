package inventory

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/waiver"
)

// Server is one inventory entry, defaults applied. It holds references
// to credentials only, so it may be printed and logged as it is.
type Server struct {
	// Name is unique across the inventory and its includes; stores and
	// reports key a server's history by it.
	Name    string
	Labels  map[string]string
	Profile string
	// Schedule is nil when the server is scanned only when asked.
	Schedule *Schedule
	// Timeout bounds a whole scan of the server.
	Timeout time.Duration
	// ConnectTimeout, when not 0, overrides connect_timeout.
	ConnectTimeout time.Duration
	WaiversFile    string       // "" when none
	Waivers        *waiver.File // loaded and checked by Load
	// How to connect: a libpq URI or key=value string and/or a service.
	Conninfo    string
	Service     string
	ServiceFile string
	PassFile    string
	// At most one of these: the name of an environment variable holding
	// the password, or a file (mode 0600 or stricter) holding it.
	PasswordEnv  string
	PasswordFile string
	// PasswordEnvPos is where password_env is written (zero when the
	// Server was not loaded from a file).
	PasswordEnvPos Pos
	// passwordEnvChecked: Load checked that password_env is written as
	// a variable's name, so messages may show it.
	passwordEnvChecked bool
	// Pos is where the entry is written (a generated one: its template).
	Pos Pos
}

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	labelRE   = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	// envUpperRE is the conventional form of a variable's name.
	envUpperRE        = regexp.MustCompile(`^[A-Z0-9_]*$`)
	envConventionalRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)
	placeholderRE     = regexp.MustCompile(`\{[a-z][a-z0-9_]{0,31}\}`)
	varRE             = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	rangeRE           = regexp.MustCompile(`^(\d{1,6})\.\.(\d{1,6})$`)
)

// maxExpand bounds the entries one for: may generate.
const maxExpand = 10000

// passwordEnvMsg refuses a password_env value that is not written as an
// environment variable's name. The value is never shown: it may be the
// password itself.
const passwordEnvMsg = "password_env must name an environment variable, like PGPASSWORD_PROD (upper-case letters, digits and _, with {variable} for a for: variable); this value does not look like one and may be the password itself, so it is not shown"

// envTemplateOK: a password_env value is written in upper case, as
// environment variable names are by convention ("Sup3rSecretX", a
// pasted password, is a valid variable name and would otherwise be
// accepted, then echoed in the error saying it is not set). Values of
// for: variables may bring lower case (EDGE_{site}_PASSWORD).
func envTemplateOK(t string) bool {
	lit := placeholderRE.ReplaceAllString(t, "")
	return envUpperRE.MatchString(lit) && strings.ContainsAny(lit, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
}

// server checks one entry. Every key is checked even after another was
// refused, so the load lists all of an entry's problems at once; the
// entry is added to the inventory only when all of it is good.
func (l *loader) server(path, dir string, n *yaml.Node, d defaults) {
	m, clean := l.mapping(path, n, serverKeys, "a server")
	if m == nil {
		return
	}
	bad := !clean
	str := func(key string) (string, *yaml.Node) {
		v := m[key]
		if v == nil {
			return "", nil
		}
		s, ok := l.scalar(path, v, key)
		bad = bad || !ok
		return s, v
	}
	nameT, nameN := str("name")
	named := nameT != ""
	if nameN == nil {
		bad = true
		// After a refused key (nmae:) the missing name is its echo.
		if clean {
			l.errs.add(posOf(path, n), "a server without a name (name: is required, and unique)")
		}
	}
	combos := []map[string]string{{}}
	// templateOnly: for: is broken, so the entry's values are checked as
	// written (an inline password in conninfo is still found), but no
	// server is generated.
	templateOnly := false
	if v := m["for"]; v != nil {
		var ok bool
		if combos, ok = l.forVars(path, v, nameT, nameN); !ok {
			combos, templateOnly, bad = []map[string]string{{}}, true, true
		}
	}
	base := Server{Profile: DefaultProfile, Timeout: DefaultTimeout, Pos: posOf(path, n)}
	if d.profile != "" {
		base.Profile = d.profile
	}
	if d.timeout > 0 {
		base.Timeout = d.timeout
	}
	base.ConnectTimeout, base.Schedule = d.connectTimeout, d.schedule
	base.WaiversFile, base.PassFile, base.ServiceFile = d.waivers, d.passfile, d.servicefile
	if v := m["profile"]; v != nil {
		p, ok := l.profile(path, v)
		base.Profile, bad = p, bad || !ok
	}
	if v := m["timeout"]; v != nil {
		t, ok := l.duration(path, v, "timeout")
		base.Timeout, bad = t, bad || !ok
	}
	if v := m["connect_timeout"]; v != nil {
		t, ok := l.duration(path, v, "connect_timeout")
		base.ConnectTimeout, bad = t, bad || !ok
	}
	if v := m["schedule"]; v != nil {
		s, ok := l.schedule(path, v)
		base.Schedule, bad = s, bad || !ok
	}
	if v := m["waivers"]; v != nil {
		p, ok := l.waiverFile(path, dir, v)
		base.WaiversFile, bad = p, bad || !ok
	}
	base.Waivers = l.waivers[base.WaiversFile]
	credBroken := d.credBroken
	for _, kd := range []struct {
		key string
		dst *string
	}{{"passfile", &base.PassFile}, {"servicefile", &base.ServiceFile}} {
		key, dst := kd.key, kd.dst
		s, v := str(key)
		if v == nil {
			continue
		}
		if s == "" {
			credBroken = true
			continue
		}
		p, ok := l.credFile(path, v, dir, key, s)
		*dst, bad, credBroken = p, bad || !ok, credBroken || !ok
	}
	// Both may use for: variables (password_env: SHARD_{n}_PW), so they
	// are checked per generated server below. The password file is read
	// at scan time only (it may be mounted later, or rotated).
	pwFileT, pwFileN := str("password_file")
	pwEnvT, pwEnvN := str("password_env")
	if m["password_env"] != nil && m["password_file"] != nil {
		l.errs.add(posOf(path, m["password_file"]), "password_env and password_file both given: choose one")
		bad = true
	}
	if pwEnvT != "" && !envTemplateOK(pwEnvT) {
		l.errs.add(posOf(path, pwEnvN), passwordEnvMsg)
		pwEnvT, bad = "", true
	}
	connT, connN := str("conninfo")
	svcT, svcN := str("service")
	if connN == nil && svcN == nil {
		bad = true
		if clean {
			l.errs.add(posOf(path, n), "server %q has no connection: give conninfo: (a URI or key=value string) or service:", nameT)
		}
	}
	labelsN := m["labels"]
	// A problem in a template is reported once, not once per generated
	// server.
	reported := map[string]bool{}
	once := func(what string, at *yaml.Node, format string, args ...any) {
		if !reported[what] {
			reported[what] = true
			l.errs.add(posOf(path, at), format, args...)
		}
	}
	for _, c := range combos {
		s := base
		ok := !bad
		if named && !templateOnly {
			s.Name = subst(nameT, c)
			first, dup := l.names[s.Name]
			switch {
			case !nameRE.MatchString(s.Name):
				once("name", nameN, "server name %q: use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)", s.Name)
				ok = false
			case dup:
				l.errs.add(posOf(path, nameN), "duplicate server name %q: also at %s", s.Name, first)
				ok = false
			case len(l.names) >= maxServers:
				l.errs.add(posOf(path, nameN), "more than %d servers", maxServers)
				return
			default:
				l.names[s.Name] = posOf(path, nameN)
			}
		}
		s.Labels = copyLabels(d.labels)
		if labelsN != nil {
			if !reported["labels"] {
				s.Labels = l.labelsWith(path, labelsN, s.Labels, c)
			}
			if reported["labels"] || s.Labels == nil {
				reported["labels"], ok = true, false
			}
		}
		if pwEnvT != "" && !templateOnly {
			s.PasswordEnv, s.PasswordEnvPos, s.passwordEnvChecked = subst(pwEnvT, c), posOf(path, pwEnvN), true
			if !envNameRE.MatchString(s.PasswordEnv) {
				once("password_env", pwEnvN, passwordEnvMsg)
				ok = false
			}
		}
		if pwFileT != "" {
			if reported["password_file"] {
				ok = false
			} else if p, rok := l.resolve(path, pwFileN, dir, subst(pwFileT, c)); rok {
				s.PasswordFile = p
			} else {
				reported["password_file"], ok = true, false
			}
		}
		s.Conninfo, s.Service = subst(connT, c), subst(svcT, c)
		if connT != "" {
			if reported["conninfo"] {
				ok = false
			} else if !l.checkConninfo(path, connN, s.Conninfo) {
				reported["conninfo"], ok = true, false
			}
		}
		// The settings are parsed only when what they depend on is good:
		// a refused service file would make its service "not found".
		if (connT != "" || svcT != "") && !reported["conninfo"] && !credBroken && !templateOnly {
			if reported["validate"] {
				ok = false
			} else if err := s.validate(); err != nil {
				at := connN
				if at == nil {
					at = svcN
				}
				once("validate", at, "server %q: %v", s.Name, err)
				ok = false
			}
		}
		if ok {
			l.inv.Servers = append(l.inv.Servers, s)
		}
	}
}

// checkConninfo refuses a connection string that is not one, or that
// carries a password. The value is never echoed: only where it is.
func (l *loader) checkConninfo(path string, n *yaml.Node, s string) bool {
	if len(conninfo.SecretSpans(s)) > 0 || uriHasPassword(s) {
		l.errs.add(posOf(path, n), "inline password in conninfo refused (value not shown): reference it with password_env, password_file, a passfile or a service file")
		return false
	}
	if !isURI(s) && !strings.Contains(s, "=") {
		l.errs.add(posOf(path, n), "conninfo is neither a postgres:// URI nor key=value settings (host=db1 dbname=app); for a service write service: NAME")
		return false
	}
	if err := checkConnFiles(s); err != nil {
		l.errs.add(posOf(path, n), "conninfo: %v", err)
		return false
	}
	return true
}

// uriHasPassword catches what the textual scan cannot: a query key
// written with percent-escapes (pass%77ord=), which libpq and pgx decode.
func uriHasPassword(s string) bool {
	if !isURI(s) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false // refused as a bad URI by validate
	}
	if _, set := u.User.Password(); set {
		return true
	}
	q, _ := url.ParseQuery(u.RawQuery)
	for k := range q {
		if strings.HasSuffix(strings.ToLower(k), "password") {
			return true
		}
	}
	return false
}

// validate parses the connection settings the way a scan will, so a bad
// string is reported at load time and not in the middle of a fleet scan.
// Environment-variable and password-file passwords are not read here.
func (s Server) validate() error {
	dsn, err := s.dsn()
	if err != nil {
		return err
	}
	_, err = conninfo.Config(conninfo.Flags{DSN: dsn, ConnectTimeout: s.ConnectTimeout})
	return err
}

func isURI(s string) bool {
	return strings.HasPrefix(s, "postgresql://") || strings.HasPrefix(s, "postgres://")
}

// dsn is the connection string with the inventory's service, service
// file and passfile added (after the string's own: they win, as a later
// libpq keyword does).
func (s Server) dsn() (string, error) {
	extra := [][2]string{{"service", s.Service}, {"servicefile", s.ServiceFile}, {"passfile", s.PassFile}}
	if isURI(s.Conninfo) {
		u, err := url.Parse(s.Conninfo)
		if err != nil {
			return "", fmt.Errorf("conninfo is not a valid URI")
		}
		q := u.Query()
		for _, kv := range extra {
			if kv[1] != "" {
				q.Set(kv[0], kv[1])
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	parts := []string{}
	if s.Conninfo != "" {
		parts = append(parts, s.Conninfo)
	}
	for _, kv := range extra {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+quoteValue(kv[1]))
		}
	}
	return strings.Join(parts, " "), nil
}

func quoteValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func (l *loader) profile(path string, n *yaml.Node) (string, bool) {
	p, ok := l.scalar(path, n, "profile")
	if !ok {
		return "", false
	}
	if _, known := rules.Profiles[p]; !known {
		l.errs.add(posOf(path, n), "unknown profile %q (one of %s)", p, rules.ProfileNames())
		return "", false
	}
	return p, true
}

func copyLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (l *loader) labels(path string, n *yaml.Node, inherited map[string]string) map[string]string {
	out := l.labelsWith(path, n, copyLabels(inherited), nil)
	if out == nil {
		return inherited
	}
	return out
}

// labelsWith reads a labels: mapping over out; an empty value removes
// an inherited label. It returns nil after an error.
func (l *loader) labelsWith(path string, n *yaml.Node, out map[string]string, vars map[string]string) map[string]string {
	if n.Kind != yaml.MappingNode {
		l.errs.add(posOf(path, n), "labels is a mapping (env: prod)")
		return nil
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !labelRE.MatchString(k.Value) || strings.HasPrefix(k.Value, "__") {
			l.errs.add(posOf(path, k), "label name %q: use lower-case letters, digits and _ (at most 63, not starting with a digit or __)", k.Value)
			return nil
		}
		if inlineSecretKeys[k.Value] {
			l.errs.add(posOf(path, k), "a label named %q would put a secret into every report and metric: passwords are referenced with password_env or password_file", k.Value)
			return nil
		}
		if line, dup := seen[k.Value]; dup {
			l.errs.add(posOf(path, k), "label %q given twice (first at line %d)", k.Value, line)
			return nil
		}
		seen[k.Value] = k.Line
		if v.Kind != yaml.ScalarNode {
			l.errs.add(posOf(path, v), "label %q: a value is a single word or string", k.Value)
			return nil
		}
		val := subst(v.Value, vars)
		if v.Tag == "!!null" || val == "" {
			delete(out, k.Value)
			continue
		}
		if len(val) > 256 || !utf8.ValidString(val) || strings.IndexFunc(val, unicode.IsControl) >= 0 {
			l.errs.add(posOf(path, v), "label %q: a value is at most 256 bytes of text without control characters", k.Value)
			return nil
		}
		out[k.Value] = val
	}
	return out
}
