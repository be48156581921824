package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// policyApplyCmd is a placeholder until its helper lands (issue 16).
func policyApplyCmd(env *Env) *cobra.Command {
	return &cobra.Command{Use: "apply", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}

func policyRollbackCmd(env *Env) *cobra.Command {
	return &cobra.Command{Use: "rollback", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
