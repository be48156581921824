package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/apply"
	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/fail2ban"
	"github.com/pgaegis/pgaegis/internal/pgconf"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

func fail2banCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fail2ban [connection options | --pgdata DIR | --config-file F] [--write [--dir DIR]]",
		Short: "write a fail2ban filter and jail for PostgreSQL's authentication failures, matched to the server's log_line_prefix and log",
		Long: `Write a fail2ban filter (filter.d/pgaegis-postgresql.conf) and jail
(jail.d/pgaegis-postgresql.local) that ban the addresses failing
PostgreSQL's authentication: "<method> authentication failed for user",
"no pg_hba.conf entry for host", "pg_hba.conf rejects connection for host".

The filter is built from the server's log_line_prefix and log_destination
(stderr, csvlog, jsonlog, syslog through the journal), read from the server
(SHOW) or from postgresql.conf; the jail follows the file the server writes
(log_directory/log_filename under the data directory, Debian's
/var/log/postgresql/postgresql-MAJOR-CLUSTER.log) or the journal. A stderr
prefix without the client's address (%h or %r) is refused: the password
failures would have nothing to ban.

Without --write both files are printed with where they go. --write says
what it writes, journals what was there, and writes them atomically (0644);
it refuses to replace a file pgaegis did not write unless --force.
'pgaegis fail2ban rollback ID' puts the old files back. Reload fail2ban
afterwards: fail2ban-client reload.`,
		Example: `  pgaegis fail2ban -h /var/run/postgresql -U postgres
  sudo pgaegis fail2ban -h /var/run/postgresql -U postgres --write && sudo fail2ban-client reload
  pgaegis fail2ban --pgdata /var/lib/postgresql/17/main --config-file /etc/postgresql/17/main/postgresql.conf
  pgaegis fail2ban rollback 20261203-154000-ab12`,
		Args: noArgs,
	}
	var conn connFlags
	conn.register(cmd)
	var files fileFlags
	fs := cmd.Flags()
	fs.StringVarP(&files.dataDir, "pgdata", "D", "", "data directory (its postgresql.conf, and where a relative log_directory is)")
	fs.StringVar(&files.configFile, "config-file", "", "postgresql.conf to read the log settings from")
	format := fs.String("format", "text", "`FORMAT` of the output: text or json")
	write := fs.Bool("write", false, "write the files under --dir (journalled; see rollback)")
	dir := fs.String("dir", "/etc/fail2ban", "fail2ban's configuration `DIR`")
	force := fs.Bool("force", false, "with --write, replace files pgaegis did not write (the journal keeps them)")
	logPath := fs.String("log-path", "", "the log `PATH` (glob) the jail follows, instead of the one derived from the settings")
	d := fail2ban.Defaults()
	maxRetry := fs.Int("maxretry", d.MaxRetry, "failures within --findtime that ban an address")
	findTime := fs.Duration("findtime", d.FindTime, "window the failures are counted in")
	banTime := fs.Duration("bantime", d.BanTime, "how long an address stays banned")
	banAction := fs.String("banaction", "", "fail2ban action (default: nftables-multiport when nft is installed, else iptables-multiport)")
	journalDir := fs.String("journal-dir", "", journalDirHelp)
	completeValues(cmd, "format", "text", "json")
	cmd.MarkFlagDirname("dir")
	cmd.MarkFlagDirname("journal-dir")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, _ []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("--format %q: text or json", *format)
		}
		if *maxRetry < 1 || *findTime < time.Second || *banTime < time.Second {
			return ExitError, usagef("--maxretry must be at least 1, --findtime and --bantime at least 1s")
		}
		if files.hbaFile != "" || files.identFile != "" {
			return ExitError, usagef("fail2ban reads no pg_hba.conf")
		}
		m, err := fail2banSettings(ctx, env, &conn, &files)
		if err != nil {
			return ExitError, err
		}
		s, err := fail2ban.FromMap(m)
		if err != nil {
			return ExitError, err
		}
		o := fail2ban.Options{LogPath: *logPath, MaxRetry: *maxRetry, FindTime: *findTime, BanTime: *banTime, BanAction: *banAction}
		c, err := fail2ban.Build(s, o)
		if err != nil {
			return ExitError, err
		}
		ts, err := fail2ban.Targets(*dir, c)
		if err != nil {
			return ExitError, err
		}
		out := textsafe.NewWriter(env.Stdout)
		id := ""
		if *write {
			for _, t := range ts {
				what := "create"
				switch {
				case t.Exists && t.Ours:
					what = "replace (written by pgaegis before)"
				case t.Exists:
					what = "replace (not written by pgaegis)"
				}
				fmt.Fprintf(env.Stderr, "pgaegis fail2ban: will %s %s (mode 0644)\n", what, esc(t.Path))
			}
			root := *journalDir
			if root == "" {
				root = apply.DefaultJournalRoot()
			}
			if id, err = fail2ban.Write(root, ts, *force); err != nil {
				return ExitError, err
			}
		}
		if *format == "json" {
			type file struct {
				Path    string `json:"path"`
				Content string `json:"content"`
			}
			v := struct {
				Destination string   `json:"log_destination"`
				LogPath     string   `json:"logpath,omitempty"`
				Backend     string   `json:"backend"`
				Files       []file   `json:"files"`
				Notes       []string `json:"notes"`
				Written     bool     `json:"written"`
				JournalID   string   `json:"journal_id,omitempty"`
			}{c.Filter.Destination, c.LogPath, c.Backend, nil, c.Notes, *write, id}
			for _, t := range ts {
				v.Files = append(v.Files, file{t.Path, string(t.Data)})
			}
			if v.Notes == nil {
				v.Notes = []string{}
			}
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return ExitOK, enc.Encode(v)
		}
		for _, n := range c.Notes {
			fmt.Fprintf(env.Stderr, "note: %s\n", esc(n))
		}
		if *write {
			for _, t := range ts {
				fmt.Fprintf(out, "wrote %s\n", t.Path)
			}
			rb := "pgaegis fail2ban rollback " + quote.Shell(id)
			if *journalDir != "" {
				rb += " --journal-dir " + quote.Shell(*journalDir)
			}
			fmt.Fprintf(out, "journal %s: '%s' puts back what was there\nnext: fail2ban-client reload, then fail2ban-client status %s\n", id, rb, fail2ban.Name)
			return ExitOK, nil
		}
		for _, t := range ts {
			fmt.Fprintf(out, "# ---- %s\n%s\n", t.Path, t.Data)
		}
		fmt.Fprintf(out, "# write them with --write (to --dir, now %s), then: fail2ban-client reload\n", *dir)
		return ExitOK, nil
	})
	cmd.AddCommand(fail2banRollbackCmd(env))
	return cmd
}

// fail2banSettings reads the log settings from the server, or from
// postgresql.conf when only files are named.
func fail2banSettings(ctx context.Context, env *Env, conn *connFlags, files *fileFlags) (map[string]string, error) {
	if conn.given() || !files.given() {
		cfg, err := conn.config(env)
		if err != nil {
			return nil, err
		}
		return collect.ServerSettings(ctx, cfg, fail2ban.SettingNames)
	}
	path := files.configFile
	if path == "" {
		path = filepath.Join(files.dataDir, "postgresql.conf")
	}
	c, err := pgconf.Load(path, pgconf.Options{DataDir: files.dataDir})
	if err != nil {
		return nil, err
	}
	if len(c.Errors) > 0 {
		return nil, c.Errors[0]
	}
	m := map[string]string{}
	for _, n := range fail2ban.SettingNames {
		if e, ok := c.Get(n); ok {
			m[n] = e.Value
		}
	}
	if files.dataDir != "" {
		m["data_directory"] = files.dataDir
	}
	return m, nil
}

func fail2banRollbackCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rollback ID [--journal-dir DIR]",
		Short:   "put back the fail2ban files a --write replaced (or remove the ones it created), from its journal",
		Example: `  pgaegis fail2ban rollback 20261203-154000-ab12`,
		Args:    cobra.ExactArgs(1),
	}
	journalRoot := journalRootFlag(cmd)
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		root := journalRoot()
		done, err := fail2ban.Rollback(root, args[0])
		for _, d := range done {
			fmt.Fprintln(env.Stdout, esc(d))
		}
		if errors.Is(err, fail2ban.ErrNothing) {
			fmt.Fprintln(env.Stdout, esc(err.Error()))
			return ExitOK, nil
		}
		if err != nil {
			return ExitError, err
		}
		fmt.Fprintln(env.Stdout, "next: fail2ban-client reload")
		return ExitOK, nil
	})
	return cmd
}
