// Package cli builds pgaegis's commands: flags, calls into the packages
// that do the work, and the choice of writer. Exit codes: 0 nothing at or
// above --fail-on, 1 findings at or above it, 2 usage or runtime error.
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/pgaegis/pgaegis/internal/apply"
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
	// Stdin answers prompts (fix --apply, fix --interactive).
	Stdin io.Reader
	in    *bufio.Reader
	// code is the exit code the command that ran returned.
	code int
	// Secrets are removed from any error message printed.
	secrets []string
}

// usageError marks errors that are the caller's (exit 2 with usage hint).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// newRoot builds the command tree. Each call builds a fresh tree: flag
// values live in it, and tests call Main many times in one process.
func newRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "pgaegis",
		Short: "audit and harden PostgreSQL",
		Long: `pgaegis audits and hardens PostgreSQL: a server, its files or a snapshot
against a rule catalogue (CIS, STIG), pg_hba.conf as a policy, who can do
what, TLS certificates and probes, and security events in server logs;
'pgaegis fix' plans the fixes as one ordered plan and applies it safely.

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it,
2 usage or runtime error (including an incomplete audit).`,
		Version: collect.Version,
		Example: `  pgaegis audit -h /var/run/postgresql -U postgres
  pgaegis audit --pgdata /var/lib/postgresql/17/main --format html -o report.html
  pgaegis help audit`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// A bare "pgaegis" is a usage error, with the help on stderr.
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				msg += " (did you mean " + strings.Join(s, " or ") + "?)"
			}
			return usageError{msg}
		},
		RunE: func(c *cobra.Command, args []string) error {
			c.SetOut(env.Stderr)
			c.Help()
			env.code = ExitError
			return nil
		},
	}
	// A password in --store is in ps and the shell's history: the
	// inventory refuses the same, the store's URL is only warned about
	// (it may be a throwaway test store).
	root.PersistentPreRun = func(c *cobra.Command, _ []string) {
		if f := c.Flags().Lookup("store"); f != nil && f.Changed && len(conninfo.SecretSpans(f.Value.String())) > 0 {
			fmt.Fprintln(env.Stderr, "pgaegis: warning: --store holds a password, which other users can read in ps and which stays in the shell's history: give it by ~/.pgpass, a service file or PGPASSWORD")
		}
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SuggestionsMinimumDistance = 2
	root.SetUsageTemplate(usageTemplate)
	root.SetVersionTemplate("pgaegis {{.Version}}\n")
	root.Flags().BoolP("version", "V", false, "print the version and exit")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddCommand(auditCmd(env), collectCmd(env), hbaCmd(env), accessCmd(env), escalationsCmd(env),
		tlsCmd(env), logsCmd(env), fail2banCmd(env), fixCmd(env), passwordsCmd(env), rotateCmd(env), firewallCmd(env), fleetCmd(env), serveCmd(env), backupCmd(env), restoreCmd(env), rulesCmd(env), rolesCmd(env), versionCmd(env))
	// cobra's own commands, in the same voice as the others.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Short = "help about any command (pgaegis help CMD is CMD --help)"
		case "completion":
			c.Short = "shell completion script (bash, zsh, fish, powershell); completes flag values too"
			c.Example = "  pgaegis completion bash > /etc/bash_completion.d/pgaegis\n  pgaegis completion zsh > \"${fpath[1]}/_pgaegis\"\n  pgaegis completion fish > ~/.config/fish/completions/pgaegis.fish"
			dest := map[string]string{"bash": "/etc/bash_completion.d/pgaegis", "zsh": `"${fpath[1]}/_pgaegis"`,
				"fish": "~/.config/fish/completions/pgaegis.fish", "powershell": "pgaegis.ps1"}
			for _, sh := range c.Commands() {
				sh.Example = "  pgaegis completion " + sh.Name() + " > " + dest[sh.Name()]
			}
		}
	}
	return root
}

func versionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "print the version", Args: noArgs,
		Example: "  pgaegis version\n  pgaegis --version",
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(env.Stdout, "pgaegis %s\n", collect.Version)
		},
	}
}

// runE adapts a command body to cobra: the body returns the exit code,
// which Main reads from env.
func runE(env *Env, fn func(ctx context.Context, env *Env, args []string) (int, error)) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		code, err := fn(c.Context(), env, args)
		env.code = code
		return err
	}
}

// groupCmd is a command that only holds subcommands (hba, tls, logs): run
// bare or with an unknown word, it is a usage error naming the choices.
func groupCmd(env *Env, use, short, example string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Example: example}
	c.AddCommand(subs...)
	c.RunE = func(c *cobra.Command, args []string) error {
		env.code = ExitError
		var names []string
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		if len(args) == 0 {
			return usagef("%s needs a subcommand: %s", c.Name(), strings.Join(names, ", "))
		}
		return usagef("unknown %s subcommand %q (%s)", c.Name(), args[0], strings.Join(names, ", "))
	}
	return c
}

// Main runs pgaegis with the given arguments and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return MainInput(args, os.Stdin, stdout, stderr)
}

// MainInput is Main with the stream prompts read from.
func MainInput(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	// SIGTERM (systemd, kill, a CI timeout) ends a command as Ctrl-C does:
	// cleanup runs (a partial backup set removed, a firewall reverted).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(env)
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return env.code
	}
	path, hasPgdata, connects := "pgaegis", false, false
	if cmd != nil {
		path = cmd.CommandPath()
		hasPgdata = cmd.Flags().Lookup("pgdata") != nil
		// The hints are about the server a command connects to by its
		// libpq flags (-W among them), not a --store's database.
		connects = cmd.Flags().Lookup("password") != nil
	}
	msg := dedupeLines(err.Error())
	// Errors quote names and file content: escaped for the terminal.
	fmt.Fprintf(stderr, "%s: %s\n", path, textsafe.Code(conninfo.Redact(msg, env.secrets...)))
	if h := connHint(msg, path, hasPgdata, len(env.secrets) > 0); connects && h != "" {
		fmt.Fprintln(stderr, textsafe.Code(h))
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "see '%s --help'\n", path)
	}
	return ExitError
}

// noArgs refuses positional arguments as a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (%s takes options only)", args[0], c.CommandPath())
	}
	return nil
}

// connFlags are the libpq-style options shared by every command that connects.
type connFlags struct {
	f          conninfo.Flags
	timeout    time.Duration
	noPassword bool
	prompt     bool
}

// connGroup marks the connection flags, which help lists apart under a
// heading that says once where else libpq takes its settings from.
const connGroup = "pgaegis-connection"

// register adds the psql spellings. -h is the host here, so the help flag
// is --help only.
func (c *connFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.Bool("help", false, "help for "+cmd.Name())
	fs.StringVarP(&c.f.DSN, "dbname", "d", "", "database name, connection URI or key=value string")
	fs.StringVarP(&c.f.Host, "host", "h", "", "server host or socket directory")
	fs.StringVarP(&c.f.Port, "port", "p", "", "server port")
	fs.StringVarP(&c.f.User, "username", "U", "", "role to connect as")
	fs.BoolVarP(&c.noPassword, "no-password", "w", false, "never prompt for a password")
	fs.BoolVarP(&c.prompt, "password", "W", false, "prompt for a password on the terminal (never taken from the command line)")
	fs.DurationVar(&c.timeout, "connect-timeout", conninfo.DefaultConnectTimeout, "give up connecting after this long")
	for _, n := range []string{"dbname", "host", "port", "username", "no-password", "password", "connect-timeout"} {
		fs.SetAnnotation(n, connGroup, []string{"true"})
	}
}

// usageTemplate is cobra's, with the connection flags in their own list.
const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}{{$f := flagUsages . false}}{{if $f}}

Flags:
{{$f}}{{end}}{{$c := flagUsages . true}}{{if $c}}

Connection options (as psql's; PG* variables, ~/.pgpass and service files apply too):
{{$c}}{{end}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

func init() {
	cobra.AddTemplateFunc("flagUsages", func(c *cobra.Command, conn bool) string {
		fs := pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if _, ok := f.Annotations[connGroup]; ok == conn && !f.Hidden {
				fs.AddFlag(f)
			}
		})
		return strings.TrimRight(fs.FlagUsages(), " \n")
	})
}

// config builds the connection configuration, prompting for a password
// with -W, and records its secrets for redaction.
func (c *connFlags) config(env *Env) (*pgx.ConnConfig, error) {
	if c.prompt && c.noPassword {
		return nil, usagef("-W/--password and -w/--no-password contradict each other")
	}
	c.f.ConnectTimeout = c.timeout
	cfg, err := conninfo.Config(c.f)
	if err != nil {
		return nil, err
	}
	if c.prompt {
		pw, err := readPassword(env, cfg.User)
		if err != nil {
			return nil, err
		}
		cfg.Password = pw
	}
	env.secrets = append(env.secrets, conninfo.Secrets(cfg)...)
	return cfg, nil
}

// readPassword reads a password from the controlling terminal without echo.
func readPassword(env *Env, user string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("-W/--password needs a terminal to prompt on: %v", err)
	}
	defer tty.Close()
	fmt.Fprintf(tty, "Password for user %s: ", textsafe.String(user))
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("-W/--password: %v", err)
	}
	return string(b), nil
}

// given reports whether a connection option was given on the command line.
// The PG* environment alone does not count: it is where libpq's defaults
// come from when pgaegis connects anyway (no file option given), but a
// files-only command (--pgdata, --file, a log scan) must not start talking
// to whatever server PGHOST names because a shell profile set it.
func (c *connFlags) given() bool { return !c.f.Empty() }

// fileFlags point at server files for audits without (or besides) a server.
type fileFlags struct {
	dataDir, configFile, hbaFile, identFile string
}

func (f *fileFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.dataDir, "pgdata", "D", "", "data directory to audit (its postgresql.conf, pg_hba.conf, modes)")
	fs.StringVar(&f.configFile, "config-file", "", "postgresql.conf to audit")
	fs.StringVar(&f.hbaFile, "hba-file", "", "pg_hba.conf to audit")
	fs.StringVar(&f.identFile, "ident-file", "", "pg_ident.conf to audit")
}

func (f *fileFlags) given() bool {
	return f.dataDir != "" || f.configFile != "" || f.hbaFile != "" || f.identFile != ""
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

// Root returns the command tree, for generators (man pages) that read it;
// its commands write to discarded streams.
func Root() *cobra.Command {
	return newRoot(&Env{Stdout: io.Discard, Stderr: io.Discard})
}

// exactArgs is cobra.ExactArgs with our usage error's wording.
func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s", msg)
		}
		return nil
	}
}

// isTerminalReader reports whether r is a terminal (prompts only there).
func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// journalRootFlag registers --journal-dir and returns the journal root it
// names, the default one when it is not given.
func journalRootFlag(cmd *cobra.Command) func() string {
	dir := cmd.Flags().String("journal-dir", "", journalDirHelp)
	cmd.MarkFlagDirname("journal-dir")
	return func() string {
		if *dir != "" {
			return *dir
		}
		return apply.DefaultJournalRoot()
	}
}
