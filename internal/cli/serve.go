package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/store"
	"github.com/pgaegis/pgaegis/internal/web"
)

func serveCmd(env *Env) *cobra.Command {
	var storeURL, listen, certFile, keyFile string
	var insecure, ruleMetrics bool
	cmd := &cobra.Command{
		Use:   "serve [--store URL] [--listen ADDR] [--tls-cert FILE --tls-key FILE]",
		Short: "fleet dashboard and Prometheus /metrics over a store (tokens: serve token)",
		Long: `Serve the fleet dashboard (servers with scores and trends, a server's findings,
a finding's history, certificates by expiry, drift since the previous scan)
and /metrics for Prometheus, read from the store fleet scans write.

Every page and /metrics needs a token made with 'pgaegis serve token create':
browsers log in with it (a session cookie), Prometheus and scripts send it as
"Authorization: Bearer TOKEN". A read-only token sees everything; an operator
token may also revoke tokens from the dashboard.

It listens on 127.0.0.1:8642. An address other than loopback needs TLS
(--tls-cert and --tls-key, as 'pgaegis tls issue server' writes them) unless
--insecure-listen says a proxy in front terminates TLS.`,
		Example: `  pgaegis serve --store /var/lib/pgaegis/fleet.db
  pgaegis serve --store /var/lib/pgaegis/fleet.db --listen 0.0.0.0:8642 --tls-cert certs/server.crt --tls-key certs/server.key
  pgaegis serve token create --store /var/lib/pgaegis/fleet.db --role read-only --name grafana`,
		Args: noArgs,
		RunE: runE(env, func(ctx context.Context, env *Env, _ []string) (int, error) {
			if (certFile == "") != (keyFile == "") {
				return ExitError, usagef("--tls-cert and --tls-key go together")
			}
			useTLS := certFile != ""
			if err := checkListen(listen, useTLS, insecure); err != nil {
				return ExitError, err
			}
			var tlsCfg *tls.Config
			if useTLS {
				pair, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					return ExitError, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
				}
				tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
			}
			st, err := openStoreURL(ctx, storeURL, false)
			if err != nil {
				return ExitError, err
			}
			defer st.Close()
			logger := log.New(env.Stderr, "pgaegis serve: ", log.LstdFlags)
			srv := web.New(web.Options{Store: st, TLS: useTLS, RuleMetrics: ruleMetrics, Log: logger})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return ExitError, err
			}
			if tlsCfg != nil {
				ln = tls.NewListener(ln, tlsCfg)
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
				WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
				ErrorLog: log.New(env.Stderr, "pgaegis serve: http: ", log.LstdFlags)}
			scheme := "http"
			if useTLS {
				scheme = "https"
			}
			shown := listen
			if _, port, _ := net.SplitHostPort(listen); port == "0" {
				shown = ln.Addr().String() // the port the kernel chose
			}
			fmt.Fprintf(env.Stdout, "pgaegis serve: %s://%s/ (store: %s)\n", scheme, shown, st.Backend())
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
			defer stop()
			go func() {
				if err := srv.Warm(ctx); err != nil && ctx.Err() == nil {
					logger.Printf("reading the fleet: %v", err)
				}
			}()
			done := make(chan error, 1)
			go func() { done <- hs.Serve(ln) }()
			select {
			case err := <-done:
				return ExitError, err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
			return ExitOK, nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&storeURL, "store", "", storeFlagHelp)
	f.StringVar(&listen, "listen", "127.0.0.1:8642", "address to listen on; other than loopback needs --tls-cert/--tls-key or --insecure-listen")
	f.StringVar(&certFile, "tls-cert", "", "serve HTTPS with this certificate (PEM, e.g. from 'pgaegis tls issue server')")
	f.StringVar(&keyFile, "tls-key", "", "the certificate's private key (PEM, unencrypted)")
	f.BoolVar(&insecure, "insecure-listen", false, "allow plain HTTP on an address other than loopback (a TLS proxy in front)")
	f.BoolVar(&ruleMetrics, "rule-metrics", false, "export per-rule series on every /metrics scrape (else only with ?detail=rules)")
	cmd.AddCommand(serveTokenCmd(env))
	return cmd
}

// checkListen refuses plain HTTP beyond loopback: tokens and session
// cookies would cross the network in clear.
func checkListen(addr string, useTLS, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--listen %q: %v (want HOST:PORT, e.g. 127.0.0.1:8642)", addr, err)
	}
	if useTLS || insecure {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usagef("--listen %s is not a loopback address: give --tls-cert and --tls-key (tokens would cross the network in clear), or --insecure-listen behind a TLS proxy", addr)
}

func serveTokenCmd(env *Env) *cobra.Command {
	var storeURL string
	addStore := func(c *cobra.Command) *cobra.Command {
		c.Flags().StringVar(&storeURL, "store", "", storeFlagHelp)
		return c
	}
	var role, name string
	create := addStore(&cobra.Command{
		Use:   "create --role read-only|operator [--name NAME]",
		Short: "make a dashboard/API token: printed once, stored hashed",
		Long: `Make a token for pgaegis serve. The token is printed once, on stdout; the store
keeps only its SHA-256, so a lost token cannot be shown again: revoke it and
make another. read-only sees every page and /metrics; operator may also revoke
tokens from the dashboard.`,
		Example: `  pgaegis serve token create --store /var/lib/pgaegis/fleet.db --role read-only --name grafana
  pgaegis serve token create --store /var/lib/pgaegis/fleet.db --role operator --name alice`,
		Args: noArgs,
		RunE: runE(env, func(ctx context.Context, env *Env, _ []string) (int, error) {
			if !store.ValidRole(role) {
				return ExitError, usagef("--role %q: want %s or %s", role, store.RoleReadOnly, store.RoleOperator)
			}
			st, err := openStoreURL(ctx, storeURL, true) // a token may come before the first scan
			if err != nil {
				return ExitError, err
			}
			defer st.Close()
			tok, hash, err := web.NewToken()
			if err != nil {
				return ExitError, err
			}
			n := name
			if n == "" {
				n = role + "-" + hash[:8]
			}
			t, err := st.CreateToken(ctx, n, role, hash, time.Now())
			if err != nil {
				return ExitError, err
			}
			fmt.Fprintf(env.Stderr, "token %d %q (%s) created; it is shown once, keep it in a secret store:\n", t.ID, t.Name, t.Role)
			fmt.Fprintln(env.Stdout, tok)
			return ExitOK, nil
		}),
	})
	create.Flags().StringVar(&role, "role", "", "read-only or operator")
	create.Flags().StringVar(&name, "name", "", "a name to tell the token by (default ROLE-HASHPREFIX)")
	list := addStore(&cobra.Command{
		Use:     "list",
		Short:   "list tokens (names, roles, last use; never the tokens)",
		Example: "  pgaegis serve token list --store /var/lib/pgaegis/fleet.db",
		Args:    noArgs,
		RunE: runE(env, func(ctx context.Context, env *Env, _ []string) (int, error) {
			st, err := openStoreURL(ctx, storeURL, false)
			if err != nil {
				return ExitError, err
			}
			defer st.Close()
			ts, err := st.ListTokens(ctx)
			if err != nil {
				return ExitError, err
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tLAST USED\tSTATE")
			stamp := func(t time.Time) string {
				if t.IsZero() {
					return "never"
				}
				return t.UTC().Format("2006-01-02 15:04")
			}
			for _, t := range ts {
				state := "active"
				if !t.RevokedAt.IsZero() {
					state = "revoked " + stamp(t.RevokedAt)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, stamp(t.CreatedAt), stamp(t.LastUsed), state)
			}
			return ExitOK, tw.Flush()
		}),
	})
	revoke := addStore(&cobra.Command{
		Use:     "revoke ID|NAME",
		Short:   "revoke a token (its sessions end within 15 s)",
		Example: "  pgaegis serve token revoke --store /var/lib/pgaegis/fleet.db grafana",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("%s takes one token id or name", c.CommandPath())
			}
			return nil
		},
		RunE: runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
			st, err := openStoreURL(ctx, storeURL, false)
			if err != nil {
				return ExitError, err
			}
			defer st.Close()
			t, err := st.RevokeToken(ctx, args[0], time.Now())
			if errors.Is(err, store.ErrNotFound) {
				return ExitError, fmt.Errorf("no active token %q (see 'pgaegis serve token list')", args[0])
			}
			if err != nil {
				return ExitError, err
			}
			fmt.Fprintf(env.Stdout, "token %d %q revoked\n", t.ID, t.Name)
			return ExitOK, nil
		}),
	})
	return groupCmd(env, "token", "make, list and revoke the tokens pgaegis serve accepts",
		"  pgaegis serve token create --store /var/lib/pgaegis/fleet.db --role read-only --name grafana\n  pgaegis serve token list --store /var/lib/pgaegis/fleet.db",
		create, list, revoke)
}
