package cli

import (
	"context"

	"github.com/spf13/cobra"
)

// rotateCmd is 'pgaegis rotate ROLE' and 'rotate rollback ID' (docs/rotate.md).
func rotateCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "rotate ROLE [connection options] [destinations]",
		Short:  "change a role's password without the clear text reaching the server, prove it, deliver it",
		Hidden: true, // until built
		Args:   cobra.ExactArgs(1),
	}
	var conn connFlags
	conn.register(cmd)
	var sinks sinkFlags
	sinks.register(cmd)
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		return ExitError, usagef("rotate is not built yet")
	})
	return cmd
}
