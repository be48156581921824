package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/tlsca"
)

var (
	auditFormats  = []string{"text", "json", "sarif", "html", "pdf", "markdown", "junit"}
	severityNames = []string{"critical", "high", "medium", "low", "info"}
	keyTypes      = []string{tlsca.ECDSA, tlsca.Ed25519, tlsca.RSA3072, tlsca.RSA4096}
)

// profileNames are the --profile values, from the rule catalogue.
func profileNames() []string {
	var out []string
	for _, p := range strings.Split(rules.ProfileNames(), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// completeValues makes the shell complete a flag's value from a fixed list.
func completeValues(cmd *cobra.Command, flag string, values ...string) {
	cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}
