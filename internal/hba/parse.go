package hba

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Connection types as written in pg_hba.conf.
const (
	Local        = "local"
	Host         = "host"
	HostSSL      = "hostssl"
	HostNoSSL    = "hostnossl"
	HostGSSEnc   = "hostgssenc"
	HostNoGSSEnc = "hostnogssenc"
)

// Address kinds of a host* rule.
const (
	AddrNone     = ""         // local rules
	AddrAll      = "all"      // any address
	AddrSameHost = "samehost" // any of the server's own addresses
	AddrSameNet  = "samenet"  // any address on the server's subnets
	AddrHostname = "hostname" // resolved at connect time (needs DNS)
	AddrCIDR     = "cidr"     // address and mask
)

// Option is one name=value authentication option.
type Option struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Rule is one parsed pg_hba.conf line.
type Rule struct {
	File      string  `json:"file"`
	Line      int     `json:"line"`
	Text      string  `json:"text"`
	Type      string  `json:"type"`
	Databases []Token `json:"databases"`
	Users     []Token `json:"users"`
	AddrKind  string  `json:"addr_kind,omitempty"`
	// Address is the address as written (without a /mask) for cidr rules,
	// the hostname for hostname rules.
	Address string     `json:"address,omitempty"`
	Addr    netip.Addr `json:"ip,omitzero"`
	Mask    netip.Addr `json:"mask,omitzero"`
	// Bits is the prefix length, or -1 when the netmask is not contiguous.
	Bits    int      `json:"bits,omitempty"`
	Method  string   `json:"method"`
	Options []Option `json:"options,omitempty"`
	// Warning is set for lines the server loads but that can never match
	// (hostssl while ssl is off).
	Warning string `json:"warning,omitempty"`
}

// Option returns the value of the named option and whether it is set.
func (r *Rule) Option(name string) (string, bool) {
	for _, o := range r.Options {
		if o.Name == name {
			return o.Value, true
		}
	}
	return "", false
}

// Location renders file:line.
func (r *Rule) Location() string { return fmt.Sprintf("%s:%d", r.File, r.Line) }

// IsHost reports whether the rule is for TCP connections.
func (r *Rule) IsHost() bool { return r.Type != Local }

// Prefix returns the rule's network as a prefix when it is a contiguous cidr.
func (r *Rule) Prefix() (netip.Prefix, bool) {
	if r.AddrKind != AddrCIDR || r.Bits < 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(r.Addr, r.Bits).Masked(), true
}

// ParseError is a line the server would reject, named by file and line.
type ParseError struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Msg  string `json:"message"`
}

func (e ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// File is a parsed pg_hba.conf: the rules the server would load, in order,
// and the lines it would reject. The server refuses to load a file with any
// error (it keeps its previous rules), so Errors matter.
type File struct {
	Path   string       `json:"path"`
	Rules  []Rule       `json:"rules"`
	Errors []ParseError `json:"errors,omitempty"`
}

// Options describe the server the file is meant for.
type Options struct {
	// SSL is whether the server has ssl = on; hostssl lines cannot match
	// without it.
	SSL bool
	// DBUserNamespace mirrors db_user_namespace (md5 is then rejected).
	DBUserNamespace bool
	// ReadFile reads the file, @file and include files; when nil,
	// safefile.ReadConfig (regular files only, size and lines capped).
	ReadFile func(string) ([]byte, error)
	// ReadDir lists include_dir directories; os.ReadDir when nil.
	ReadDir func(string) ([]os.DirEntry, error)
	// Version is the server's major version (15, 16, ...): include
	// directives and regular expressions exist from 16 on. 0 means the
	// newest behaviour.
	Version int
	// OAuthValidators is oauth_validator_libraries (18+), which oauth
	// lines are checked against when the file is loaded. nil means not
	// known: those checks are skipped rather than guessed.
	OAuthValidators []string
	// Unsupported are the methods the server was built without ("gss",
	// "ldap", "pam": pg_config's CONFIGURE has no --with-gssapi,
	// --with-ldap, --with-pam); their lines are errors, and hostgssenc
	// lines cannot match without GSSAPI. nil: a build with all of them.
	Unsupported []string
}

func (o Options) unsupported(method string) bool {
	for _, m := range o.Unsupported {
		if m == method {
			return true
		}
	}
	return false
}

// ParseFile reads and parses a pg_hba.conf.
func ParseFile(path string, o Options) (*File, error) {
	read := o.ReadFile
	if read == nil {
		read = safefile.ReadConfig
	}
	data, err := read(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, o), nil
}

// Parse parses pg_hba.conf content; name is used for locations and to
// resolve relative @file includes.
func Parse(name string, data []byte, o Options) *File {
	f := &File{Path: name}
	parseOrdered(name, data, o, func(r *Rule, e *ParseError) {
		if e != nil {
			f.Errors = append(f.Errors, *e)
		} else {
			f.Rules = append(f.Rules, *r)
		}
	})
	return f
}

// parseOrdered parses and hands each line, rule or error, to emit in the
// order the server lists them (include files expanded where they are
// named), which Rules and Errors apart do not keep.
func parseOrdered(name string, data []byte, o Options, emit func(*Rule, *ParseError)) {
	for _, tl := range newTokenizer(o).tokenizeFile(name, data, 0) {
		if tl.err != "" {
			emit(nil, &ParseError{tl.file, tl.line, renderErr(tl.err, tl.quotable())})
			continue
		}
		r, err := parseLine(tl.file, tl, o)
		if err != "" {
			emit(nil, &ParseError{tl.file, tl.line, renderErr(err, tl.quotable())})
			continue
		}
		emit(r, nil)
	}
}

var connTypes = map[string]bool{Local: true, Host: true, HostSSL: true, HostNoSSL: true, HostGSSEnc: true, HostNoGSSEnc: true}

// methods the Debian server build supports; sspi and bsd are not built on Linux.
var methods = map[string]bool{
	"trust": true, "reject": true, "md5": true, "password": true, "scram-sha-256": true,
	"gss": true, "ident": true, "peer": true, "pam": true, "ldap": true, "radius": true, "cert": true,
}
var unsupportedMethods = map[string]bool{"sspi": true, "bsd": true}

func parseLine(file string, tl tokenLine, o Options) (*Rule, string) {
	r := &Rule{File: file, Line: tl.line, Text: MaskLine(strings.TrimSpace(tl.raw)), Bits: 0}
	fields := tl.fields
	next := func() ([]Token, bool) {
		if len(fields) == 0 {
			return nil, false
		}
		f := fields[0]
		fields = fields[1:]
		return f, true
	}
	f, _ := next()
	if len(f) > 1 {
		return nil, "multiple values specified for connection type"
	}
	if len(f) == 0 || !connTypes[f[0].Value] {
		v := ""
		if len(f) > 0 {
			v = f[0].Value
		}
		return nil, "invalid connection type " + q(v)
	}
	r.Type = f[0].Value
	if r.Type == HostSSL && !o.SSL {
		r.Warning = "hostssl record cannot match because SSL is disabled"
	}
	if r.Type == HostGSSEnc && o.unsupported("gss") {
		r.Warning = "hostgssenc record cannot match because GSSAPI is not supported by this build"
	}
	var ok bool
	if r.Databases, ok = next(); !ok {
		return nil, "end-of-line before database specification"
	}
	if r.Users, ok = next(); !ok {
		return nil, "end-of-line before role specification"
	}
	if o.Version == 0 || o.Version >= 16 {
		// From 16 on, names starting with a slash are regular expressions,
		// compiled when the file is loaded; quoting does not change that
		// (the real servers compile "/(" and reject the line).
		for _, t := range append(append([]Token(nil), r.Databases...), r.Users...) {
			if strings.HasPrefix(t.Value, "/") {
				if _, err := compileRegex(t.Value[1:]); err != nil {
					return nil, "invalid regular expression " + q(t.Value[1:]) + ": " + q(err.Error())
				}
			}
		}
	}
	if r.Type != Local {
		f, ok := next()
		if !ok {
			return nil, "end-of-line before IP address specification"
		}
		if len(f) > 1 {
			return nil, "multiple values specified for host address"
		}
		tok := f[0]
		switch {
		case tok.IsKeyword("all"):
			r.AddrKind = AddrAll
		case tok.IsKeyword("samehost"):
			r.AddrKind = AddrSameHost
		case tok.IsKeyword("samenet"):
			r.AddrKind = AddrSameNet
		default:
			str, bits, hasSlash := tok.Value, "", false
			if i := strings.IndexByte(str, '/'); i >= 0 {
				str, bits, hasSlash = str[:i], str[i+1:], true
			}
			addr, numeric := ParseNumericHost(str)
			if !numeric {
				if hasSlash {
					return nil, "specifying both host name and CIDR mask is invalid: " + q(tok.Value)
				}
				r.AddrKind, r.Address = AddrHostname, str
				break
			}
			r.AddrKind, r.Addr, r.Address = AddrCIDR, addr, str
			if hasSlash {
				n, ok := cidrBits(bits, addr)
				if !ok {
					return nil, "invalid CIDR mask in address " + q(tok.Value)
				}
				r.Bits = n
				r.Mask = maskFromBits(n, addr.Is4())
				break
			}
			mf, ok := next()
			if !ok {
				return nil, "end-of-line before netmask specification"
			}
			if len(mf) > 1 {
				return nil, "multiple values specified for netmask"
			}
			mask, ok := ParseNumericHost(mf[0].Value)
			if !ok {
				// getaddrinfo's answer, as the server appends it.
				return nil, "invalid IP mask " + q(mf[0].Value) + ": Name or service not known"
			}
			if mask.Is4() != addr.Is4() {
				return nil, "IP address and mask do not match"
			}
			r.Mask = mask
			r.Bits = MaskBits(mask)
		}
	}
	f, ok = next()
	if !ok {
		return nil, "end-of-line before authentication method"
	}
	if len(f) > 1 {
		return nil, "multiple values specified for authentication type"
	}
	m := f[0].Value
	switch {
	case m == "oauth" && (o.Version == 0 || o.Version >= 18):
	case unsupportedMethods[m] || (methods[m] && o.unsupported(m)):
		return nil, "invalid authentication method " + q(m) + ": not supported by this build"
	case !methods[m]:
		return nil, "invalid authentication method " + q(m)
	case m == "md5" && o.DBUserNamespace:
		return nil, `MD5 authentication is not supported when "db_user_namespace" is enabled`
	}
	if r.Type == Local && m == "ident" {
		m = "peer" // the server treats ident on a socket as peer
	}
	r.Method = m
	switch {
	case r.Type == Local && m == "gss":
		return nil, "gssapi authentication is not supported on local sockets"
	case r.Type != Local && m == "peer":
		return nil, "peer authentication is only supported on local sockets"
	case r.Type != HostSSL && m == "cert":
		return nil, "cert authentication is only supported on hostssl connections"
	}
	opts := &optionState{rule: r, o: o}
	if m == "gss" {
		opts.includeRealm = true
	}
	afterSecret := false
	for _, f := range fields {
		for _, t := range f {
			name, val, found := strings.Cut(t.Value, "=")
			if !found {
				if afterSecret {
					// Most likely the rest of an unquoted secret with a space
					// or comma in it: say so without quoting it.
					return nil, "authentication option not in name=value format (after a credential option: a value with spaces or commas must be in double quotes)"
				}
				return nil, "authentication option not in name=value format: " + qBare(t.Value)
			}
			afterSecret = secretOptions[name]
			if err := opts.set(name, val); err != "" {
				return nil, err
			}
		}
	}
	if err := opts.finish(); err != "" {
		return nil, err
	}
	return r, ""
}

func cidrBits(s string, addr netip.Addr) (int, bool) {
	// strtol semantics: optional leading whitespace and sign, decimal digits,
	// nothing after.
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, false
	}
	max := int64(128)
	if addr.Is4() {
		max = 32
	}
	if n < 0 || n > max {
		return 0, false
	}
	return int(n), true
}

func maskFromBits(n int, v4 bool) netip.Addr {
	size := 16
	if v4 {
		size = 4
	}
	b := make([]byte, size)
	for i := 0; i < n; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// MaskBits returns the prefix length of a contiguous netmask, else -1.
func MaskBits(m netip.Addr) int {
	b := m.AsSlice()
	n, seenZero := 0, false
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			if x&(1<<i) != 0 {
				if seenZero {
					return -1
				}
				n++
			} else {
				seenZero = true
			}
		}
	}
	return n
}

// optionState collects options and applies the server's per-method checks.
type optionState struct {
	rule         *Rule
	o            Options
	includeRealm bool
	realmSet     bool
	vals         map[string]string
	order        []string
	clientcert   string
}

func (s *optionState) only(name string, valid string, methods ...string) string {
	for _, m := range methods {
		if s.rule.Method == m {
			return ""
		}
	}
	return fmt.Sprintf("authentication option %q is only valid for authentication methods %s", name, valid)
}

func (s *optionState) store(name, val string) {
	if s.vals == nil {
		s.vals = map[string]string{}
	}
	if _, seen := s.vals[name]; !seen {
		s.order = append(s.order, name)
	}
	s.vals[name] = val
}

func (s *optionState) set(name, val string) string {
	r := s.rule
	switch name {
	case "map":
		if s.o.Version == 0 || s.o.Version >= 18 {
			if e := s.only(name, "ident, peer, gssapi, sspi, cert, and oauth", "ident", "peer", "gss", "sspi", "cert", "oauth"); e != "" {
				return e
			}
		} else if e := s.only(name, "ident, peer, gssapi, sspi, and cert", "ident", "peer", "gss", "sspi", "cert"); e != "" {
			return e
		}
		s.store(name, val)
	case "clientcert":
		if r.Type != HostSSL {
			return `clientcert can only be configured for "hostssl" rows`
		}
		switch val {
		case "verify-full":
		case "verify-ca":
			if r.Method == "cert" && (s.o.Version == 0 || s.o.Version >= 14) {
				if s.o.Version == 0 || s.o.Version >= 16 {
					return `clientcert can only be set to "verify-full" when using "cert" authentication`
				}
				return `clientcert only accepts "verify-full" when using "cert" authentication`
			}
		default:
			return "invalid value for clientcert: " + q(val)
		}
		s.clientcert = val
	case "clientname":
		if s.o.Version != 0 && s.o.Version < 14 {
			return "unrecognized authentication option name: " + q(name)
		}
		if r.Type != HostSSL {
			return `clientname can only be configured for "hostssl" rows`
		}
		if val != "CN" && val != "DN" {
			return "invalid value for clientname: " + q(val)
		}
		s.store(name, val)
	case "pamservice", "pam_use_hostname":
		if e := s.only(name, "pam", "pam"); e != "" {
			return e
		}
		s.store(name, val)
	case "ldaptls", "ldapscheme", "ldapserver", "ldapport", "ldapbinddn", "ldapbindpasswd",
		"ldapsearchattribute", "ldapsearchfilter", "ldapbasedn", "ldapprefix", "ldapsuffix", "ldapurl":
		if e := s.only(name, "ldap", "ldap"); e != "" {
			return e
		}
		switch name {
		case "ldapscheme":
			if val != "ldap" && val != "ldaps" {
				return "invalid ldapscheme value: " + q(val)
			}
		case "ldapport":
			if atoi(val) == 0 {
				return "invalid LDAP port number: " + q(val)
			}
		}
		s.store(name, val)
	case "krb_realm", "include_realm":
		if e := s.only(name, "gssapi and sspi", "gss", "sspi"); e != "" {
			return e
		}
		if name == "include_realm" {
			s.includeRealm = val == "1"
			s.realmSet = true
		} else {
			s.store(name, val)
		}
	case "issuer", "scope", "validator", "delegate_ident_mapping":
		if s.o.Version != 0 && s.o.Version < 18 {
			return "unrecognized authentication option name: " + q(name)
		}
		if e := s.only(name, "oauth", "oauth"); e != "" {
			return e
		}
		s.store(name, val)
	case "compat_realm", "upn_username":
		return s.only(name, "sspi", "sspi")
	case "radiusservers", "radiussecrets", "radiusidentifiers", "radiusports":
		if e := s.only(name, "radius", "radius"); e != "" {
			return e
		}
		list, ok := splitGUCList(val)
		if !ok || len(list) == 0 {
			if secretOptions[name] {
				return fmt.Sprintf("could not parse RADIUS %s list", strings.TrimPrefix(name, "radius"))
			}
			return fmt.Sprintf("could not parse RADIUS %s list ", strings.TrimPrefix(name, "radius")) + q(val)
		}
		if name == "radiusports" {
			for _, p := range list {
				if atoi(p) == 0 {
					return "invalid RADIUS port number: " + q(val)
				}
			}
		}
		if name == "radiusservers" {
			for _, h := range list {
				if _, ok := ParseNumericHost(h); !ok {
					// The server resolves these names when it loads the
					// file; we cannot know the answer offline.
					r.Warning = fmt.Sprintf("RADIUS server %q is a host name resolved when the file is loaded", h)
				}
			}
		}
		s.store(name, val)
	default:
		return "unrecognized authentication option name: " + q(name)
	}
	return ""
}

// finish applies the mandatory-argument checks and renders the options the
// way pg_hba_file_rules shows them.
func (s *optionState) finish() string {
	r := s.rule
	v := func(n string) (string, bool) { x, ok := s.vals[n]; return x, ok }
	switch r.Method {
	case "ldap":
		if u, ok := v("ldapurl"); ok {
			if e := s.applyLDAPURL(u); e != "" {
				return e
			}
		}
		// No ldapserver is no error: OpenLDAP builds (every Linux one)
		// find the server from DNS SRV records.
		_, pre := v("ldapprefix")
		_, suf := v("ldapsuffix")
		if pre || suf {
			for _, n := range []string{"ldapbasedn", "ldapbinddn", "ldapbindpasswd", "ldapsearchattribute", "ldapsearchfilter"} {
				if _, ok := v(n); ok {
					return `cannot use ldapbasedn, ldapbinddn, ldapbindpasswd, ldapsearchattribute, ldapsearchfilter, or ldapurl together with ldapprefix`
				}
			}
		} else if _, ok := v("ldapbasedn"); !ok {
			return `authentication method "ldap" requires argument "ldapbasedn", "ldapprefix", or "ldapsuffix" to be set`
		}
		_, sa := v("ldapsearchattribute")
		_, sf := v("ldapsearchfilter")
		if sa && sf {
			return "cannot use ldapsearchattribute together with ldapsearchfilter"
		}
	case "oauth":
		for _, n := range []string{"scope", "issuer"} {
			if _, ok := v(n); !ok {
				return `authentication method "oauth" requires argument "` + n + `" to be set`
			}
		}
		if libs := s.o.OAuthValidators; libs != nil {
			val, set := v("validator")
			switch {
			case len(libs) == 0:
				return "oauth_validator_libraries must be set for authentication method oauth"
			case set && !slices.Contains(libs, val):
				return "validator " + q(val) + " is not permitted by oauth_validator_libraries"
			case !set && len(libs) > 1:
				return `authentication method "oauth" requires argument "validator" to be set when oauth_validator_libraries contains multiple options`
			case !set:
				s.store("validator", libs[0]) // the only library is the validator
			}
		}
		if _, m := v("map"); m {
			if d, _ := v("delegate_ident_mapping"); d == "1" {
				return "map cannot be used in combination with delegate_ident_mapping"
			}
		}
	case "radius":
		servers, ok := v("radiusservers")
		if !ok {
			return `authentication method "radius" requires argument "radiusservers" to be set`
		}
		if _, ok := v("radiussecrets"); !ok {
			return `authentication method "radius" requires argument "radiussecrets" to be set`
		}
		ns, _ := splitGUCList(servers)
		for _, n := range []string{"radiussecrets", "radiusports", "radiusidentifiers"} {
			if x, ok := v(n); ok {
				l, _ := splitGUCList(x)
				if len(l) != 1 && len(l) != len(ns) {
					return fmt.Sprintf("the number of %s (%d) must be 1 or the same as the number of RADIUS servers (%d)", strings.TrimPrefix(n, "radius"), len(l), len(ns))
				}
			}
		}
	}
	if r.Method == "cert" {
		s.clientcert = "verify-full" // cert implies full verification
	}
	// Render in the order the server's view uses, so a rule can be
	// compared with pg_hba_file_rules.options.
	add := func(n, val string) {
		if secretOptions[n] && val != "" {
			val = Masked // a credential never leaves the parser
		}
		r.Options = append(r.Options, Option{n, val})
	}
	if r.Method == "gss" || r.Method == "sspi" {
		if s.includeRealm {
			add("include_realm", "true")
		}
		if x, ok := v("krb_realm"); ok {
			add("krb_realm", x)
		}
	}
	if x, ok := v("map"); ok {
		add("map", x)
	}
	if s.clientcert != "" {
		add("clientcert", s.clientcert)
	}
	for _, n := range []string{"issuer", "scope", "validator"} {
		if x, ok := v(n); ok {
			add(n, x)
		}
	}
	if x, ok := v("delegate_ident_mapping"); ok && x == "1" {
		add("delegate_ident_mapping", "true") // any other value is false
	}
	if x, ok := v("pamservice"); ok {
		add("pamservice", x)
	}
	if r.Method == "ldap" {
		for _, n := range []string{"ldapserver", "ldapport", "ldaptls", "ldapprefix", "ldapsuffix", "ldapbasedn", "ldapbinddn", "ldapbindpasswd", "ldapsearchattribute", "ldapsearchfilter"} {
			x, ok := v(n)
			if !ok {
				continue
			}
			switch n {
			case "ldapport":
				x = strconv.Itoa(atoi(x))
			case "ldaptls":
				if x != "1" {
					continue
				}
				x = "true"
			}
			add(n, x)
		}
		if x, ok := v("ldapscope"); ok {
			add("ldapscope", x)
		} else if _, ok := v("ldapbasedn"); ok {
			add("ldapscope", "2") // search+bind defaults to a subtree search
		}
	}
	if r.Method == "radius" {
		for _, n := range []string{"radiusservers", "radiussecrets", "radiusidentifiers", "radiusports"} {
			if x, ok := v(n); ok {
				add(n, x)
			}
		}
	}
	// Keep the options the view does not show (they still matter).
	if x, ok := v("clientname"); ok {
		add("clientname", x)
	}
	if x, ok := v("pam_use_hostname"); ok {
		add("pam_use_hostname", x)
	}
	if x, ok := v("ldapscheme"); ok {
		add("ldapscheme", x)
	}
	return ""
}

// applyLDAPURL splits ldap[s]://host[:port]/basedn[?attr[?scope[?filter]]]
// into the individual options, as the server does.
func (s *optionState) applyLDAPURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || (scheme != "ldap" && scheme != "ldaps") {
		return "unsupported LDAP URL scheme: " + q(scheme)
	}
	s.store("ldapscheme", scheme)
	hostport, path, _ := strings.Cut(rest, "/")
	host, port, hasPort := strings.Cut(hostport, ":")
	if host != "" {
		s.store("ldapserver", host)
	}
	if hasPort {
		s.store("ldapport", port)
	}
	parts := strings.SplitN(path, "?", 4)
	if parts[0] != "" {
		s.store("ldapbasedn", parts[0])
	}
	if len(parts) > 1 && parts[1] != "" {
		s.store("ldapsearchattribute", parts[1])
	}
	if len(parts) > 2 && parts[2] != "" {
		scope := map[string]string{"base": "0", "one": "1", "sub": "2"}[parts[2]]
		if scope == "" {
			return "invalid LDAP URL: " + q(u)
		}
		s.store("ldapscope", scope)
	}
	if len(parts) > 3 && parts[3] != "" {
		s.store("ldapsearchfilter", parts[3])
	}
	return ""
}

// atoi mimics C atoi: leading space, sign, digits, stop at the first other byte.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		if n > 1<<31 {
			break
		}
	}
	if neg {
		n = -n
	}
	return n
}

// splitGUCList splits a comma list with optional double quotes, the way
// the server splits RADIUS lists.
func splitGUCList(s string) ([]string, bool) {
	var out []string
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v') {
			i++
		}
	}
	skip()
	if i == len(s) {
		return nil, true
	}
	for {
		var b strings.Builder
		if i < len(s) && s[i] == '"' {
			i++
			for {
				if i >= len(s) {
					return nil, false
				}
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
		} else {
			start := i
			for i < len(s) && s[i] != ',' && !strings.ContainsRune(" \t\n\r\f\v", rune(s[i])) {
				i++
			}
			if i == start {
				return nil, false
			}
			b.WriteString(s[start:i])
		}
		skip()
		out = append(out, b.String())
		if i >= len(s) {
			return out, true
		}
		if s[i] != ',' {
			return nil, false
		}
		i++
		skip()
	}
}

// secretOptions hold credentials the server reads from pg_hba.conf.
var secretOptions = map[string]bool{"ldapbindpasswd": true, "radiussecrets": true}

// Masked stands for a credential's value.
const Masked = "xxxxx"

// IsSecretOption reports whether an authentication option holds a
// credential (its value is never kept by the parser).
func IsSecretOption(name string) bool { return secretOptions[name] }

// RedactSecrets masks credential options in rules that did not come from
// Parse (the server's pg_hba_file_rules view, an older snapshot): their
// values, and their text in the line, token by token.
func RedactSecrets(rules []Rule) {
	for i := range rules {
		r := &rules[i]
		r.Text = MaskLine(r.Text)
		for j, o := range r.Options {
			if secretOptions[o.Name] && o.Value != "" {
				// The view may render a value differently from the line
				// (quotes, lists): remove it wherever it still appears.
				r.Text = strings.ReplaceAll(r.Text, o.Value, Masked)
				r.Options[j].Value = Masked
			}
		}
	}
}

// RedactErrors cuts the quoted part of error messages about credential
// options. Our own messages never quote a credential, but the server's
// (pg_hba_file_rules.error, read live) do: "could not parse RADIUS secret
// list "...""
func RedactErrors(errs []ParseError) {
	for i, e := range errs {
		low := strings.ToLower(e.Msg)
		if strings.Contains(low, "name=value") {
			// The server quotes the stray token, which is often the tail of
			// an unquoted secret with a space in it (ldapbindpasswd=a b).
			if j := strings.LastIndex(e.Msg, ":"); j >= 0 {
				errs[i].Msg = e.Msg[:j] + " (token masked)"
			}
			continue
		}
		if !strings.Contains(low, "secret") && !strings.Contains(low, "passw") {
			continue
		}
		if j := strings.IndexByte(e.Msg, '"'); j >= 0 {
			errs[i].Msg = strings.TrimRight(e.Msg[:j], " :") + " (value masked)"
		}
	}
}

// MaskLine replaces the value of every credential option in a pg_hba.conf
// line (name=value, quoted or not, up to the end of its token) with xxxxx.
// A # inside such a token starts a comment for the server, so the rest of
// the line goes too: it may hold the rest of the secret.
func MaskLine(line string) string {
	if !strings.Contains(line, "=") {
		return line // no name=value token at all (quotes cannot hide an =)
	}
	var b strings.Builder
	rest := line
	afterSecret := false
	for len(rest) > 0 {
		lead := 0
		for lead < len(rest) && (isBlank(rest[lead]) || rest[lead] == ',') {
			lead++
		}
		tok, _, comma, ok, next := nextToken(rest)
		if !ok {
			b.WriteString(rest)
			break
		}
		span := rest[lead : len(rest)-len(next)]
		if comma {
			span = span[:len(span)-1]
		}
		name, _, found := strings.Cut(tok, "=")
		b.WriteString(rest[:lead])
		switch {
		case found && secretOptions[name]:
			b.WriteString(name + "=" + Masked)
			afterSecret = true
		case !found && afterSecret:
			// The tail of an unquoted secret that holds a space or comma
			// (ldapbindpasswd=Part1 Part2): the server reads it as a bad
			// option, and it is as secret as the first part.
			b.WriteString(Masked)
		default:
			b.WriteString(span)
			afterSecret = false
		}
		if comma {
			b.WriteByte(',')
		}
		rest = next
	}
	return b.String()
}

// q marks a piece of a file's content quoted in an error message, so the
// message can be rendered without it for a file whose content must not be
// echoed (an included file can be any file on the host). The content is
// quoted as the server quotes it ("%s"); NUL is dropped from it, so the
// markers cannot be forged by the content.
func q(v string) string { return "\x00\"" + strings.ReplaceAll(v, "\x00", "") + "\"\x00" }

// qBare marks content the server's message shows without quotes.
func qBare(v string) string { return "\x00" + strings.ReplaceAll(v, "\x00", "") + "\x00" }

// renderErr turns a message built with q into text: with the quoted
// content when quote is set, else without it.
func renderErr(msg string, quote bool) string {
	if !strings.Contains(msg, "\x00") {
		return msg
	}
	parts := strings.Split(msg, "\x00")
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 0 {
			b.WriteString(p)
		} else if quote {
			b.WriteString(p)
		}
	}
	if quote {
		return b.String()
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	out = strings.ReplaceAll(out, " :", ":")
	out = strings.TrimRight(out, ": ")
	return out + " (content of an included file is not quoted)"
}
