package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// policyPlanCmd is a placeholder until its helper lands (issue 16).
func policyPlanCmd(env *Env) *cobra.Command {
	return &cobra.Command{Use: "plan", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
