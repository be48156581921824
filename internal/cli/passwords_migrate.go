package cli

import (
	"context"

	"github.com/spf13/cobra"
)

// passwordsMigrateCmd is 'pgaegis passwords migrate' (docs/passwords.md):
// md5 and clear-text verifiers to SCRAM.
func passwordsMigrateCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "migrate [connection options]",
		Short:  "move md5 and clear-text password verifiers to SCRAM-SHA-256",
		Hidden: true, // until built
		Args:   noArgs,
	}
	var conn connFlags
	conn.register(cmd)
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		return ExitError, usagef("passwords migrate is not built yet")
	})
	return cmd
}
