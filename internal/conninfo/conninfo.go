// Package conninfo turns libpq-style connection options (a URI or a
// key=value string, -h/-p/-U, PG* environment variables, ~/.pgpass,
// service files) into a structured connection configuration, and renders
// connections without their secrets.
package conninfo

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Flags are the connection options a command accepts. There is no
// password flag: argv is visible to every user of the host. Passwords
// come from PGPASSWORD, ~/.pgpass, a service file or the URI.
type Flags struct {
	DSN            string // -d: a URI, a key=value string, or a database name
	Host           string // -h
	Port           string // -p
	User           string // -U
	ConnectTimeout time.Duration
}

// Empty reports whether no connection option was given at all (the
// environment aside).
func (f Flags) Empty() bool { return f.DSN == "" && f.Host == "" && f.Port == "" && f.User == "" }

// DefaultConnectTimeout bounds connection setup, so a server that accepts
// a TCP connection and never answers costs seconds, not a hang.
const DefaultConnectTimeout = 10 * time.Second

// Config builds the connection configuration. As with psql, values in a
// connection string given with -d win over -h/-p/-U.
func Config(f Flags) (*pgx.ConnConfig, error) {
	s, err := connString(f)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(s)
	if err != nil {
		msg := Redact(parseErrorText(err), PasswordOf(f.DSN))
		if v := os.Getenv("PGREQUIREAUTH"); v != "" && strings.Contains(msg, "require_auth") && !strings.Contains(s, "require_auth") {
			// The value came from the environment, not the string shown.
			msg += fmt.Sprintf(" (require_auth %q comes from PGREQUIREAUTH)", v)
		}
		return nil, fmt.Errorf("connection options: %s", msg)
	}
	if err := checkSSLNegotiation(cfg); err != nil {
		return nil, fmt.Errorf("connection options: %v", err)
	}
	// require_auth (and, without it, no cleartext password over TCP
	// without TLS) is enforced by pgaegis before pgx answers the server:
	// see Guard and docs/require-auth.md.
	if err := Guard(cfg); err != nil {
		return nil, fmt.Errorf("connection options: %v", err)
	}
	if f.ConnectTimeout > 0 {
		cfg.ConnectTimeout = f.ConnectTimeout
	} else if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	return cfg, nil
}

func isURI(s string) bool {
	return strings.HasPrefix(s, "postgresql://") || strings.HasPrefix(s, "postgres://")
}

func isKeywordValue(s string) bool { return strings.Contains(s, "=") && !isURI(s) }

func quoteValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func connString(f Flags) (string, error) {
	over := [][2]string{{"host", f.Host}, {"port", f.Port}, {"user", f.User}}
	switch {
	case isURI(f.DSN):
		u, err := url.Parse(f.DSN)
		if err != nil {
			return "", fmt.Errorf("connection URI %s: %v", RedactDSN(f.DSN), cleanURLErr(err))
		}
		q := u.Query()
		set := map[string]bool{
			"host": u.Hostname() != "" || q.Has("host"),
			"port": u.Port() != "" || q.Has("port"),
			"user": (u.User != nil && u.User.Username() != "") || q.Has("user"),
		}
		for _, kv := range over {
			if kv[1] != "" && !set[kv[0]] {
				q.Set(kv[0], kv[1])
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	default:
		var parts []string
		for _, kv := range over {
			if kv[1] != "" {
				parts = append(parts, kv[0]+"="+quoteValue(kv[1]))
			}
		}
		if isKeywordValue(f.DSN) {
			parts = append(parts, f.DSN) // later keywords win
		} else if f.DSN != "" {
			parts = append(parts, "dbname="+quoteValue(f.DSN))
		}
		return strings.Join(parts, " "), nil
	}
}

// parseErrorText renders a connection string parse error with the string
// redacted by us: pgx's own masking is best effort and leaves the tail of
// password=Part1\ Part2.
func parseErrorText(err error) string {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	msg := pe.Error()
	reason := "invalid connection string"
	if i := strings.LastIndex(msg, "`: "); i >= 0 {
		reason = msg[i+3:]
	}
	return "cannot parse `" + RedactDSN(pe.ConnString) + "`: " + reason
}

func cleanURLErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error() // url.Error repeats the URL, password included
	}
	return "invalid URI"
}

// Describe renders where a configuration connects, without secrets.
func Describe(cfg *pgx.ConnConfig) string {
	host := cfg.Host
	parts := []string{}
	if strings.HasPrefix(host, "/") {
		parts = append(parts, "socket="+host)
	} else {
		parts = append(parts, "host="+host)
	}
	parts = append(parts, "port="+strconv.Itoa(int(cfg.Port)), "user="+cfg.User)
	if cfg.Database != "" {
		parts = append(parts, "dbname="+cfg.Database)
	}
	return strings.Join(parts, " ")
}

// ChildEnv is the environment for programs pgaegis starts (package
// managers, pg_config, initdb): ours without the libpq variables, so a
// PGPASSWORD given to pgaegis never shows in another process's environment
// (where INST-08 would rightly flag it, and where other users' tools look).
func ChildEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// checkSSLNegotiation holds sslnegotiation to libpq 17's rules, which pgx
// does not check: postgres or direct, and direct only with an sslmode
// that never falls back to plaintext (libpq refuses "weak sslmode"; pgx
// drops prefer's plaintext retry under direct, so prefer passes here).
func checkSSLNegotiation(cfg *pgx.ConnConfig) error {
	switch cfg.SSLNegotiation {
	case "", "postgres":
		return nil
	case "direct":
	default:
		return fmt.Errorf("invalid sslnegotiation value: %q (postgres or direct)", cfg.SSLNegotiation)
	}
	weak := cfg.TLSConfig == nil
	for _, fb := range cfg.Fallbacks {
		weak = weak || fb.TLSConfig == nil
	}
	if weak {
		return errors.New("a weak sslmode (disable, allow) may not be used with sslnegotiation=direct: use sslmode=require, verify-ca or verify-full")
	}
	return nil
}
