package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/secretsink"
)

// sinkFlags are where a new secret goes: shared by rotate and
// passwords migrate.
type sinkFlags struct {
	files       []string
	fileFormat  string
	pgpass      string
	service     string
	serviceFile string
	output      string
	exec        []string
	execTimeout time.Duration
}

// pgpassDefault is --to-pgpass given without a value: $PGPASSFILE or
// ~/.pgpass, as libpq reads them (pflag needs a non-empty NoOptDefVal).
const pgpassDefault = "default"

var fileFormats = []string{secretsink.FormatPassword, secretsink.FormatJSON, secretsink.FormatEnv}

// register adds the destination flags to cmd.
func (s *sinkFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&s.files, "to-file", nil, "write the secret to this `PATH` (atomically, mode 0600; repeatable; {role} and {user} expand)")
	fs.StringVar(&s.fileFormat, "file-format", secretsink.FormatPassword, "`FORMAT` of --to-file: password (the password and a newline), json or env (PGUSER= and PGPASSWORD= lines)")
	fs.StringVar(&s.pgpass, "to-pgpass", "", "update the host:port:database:user line of this pgpass `PATH` (alone or '=default': $PGPASSFILE, else ~/.pgpass; write --to-pgpass=PATH)")
	fs.Lookup("to-pgpass").NoOptDefVal = pgpassDefault
	fs.StringVar(&s.service, "to-service", "", "set user= and password= in this section `NAME` of a libpq service file")
	fs.StringVar(&s.serviceFile, "service-file", "", "the service file `PATH` of --to-service (default $PGSERVICEFILE, else ~/.pg_service.conf)")
	fs.StringVar(&s.output, "output", "", "print the secret as one line of JSON on standard output (the one value: `json`; then nothing else goes there)")
	fs.StringArrayVar(&s.exec, "exec", nil, "run this `COMMAND` with /bin/sh -c, the secret as JSON on its standard input (repeatable)")
	fs.DurationVar(&s.execTimeout, "exec-timeout", 30*time.Second, "give up on an --exec command after this long")
	completeValues(cmd, "file-format", fileFormats...)
	completeValues(cmd, "output", "json")
	cmd.MarkFlagFilename("to-file")
	cmd.MarkFlagFilename("to-pgpass")
	cmd.MarkFlagFilename("service-file")
}

// check refuses bad values before anything connects.
func (s *sinkFlags) check() error {
	if !slices.Contains(fileFormats, s.fileFormat) {
		return usagef("unknown --file-format %q (%s)", s.fileFormat, strings.Join(fileFormats, ", "))
	}
	if s.output != "" && s.output != "json" {
		return usagef("unknown --output %q (only json: the secret as JSON on standard output)", s.output)
	}
	if s.serviceFile != "" && s.service == "" {
		return usagef("--service-file names the file of --to-service NAME: give --to-service too")
	}
	if s.execTimeout <= 0 {
		return usagef("--exec-timeout must be positive")
	}
	for _, c := range s.exec {
		if strings.TrimSpace(c) == "" {
			return usagef("--exec: an empty command")
		}
	}
	for _, f := range s.files {
		if f == "" {
			return usagef("--to-file: an empty path")
		}
	}
	return nil
}

// given reports whether any destination was named.
func (s *sinkFlags) given() bool {
	return len(s.files) > 0 || s.pgpass != "" || s.service != "" || s.output != "" || len(s.exec) > 0
}

// stdout reports whether the secret goes to standard output.
func (s *sinkFlags) stdout() bool { return s.output == "json" }

// sinks builds the destinations for one role. {role} in a path is role;
// {user} is the login role the secret is for: with one user (or none:
// role itself) the path is fixed now, with several (alternate's two
// login roles) each is checked now and the one Deliver is for is used.
// The undoable destinations come first and the ones that cannot be
// taken back (commands, standard output) last, so a failing file
// stops the rotation before a secret manager or a reader of stdout has
// a password that is about to be restored away.
func (s *sinkFlags) sinks(env *Env, role string, users ...string) ([]secretsink.Sink, error) {
	if len(users) == 0 {
		users = []string{role}
	}
	var out []secretsink.Sink
	add := func(flag, tmpl string, mk func(path string) (secretsink.Sink, error)) error {
		byUser := map[string]secretsink.Sink{}
		for _, u := range users {
			p, err := expandPath(tmpl, role, u)
			if err != nil {
				return usagef("%s %s: %v", flag, tmpl, err)
			}
			sk, err := mk(p)
			if err != nil {
				return fmt.Errorf("%s %s: %w", flag, p, err)
			}
			byUser[u] = sk
			if !strings.Contains(tmpl, "{user}") {
				out = append(out, sk)
				return nil
			}
		}
		if len(users) == 1 {
			out = append(out, byUser[users[0]])
			return nil
		}
		out = append(out, &perUserSink{tmpl: tmpl, flag: flag, byUser: byUser})
		return nil
	}
	for _, f := range s.files {
		if err := add("--to-file", f, func(p string) (secretsink.Sink, error) { return secretsink.NewFile(p, s.fileFormat) }); err != nil {
			return nil, err
		}
	}
	if s.pgpass != "" {
		tmpl := s.pgpass
		if tmpl == pgpassDefault {
			tmpl = ""
		}
		if err := add("--to-pgpass", tmpl, secretsink.NewPgpass); err != nil {
			return nil, err
		}
	}
	if s.service != "" {
		if err := add("--to-service", s.serviceFile, func(p string) (secretsink.Sink, error) { return secretsink.NewService(p, s.service) }); err != nil {
			return nil, err
		}
	}
	for _, c := range s.exec {
		out = append(out, secretsink.NewExec(c, s.execTimeout))
	}
	if s.stdout() {
		out = append(out, secretsink.NewJSON(env.Stdout))
	}
	for i, sk := range out {
		out[i] = redactingSink{Sink: sk, env: env}
	}
	return out, nil
}

// expandPath replaces {role} and {user}. A name that would leave the
// directory written (a slash, "." or "..") is refused: a role name is
// not a path.
func expandPath(tmpl, role, user string) (string, error) {
	for _, v := range []struct{ key, val string }{{"{role}", role}, {"{user}", user}} {
		if !strings.Contains(tmpl, v.key) {
			continue
		}
		if v.val == "" || v.val == "." || v.val == ".." || strings.ContainsAny(v.val, "/\x00") {
			return "", fmt.Errorf("%s would be %q, which cannot be part of a path", v.key, v.val)
		}
		tmpl = strings.ReplaceAll(tmpl, v.key, v.val)
	}
	return tmpl, nil
}

// perUserSink is a destination whose path names the login role, which
// under --strategy alternate is known only when the rotation picks it.
type perUserSink struct {
	tmpl, flag string
	byUser     map[string]secretsink.Sink
}

func (p *perUserSink) String() string {
	users := make([]string, 0, len(p.byUser))
	for u := range p.byUser {
		users = append(users, u)
	}
	slices.Sort(users)
	var names []string
	for _, u := range users {
		names = append(names, p.byUser[u].String())
	}
	return strings.Join(names, " or ")
}

func (p *perUserSink) Deliver(ctx context.Context, s secretsink.Secret) (*secretsink.Delivery, error) {
	sk := p.byUser[s.User]
	if sk == nil {
		return nil, fmt.Errorf("%s %s: no destination prepared for user %s", p.flag, p.tmpl, s.User)
	}
	return sk.Deliver(ctx, s)
}

// redactingSink records the secret it is handed for redaction, so no
// error printed after it (a failing destination, a restore) can carry
// it, whatever a lower layer put in its text.
type redactingSink struct {
	secretsink.Sink
	env *Env
}

func (r redactingSink) Deliver(ctx context.Context, s secretsink.Secret) (*secretsink.Delivery, error) {
	if len(s.Password) > 0 && !slices.Contains(r.env.secrets, string(s.Password)) {
		r.env.secrets = append(r.env.secrets, string(s.Password))
	}
	return r.Sink.Deliver(ctx, s)
}
