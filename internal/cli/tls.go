package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/textsafe"
	"github.com/pgaegis/pgaegis/internal/tlsca"
	"github.com/pgaegis/pgaegis/internal/tlsprobe"
)

func tlsCmd(env *Env) *cobra.Command {
	issue := groupCmd(env, "issue", "issue a server or client certificate from a CA made by init-ca",
		`  pgaegis tls issue server --ca ca --out certs --host db.example.com --ip 10.0.0.5
  pgaegis tls issue client --ca ca --out certs --role app`,
		tlsIssueCmd(env, "server"), tlsIssueCmd(env, "client"))
	return groupCmd(env, "tls", "certificates (init-ca, issue, renew, revoke) and a TLS probe of a server",
		`  pgaegis tls init-ca --name "Example DB CA" --out ca
  pgaegis tls issue server --ca ca --out certs --host db.example.com
  pgaegis tls probe db.example.com:5432`,
		tlsInitCACmd(env), issue, tlsRenewCmd(env), tlsRevokeCmd(env), tlsProbeCmd(env))
}

func tlsInitCACmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init-ca --name NAME --out DIR [--key-type ecdsa-p256|ed25519|rsa-3072|rsa-4096]",
		Short: "create a certificate authority (ca.crt, ca.key, ca.crl) for servers and clients",
		Example: `  pgaegis tls init-ca --name "Example DB CA" --out ca
  pgaegis tls init-ca --name "Example DB CA" --out ca --key-type rsa-4096 --days 1825`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	name := fs.String("name", "", "CA name (certificate subject)")
	out := fs.String("out", "", "directory for ca.crt and ca.key (created 0700)")
	keyType := fs.String("key-type", tlsca.ECDSA, "key type: "+strings.Join(keyTypes, ", "))
	days := fs.Int("days", 3650, "validity in days")
	completeValues(cmd, "key-type", keyTypes...)
	cmd.MarkFlagDirname("out")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		if *name == "" || *out == "" {
			return ExitError, usagef("--name and --out are required")
		}
		ca, err := tlsca.InitCA(*out, *name, *keyType, time.Duration(*days)*24*time.Hour)
		if err != nil {
			return ExitError, err
		}
		if err := ca.WriteCRL(30 * 24 * time.Hour); err != nil {
			return ExitError, err
		}
		fmt.Fprintf(textEnv(env).Stdout, "created CA %q in %s (ca.crt, ca.key 0600, ca.crl), valid until %s\n", *name, esc(*out), ca.Cert.NotAfter.Format("2006-01-02"))
		return ExitOK, nil
	})
	return cmd
}

func tlsIssueCmd(env *Env, kind string) *cobra.Command {
	cmd := &cobra.Command{Args: noArgs}
	fs := cmd.Flags()
	caDir := fs.String("ca", "", "CA directory (from init-ca)")
	out := fs.String("out", "", "output directory")
	var hosts, ips []string
	role, serverCA, passFile := new(string), new(string), new(string)
	if kind == "server" {
		cmd.Use = "server --ca DIR --out DIR (--host NAME | --ip ADDR)..."
		cmd.Short = "issue a server certificate, with the postgresql.conf and pg_hba.conf lines that use it"
		cmd.Example = `  pgaegis tls issue server --ca ca --out certs --host db.example.com --ip 10.0.0.5
  pgaegis tls issue server --ca ca --out certs --host db.example.com --passphrase-file key.pass --config-out conf`
		fs.StringArrayVar(&hosts, "host", nil, "server DNS name (repeatable)")
		fs.StringArrayVar(&ips, "ip", nil, "server IP address (repeatable)")
		passFile = fs.String("passphrase-file", "", "encrypt the key with the passphrase in this file (0600); the server reads it through ssl_passphrase_command")
	} else {
		cmd.Use = "client --ca DIR --out DIR --role ROLE"
		cmd.Short = "issue a client certificate for a role, with the pg_service.conf entry that uses it"
		cmd.Example = `  pgaegis tls issue client --ca ca --out certs --role app
  pgaegis tls issue client --ca ca --out certs --role app --server-ca server-ca/ca.crt --config-out conf`
		role = fs.String("role", "", "the role name (becomes the CN)")
		serverCA = fs.String("server-ca", "", "the server CA certificate, for the service file's sslrootcert")
	}
	keyType := fs.String("key-type", tlsca.ECDSA, "key type: "+strings.Join(keyTypes, ", "))
	days := fs.Int("days", 397, "validity in days")
	configOut := fs.String("config-out", "", "also write the configuration snippets to this directory")
	completeValues(cmd, "key-type", keyTypes...)
	cmd.MarkFlagDirname("ca")
	cmd.MarkFlagDirname("out")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		if *caDir == "" || *out == "" {
			return ExitError, usagef("--ca and --out are required")
		}
		ca, err := tlsca.LoadCA(*caDir)
		if err != nil {
			return ExitError, err
		}
		req := tlsca.Request{KeyType: *keyType, Validity: time.Duration(*days) * 24 * time.Hour, Client: kind == "client"}
		if *passFile != "" {
			if kind != "server" {
				return ExitError, usagef("--passphrase-file is for server keys")
			}
			b, err := os.ReadFile(*passFile)
			if err != nil {
				return ExitError, err
			}
			req.Passphrase = []byte(strings.TrimRight(string(b), "\r\n"))
			if len(req.Passphrase) == 0 {
				return ExitError, fmt.Errorf("%s: empty passphrase", *passFile)
			}
		}
		name := "server"
		if kind == "server" {
			if len(hosts) == 0 && len(ips) == 0 {
				return ExitError, usagef("a server certificate needs --host and/or --ip")
			}
			req.DNSNames = hosts
			for _, s := range ips {
				ip := net.ParseIP(s)
				if ip == nil {
					return ExitError, usagef("--ip %q is not an IP address", s)
				}
				req.IPs = append(req.IPs, ip)
			}
			req.CommonName = firstOf(hosts, ips)
		} else {
			if *role == "" {
				return ExitError, usagef("a client certificate needs --role")
			}
			req.CommonName, name = *role, *role
		}
		is, err := ca.Issue(req, *out, name)
		if err != nil {
			return ExitError, err
		}
		env = textEnv(env) // the snippets are configuration text: escaped by the writer, backslashes kept
		fmt.Fprintf(env.Stdout, "issued %s certificate %s (key %s, 0600), CN=%s, valid until %s\n\n", kind, esc(is.CertFile), esc(is.KeyFile), esc(req.CommonName), is.Cert.NotAfter.Format("2006-01-02"))
		snippets := snippetsFor(kind, ca, is, req, *serverCA)
		if *passFile != "" {
			abs, _ := filepath.Abs(*passFile)
			snippets["postgresql.conf"] += fmt.Sprintf("ssl_passphrase_command = %s    # the file owned by postgres, 0600\nssl_passphrase_command_supports_reload = on\n", confValue("cat "+quote.Shell(abs)))
		}
		keys := make([]string, 0, len(snippets))
		for k := range snippets {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(env.Stdout, "# %s\n%s\n", k, snippets[k])
			if *configOut != "" {
				if err := os.MkdirAll(*configOut, 0o700); err != nil {
					return ExitError, err
				}
				if err := safefile.WriteFile(filepath.Join(*configOut, k), []byte(snippets[k]), 0o600); err != nil {
					return ExitError, err
				}
			}
		}
		return ExitOK, nil
	})
	return cmd
}

func firstOf(hosts, ips []string) string {
	if len(hosts) > 0 {
		return hosts[0]
	}
	return ips[0]
}

// confValue quotes a postgresql.conf value; a value the format cannot hold
// (only NUL, which no path holds) becomes a placeholder the server rejects.
func confValue(v string) string {
	q, err := quote.ConfValue(v)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return q
}

// snippetsFor renders the configuration that goes with a certificate.
// Paths and names come from the command line and the certificate's CN (a
// role name), so each goes through the quoting of the file it lands in.
func snippetsFor(kind string, ca *tlsca.CA, is *tlsca.Issued, req tlsca.Request, serverCA string) map[string]string {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	if kind == "server" {
		return map[string]string{
			"postgresql.conf": fmt.Sprintf(`ssl = on
ssl_cert_file = %s
ssl_key_file = %s        # owned by the server's OS user, mode 0600
ssl_ca_file = '<client CA>/ca.crt'     # to verify client certificates
ssl_crl_file = '<client CA>/ca.crl'
ssl_min_protocol_version = 'TLSv1.2'   # TLSv1.3 for CIS PostgreSQL 17
ssl_ciphers = 'HIGH:!aNULL:!MD5:!3DES:!RC4:!SHA1'
`, confValue(abs(is.CertFile)), confValue(abs(is.KeyFile))),
			"pg_hba.conf": `# client certificates: CN = role name
hostssl all all 10.0.0.0/8 cert
# or password plus certificate
hostssl all all 10.0.0.0/8 scram-sha-256 clientcert=verify-full
host    all all 0.0.0.0/0 reject
host    all all ::/0      reject
`,
			"shell": fmt.Sprintf("chown postgres:postgres %s && chmod 0600 %s    # then SELECT pg_reload_conf();\n", quote.Shell(abs(is.KeyFile)), quote.Shell(abs(is.KeyFile))),
		}
	}
	root := serverCA
	if root == "" {
		root = "<server CA>/ca.crt"
	} else {
		root = abs(root)
	}
	section, err := quote.ServiceName(req.CommonName)
	vals := []string{req.CommonName, root, abs(is.CertFile), abs(is.KeyFile)}
	for _, v := range vals {
		if err == nil {
			_, err = quote.ServiceValue(v)
		}
	}
	if err != nil {
		// libpq's service file has no quoting: say so rather than print an
		// entry that would be read as something else.
		return map[string]string{"pg_service.conf": "# no service entry: " + textsafe.String(err.Error()) + "; pass the settings as connection options instead\n"}
	}
	return map[string]string{
		"pg_service.conf": fmt.Sprintf(`%s
host=<server name on its certificate>
dbname=<database>
user=%s
sslmode=verify-full
sslrootcert=%s
sslcert=%s
sslkey=%s
`, section, vals[0], vals[1], vals[2], vals[3]),
	}
}

func tlsRenewCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "renew --ca DIR [--within DAYS]",
		Short: "re-issue the certificates of a CA that expire soon",
		Example: `  pgaegis tls renew --ca ca
  pgaegis tls renew --ca ca --within 60`,
		Args: noArgs,
	}
	caDir := cmd.Flags().String("ca", "", "CA directory")
	within := cmd.Flags().Int("within", 30, "renew what expires within this many days")
	cmd.MarkFlagDirname("ca")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		ca, err := tlsca.LoadCA(*caDir)
		if err != nil {
			return ExitError, err
		}
		files, err := ca.ExpiringWithin(time.Duration(*within) * 24 * time.Hour)
		if err != nil {
			return ExitError, err
		}
		if len(files) == 0 {
			fmt.Fprintf(env.Stdout, "nothing expires within %d days\n", *within)
		}
		for _, f := range files {
			old, err := tlsca.ReadCert(f)
			if err != nil {
				return ExitError, err
			}
			req := tlsca.Request{CommonName: old.Subject.CommonName, DNSNames: old.DNSNames, IPs: old.IPAddresses,
				Client: hasUsage(old, x509.ExtKeyUsageClientAuth), Validity: old.NotAfter.Sub(old.NotBefore)}
			name := strings.TrimSuffix(filepath.Base(f), ".crt")
			is, err := ca.Issue(req, filepath.Dir(f), name)
			if err != nil {
				return ExitError, err
			}
			// The CN comes from a certificate file found in the CA's directory.
			fmt.Fprintf(textEnv(env).Stdout, "renewed %s (CN=%s), valid until %s; reload the server or client that uses it\n", esc(is.CertFile), esc(req.CommonName), is.Cert.NotAfter.Format("2006-01-02"))
		}
		return ExitOK, nil
	})
	return cmd
}

func hasUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	for _, x := range c.ExtKeyUsage {
		if x == u {
			return true
		}
	}
	return false
}

func tlsRevokeCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke --ca DIR CERT-FILE|SERIAL",
		Short: "revoke a certificate and rewrite the CA's CRL",
		Example: `  pgaegis tls revoke --ca ca certs/app.crt
  pgaegis tls revoke --ca ca 4f3a9c0d2e`,
	}
	caDir := cmd.Flags().String("ca", "", "CA directory")
	cmd.MarkFlagDirname("ca")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, targets []string) (int, error) {
		if *caDir == "" || len(targets) != 1 {
			return ExitError, usagef("give --ca and one certificate file or serial")
		}
		ca, err := tlsca.LoadCA(*caDir)
		if err != nil {
			return ExitError, err
		}
		if err := ca.Revoke(targets[0]); err != nil {
			return ExitError, err
		}
		fmt.Fprintf(textEnv(env).Stdout, "revoked %s; %s updated: copy it to ssl_crl_file and SELECT pg_reload_conf();\n", esc(targets[0]), esc(filepath.Join(*caDir, tlsca.CRLFile)))
		return ExitOK, nil
	})
	return cmd
}

func tlsProbeCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "probe HOST[:PORT] [--ca FILE] [--server-name NAME] [--format text|json]",
		Short: "what a server's port offers: TLS versions, ciphers, certificate, plaintext sessions",
		Example: `  pgaegis tls probe db.example.com
  pgaegis tls probe 10.0.0.5:5433 --ca ca/ca.crt --server-name db.example.com --format json`,
	}
	fs := cmd.Flags()
	caFile := fs.String("ca", "", "CA certificate the server's chain should verify against")
	serverName := fs.String("server-name", "", "name to check the certificate against (default: the host)")
	timeout := fs.Duration("timeout", 20*time.Second, "deadline for the whole probe (every connection, read and handshake)")
	format := fs.String("format", "text", "text or json")
	fast := fs.Bool("no-ciphers", false, "do not enumerate cipher suites")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, targets []string) (int, error) {
		if len(targets) != 1 {
			return ExitError, usagef("give one HOST[:PORT]")
		}
		addr := targets[0]
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), "5432")
		}
		o := tlsprobe.Options{Addr: addr, ServerName: *serverName, Timeout: *timeout, SkipCiphers: *fast}
		if *caFile != "" {
			pem, err := safefile.ReadFile(*caFile, safefile.ConfigMax)
			if err != nil {
				return ExitError, err
			}
			o.RootCAs = x509.NewCertPool()
			if !o.RootCAs.AppendCertsFromPEM(pem) {
				return ExitError, fmt.Errorf("%s: no PEM certificate", *caFile)
			}
		}
		r := tlsprobe.Probe(ctx, o)
		if *format == "json" {
			if err := writeJSON(env, r); err != nil {
				return ExitError, err
			}
		} else {
			writeProbeText(env, r)
		}
		if r.Stalled != "" {
			// A server that says nothing is not a server that refuses: what it
			// offers is unknown, so this is an error, not a verdict.
			return ExitError, fmt.Errorf("%s: %s", addr, r.Stalled)
		}
		if len(r.Errors) > 0 && !r.TLSOffered && !r.PlaintextAccepted {
			return ExitError, fmt.Errorf("%s", strings.Join(r.Errors, "; "))
		}
		bad := r.PlaintextAccepted || !r.TLSOffered || r.Protocols["TLSv1.0"] || r.Protocols["TLSv1.1"]
		if c := r.Certificate; c != nil && (c.DaysLeft < 0 || (c.ChainOK != nil && !*c.ChainOK)) {
			bad = true
		}
		if bad {
			return ExitFindings, nil
		}
		return ExitOK, nil
	})
	return cmd
}

func writeProbeText(env *Env, r *tlsprobe.Result) {
	// The certificate and the server's messages are the server's words:
	// every field is escaped, and the writer catches the rest.
	env = textEnv(env)
	yn := map[bool]string{true: "yes", false: "no"}
	if r.Stalled != "" {
		fmt.Fprintf(env.Stdout, "%s\n  STALLED: %s\n", esc(r.Addr), esc(r.Stalled))
	} else {
		fmt.Fprintf(env.Stdout, "%s\n", esc(r.Addr))
	}
	notTested := map[string]bool{}
	for _, v := range r.NotTested {
		notTested[v] = true
	}
	fmt.Fprintf(env.Stdout, "  TLS offered (SSLRequest): %s\n", yn[r.TLSOffered])
	if r.Stalled == "" {
		fmt.Fprintf(env.Stdout, "  direct TLS (PostgreSQL 17+): %s\n  unencrypted sessions accepted: %s (%s)\n",
			yn[r.DirectTLS], yn[r.PlaintextAccepted], esc(r.PlaintextAnswer))
	}
	for _, v := range []string{"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"} {
		state := map[bool]string{true: "accepted", false: "refused"}[r.Protocols[v]]
		if notTested[v] {
			state = "not tested (no answer)"
		}
		fmt.Fprintf(env.Stdout, "  %s: %s", v, state)
		if cs := r.Ciphers[v]; len(cs) > 0 {
			fmt.Fprintf(env.Stdout, " (%s)", strings.Join(escAll(cs), ", "))
		}
		fmt.Fprintln(env.Stdout)
	}
	if c := r.Certificate; c != nil {
		fmt.Fprintf(env.Stdout, "  certificate: %s, issuer %s, %s %d-bit, %s, expires %s (%d days), hostname %s, self-signed %s\n",
			esc(c.Subject), esc(c.Issuer), esc(c.KeyType), c.KeyBits, esc(c.SignatureAlg), c.NotAfter.Format("2006-01-02"), c.DaysLeft, map[bool]string{true: "matches", false: "DOES NOT MATCH"}[c.HostnameOK], yn[c.SelfSigned])
		if c.ChainOK != nil {
			fmt.Fprintf(env.Stdout, "  chains to the given CA: %s\n", yn[*c.ChainOK])
		}
	}
	if r.Stalled == "" {
		fmt.Fprintf(env.Stdout, "  client certificate requested: %s\n", yn[r.ClientCertRequested])
	}
	for _, e := range r.Errors {
		if e == r.Stalled {
			continue // shown above
		}
		fmt.Fprintf(env.Stdout, "  error: %s\n", esc(e))
	}
}
