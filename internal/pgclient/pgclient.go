// Package pgclient runs PostgreSQL's client programs (pg_dump,
// pg_dumpall, pg_restore, psql) for pgaegis: it finds a binary new enough
// for the server, and hands it the connection without the password ever
// being in its argv or environment (the password goes through a pgpass
// file in memory, memfd, passed as an inherited descriptor).
package pgclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/pgaegis/pgaegis/internal/conninfo"
)

// Tool is a found client program.
type Tool struct {
	Path    string
	Version string // "15.18"
	Major   int
}

// searchDirs is where Find looks, in order.
func searchDirs() []string {
	dirs := filepath.SplitList(os.Getenv("PATH"))
	if d := os.Getenv("PGAEGIS_PG_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	for _, g := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"} {
		m, _ := filepath.Glob(g)
		dirs = append(dirs, m...)
	}
	return append(dirs, "/usr/local/pgsql/bin")
}

// ParseVersion reads `prog --version` output: "pg_dump (PostgreSQL) 15.18 (Debian ...)".
func ParseVersion(out string) (version string, major int, err error) {
	f := strings.Fields(strings.TrimSpace(out))
	if len(f) < 3 || f[1] != "(PostgreSQL)" {
		return "", 0, fmt.Errorf("unexpected --version output %q", strings.TrimSpace(out))
	}
	version = f[2]
	end := strings.IndexFunc(version, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(version)
	}
	major, err = strconv.Atoi(version[:end])
	if err != nil {
		return "", 0, fmt.Errorf("unexpected version %q", version)
	}
	return version, major, nil
}

// Find returns the program (name "pg_dump", ...) for a server of major
// serverMajor: the lowest installed major >= serverMajor among PATH,
// $PGAEGIS_PG_BIN, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin; an error
// saying what to install when none is new enough (pg_dump refuses newer
// servers; pg_restore reads only archives of its major or older).
func Find(name string, serverMajor int) (Tool, error) {
	var found []Tool
	seen := map[string]bool{}
	for _, d := range searchDirs() {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		// Even a version check gets the child environment: no PGPASSWORD.
		vc := exec.Command(p, "--version")
		vc.Env = conninfo.ChildEnv()
		out, err := vc.Output()
		if err != nil {
			continue
		}
		v, major, err := ParseVersion(string(out))
		if err != nil {
			continue
		}
		found = append(found, Tool{Path: p, Version: v, Major: major})
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].Major < found[j].Major })
	for _, t := range found {
		if t.Major >= serverMajor {
			return t, nil
		}
	}
	var have []string
	for _, t := range found {
		have = append(have, t.Path+" "+t.Version)
	}
	what := "none"
	if len(have) > 0 {
		what = strings.Join(have, ", ")
	}
	return Tool{}, fmt.Errorf("no %s of major %d or newer for this PostgreSQL %d server (found: %s); install the PostgreSQL %d client programs (Debian/Ubuntu: postgresql-client-%d from apt.postgresql.org; RHEL: postgresql%d) or point PGAEGIS_PG_BIN at their bin directory",
		name, serverMajor, serverMajor, what, serverMajor, serverMajor, serverMajor)
}

// Target is how a child program connects: the user's connection options
// as given (so sslmode, sslrootcert, service, PG* variables, ~/.pgpass
// behave exactly as libpq's), re-aimed at one database.
type Target struct {
	Flags  conninfo.Flags
	Config *pgx.ConnConfig // as resolved by pgaegis (its Password, if any, is handed over by memfd)
}

// libpqEnv are the environment variables libpq reads, which the child
// gets back after conninfo.ChildEnv removed every PG* variable.
// PGPASSWORD is deliberately absent: it would sit in the child's
// environment, readable through /proc.
var libpqEnv = []string{
	"PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE",
	"PGSYSCONFDIR", "PGAPPNAME", "PGCONNECT_TIMEOUT", "PGOPTIONS", "PGCLIENTENCODING", "PGDATESTYLE", "PGTZ", "PGGEQO",
	"PGSSLMODE", "PGREQUIRESSL", "PGSSLNEGOTIATION", "PGSSLCOMPRESSION", "PGSSLCERT", "PGSSLKEY", "PGSSLCERTMODE",
	"PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR", "PGSSLSNI", "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION",
	"PGREQUIREPEER", "PGREQUIREAUTH", "PGCHANNELBINDING", "PGGSSENCMODE", "PGKRBSRVNAME", "PGGSSLIB", "PGGSSDELEGATION",
	"PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS", "PGMINPROTOCOLVERSION", "PGMAXPROTOCOLVERSION", "PGLOCALEDIR",
}

type kv struct{ k, v string }

type params []kv

func (p *params) set(k, v string) {
	for i := range *p {
		if (*p)[i].k == k {
			(*p)[i].v = v
			return
		}
	}
	*p = append(*p, kv{k, v})
}

func (p *params) del(k string) {
	out := (*p)[:0]
	for _, e := range *p {
		if e.k != k {
			out = append(out, e)
		}
	}
	*p = out
}

func (p params) has(k string) bool {
	for _, e := range p {
		if e.k == k {
			return true
		}
	}
	return false
}

func (p params) String() string {
	var parts []string
	for _, e := range p {
		parts = append(parts, e.k+"='"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(e.v)+"'")
	}
	return strings.Join(parts, " ")
}

// parseKeywordValue reads libpq's key=value connection string syntax.
func parseKeywordValue(s string) (params, error) {
	var p params
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return p, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		key := s[start:i]
		skip()
		if i >= len(s) || s[i] != '=' || key == "" {
			// The word itself is not quoted: with an unquoted value holding a
			// space it is the tail of a password.
			return nil, fmt.Errorf("connection string: a word without \"=\" at byte %d", start+1)
		}
		i++
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					v.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '\'' {
					i++
					closed = true
					break
				}
				v.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("connection string: unterminated quoted value for %q", key)
			}
		} else {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
		}
		p.set(key, v.String())
	}
}

// parseURI turns a postgresql:// URI into libpq keywords.
func parseURI(s string) (params, error) {
	// Go's URL parser refuses several hosts in the authority; take it apart by hand.
	rest := s[strings.Index(s, "://")+3:]
	auth, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		auth, tail = rest[:i], rest[i:]
	}
	var p params
	if i := strings.LastIndex(auth, "@"); i >= 0 {
		ui := auth[:i]
		auth = auth[i+1:]
		user := ui
		if j := strings.Index(ui, ":"); j >= 0 {
			user = ui[:j] // the password is dropped
		}
		if user != "" {
			u, err := url.PathUnescape(user)
			if err != nil {
				return nil, errors.New("connection URI: bad user name escape")
			}
			p.set("user", u)
		}
	}
	if auth != "" {
		var hosts, ports []string
		anyPort := false
		for _, hp := range strings.Split(auth, ",") {
			h, port := hp, ""
			if strings.HasPrefix(hp, "[") {
				if j := strings.Index(hp, "]"); j >= 0 {
					h, port = hp[1:j], strings.TrimPrefix(hp[j+1:], ":")
				}
			} else if j := strings.LastIndex(hp, ":"); j >= 0 {
				h, port = hp[:j], hp[j+1:]
			}
			h, err := url.PathUnescape(h)
			if err != nil {
				return nil, errors.New("connection URI: bad host escape")
			}
			hosts = append(hosts, h)
			ports = append(ports, port)
			anyPort = anyPort || port != ""
		}
		if strings.Join(hosts, "") != "" {
			p.set("host", strings.Join(hosts, ","))
		}
		if anyPort {
			p.set("port", strings.Join(ports, ","))
		}
	}
	path, query := tail, ""
	if i := strings.Index(tail, "?"); i >= 0 {
		path, query = tail[:i], tail[i+1:]
	}
	if db := strings.TrimPrefix(path, "/"); db != "" {
		d, err := url.PathUnescape(db)
		if err != nil {
			return nil, errors.New("connection URI: bad database name escape")
		}
		p.set("dbname", d)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, errors.New("connection URI: bad query parameters")
		}
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz_") != "" {
				return nil, fmt.Errorf("connection URI: invalid parameter name %q", k)
			}
			p.set(k, q[k][len(q[k])-1])
		}
	}
	return p, nil
}

// ConnString is the conninfo string a child gets: the user's options as
// given (DSN keywords win over -h/-p/-U, as in conninfo), with any
// password removed and dbname replaced by database when not empty.
func (t Target) ConnString(database string) (string, error) {
	var p params
	f := t.Flags
	for _, e := range []kv{{"host", f.Host}, {"port", f.Port}, {"user", f.User}} {
		if e.v != "" {
			p.set(e.k, e.v)
		}
	}
	var d params
	var err error
	switch {
	case strings.HasPrefix(f.DSN, "postgresql://") || strings.HasPrefix(f.DSN, "postgres://"):
		d, err = parseURI(f.DSN)
	case strings.Contains(f.DSN, "="):
		d, err = parseKeywordValue(f.DSN)
	case f.DSN != "":
		d = params{{"dbname", f.DSN}}
	}
	if err != nil {
		return "", err
	}
	for _, e := range d {
		p.set(e.k, e.v)
	}
	p.del("password")
	if p.has("sslpassword") {
		// It would sit in the child's argv; libpq has no file for it.
		return "", errors.New("sslpassword in the connection string cannot be passed to a client program without showing it in its argv; use an unencrypted client key with mode 0600")
	}
	if database != "" {
		p.set("dbname", database)
	}
	if f.ConnectTimeout > 0 && !p.has("connect_timeout") {
		p.set("connect_timeout", strconv.Itoa(int((f.ConnectTimeout+999_999_999)/1e9)))
	}
	return p.String(), nil
}

// pgpassLine is one pgpass line matching every connection.
func pgpassLine(password string) string {
	return "*:*:*:*:" + strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(password) + "\n"
}

// Command builds prog's command connecting to database ("" = the
// target's own): argv carries a conninfo string without any password;
// the environment is conninfo.ChildEnv plus the libpq variables the user
// set except PGPASSWORD; when a password is known, PGPASSFILE names an
// inherited memfd holding one pgpass line for it. Close the returned
// closer after the command has finished.
func (t Target) Command(ctx context.Context, tool Tool, database string, args ...string) (*exec.Cmd, func(), error) {
	cs, err := t.ConnString(database)
	if err != nil {
		return nil, nil, err
	}
	password := ""
	if t.Config != nil {
		password = t.Config.Password
	}
	if strings.ContainsAny(password, "\r\n\x00") {
		return nil, nil, errors.New("the password holds a line break or NUL, which a pgpass file cannot carry")
	}
	var extra []string
	for _, k := range libpqEnv {
		if k == "PGPASSFILE" && password != "" {
			continue
		}
		if v, ok := os.LookupEnv(k); ok {
			extra = append(extra, k+"="+v)
		}
	}
	cmd := exec.CommandContext(ctx, tool.Path, append([]string{"--dbname=" + cs}, args...)...)
	closer := func() {}
	if password != "" {
		fd, err := unix.MemfdCreate("pgaegis-pgpass", unix.MFD_CLOEXEC)
		if err != nil {
			return nil, nil, fmt.Errorf("memfd for the password: %w", err)
		}
		f := os.NewFile(uintptr(fd), "pgpass")
		// libpq ignores a pgpass file readable by group or others.
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("memfd for the password: %w", err)
		}
		if _, err := f.WriteString(pgpassLine(password)); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("memfd for the password: %w", err)
		}
		if _, err := f.Seek(0, 0); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("memfd for the password: %w", err)
		}
		cmd.ExtraFiles = []*os.File{f} // fd 3 in the child
		extra = append(extra, "PGPASSFILE=/proc/self/fd/3")
		closer = func() { f.Close() }
	}
	cmd.Env = conninfo.ChildEnv(extra...)
	return cmd, closer, nil
}
