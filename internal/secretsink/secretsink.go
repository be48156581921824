// Package secretsink delivers a new credential to where the application
// reads it: a file written atomically with mode 0600, a line of a pgpass
// file updated in place, a section of a libpq service file, JSON on a
// stream, or a command that reads it on standard input (never in argv or
// an environment). Every file destination can be put back as it was.
package secretsink

import (
	"context"
	"io"
	"time"
)

// Secret is what is delivered: the login role and its new password, and
// where it connects (for pgpass and service entries). Password is the
// only secret; String methods and errors never include it.
type Secret struct {
	Role       string // the role whose password was set (the owner under --strategy alternate)
	User       string // the login role the application must now use (= Role for single)
	Password   []byte
	Host, Port string // the application's path (from --verify or the admin connection)
	Database   string
	ValidUntil *time.Time
}

// Sink is one destination.
type Sink interface {
	// String names the destination without the secret: "file /etc/app/db.pw (0600, password)".
	String() string
	// Deliver writes s. On success it returns how to put the destination
	// back as it was (Undo; nil when it cannot be undone, as for a command
	// that ran or a stream that was written).
	Deliver(ctx context.Context, s Secret) (*Delivery, error)
}

// Delivery is one destination written.
type Delivery struct {
	Sink string // Sink.String()
	// Path is the file written ("" for a command or stream).
	Path string
	// Existed, Previous and PreviousMode are the file as it was before, for
	// a rollback later (journalled with mode 0600; Previous holds the old
	// secret).
	Existed      bool
	Previous     []byte
	PreviousMode uint32
	// Written is the sha256 (hex) of what was written, so a rollback can
	// tell whether the file was changed since.
	Written string
	// Undo restores the file as it was; nil when not possible.
	Undo func() error
}

// File formats for NewFile.
const (
	FormatPassword = "password" // the password and a newline
	FormatJSON     = "json"     // {"user":...,"password":...,"valid_until":...}
	FormatEnv      = "env"      // PGUSER=... and PGPASSWORD=... lines, quoted for sh
)

// NewFile writes the secret to path atomically (temporary file in the same
// directory, fsync, rename, fsync of the directory), mode 0600, owned by
// the running user; it refuses a path whose directory others can write.
func NewFile(path, format string) (Sink, error) { return nil, errNotBuilt }

// NewPgpass updates (or adds) the line host:port:database:user of the
// pgpass file at path ("": $PGPASSFILE or ~/.pgpass), escaping ':' and
// '\' as libpq reads them, keeping every other line byte for byte, mode
// 0600.
func NewPgpass(path string) (Sink, error) { return nil, errNotBuilt }

// NewService sets user= and password= in section [name] of the service
// file at path ("": $PGSERVICEFILE or ~/.pg_service.conf), adding the
// section (with host, port, dbname) when missing, keeping the rest of the
// file byte for byte, mode 0600.
func NewService(path, name string) (Sink, error) { return nil, errNotBuilt }

// NewJSON writes {"role","user","password","valid_until","host","port",
// "dbname"} to w as one line.
func NewJSON(w io.Writer) Sink { return nil }

// NewExec runs command with /bin/sh -c, the secret as JSON (as NewJSON)
// on its standard input and PGAEGIS_ROLE / PGAEGIS_USER (not secret) in
// its environment; a non-zero exit or a timeout is an error that carries
// the command's stderr (with the password redacted).
func NewExec(command string, timeout time.Duration) Sink { return nil }
