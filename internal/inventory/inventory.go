// Package inventory reads and validates a fleet inventory: the servers
// pgaegis scans, how to reach each one, its labels, profile, waivers,
// schedule and timeout. Credentials are only ever referenced (a passfile,
// a service file, an environment variable's name, a password file) and
// resolved when a connection is made; an inline password is refused.
// The format is documented in docs/inventory.md.
package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/waiver"
)

// Inventory is a loaded, valid inventory.
type Inventory struct {
	Path string
	// Concurrency is the top file's hint for how many servers to scan at
	// once (DefaultConcurrency when not given).
	Concurrency int
	Servers     []Server
}

// Lookup returns the server of that name.
func (inv *Inventory) Lookup(name string) (Server, bool) {
	for _, s := range inv.Servers {
		if s.Name == name {
			return s, true
		}
	}
	return Server{}, false
}

// Defaults that apply when neither the server nor any defaults: say.
const (
	DefaultConcurrency = 4
	DefaultTimeout     = 5 * time.Minute
	DefaultProfile     = "all"
	maxConcurrency     = 1024
	maxTimeout         = 24 * time.Hour
	maxIncludeDepth    = 16
	maxServers         = 100000
)

// Load reads the inventory at path, its includes, and the waiver files
// it names, and checks all of it. The error lists every problem found
// (Errors), each at its file:line:column.
func Load(path string) (*Inventory, error) { return load(path, "") }

func load(path, root string) (*Inventory, error) {
	l := &loader{root: root, waivers: map[string]*waiver.File{}, names: map[string]Pos{}, read: map[string]Pos{}}
	inv := &Inventory{Path: path, Concurrency: DefaultConcurrency}
	l.inv = inv
	l.file(path, defaults{}, nil, Pos{})
	if len(l.errs.list) == 0 && len(inv.Servers) == 0 {
		l.errs.add(Pos{File: path, Line: 1, Col: 1}, "the inventory lists no servers")
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return inv, nil
}

type loader struct {
	// root, when set, confines every file the inventory names to one
	// directory (the fuzz test: random input must not read the system).
	root    string
	inv     *Inventory
	errs    errs
	waivers map[string]*waiver.File // by resolved path, loaded once
	names   map[string]Pos          // server name -> where defined
	read    map[string]Pos          // files read -> the include naming them
}

// defaults are the settings a file's servers inherit; a zero value is
// "not given" (every key's meaningful values are non-zero).
type defaults struct {
	labels         map[string]string
	profile        string
	timeout        time.Duration
	connectTimeout time.Duration
	schedule       *Schedule
	waivers        string
	passfile       string
	servicefile    string
	// credBroken: the passfile or service file given was refused, so
	// a server's connection settings cannot be checked (its service
	// would not be found): that error is enough.
	credBroken bool
}

var (
	topKeys      = keys("version", "defaults", "include", "servers")
	defaultsKeys = keys("labels", "profile", "timeout", "connect_timeout", "schedule", "waivers", "passfile", "servicefile", "concurrency")
	serverKeys   = keys("name", "conninfo", "service", "servicefile", "passfile", "password_env", "password_file",
		"labels", "profile", "timeout", "connect_timeout", "schedule", "waivers", "for")
	// Keys that would hold a password inline: refused by name, and their
	// value is never shown.
	inlineSecretKeys = keys("password", "sslpassword", "passwd", "pass", "pgpassword")
)

func keys(k ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range k {
		m[s] = true
	}
	return m
}

// file loads one inventory file. stack holds the files including it, to
// refuse cycles; from is the include line that named it.
func (l *loader) file(path string, inherited defaults, stack []string, from Pos) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	for _, s := range stack {
		if s == abs {
			l.errs.add(from, "include cycle: %s includes itself", path)
			return
		}
	}
	if first, again := l.read[abs]; again {
		// Two globs matching one file would list its servers twice.
		l.errs.add(from, "%s is already included (by %s)", path, first)
		return
	}
	if len(stack) >= maxIncludeDepth {
		l.errs.add(from, "includes nested more than %d deep", maxIncludeDepth)
		return
	}
	stack = append(stack, abs)
	l.read[abs] = from
	l.errs.file(path)
	data, err := safefile.ReadConfig(path)
	if err != nil {
		if from.File == "" {
			l.errs.add(Pos{File: path, Line: 1, Col: 1}, "%v", plainErr(err))
		} else {
			l.errs.add(from, "include: %v", plainErr(err))
		}
		return
	}
	root, ok := l.parse(path, data)
	if !ok {
		return
	}
	// The keys that are known are checked even when another is not
	// (concurrency: at the top instead of under defaults:), so one typo
	// does not hide the rest of the file.
	top, _ := l.mapping(path, root, topKeys, "the inventory")
	if top == nil {
		return
	}
	if n := top["version"]; n != nil {
		if v, ok := l.scalar(path, n, "version"); ok && v != "1" {
			l.errs.add(posOf(path, n), "version %q is not supported (this pgaegis reads version 1)", v)
		}
	}
	d := inherited
	if n := top["defaults"]; n != nil {
		d = l.defaults(path, n, inherited, from.File == "")
	}
	dir := filepath.Dir(path)
	if n := top["servers"]; n != nil {
		if n.Kind != yaml.SequenceNode {
			l.errs.add(posOf(path, n), "servers is a list (- name: ...)")
		} else {
			for _, s := range n.Content {
				if l.errs.full() {
					return
				}
				l.server(path, dir, s, d)
			}
		}
	}
	if n := top["include"]; n != nil {
		items := []*yaml.Node{n}
		if n.Kind == yaml.SequenceNode {
			items = n.Content
		}
		for _, it := range items {
			pat, ok := l.scalar(path, it, "include")
			if !ok {
				continue
			}
			l.include(path, dir, it, pat, d, stack)
		}
	}
}

func (l *loader) include(path, dir string, n *yaml.Node, pat string, d defaults, stack []string) {
	p, ok := l.resolve(path, n, dir, pat)
	if !ok {
		return
	}
	if !hasGlobMeta(pat) {
		l.file(p, d, stack, posOf(path, n))
		return
	}
	matches, err := filepath.Glob(p)
	if err != nil {
		l.errs.add(posOf(path, n), "include pattern %q: %v", pat, err)
		return
	}
	if len(matches) == 0 {
		// A pattern that matches nothing is a typo more often than an
		// empty directory: servers must not vanish silently.
		l.errs.add(posOf(path, n), "include pattern %q matches no file", pat)
		return
	}
	for _, m := range matches { // Glob sorts
		l.file(m, d, stack, posOf(path, n))
	}
}

func hasGlobMeta(s string) bool { return strings.ContainsAny(s, "*?[") }

// parse reads one YAML document into a node tree.
func (l *loader) parse(path string, data []byte) (root *yaml.Node, ok bool) {
	if err := safeParse(data, &root); err != nil {
		pos := yamlErrPos(path, err)
		// The parser stops at its first error: nothing after it (nor the
		// files this one includes) can be checked until it is fixed.
		l.errs.add(pos, "%s%s; the rest of this file is not checked until this is fixed", yamlErrMsg(err), starHint(data, pos.Line))
		return nil, false
	}
	if root == nil {
		l.errs.add(Pos{File: path, Line: 1, Col: 1}, "the file is empty")
		return nil, false
	}
	return root, l.noAliases(path, root)
}

// safeParse decodes the first document and refuses a second. yaml.v3 is
// not known to panic on any input, but a file is untrusted and a panic
// must not take a scheduler down with it.
func safeParse(data []byte, root **yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: line 1: the YAML parser failed on this file")
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("yaml: line %d: a second YAML document (---): an inventory file holds one", extra.Line)
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		*root = doc.Content[0]
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlErrPos(path string, err error) Pos {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return Pos{File: path, Line: line}
	}
	return Pos{File: path, Line: 1}
}

func yamlErrMsg(err error) string {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		return "YAML: " + m[2]
	}
	return "YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
}

var starValueRE = regexp.MustCompile(`^\s*(- +)?[A-Za-z_]+: +\*`)

// starHint explains the usual cause of a YAML error on a line like
// "schedule: */15 * * * *": YAML reads a leading * as an alias.
func starHint(data []byte, line int) string {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) || !starValueRE.Match(lines[line-1]) {
		return ""
	}
	return ` (YAML reads a value starting with * as an alias: quote it, schedule: "*/15 * * * *")`
}

// noAliases refuses anchors and aliases: defaults: does their job, and a
// walker that followed aliases could be made to loop or explode.
func (l *loader) noAliases(path string, n *yaml.Node) bool {
	ok := true
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			l.errs.add(posOf(path, n), "YAML anchors and aliases are not supported in an inventory (use defaults:); the rest of this file is not checked until they are gone")
			ok = false
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return ok
}

// mapping checks that n is a mapping with known, unique keys, and
// returns the values of its good keys by key, so the caller checks them
// too; clean is false when some key was refused. An inline password key
// is refused without showing its value. It returns nil when n is not a
// mapping.
func (l *loader) mapping(path string, n *yaml.Node, known map[string]bool, what string) (m map[string]*yaml.Node, clean bool) {
	if n.Kind != yaml.MappingNode {
		l.errs.add(posOf(path, n), "%s is a mapping (key: value lines)", what)
		return nil, false
	}
	out := map[string]*yaml.Node{}
	bad := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.errs.add(posOf(path, k), "a key in %s is not a plain word", what)
			bad = true
			continue
		}
		switch {
		case inlineSecretKeys[strings.ToLower(k.Value)]:
			l.errs.add(posOf(path, k), "inline password refused (%q key in %s): reference it with password_env, password_file, a passfile or a service file", k.Value, what)
			bad = true
		case !known[k.Value]:
			hint := ""
			if what == "the inventory" && defaultsKeys[k.Value] {
				hint = fmt.Sprintf("; %s belongs under defaults:", k.Value)
			}
			l.errs.add(posOf(path, k), "unknown key %q in %s (known: %s)%s", k.Value, what, knownList(known), hint)
			bad = true
		case out[k.Value] != nil:
			first := out[k.Value]
			l.errs.add(posOf(path, k), "%q given twice in %s (first at line %d)", k.Value, what, first.Line)
			bad = true
		default:
			out[k.Value] = v
		}
	}
	return out, !bad
}

func knownList(known map[string]bool) string {
	var ks []string
	for k := range known {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// scalar returns a non-empty scalar's text.
func (l *loader) scalar(path string, n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		l.errs.add(posOf(path, n), "%s is a single value, not a list or mapping", what)
		return "", false
	}
	if n.Tag == "!!null" || n.Value == "" {
		l.errs.add(posOf(path, n), "%s is empty", what)
		return "", false
	}
	if n.Tag == "!!binary" || strings.ContainsRune(n.Value, 0) {
		l.errs.add(posOf(path, n), "%s holds binary data", what)
		return "", false
	}
	return n.Value, true
}

func (l *loader) duration(path string, n *yaml.Node, what string) (time.Duration, bool) {
	v, ok := l.scalar(path, n, what)
	if !ok {
		return 0, false
	}
	d, err := parseDuration(v)
	if err != nil {
		l.errs.add(posOf(path, n), "%s: %v", what, err)
		return 0, false
	}
	if d <= 0 || d > maxTimeout {
		l.errs.add(posOf(path, n), "%s %s is out of range (more than 0, at most 24h)", what, v)
		return 0, false
	}
	return d, true
}

func (l *loader) schedule(path string, n *yaml.Node) (*Schedule, bool) {
	v, ok := l.scalar(path, n, "schedule")
	if !ok {
		return nil, false
	}
	s, err := ParseSchedule(v)
	if err != nil {
		l.errs.add(posOf(path, n), "%v", err)
		return nil, false
	}
	return s, true
}

func (l *loader) defaults(path string, n *yaml.Node, d defaults, top bool) defaults {
	m, _ := l.mapping(path, n, defaultsKeys, "defaults")
	if m == nil {
		return d
	}
	dir := filepath.Dir(path)
	if v := m["labels"]; v != nil {
		d.labels = l.labels(path, v, d.labels)
	}
	if v := m["profile"]; v != nil {
		if p, ok := l.profile(path, v); ok {
			d.profile = p
		}
	}
	if v := m["timeout"]; v != nil {
		if t, ok := l.duration(path, v, "timeout"); ok {
			d.timeout = t
		}
	}
	if v := m["connect_timeout"]; v != nil {
		if t, ok := l.duration(path, v, "connect_timeout"); ok {
			d.connectTimeout = t
		}
	}
	if v := m["schedule"]; v != nil {
		if s, ok := l.schedule(path, v); ok {
			d.schedule = s
		}
	}
	if v := m["waivers"]; v != nil {
		if p, ok := l.waiverFile(path, dir, v); ok {
			d.waivers = p
		}
	}
	for _, kd := range []struct {
		key string
		dst *string
	}{{"passfile", &d.passfile}, {"servicefile", &d.servicefile}} {
		key, dst := kd.key, kd.dst
		if v := m[key]; v != nil {
			if s, ok := l.scalar(path, v, key); ok {
				if p, ok := l.credFile(path, v, dir, key, s); ok {
					*dst = p
				} else {
					d.credBroken = true
				}
			} else {
				d.credBroken = true
			}
		}
	}
	if v := m["concurrency"]; v != nil {
		if !top {
			l.errs.add(posOf(path, v), "concurrency is a hint for the whole fleet: set it in the top inventory file only")
		} else if s, ok := l.scalar(path, v, "concurrency"); ok {
			var c int
			if _, err := fmt.Sscan(s, &c); err != nil || fmt.Sprint(c) != s || c < 1 || c > maxConcurrency {
				l.errs.add(posOf(path, v), "concurrency %q is not a number from 1 to %d", s, maxConcurrency)
			} else {
				l.inv.Concurrency = c
			}
		}
	}
	return d
}

// resolvePath makes p relative to the directory of the file naming it,
// with ~/ as the home directory.
func resolvePath(dir, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// resolve resolves a path named at n in path's file.
func (l *loader) resolve(path string, n *yaml.Node, dir, p string) (string, bool) {
	r := resolvePath(dir, p)
	if l.root != "" {
		rel, err := filepath.Rel(l.root, r)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			l.errs.add(posOf(path, n), "%s is outside %s", p, l.root)
			return "", false
		}
	}
	return r, true
}

// credFile checks a passfile or service file at load time: it must be a
// regular file (a FIFO would hang the connection setup), and a passfile
// private. Its contents are left to libpq's rules.
func (l *loader) credFile(path string, n *yaml.Node, dir, key, p string) (string, bool) {
	r, ok := l.resolve(path, n, dir, p)
	if !ok {
		return "", false
	}
	var err error
	if key == "passfile" {
		err = checkPrivate(r, key)
	} else {
		var f *os.File
		if f, err = safefile.Open(r); err == nil {
			f.Close()
		} else {
			err = fmt.Errorf("%s: %s", key, plainErr(err))
		}
	}
	if err != nil {
		l.errs.add(posOf(path, n), "%v", err)
		return "", false
	}
	return r, true
}

// plainErr drops the *PathError wrapping that would repeat the path.
func plainErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

func (l *loader) waiverFile(path, dir string, n *yaml.Node) (string, bool) {
	s, ok := l.scalar(path, n, "waivers")
	if !ok {
		return "", false
	}
	p, ok := l.resolve(path, n, dir, s)
	if !ok {
		return "", false
	}
	if _, done := l.waivers[p]; done {
		return p, l.waivers[p] != nil
	}
	f, err := waiver.Load(p)
	if err != nil {
		// waiver's message names its own file and line.
		l.errs.add(posOf(path, n), "waivers: %s", plainErr(err))
		l.waivers[p] = nil
		return "", false
	}
	l.waivers[p] = f
	return p, true
}
