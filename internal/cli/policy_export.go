package cli

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/inspect"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// policyExportCmd writes the live state as a policy file, so an existing
// estate adopts policy-as-code in one step.
func policyExportCmd(env *Env) *cobra.Command {
	var conn connFlags
	var databases, schemas, roles []string
	var out string
	var stmtTO time.Duration
	cmd := &cobra.Command{
		Use:   "export [connection options] [--database D ...] [-o FILE]",
		Short: "write the server's roles, grants, default privileges and RLS as a policy file",
		Long: `export reads the server (one read-only transaction per database) and writes its
roles, memberships, ownership, grants, default privileges and row-level security
as a policy file (YAML, mode authoritative; with --role, mode adopt, so the
roles left out are not dropped). Per schema and object kind the most
common owner and grants become "*" and only the objects that differ are named.
No password or verifier is ever written. Databases that could not be read are
named in the header and on stderr.`,
		Example: "  pgaegis access policy export -d appdb --database appdb -o policy.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := conn.config(env)
			if err != nil {
				return err
			}
			o := inspect.Options{Databases: databases, StatementTimeout: stmtTO}
			if p := progress(env); p != nil {
				o.Progress = progressWriter(p)
			}
			live, err := inspect.Read(cmd.Context(), cfg, o)
			clearProgress(env)
			if err != nil {
				return err
			}
			f := inspect.Export(live, inspect.ExportOptions{Databases: databases, Schemas: schemas, Roles: roles})
			modeText := "what the file's scope holds is exactly the file; roles not in roles: are dropped"
			if len(roles) > 0 {
				// roles: lists only the roles asked for: as authoritative the
				// file would drop every other role. Adopt is exact for the
				// roles (and grantees) it names and leaves the rest alone.
				f.Mode = policy.Adopt
				modeText = "exact for the roles and grantees the file names; other roles are left as they are"
			}
			header := []string{
				"pgaegis access policy export",
				fmt.Sprintf("server: %s, PostgreSQL %d, read as %s", conninfo.Describe(cfg), live.Major, live.CurrentUser),
				"at: " + time.Now().UTC().Format(time.RFC3339),
				"mode: " + f.Mode + " (" + modeText + ")",
			}
			var unread []string
			for k := range live.Unreadable {
				unread = append(unread, k)
			}
			sort.Strings(unread)
			for _, k := range unread {
				header = append(header, fmt.Sprintf("not read: %s: %s", k, live.Unreadable[k]))
				fmt.Fprintf(env.Stderr, "warning: not read: %s: %s\n", textsafe.String(k), textsafe.String(live.Unreadable[k]))
			}
			data, err := inspect.Marshal(f, header)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = env.Stdout.Write(data)
				return err
			}
			return safefile.WriteFile(out, data, 0o644)
		},
	}
	conn.register(cmd)
	fs := cmd.Flags()
	fs.StringArrayVar(&databases, "database", nil, "only this database (repeat for more; default every database that allows connections)")
	fs.StringArrayVar(&schemas, "schema", nil, "only this schema (repeat for more)")
	fs.StringArrayVar(&roles, "role", nil, "only this role in the roles section (repeat for more; the file is then in adopt mode, so other roles are left alone)")
	fs.StringVarP(&out, "output", "o", "", "write to this file (atomically) instead of stdout")
	fs.DurationVar(&stmtTO, "statement-timeout", 60*time.Second, "limit for each query on the server")
	return cmd
}

// progressWriter turns Read's progress lines into the terminal's
// one-line progress.
type progressWriter func(string, ...any)

func (p progressWriter) Write(b []byte) (int, error) {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n') {
		s = s[:len(s)-1]
	}
	p("%s", s)
	return len(b), nil
}
