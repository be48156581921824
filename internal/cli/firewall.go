package cli

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/apply"
	"github.com/pgaegis/pgaegis/internal/firewall"
	"github.com/pgaegis/pgaegis/internal/fwapply"
	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/hbapolicy"
	"github.com/pgaegis/pgaegis/internal/pgconf"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

func firewallCmd(env *Env) *cobra.Command {
	return groupCmd(env, "firewall", "the PostgreSQL port's firewall, derived from what pg_hba.conf accepts",
		`  pgaegis firewall plan -h db.example.com -U auditor > pgaegis.nft
  pgaegis firewall plan --hba-file pg_hba.conf --config-file postgresql.conf --output iptables`,
		firewallPlanCmd(env), firewallConfirmCmd(env), firewallRollbackCmd(env))
}

func firewallPlanCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan [connection options | --hba-file F --config-file F] [--output nft|iptables|ip6tables|firewalld]",
		Short: "the smallest allow-list for the PostgreSQL port that pg_hba.conf and listen_addresses need, as a firewall script",
		Long: `Derives, from listen_addresses, the port and the networks pg_hba.conf accepts (first
match wins: reject lines and shadowed lines open nothing; replication separately), the
smallest list of source networks for the PostgreSQL port, and prints it as a script that
touches that port only (SSH and every other port are never matched). Notes (DNS names,
samenet, undecided names) are comments in the script; warnings also go to stderr.

Without --apply nothing is loaded (docs/firewall.md: loading it by hand). With --apply
(nft, iptables or ip6tables, on the database host, as root) it says what it will do,
journals pgaegis's own table or chain as it is, arms a watchdog that survives pgaegis
and the SSH session, loads the script and waits --confirm-within for a confirmation:
type yes, or better run 'pgaegis firewall confirm ID' from a NEW session (which proves
new connections get through). No confirmation: the previous state comes back
(docs/firewall-apply.md). 'firewall rollback ID' undoes a kept apply.

Exit codes: 0 printed, or applied and confirmed; 2 a usage error, a refusal, or an
apply that was reverted.`,
		Example: `  pgaegis firewall plan -h db.example.com -U auditor > pgaegis.nft && nft -f pgaegis.nft
  pgaegis firewall plan --hba-file /etc/postgresql/17/main/pg_hba.conf --config-file /etc/postgresql/17/main/postgresql.conf --output iptables
  pgaegis firewall plan --hba-file pg_hba.conf --config-file postgresql.conf --format json
  sudo pgaegis firewall plan -h /var/run/postgresql -U postgres --apply --confirm-within 60s`,
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
	doApply := fs.Bool("apply", false, "load the script on this host with a timed confirmation (nft, iptables, ip6tables)")
	within := fs.Duration("confirm-within", fwapply.DefaultConfirmWithin, "with --apply: the ruleset reverts unless confirmed within this")
	journalDir := fs.String("journal-dir", "", journalDirHelp)
	keepPorts := fs.IntSlice("keep-port", nil, "with --apply: TCP `PORT`s besides 22 and SSH_CONNECTION's that the script must never drop (repeatable)")
	netnsName := fs.String("netns", "", "with --apply: load into the named network namespace (ip netns) instead of the host's")
	force := fs.Bool("force", false, "with --apply: load even when the plan would not let pgaegis's own session's address connect again")
	cmd.MarkFlagDirname("journal-dir")
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
		if *doApply {
			if *format == "json" {
				return ExitError, usagef("--apply prints its progress as text; --format json is for the derived policy")
			}
			return firewallApply(ctx, env, p, fwApplyFlags{output: *output, within: *within, journal: *journalDir, keep: *keepPorts, force: *force, netns: *netnsName})
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

type fwApplyFlags struct {
	output  string
	within  time.Duration
	journal string
	keep    []int
	force   bool
	netns   string
}

// firewallApply loads the plan's rendering through fwapply: what it will
// do first, then the window, then kept or reverted.
func firewallApply(ctx context.Context, env *Env, p *firewall.Policy, f fwApplyFlags) (int, error) {
	if f.output == "firewalld" {
		return ExitError, usagef("--apply loads nft, iptables or ip6tables rulesets; for firewalld run the printed firewall-cmd script (firewall-cmd has its own --timeout)")
	}
	if f.within <= 0 {
		return ExitError, usagef("--confirm-within must be positive")
	}
	for _, n := range p.Notes {
		if strings.Contains(n, "pgaegis's own session") && !f.force {
			return ExitError, fmt.Errorf("refused: %s (give --force to load it anyway)", n)
		}
	}
	script, err := p.Render(f.output)
	if err != nil {
		return ExitError, err
	}
	root := f.journal
	if root == "" {
		root = apply.DefaultJournalRoot()
	}
	o := fwapply.Options{Backend: f.output, NetNS: f.netns, Script: []byte(script), ConfirmWithin: f.within, JournalDir: root, KeepPorts: f.keep, Out: env.Stderr}
	v4, v6 := p.Jumps()
	switch f.output {
	case "iptables":
		o.Jumps = v4
	case "ip6tables":
		o.Jumps = v6
	}
	if isTerminalReader(env.Stdin) {
		o.Prompt = env.Stdin
	}
	w := textsafe.NewWriter(env.Stderr)
	fmt.Fprint(w, fwapply.Describe(o))
	o.OnLoaded = func(id string) {
		fmt.Fprintf(w, "loaded (apply %s). From a NEW session, within %s:\n    pgaegis firewall confirm %s%s\n", id, f.within, id, journalFlag(f.journal))
		if o.Prompt != nil {
			fmt.Fprintf(w, "or type yes here.\n")
		}
	}
	res, err := fwapply.Apply(ctx, o) // it prints its own outcome to o.Out
	switch {
	case err != nil:
		return ExitError, err
	case res.Kept:
		fmt.Fprintf(w, "kept: apply %s is confirmed; undo it with: pgaegis firewall rollback %s%s\n", res.ID, res.ID, journalFlag(f.journal))
		return ExitOK, nil
	default:
		return ExitError, fmt.Errorf("apply %s was not confirmed: reverted by %s%s", res.ID, res.RevertedBy, map[bool]string{true: " and checked", false: ""}[res.Verified])
	}
}

func journalFlag(dir string) string {
	if dir == "" {
		return ""
	}
	return " --journal-dir " + quote.Shell(dir)
}

func firewallConfirmCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "confirm ID [--journal-dir DIR]",
		Short: "keep a firewall apply that is in its confirmation window (run it from a new session)",
		Long: `Keeps 'firewall plan --apply' ID: run it over a NEW SSH login (or a new connection of
whatever kind you need) while the apply waits, so that the confirmation itself proves
new connections get through. Established ones survive even a bad ruleset.

Exit codes: 0 confirmed; 2 no such apply, or its window is over.`,
		Example: `  pgaegis firewall confirm 20261203-170102-9f3c`,
		Args:    exactArgs(1, "firewall confirm needs the apply's ID (printed by firewall plan --apply)"),
	}
	journalRoot := journalRootFlag(cmd)
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		root := journalRoot()
		if err := fwapply.Confirm(root, args[0]); err != nil {
			return ExitError, err
		}
		fmt.Fprintf(textOut(env), "confirmed firewall apply %s\n", esc(args[0]))
		return ExitOK, nil
	})
	return cmd
}

func firewallRollbackCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback ID [--journal-dir DIR]",
		Short: "put back what a confirmed firewall apply replaced",
		Long: `Restores pgaegis's own table (nft) or chain and jumps (iptables) as they were before
apply ID, and checks the result; other tables and chains are not touched. It refuses
when pgaegis's table or chain changed since (roll back the later apply first). A second
rollback has nothing to do.

Exit codes: 0 rolled back, or nothing to do; 2 an error or a refusal.`,
		Example: `  pgaegis firewall rollback 20261203-170102-9f3c`,
		Args:    exactArgs(1, "firewall rollback needs the apply's ID"),
	}
	journalRoot := journalRootFlag(cmd)
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		root := journalRoot()
		res, err := fwapply.Rollback(ctx, root, args[0])
		if err != nil {
			return ExitError, err
		}
		w := textOut(env)
		switch {
		case res.Message != "":
			fmt.Fprintln(w, esc(res.Message))
		case res.Nothing:
			fmt.Fprintf(w, "firewall apply %s: nothing to roll back\n", esc(res.ID))
		default:
			fmt.Fprintf(w, "firewall apply %s rolled back\n", esc(res.ID))
		}
		return ExitOK, nil
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
	if err := hbaLoadable(f.Errors); err != nil {
		return firewall.Input{}, err
	}
	listen, _ := get("listen_addresses", "localhost")
	portText, where := get("port", "5432")
	port, err := strconv.Atoi(strings.TrimSpace(portText))
	if err != nil {
		return firewall.Input{}, fmt.Errorf("%s: port %q is not a number", where, portText)
	}
	return firewall.Input{Rules: f.Rules, Env: hba.Env{Version: version}, Listen: splitListen(listen), Port: port, NoTLS: !ssl}, nil
}

// hbaLoadable refuses a pg_hba.conf the server would not load: a reload
// keeps the old rules in force, so a firewall derived from this file would
// not match what the server allows.
func hbaLoadable(errs []hba.ParseError) error {
	if len(errs) == 0 {
		return nil
	}
	var b strings.Builder
	for i, e := range errs {
		if i == 5 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(errs)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %s", e.Error())
	}
	return fmt.Errorf("the server would refuse to load this pg_hba.conf (a reload keeps the rules it has), so no firewall is derived from it; fix these first:%s", b.String())
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
	if snap.HBA != nil {
		if err := hbaLoadable(snap.HBA.Errors); err != nil {
			return firewall.Input{}, err
		}
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
