// Package secretsink delivers a new credential to where the application
// reads it: a file written atomically with mode 0600, a line of a pgpass
// file updated in place, a section of a libpq service file, JSON on a
// stream, or a command that reads it on standard input (never in argv or
// an environment). Every file destination can be put back as it was.
package secretsink

import (
	"context"
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
	// Note says what the user should know about this delivery (a pgpass
	// line inserted before a wildcard line, a mode that libpq ignored,
	// fixed); "" when nothing. Never a secret.
	Note string
}

// File formats for NewFile.
const (
	FormatPassword = "password" // the password and a newline
	FormatJSON     = "json"     // {"user":...,"password":...,"valid_until":...}
	FormatEnv      = "env"      // PGUSER=... and PGPASSWORD=... lines, quoted for sh
)
