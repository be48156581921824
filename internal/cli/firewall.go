package cli

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/firewall"
	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/hbapolicy"
	"github.com/pgaegis/pgaegis/internal/pgconf"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func firewallCmd(env *Env) *cobra.Command {
	return groupCmd(env, "firewall", "the PostgreSQL port's firewall, derived from what pg_hba.conf accepts",
		`  pgaegis firewall plan -h db.example.com -U auditor > pgaegis.nft
  pgaegis firewall plan --hba-file pg_hba.conf --config-file postgresql.conf --output iptables`,
		firewallPlanCmd(env))
}

func firewallPlanCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan [connection options | --hba-file F --config-file F] [--output nft|iptables|ip6tables|firewalld]",
		Short: "the smallest allow-list for the PostgreSQL port that pg_hba.conf and listen_addresses need, as a firewall script",
		Long: `Derives, from listen_addresses, the port and the networks pg_hba.conf accepts (first
match wins: reject lines and shadowed lines open nothing; replication separately), the
smallest list of source networks for the PostgreSQL port, and prints it as a script that
touches that port only (SSH and every other port are never matched). Nothing is loaded:
see docs/firewall.md for loading it by hand. Notes (DNS names, samenet, undecided
names) are comments in the script; warnings also go to stderr.`,
		Example: `  pgaegis firewall plan -h db.example.com -U auditor > pgaegis.nft && nft -f pgaegis.nft
  pgaegis firewall plan --hba-file /etc/postgresql/17/main/pg_hba.conf --config-file /etc/postgresql/17/main/postgresql.conf --output iptables
  pgaegis firewall plan --hba-file pg_hba.conf --config-file postgresql.conf --format json`,
		Args: noArgs,
	}
	var conn connFlags
	conn.register(cmd)
	fs := cmd.Flags()
	hbaFile := fs.String("hba-file", "", "pg_hba.conf to read (offline, with --config-file)")
	confFile := fs.String("config-file", "", "postgresql.conf for listen_addresses and port (offline)")
	output := fs.String("output", "nft", "rendering: "+strings.Join(firewall.Formats, ", "))
	format := fs.String("format", "text", "text (the script) or json (the derived policy)")
	version := fs.Int("pg-version", 0, "PostgreSQL major version for offline files (default: newest semantics)")
	onHost := fs.Bool("on-host", false, "offline files are this machine's: samehost and samenet use its interface addresses")
	cmd.MarkFlagFilename("hba-file")
	cmd.MarkFlagFilename("config-file", "conf")
	completeValues(cmd, "output", firewall.Formats...)
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("--format %q: text or json", *format)
		}
		if !strings.Contains(","+strings.Join(firewall.Formats, ",")+",", ","+*output+",") {
			return ExitError, usagef("--output %q: one of %s", *output, strings.Join(firewall.Formats, ", "))
		}
		offline := *hbaFile != "" || *confFile != ""
		if offline && (*hbaFile == "" || *confFile == "") {
			return ExitError, usagef("--hba-file and --config-file go together (offline: the port and listen_addresses come from the config file)")
		}
		if offline && conn.given() {
			return ExitError, usagef("give either connection options or --hba-file/--config-file, not both")
		}
		var in firewall.Input
		var err error
		if offline {
			in, err = firewallOffline(env, *hbaFile, *confFile, *version)
			if *onHost {
				in.Env.HostAddrs = hbapolicy.LocalAddrs()
			}
		} else {
			in, err = firewallLive(ctx, env, &conn, *version)
		}
		if err != nil {
			return ExitError, err
		}
		p, err := firewall.Derive(in)
		if err != nil {
			return ExitError, err
		}
		for _, n := range p.Notes {
			if strings.HasPrefix(n, "WARNING") {
				fmt.Fprintln(env.Stderr, esc(n))
			}
		}
		if *format == "json" {
			return ExitOK, writeJSON(env, p)
		}
		s, err := p.Render(*output)
		if err != nil {
			return ExitError, err
		}
		_, err = fmt.Fprint(env.Stdout, s)
		return ExitOK, err
	})
	return cmd
}

// firewallOffline reads the two files as the server would.
func firewallOffline(env *Env, hbaPath, confPath string, version int) (firewall.Input, error) {
	cfg, err := pgconf.Load(confPath, pgconf.Options{Major: version})
	if err != nil {
		return firewall.Input{}, err
	}
	for _, e := range cfg.Errors {
		fmt.Fprintf(env.Stderr, "warning: %s\n", esc(e.Error()))
	}
	get := func(name, def string) (string, string) {
		if e, ok := cfg.Get(name); ok {
			return e.Value, e.Location()
		}
		return def, "the default"
	}
	ssl := false
	if v, _ := get("ssl", "off"); v != "" {
		ssl, _ = guc.ParseBool(v)
	}
	f, err := hba.ParseFile(hbaPath, hba.Options{SSL: ssl, Version: version})
	if err != nil {
		return firewall.Input{}, err
	}
	for _, e := range f.Errors {
		fmt.Fprintf(env.Stderr, "warning: %s (the server would refuse to load this file)\n", esc(e.Error()))
	}
	listen, _ := get("listen_addresses", "localhost")
	portText, where := get("port", "5432")
	port, err := strconv.Atoi(strings.TrimSpace(portText))
	if err != nil {
		return firewall.Input{}, fmt.Errorf("%s: port %q is not a number", where, portText)
	}
	return firewall.Input{Rules: f.Rules, Env: hba.Env{Version: version}, Listen: splitListen(listen), Port: port, NoTLS: !ssl}, nil
}

// sessionAddr is the client address the server sees for pgaegis's own
// connection (invalid for a socket, or when it cannot be read): the plan
// warns when it would not let that address connect again.
func sessionAddr(ctx context.Context, cfg *pgx.ConnConfig) netip.Addr {
	c, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close(ctx)
	var addr *string
	if err := c.QueryRow(ctx, "SELECT host(inet_client_addr())").Scan(&addr); err != nil || addr == nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(*addr)
	return a
}

func splitListen(v string) []string {
	if items, ok := guc.SplitQuotedList(v); ok {
		return items
	}
	return guc.SplitList(v)
}

// firewallLive collects the rules, roles and settings from the server,
// as hba explain does.
func firewallLive(ctx context.Context, env *Env, conn *connFlags, version int) (firewall.Input, error) {
	cfg, err := conn.config(env)
	if err != nil {
		return firewall.Input{}, err
	}
	src := hbaSource{conn: *conn, version: version, cfg: cfg}
	rules, snap, menv, err := src.load(ctx, env)
	if err != nil {
		return firewall.Input{}, err
	}
	in := firewall.Input{Rules: rules, Env: menv, Port: 5432, Session: sessionAddr(ctx, cfg)}
	if v, ok := snap.Setting("listen_addresses"); ok {
		in.Listen = splitListen(v.Value)
	} else {
		return in, fmt.Errorf("listen_addresses is not readable through this connection (%s)", snap.Gap(snapshot.GapSettings))
	}
	if v, ok := snap.Setting("port"); ok {
		if n, err := strconv.Atoi(v.Value); err == nil {
			in.Port = n
		}
	}
	if v, ok := snap.Setting("ssl"); ok {
		on, _ := guc.ParseBool(v.Value)
		in.NoTLS = !on
	}
	for _, r := range snap.Roles {
		in.Roles = append(in.Roles, r.Name)
	}
	return in, nil
}
