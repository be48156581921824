package cli

import (
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/secretsink"
)

// sinkFlags are where a new secret goes: shared by rotate and
// passwords migrate.
type sinkFlags struct {
	files       []string
	fileFormat  string
	pgpass      string
	service     string
	serviceFile string
	output      string
	exec        []string
}

// register adds the destination flags to cmd.
func (s *sinkFlags) register(cmd *cobra.Command) {}

// given reports whether any destination was named.
func (s *sinkFlags) given() bool { return false }

// sinks builds the destinations for one role (paths may hold {role}).
func (s *sinkFlags) sinks(env *Env, role string) ([]secretsink.Sink, error) { return nil, nil }
