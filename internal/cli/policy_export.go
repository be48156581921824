package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// policyExportCmd is a placeholder until its helper lands (issue 16).
func policyExportCmd(env *Env) *cobra.Command {
	return &cobra.Command{Use: "export", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
