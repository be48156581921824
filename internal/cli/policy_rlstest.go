package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// policyTestCmd is a placeholder until its helper lands (issue 16).
func policyTestCmd(env *Env) *cobra.Command {
	return &cobra.Command{Use: "test", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
