package scram

import (
	"os"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// One server for the package's oracle tests: initdb is the slow part.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}
