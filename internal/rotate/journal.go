package rotate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pgaegis/pgaegis/internal/secretsink"
)

// Journal extra files (0600, as every journal file).
const (
	verifiersFile  = "verifiers.json"  // the previous verifiers, VALID UNTIL and comments
	deliveriesFile = "deliveries.json" // each destination as it was before (old secrets)
)

// savedRole is one role as it was before the rotation, and a hash of
// what the rotation set, so a rollback can tell a later change apart.
type savedRole struct {
	Role string `json:"role"`
	// Verifier is the previous rolpassword (nil: none); Readable false
	// when pg_authid could not be read (NoRestore).
	Verifier *string `json:"verifier"`
	Readable bool    `json:"readable"`
	// ValidUntil is the previous rolvaliduntil (nil: none);
	// SetValidUntil says the rotation changed it.
	ValidUntil    *string `json:"valid_until"`
	SetValidUntil bool    `json:"set_valid_until,omitempty"`
	// Comment is the previous COMMENT ON ROLE (alternate's marker).
	Comment    *string `json:"comment,omitempty"`
	SetComment bool    `json:"set_comment,omitempty"`
	// NewSHA256 is the sha256 of the verifier the rotation set ("" for a
	// role whose password it did not change).
	NewSHA256 string `json:"new_sha256,omitempty"`
	Created   bool   `json:"created,omitempty"`
}

type savedRotation struct {
	Strategy string      `json:"strategy"`
	Role     string      `json:"role"`
	User     string      `json:"user"`
	Previous string      `json:"previous,omitempty"`
	Roles    []savedRole `json:"roles"`
}

// savedDelivery is a secretsink.Delivery without its Undo.
type savedDelivery struct {
	Sink         string `json:"sink"`
	Path         string `json:"path,omitempty"`
	Existed      bool   `json:"existed"`
	Previous     []byte `json:"previous,omitempty"`
	PreviousMode uint32 `json:"previous_mode,omitempty"`
	Written      string `json:"written,omitempty"`
}

func toSaved(ds []*secretsink.Delivery) []savedDelivery {
	out := make([]savedDelivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, savedDelivery{Sink: d.Sink, Path: d.Path, Existed: d.Existed, Previous: d.Previous, PreviousMode: d.PreviousMode, Written: d.Written})
	}
	return out
}

func marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

type extraReader interface {
	ReadExtra(name string) ([]byte, error)
}

// readExtra reads a journal extra file into v; missing reports whether
// there was none.
func readExtra(j extraReader, dir, name string, v any) (missing bool, err error) {
	if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	b, err := j.ReadExtra(name)
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("journal %s: %v", filepath.Join(dir, name), err)
	}
	return false, nil
}
