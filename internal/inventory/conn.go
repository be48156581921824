package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Conn is a server's resolved connection configuration. It holds the
// password, so it prints (String, %v, %+v, %#v, slog, JSON) as where it
// connects and where the password came from, never the password. Config
// itself is pgx's and prints everything: pass it to pgx, never to a log.
type Conn struct {
	Config *pgx.ConnConfig
	// PasswordFrom says where the password came from: "password_env
	// NAME", "password_file PATH", or "libpq" (a passfile, a service
	// file or the PG* environment, as psql would find it; maybe none).
	PasswordFrom string
}

// String describes the connection without its secrets.
func (c *Conn) String() string {
	if c == nil || c.Config == nil {
		return "<no connection>"
	}
	pw := "none"
	if c.Config.Password != "" {
		pw = conninfo.Mask
	}
	return conninfo.Describe(c.Config) + " password=" + pw + " (from " + c.PasswordFrom + ")"
}

// Format makes every fmt verb print String: %#v would otherwise dump
// the password field.
func (c *Conn) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// LogValue keeps slog from walking into the configuration.
func (c *Conn) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON writes the description, not the configuration.
func (c *Conn) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// Secrets are the strings to redact from anything printed about this
// connection (its error messages included).
func (c *Conn) Secrets() []string { return conninfo.Secrets(c.Config) }

// maxPasswordFile bounds a password file: a password, not a document.
const maxPasswordFile = 64 << 10

// ConnConfig resolves the server's connection now: the connection
// string and service are parsed as libpq would (PG* variables, the
// passfile, the service file), then the password_env variable is read or
// the password_file opened (refused unless mode 0600 or stricter). Call
// it when connecting, and drop the result afterwards.
func (s Server) ConnConfig() (*Conn, error) {
	if s.PassFile != "" {
		// pgx, unlike libpq, ignores a passfile open to others, and any
		// missing one silently: a named passfile must be there and private.
		if err := checkPrivate(s.PassFile, "passfile"); err != nil {
			return nil, fmt.Errorf("server %s: %v", s.Name, err)
		}
	}
	if err := checkConnFiles(s.Conninfo); err != nil {
		return nil, fmt.Errorf("server %s: conninfo: %v", s.Name, err)
	}
	dsn, err := s.dsn()
	if err != nil {
		return nil, fmt.Errorf("server %s: %v", s.Name, err)
	}
	cfg, err := conninfo.Config(conninfo.Flags{DSN: dsn, ConnectTimeout: s.ConnectTimeout})
	if err != nil {
		return nil, fmt.Errorf("server %s: %v", s.Name, err)
	}
	c := &Conn{Config: cfg, PasswordFrom: "libpq"}
	switch {
	case s.PasswordEnv != "":
		v, ok := os.LookupEnv(s.PasswordEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("server %s: %s is not set (or empty) in pgaegis's environment%s", s.Name, s.passwordEnvRef(), s.passwordEnvAt())
		}
		cfg.Password, c.PasswordFrom = v, s.passwordEnvRef()
	case s.PasswordFile != "":
		pw, err := readPasswordFile(s.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("server %s: %v", s.Name, err)
		}
		cfg.Password, c.PasswordFrom = pw, "password_file "+s.PasswordFile
	}
	return c, nil
}

// passwordEnvRef names the password_env variable the way messages may
// show it: by name when Load checked it is written as a variable's name
// (or it has the conventional form), else by where it is written only,
// as a value like "Sup3rSecretX" may be a pasted password.
func (s Server) passwordEnvRef() string {
	if s.passwordEnvNamed() {
		return "password_env " + s.PasswordEnv
	}
	if s.PasswordEnvPos.File != "" {
		return "the variable password_env names at " + s.PasswordEnvPos.String() + " (name not shown: it does not look like a variable's name)"
	}
	return "the variable password_env names (name not shown: it does not look like a variable's name)"
}

// passwordEnvNamed says whether messages may show password_env's value.
func (s Server) passwordEnvNamed() bool {
	return s.passwordEnvChecked || envConventionalRE.MatchString(s.PasswordEnv)
}

// passwordEnvAt is where password_env is written, for a message that
// shows its name.
func (s Server) passwordEnvAt() string {
	if s.PasswordEnvPos.File == "" || !s.passwordEnvNamed() {
		return ""
	}
	return " (password_env at " + s.PasswordEnvPos.String() + ")"
}

// checkPrivate refuses a credential file that is missing, not a regular
// file, or open to group or others (libpq's rule for ~/.pgpass).
func checkPrivate(path, what string) error {
	f, err := safefile.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %s", what, plainErr(err))
	}
	defer f.Close()
	return checkMode(f, path, what)
}

func checkMode(f *os.File, path, what string) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s %s: %v", what, path, err)
	}
	if m := st.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o: group or others may read it; chmod 600 %s", what, path, m, path)
	}
	return nil
}

// readPasswordFile reads a password from a private file: its first line,
// without the line ending. More than one non-empty line is refused (the
// wrong file, a pgpass file given as a password file).
func readPasswordFile(path string) (string, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %s", plainErr(err))
	}
	defer f.Close()
	if err := checkMode(f, path, "password_file"); err != nil {
		return "", err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("password_file %s: %v", path, err)
	}
	if len(data) > maxPasswordFile {
		return "", fmt.Errorf("password_file %s is larger than %d KiB: not a password", path, maxPasswordFile>>10)
	}
	text := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if strings.ContainsAny(text, "\r\n") {
		return "", fmt.Errorf("password_file %s holds more than one line: it must hold the password alone", path)
	}
	if text == "" {
		return "", fmt.Errorf("password_file %s is empty", path)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return "", errors.New("password_file " + path + " holds a NUL byte")
	}
	return text, nil
}
