package pgconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Entry is one name = value line, with where it came from.
type Entry struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	File  string `json:"file"`
	Line  int    `json:"line"`
	// Overridden is true when a later line sets the same parameter.
	Overridden bool `json:"overridden,omitempty"`
	// Seq is the position among entries and errors, in the order the
	// server lists them (pg_file_settings.seqno).
	Seq int `json:"seq,omitempty"`
}

// Location renders file:line.
func (e Entry) Location() string { return fmt.Sprintf("%s:%d", e.File, e.Line) }

// ParseError is a problem the server would report at file:line.
type ParseError struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Msg  string `json:"message"`
	// Server is what pg_file_settings.error says for it ("syntax error",
	// "could not open file \"/etc/x.conf\""): no file content.
	Server string `json:"server,omitempty"`
	Seq    int    `json:"seq,omitempty"`
}

func (e ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Config is the parsed configuration: every entry in the order the server
// reads them (postgresql.conf with its includes, then postgresql.auto.conf),
// the errors, and every file that was read.
type Config struct {
	Entries []Entry      `json:"entries"`
	Errors  []ParseError `json:"errors,omitempty"`
	Files   []string     `json:"files"`
	// AutoConfRead is false when errors in postgresql.conf stopped the
	// server from reading postgresql.auto.conf.
	AutoConfRead bool `json:"auto_conf_read"`
}

// Get returns the effective entry for a parameter (names are
// case-insensitive, the last line wins).
func (c *Config) Get(name string) (Entry, bool) {
	for i := len(c.Entries) - 1; i >= 0; i-- {
		if strings.EqualFold(c.Entries[i].Name, name) {
			return c.Entries[i], true
		}
	}
	return Entry{}, false
}

// Options control how files are found and read.
type Options struct {
	// DataDir is where postgresql.auto.conf lives and what a relative
	// config path is relative to. Empty: the directory of the main file
	// (the Debian layout keeps them apart, so pass it when known).
	DataDir string
	// SkipAutoConf does not read postgresql.auto.conf.
	SkipAutoConf bool
	// StopAtFirstError abandons a file at its first syntax error, as the
	// server does when filling pg_file_settings; by default up to 100
	// errors per file are collected, as at a reload.
	StopAtFirstError bool
	// FS reads files and directories; the real file system when nil.
	FS FileSystem
	// Major is the server's major version, when known: up to 14 the
	// server keeps ".." inside include paths (sub/../x.conf), and
	// pg_file_settings names the files so.
	Major int
}

// FileSystem is what the parser needs from the file system.
type FileSystem interface {
	ReadFile(path string) ([]byte, error)
	ReadDir(path string) ([]fs.DirEntry, error)
	Stat(path string) (fs.FileInfo, error)
}

type osFS struct{}

// ReadFile refuses FIFOs and devices and caps the size and line length: a
// configuration path can point anywhere.
func (osFS) ReadFile(p string) ([]byte, error)       { return safefile.ReadConfig(p) }
func (osFS) ReadDir(p string) ([]fs.DirEntry, error) { return os.ReadDir(p) }
func (osFS) Stat(p string) (fs.FileInfo, error)      { return os.Stat(p) }

// AutoConfName is the file ALTER SYSTEM writes, read after postgresql.conf.
const AutoConfName = "postgresql.auto.conf"

const maxDepth = 10
const maxErrorsPerFile = 100

// maxTotalBytes bounds everything one load reads: includes can name the
// same file many times at every level (a tree of 10 levels), which no
// per-file cap stops.
const maxTotalBytes = safefile.ConfigMax

// maxFiles bounds the number of files one load opens, for the same reason.
const maxFiles = 10000

type parser struct {
	o     Options
	fs    FileSystem
	cfg   *Config
	seq   int
	read  int64 // bytes read so far, against maxTotalBytes
	files int   // files read so far, against maxFiles
	// exhausted is set once a bound is hit: everything after is
	// abandoned with that one error.
	exhausted bool
}

// Load parses the main configuration file, its includes and then
// postgresql.auto.conf, as the server does at startup or reload. An error
// is returned only when the main file cannot be read at all.
func Load(configFile string, o Options) (*Config, error) {
	p := &parser{o: o, fs: o.FS, cfg: &Config{}}
	if p.fs == nil {
		p.fs = osFS{}
	}
	abs, err := filepath.Abs(configFile)
	if err != nil {
		return nil, err
	}
	if _, err := p.fs.ReadFile(abs); err != nil {
		return nil, err
	}
	if st, err := p.fs.Stat(abs); err == nil && !st.Mode().IsRegular() {
		// A FileSystem other than the real one may not refuse these.
		return nil, &fs.PathError{Op: "open", Path: abs, Err: safefile.ErrNotRegular}
	}
	if p.o.DataDir == "" {
		p.o.DataDir = filepath.Dir(abs)
	}
	ok := p.parseFile(abs, true, "", 0, 0)
	if ok && !o.SkipAutoConf {
		p.cfg.AutoConfRead = true
		p.parseFile(filepath.Join(p.o.DataDir, AutoConfName), false, "", 0, 0)
	}
	p.markOverridden()
	return p.cfg, nil
}

// Parse parses one file's content alone, without includes being followed
// (they are reported as entries named include*). For tests and fuzzing.
func Parse(name string, data []byte) *Config {
	p := &parser{fs: osFS{}, cfg: &Config{}}
	p.o.StopAtFirstError = false
	p.parseContent(name, data, -1)
	p.markOverridden()
	return p.cfg
}

func (p *parser) markOverridden() {
	last := map[string]int{}
	for i, e := range p.cfg.Entries {
		last[strings.ToLower(e.Name)] = i
	}
	for i := range p.cfg.Entries {
		p.cfg.Entries[i].Overridden = last[strings.ToLower(p.cfg.Entries[i].Name)] != i
	}
}

func (p *parser) errorf(file string, line int, server, format string, args ...any) {
	p.seq++
	p.cfg.Errors = append(p.cfg.Errors, ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, args...), Server: server, Seq: p.seq})
}

// blank is the server's test for an empty include name: all blanks
// (strspn " \t\r\n"), which it refuses rather than read a directory.
func blank(s string) bool { return strings.Trim(s, " \t\r\n") == "" }

// absolute resolves an include path relative to the including file, or to
// the data directory for the top-level files.
func (p *parser) absolute(path, calling string) string {
	clean := filepath.Clean
	if p.o.Major > 0 && p.o.Major <= 14 {
		clean = canonicalizeOld
	}
	if filepath.IsAbs(path) {
		return clean(path)
	}
	for strings.HasPrefix(path, "./") {
		path = path[2:]
	}
	dir := p.o.DataDir
	if i := strings.LastIndexByte(calling, '/'); i >= 0 {
		dir = calling[:i] // no clean-up: up to 14 a ".." in it stays
	}
	return clean(dir + "/" + path)
}

// canonicalizeOld is the path clean-up of the servers up to 14: doubled
// slashes and a trailing slash go, and trailing "." and ".." components
// are resolved, but a ".." inside the path stays.
func canonicalizeOld(path string) string {
	for strings.Contains(path, "//") {
		path = strings.ReplaceAll(path, "//", "/")
	}
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	trim := func() {
		if i := strings.LastIndexByte(path, '/'); i > 0 {
			path = path[:i]
		} else if i == 0 {
			path = "/"
		}
	}
	pending := 0
	for path != "/" {
		switch {
		case strings.HasSuffix(path, "/."):
			trim()
		case strings.HasSuffix(path, "/.."):
			trim()
			pending++
		case pending > 0:
			trim()
			pending--
		default:
			return path
		}
	}
	return path
}

func (p *parser) parseFile(path string, strict bool, calling string, callingLine, depth int) bool {
	errFile, errLine := calling, callingLine
	if errFile == "" {
		errFile = path
	}
	if p.exhausted {
		return false
	}
	if depth > maxDepth {
		if quoting(depth - 1) {
			p.errorf(errFile, errLine, "nesting depth exceeded", "could not open configuration file %q: maximum nesting depth exceeded", path)
		} else {
			p.errorf(errFile, errLine, "nesting depth exceeded", "could not open an included configuration file: maximum nesting depth exceeded")
		}
		return false
	}
	abs := p.absolute(path, calling)
	if calling != "" && abs == calling {
		p.errorf(errFile, errLine, "configuration file recursion", "configuration file recursion in %q", calling)
		return false
	}
	if st, err := p.fs.Stat(abs); err == nil && st.IsDir() {
		// The server opens a directory as a file and fails reading it.
		p.errorf(abs, 1, "input in flex scanner failed", "could not read %q: is a directory", abs)
		return false
	}
	data, err := p.fs.ReadFile(abs)
	if err != nil {
		if !strict && errors.Is(err, fs.ErrNotExist) {
			return true // include_if_exists: a missing file is skipped
		}
		var le *safefile.LineError
		switch {
		case errors.As(err, &le):
			p.errorf(abs, le.Line, "line too long", "line is longer than the limit for a configuration line (%d bytes)", le.Max)
		case quoting(depth - 1):
			p.errorf(errFile, errLine, fmt.Sprintf("could not open file \"%s\"", abs), "could not open configuration file %q: %s", abs, errText(err))
		default:
			p.errorf(errFile, errLine, fmt.Sprintf("could not open file \"%s\"", abs), "could not open an included configuration file: %s", errText(err))
		}
		return false
	}
	p.read += int64(len(data))
	p.files++
	if p.read > maxTotalBytes || p.files > maxFiles {
		p.errorf(errFile, errLine, "too much configuration", "the configuration files and their includes are more than %d files or %d MiB in total: not read further", maxFiles, maxTotalBytes>>20)
		p.exhausted = true
		return false
	}
	return p.parseContent(abs, data, depth)
}

// quoting reports whether errors in a file at this depth may quote its
// content. Only the top-level files (postgresql.conf, postgresql.auto.conf)
// may: an include can name any file on the host (a key, /etc/shadow), and
// its content must not reach a report.
func quoting(depth int) bool { return depth <= 0 }

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// parseContent runs the server's line grammar: name [=] value, one per
// line. depth < 0 means include directives are recorded, not followed.
func (p *parser) parseContent(file string, data []byte, depth int) bool {
	p.cfg.Files = append(p.cfg.Files, file)
	lx := &lexer{s: string(data), line: 1}
	ok := true
	errorCount := 0
	for {
		tok, text := lx.next()
		if tok == tEOF {
			break
		}
		if tok == tEOL {
			continue
		}
		var name, value string
		if tok != tID && tok != tQualifiedID {
			goto parseError
		}
		name = text
		tok, text = lx.next()
		if tok == tEquals {
			tok, text = lx.next()
		}
		switch tok {
		case tID, tString, tInteger, tReal, tUnquoted:
		default:
			goto parseError
		}
		if tok == tString {
			value = deescape(text)
		} else {
			value = text
		}
		tok, text = lx.next()
		if tok != tEOL {
			if tok != tEOF {
				goto parseError
			}
			lx.line++ // EOF counts as the end of the line
		}
		switch lname := strings.ToLower(name); {
		case depth >= 0 && lname == "include_dir":
			if !p.parseDir(value, file, lx.line-1, depth+1) {
				ok = false
			}
		case depth >= 0 && lname == "include_if_exists":
			if blank(value) {
				p.errorf(file, lx.line-1, "empty configuration file name", "empty configuration file name: %q", value)
				ok = false
			} else if !p.parseFile(value, false, file, lx.line-1, depth+1) {
				ok = false
			}
		case depth >= 0 && lname == "include":
			if blank(value) {
				p.errorf(file, lx.line-1, "empty configuration file name", "empty configuration file name: %q", value)
				ok = false
			} else if !p.parseFile(value, true, file, lx.line-1, depth+1) {
				ok = false
			}
		default:
			p.seq++
			p.cfg.Entries = append(p.cfg.Entries, Entry{Name: name, Value: value, File: file, Line: lx.line - 1, Seq: p.seq})
		}
		if tok == tEOF {
			break
		}
		continue

	parseError:
		switch {
		case tok == tEOL || tok == tEOF:
			p.errorf(file, lx.line-1, "syntax error", "syntax error, near end of line")
		case quoting(depth):
			p.errorf(file, lx.line, "syntax error", "syntax error, near token %q", text)
		default:
			p.errorf(file, lx.line, "syntax error", "syntax error")
		}
		ok = false
		errorCount++
		if errorCount >= maxErrorsPerFile || p.o.StopAtFirstError {
			break
		}
		for tok != tEOL && tok != tEOF {
			tok, _ = lx.next()
		}
		if tok == tEOF {
			break
		}
	}
	return ok
}

func (p *parser) parseDir(dir, calling string, callingLine, depth int) bool {
	if blank(dir) {
		p.errorf(calling, callingLine, "empty configuration directory name", "empty configuration directory name: %q", dir)
		return false
	}
	abs := p.absolute(dir, calling)
	entries, err := p.fs.ReadDir(abs)
	if err != nil {
		if quoting(depth - 1) {
			p.errorf(calling, callingLine, fmt.Sprintf("could not open directory \"%s\"", abs), "could not open configuration directory %q: %s", abs, errText(err))
		} else {
			p.errorf(calling, callingLine, fmt.Sprintf("could not open directory \"%s\"", abs), "could not open an included configuration directory: %s", errText(err))
		}
		return false
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || len(n) < 6 || !strings.HasSuffix(n, ".conf") {
			continue
		}
		full := abs + "/" + n
		st, err := p.fs.Stat(full)
		if err != nil {
			if quoting(depth - 1) {
				p.errorf(calling, callingLine, fmt.Sprintf("could not stat file \"%s\"", full), "could not stat file %q: %s", full, errText(err))
			} else {
				p.errorf(calling, callingLine, fmt.Sprintf("could not stat file \"%s\"", full), "could not stat a file of an included configuration directory: %s", errText(err))
			}
			return false
		}
		// The server takes every member that is not a directory; one
		// that is not a regular file (a FIFO, a device) is then refused
		// by the read, as an error of this include_dir line.
		if !st.IsDir() {
			names = append(names, full)
		}
	}
	sort.Strings(names) // byte order, as the server's strcmp
	for _, n := range names {
		// The server stops at the first file of the directory that fails.
		if !p.parseFile(n, true, calling, callingLine, depth) {
			return false
		}
	}
	return true
}
