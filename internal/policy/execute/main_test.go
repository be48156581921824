package execute

import (
	"os"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// Tests that compare whole-cluster catalogs start their own server; the
// others share one, each with its own databases and roles.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}
