package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// rolesCmd is a placeholder until its helper lands (issue 16).
func rolesCmd(env *Env) *cobra.Command {
	return &cobra.Command{Use: "roles", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
