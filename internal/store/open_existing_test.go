package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TestOpenExisting: the readers' opener refuses an empty database or a
// missing file (and creates nothing), and opens a store Open made.
func TestOpenExisting(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		url := b.newURL(t)
		if s, err := OpenExisting(pgtest.Ctx(t), url); !errors.Is(err, ErrNoStore) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("OpenExisting on no store: %v, want ErrNoStore", err)
		} else if strings.Contains(err.Error(), "password") {
			t.Errorf("the error shows the connection string: %v", err)
		}
		// Still nothing there: the refusal created no store.
		if s, err := OpenExisting(pgtest.Ctx(t), url); !errors.Is(err, ErrNoStore) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("OpenExisting the second time: %v, want ErrNoStore", err)
		}
		open(t, url).Close()
		s, err := OpenExisting(pgtest.Ctx(t), url)
		if err != nil {
			t.Fatalf("OpenExisting on a store: %v", err)
		}
		s.Close()
	})
}
