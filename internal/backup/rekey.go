package backup

import (
	"context"
	"errors"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/backupset"
)

// Rekey re-encrypts every file of the set in dir to recipients, writing
// a new manifest (Recipients updated, same key, re-signed); old files are
// replaced only after every new one is committed.
func Rekey(ctx context.Context, dir string, identities []age.Identity, recipients []agekeys.Recipient) (*backupset.Manifest, error) {
	return nil, errors.New("backup: not implemented")
}
