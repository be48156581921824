package secretsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// NewFile writes the secret to path atomically (temporary file in the same
// directory, fsync, rename, fsync of the directory), mode 0600. It refuses
// a symbolic link, a directory others can write (without the sticky bit)
// or that is owned by someone other than us or root, and a file owned by
// someone else unless we are root; as root the new file keeps the old
// one's owner and group (a new file is root's).
func NewFile(path, format string) (Sink, error) {
	switch format {
	case "":
		format = FormatPassword
	case FormatPassword, FormatJSON, FormatEnv:
	default:
		return nil, fmt.Errorf("file %s: unknown format %q (want %s, %s or %s)", path, format, FormatPassword, FormatJSON, FormatEnv)
	}
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	return &fileSink{path: p, format: format}, nil
}

type fileSink struct{ path, format string }

func (f *fileSink) String() string {
	return fmt.Sprintf("file %s (0600, %s)", f.path, f.format)
}

func (f *fileSink) Deliver(ctx context.Context, s Secret) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := fileContent(f.format, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	if err := checkDir(f.path); err != nil {
		return nil, err
	}
	was, err := readCurrent(f.path)
	if err != nil {
		return nil, err
	}
	return replace(f.String(), f.path, was, data)
}

func cleanPath(path string) (string, error) {
	if path == "" {
		return "", errors.New("secretsink: empty path")
	}
	return filepath.Abs(path)
}

// checkSecret refuses what no destination can carry. Its errors never
// hold the password.
func checkSecret(s Secret) error {
	switch {
	case len(s.Password) == 0:
		return errors.New("empty password")
	case bytes.IndexByte(s.Password, 0) >= 0:
		return errors.New("the password holds a NUL byte, which no file format or libpq can carry")
	case s.User == "":
		return errors.New("no user")
	case strings.IndexByte(s.User, 0) >= 0:
		return errors.New("the user name holds a NUL byte")
	}
	return nil
}

func fileContent(format string, s Secret) ([]byte, error) {
	if err := checkSecret(s); err != nil {
		return nil, err
	}
	switch format {
	case FormatJSON:
		return marshal(struct {
			User       string     `json:"user"`
			Password   string     `json:"password"`
			ValidUntil *time.Time `json:"valid_until"`
		}{s.User, string(s.Password), s.ValidUntil}, s.Password)
	case FormatEnv:
		if bytes.ContainsAny(s.Password, "\n\r") {
			// sh would read it, but many env-file readers (systemd,
			// docker) would not; refuse rather than half-work.
			return nil, errors.New("the password holds a line break, which an env file cannot carry safely")
		}
		var b bytes.Buffer
		b.WriteString("PGUSER=")
		shQuote(&b, []byte(s.User))
		b.WriteString("\nPGPASSWORD=")
		shQuote(&b, s.Password)
		b.WriteString("\n")
		return b.Bytes(), nil
	default:
		if bytes.ContainsAny(s.Password, "\n\r") {
			return nil, errors.New("the password holds a line break, which a one-line password file cannot carry")
		}
		return append(append([]byte{}, s.Password...), '\n'), nil
	}
}

// shQuote writes v in single quotes, a quote inside as '\” (the only
// character sh does not take literally between single quotes).
func shQuote(b *bytes.Buffer, v []byte) {
	b.WriteByte('\'')
	for _, c := range v {
		if c == '\'' {
			b.WriteString(`'\''`)
		} else {
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
}

// marshal encodes v as one line of JSON. A password that is not UTF-8
// is refused: encoding/json would silently replace the invalid bytes and
// deliver a different password.
func marshal(v any, password []byte) ([]byte, error) {
	if !utf8.Valid(password) {
		return nil, errors.New("the password is not valid UTF-8, which JSON cannot carry unchanged")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Encode errors name the type, never the value.
		return nil, err
	}
	return b.Bytes(), nil
}
