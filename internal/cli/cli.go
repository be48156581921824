// Package cli builds pgaegis's commands: flags, calls into the packages
// that do the work, and the choice of writer. Exit codes: 0 nothing at or
// above --fail-on, 1 findings at or above it, 2 usage or runtime error.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFindings = 1
	ExitError    = 2
)

// Env is what a command runs with; tests swap the streams.
type Env struct {
	Stdout, Stderr io.Writer
	// Secrets are removed from any error message printed.
	secrets []string
}

// usageError marks errors that are the caller's (exit 2 with usage hint).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) (int, error)
}

func commands() []command {
	return []command{
		{"audit", "audit a server, its files, or a snapshot against the rule catalogue", runAudit},
		{"collect", "write a snapshot (JSON) of a server and its files for a later audit", runCollect},
		{"hba", "pg_hba.conf as a policy: explain, lint, diff, matrix, guard", runHBA},
		{"access", "who can do what: --role, --object, check, matrix, policy check", runAccess},
		{"escalations", "paths by which a login role can gain superuser or OS access", runEscalations},
		{"tls", "certificates (init-ca, issue, renew, revoke) and a TLS probe of a server", runTLS},
		{"logs", "security events in server logs (scan)", runLogs},
		{"rules", "list the rules (text or JSON)", runRules},
		{"version", "print the version", func(_ context.Context, env *Env, _ []string) (int, error) {
			fmt.Fprintf(env.Stdout, "pgaegis %s\n", collect.Version)
			return ExitOK, nil
		}},
	}
}

// Main runs pgaegis with the given arguments and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	env := &Env{Stdout: stdout, Stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-help" {
		printUsage(stderr)
		if len(args) == 0 {
			return ExitError
		}
		return ExitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		code, err := c.run(ctx, env, args[1:])
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return ExitOK
			}
			// Errors quote names and file content: escaped for the terminal.
			fmt.Fprintf(stderr, "pgaegis %s: %s\n", c.name, textsafe.Code(conninfo.Redact(err.Error(), env.secrets...)))
			var ue usageError
			if errors.As(err, &ue) {
				fmt.Fprintf(stderr, "run 'pgaegis %s --help' for usage\n", c.name)
			}
			return ExitError
		}
		return code
	}
	fmt.Fprintf(stderr, "pgaegis: unknown command %q\n", args[0])
	printUsage(stderr)
	return ExitError
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "pgaegis: audit and harden PostgreSQL\n\nusage: pgaegis <command> [options]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nconnection options follow libpq: -d URI or key=value string, -h, -p, -U, PG* variables, ~/.pgpass, service files\n")
}

// connFlags are the libpq-style options shared by every command that connects.
type connFlags struct {
	f       conninfo.Flags
	timeout time.Duration
}

func (c *connFlags) register(fs *flag.FlagSet) {
	for _, n := range []string{"d", "dbname"} {
		fs.StringVar(&c.f.DSN, n, "", "database name, connection URI or key=value string")
	}
	for _, n := range []string{"h", "host"} {
		fs.StringVar(&c.f.Host, n, "", "server host or socket directory")
	}
	for _, n := range []string{"p", "port"} {
		fs.StringVar(&c.f.Port, n, "", "server port")
	}
	for _, n := range []string{"U", "username"} {
		fs.StringVar(&c.f.User, n, "", "role to connect as")
	}
	fs.DurationVar(&c.timeout, "connect-timeout", conninfo.DefaultConnectTimeout, "give up connecting after this long")
}

// given reports whether any connection option was given, on the command
// line or in the PG* environment.
func (c *connFlags) given() bool {
	if !c.f.Empty() {
		return true
	}
	for _, v := range []string{"PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE", "PGHOSTADDR"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// fileFlags point at server files for audits without (or besides) a server.
type fileFlags struct {
	dataDir, configFile, hbaFile, identFile string
}

func (f *fileFlags) register(fs *flag.FlagSet) {
	for _, n := range []string{"D", "pgdata"} {
		fs.StringVar(&f.dataDir, n, "", "data directory to audit (its postgresql.conf, pg_hba.conf, modes)")
	}
	fs.StringVar(&f.configFile, "config-file", "", "postgresql.conf to audit")
	fs.StringVar(&f.hbaFile, "hba-file", "", "pg_hba.conf to audit")
	fs.StringVar(&f.identFile, "ident-file", "", "pg_ident.conf to audit")
}

func (f *fileFlags) given() bool {
	return f.dataDir != "" || f.configFile != "" || f.hbaFile != "" || f.identFile != ""
}

func newFlagSet(env *Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: pgaegis %s %s\n\noptions:\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// isTerminal reports whether w is a terminal (colour and progress only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress returns a progress printer for stderr when it is a terminal.
func progress(env *Env) func(string, ...any) {
	if !isTerminal(env.Stderr) {
		return nil
	}
	return func(format string, args ...any) {
		// Progress names databases: escaped, and cut between characters.
		msg := textsafe.Shorten(fmt.Sprintf(format, args...), 70)
		fmt.Fprintf(env.Stderr, "\r\x1b[K%s", msg)
	}
}

func clearProgress(env *Env) {
	if isTerminal(env.Stderr) {
		fmt.Fprint(env.Stderr, "\r\x1b[K")
	}
}

// output is where -o sends a report. A file is written to a temporary file
// beside it and renamed over it at the end, so a failed run never leaves a
// half-written file; streams are written directly.
type output struct {
	path string
	f    *os.File // the temporary file, for a path
	mode os.FileMode
	// uid, gid of the file replaced (-1 for a new file): a report written
	// by root over another user's file stays theirs.
	uid, gid int
	w        io.Writer
}

// openOutput resolves -o. "-", /dev/stdout, /dev/stderr and /dev/fd/N
// (also /proc/self/fd/N) are the process's own streams: written as they
// are, for any user, with no temporary file; /dev/null discards. Any other path must be a new
// file or a regular file, which is replaced (keeping its mode; 0600 when
// new). A symbolic link is refused rather than followed: a report must not
// land where a link planted in a shared directory points. A directory, a
// device, a FIFO or a socket is refused too: renaming over it would
// replace a node that is not ours.
func openOutput(env *Env, path string) (*output, error) {
	if path == "" || path == "-" {
		return &output{w: env.Stdout}, nil
	}
	if w, ok, err := streamOutput(env, path); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return &output{w: w}, nil
	}
	o := &output{path: path, mode: 0o600, uid: -1, gid: -1}
	if err := o.check(); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dirOf(path), ".pgaegis-*")
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w", path, err)
	}
	o.f, o.w = f, f
	return o, nil
}

// check refuses anything but a new path or a regular file, and records the
// mode and owner of the file it will replace.
func (o *output) check() error {
	e, err := safefile.CheckReplace(o.path)
	if err != nil {
		return fmt.Errorf("-o %w", err)
	}
	if e.Exists {
		o.mode = e.Mode
	}
	o.uid, o.gid = e.UID, e.GID
	return nil
}

// streamOutput maps the stream paths to the process's descriptors.
func streamOutput(env *Env, path string) (io.Writer, bool, error) {
	var fd int
	switch {
	case path == "/dev/null":
		return io.Discard, true, nil // only the exit code is wanted
	case path == "/dev/stdout":
		fd = 1
	case path == "/dev/stderr":
		fd = 2
	case strings.HasPrefix(path, "/dev/fd/"), strings.HasPrefix(path, "/proc/self/fd/"):
		n, err := strconv.Atoi(path[strings.LastIndexByte(path, '/')+1:])
		if err != nil || n < 0 {
			return nil, false, nil
		}
		fd = n
	default:
		return nil, false, nil
	}
	switch fd {
	case 1:
		return env.Stdout, true, nil
	case 2:
		return env.Stderr, true, nil
	case 0:
		return nil, true, fmt.Errorf("-o %s: standard input is not an output", path)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, true, fmt.Errorf("-o %s: descriptor %d is not open: %w", path, fd, err)
	}
	return os.NewFile(uintptr(fd), path), true, nil
}

func (o *output) commit() error {
	if o.f == nil {
		return nil
	}
	fail := func(err error) error {
		o.abort()
		return fmt.Errorf("-o %s: %w", o.path, err)
	}
	if err := o.f.Chmod(o.mode); err != nil {
		return fail(err)
	}
	if o.uid >= 0 && o.uid != os.Geteuid() {
		o.f.Chown(o.uid, o.gid) // best effort: only root can give a file away
	}
	if err := o.f.Close(); err != nil {
		return fail(err)
	}
	// The path may have changed while the report was written.
	if err := o.check(); err != nil {
		os.Remove(o.f.Name())
		return err
	}
	if err := os.Rename(o.f.Name(), o.path); err != nil {
		os.Remove(o.f.Name())
		return fmt.Errorf("-o %s: %w", o.path, err)
	}
	return nil
}

func (o *output) abort() {
	if o.f != nil {
		o.f.Close()
		os.Remove(o.f.Name())
	}
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		if i == 0 {
			return "/"
		}
		return p[:i]
	}
	return "."
}

// parseArgs parses options that may come before, between or after the
// positional arguments (flag stops at the first one) and returns those.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return pos, nil
}
