package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/pgconf"
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
	if kind == "server" {
		return tlsIssueServerCmd(env)
	}
	return tlsIssueClientCmd(env)
}

// issueCommon are the flags both kinds of certificate take.
type issueCommon struct {
	caDir, out, keyType, configOut *string
	days                           *int
}

func addIssueCommon(cmd *cobra.Command, caHelp, outHelp string) issueCommon {
	fs := cmd.Flags()
	c := issueCommon{
		caDir:     fs.String("ca", "", caHelp),
		out:       fs.String("out", "", outHelp),
		keyType:   fs.String("key-type", tlsca.ECDSA, "key type: "+strings.Join(keyTypes, ", ")),
		days:      fs.Int("days", 397, "validity in days"),
		configOut: fs.String("config-out", "", "also write the configuration snippets to this directory"),
	}
	completeValues(cmd, "key-type", keyTypes...)
	cmd.MarkFlagDirname("ca")
	cmd.MarkFlagDirname("out")
	return c
}

func tlsIssueServerCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server (--pgdata DIR | --ca DIR --out DIR (--host NAME | --ip ADDR)...)",
		Short: "issue a server certificate, with the postgresql.conf and pg_hba.conf lines that use it",
		Long: `Issue a server certificate (server.crt, server.key 0600) signed by a CA made by init-ca.

With --pgdata DIR the pair is written into the data directory, owned by the
directory's owner (the cluster's OS user, also when run as root) or --owner,
so that ssl = on can use it; the CA is --ca or, when not given, DIR/../pgaegis-ca,
created on first use. The names default to this host's name and localhost, the
addresses to the loopback ones and those in listen_addresses.

A CA directory, ca.crt or ca.key owned by anyone but this user, root or the
data directory's owner, a CA directory others may write to or a key others may
read is refused, and nothing is issued: whoever owns it may hold the key.

A valid certificate already in place (its key, not expiring within
--renew-within days, covering the names asked for) is kept: the command then
changes nothing and exits 0. One this CA signed is replaced when it no longer
fits; any other only with --force.

The pg_hba.conf lines printed are for the client networks given with --clients
and for loopback addresses of the certificate; without either none is
suggested. ssl_ca_file is printed only with --client-ca (the CA that signs
client certificates), as a copy beside the key that the server can read.`,
		Example: `  pgaegis tls issue server --ca ca --out certs --host db.example.com --ip 10.0.0.5
  pgaegis tls issue server --pgdata /var/lib/postgresql/15/main
  pgaegis tls issue server --ca ca --out certs --host db.example.com --clients 10.1.0.0/16 --client-ca client-ca
  pgaegis tls issue server --ca ca --out certs --host db.example.com --passphrase-file key.pass --config-out conf`,
		Args: noArgs,
	}
	c := addIssueCommon(cmd, "CA directory (from init-ca); with --pgdata, default DIR/../pgaegis-ca, created when absent", "output directory (or --pgdata)")
	fs := cmd.Flags()
	var hosts, dns, ips, clients []string
	fs.StringArrayVar(&hosts, "host", nil, "server DNS name (repeatable)")
	fs.StringArrayVar(&dns, "dns", nil, "server DNS name, the same as --host (repeatable)")
	fs.StringArrayVar(&ips, "ip", nil, "server IP address (repeatable)")
	fs.StringArrayVar(&clients, "clients", nil, "client network CIDR for the suggested pg_hba.conf lines (repeatable)")
	pgdata := fs.String("pgdata", "", "write server.crt and server.key into this data directory, owned by its owner")
	ownerFlag := fs.String("owner", "", "USER[:GROUP] to own the key and certificate (default with --pgdata: the data directory's owner)")
	clientCA := fs.String("client-ca", "", "CA directory (or ca.crt) that signs client certificates: copied beside the key for ssl_ca_file")
	force := fs.Bool("force", false, "replace a certificate in place that this CA did not sign")
	renewWithin := fs.Int("renew-within", 30, "keep a certificate in place only if it is valid for more than this many days")
	passFile := fs.String("passphrase-file", "", "encrypt the key with the passphrase in this file (0600); the server reads it through ssl_passphrase_command")
	cmd.MarkFlagDirname("pgdata")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		o := serverIssue{keyType: *c.keyType, days: *c.days, force: *force, renewWithin: time.Duration(*renewWithin) * 24 * time.Hour}
		switch {
		case *pgdata != "" && *c.out != "":
			return ExitError, usagef("give --pgdata or --out, not both")
		case *pgdata != "":
			d, err := dataDir(*pgdata)
			if err != nil {
				return ExitError, err
			}
			o.pgdata, o.out = d, d
			if ow, err := tlsca.OwnerOf(d); err == nil {
				o.caTrust = []tlsca.Trust{{Owner: ow, Role: "the data directory's owner"}}
			}
			o.caDir = *c.caDir
			if o.caDir == "" {
				o.caDir, o.caDefault = tlsca.DefaultCADir(d), true
			}
		case *c.caDir == "" || *c.out == "":
			return ExitError, usagef("give --pgdata DIR, or --ca and --out")
		default:
			o.out, o.caDir = *c.out, *c.caDir
		}
		if *ownerFlag != "" {
			ow, err := tlsca.ParseOwner(*ownerFlag)
			if err != nil {
				return ExitError, usageError{err.Error()}
			}
			o.owner = &ow
		} else if o.pgdata != "" {
			ow, err := tlsca.OwnerOf(o.pgdata)
			if err != nil {
				return ExitError, err
			}
			o.owner = &ow
		} else if ow, err := tlsca.OwnerOf(o.out); err == nil && os.Geteuid() == 0 && ow.UID != 0 {
			// Root writing into someone else's directory (a data directory
			// given as --out): the files are for that user, who must be able
			// to read the key.
			o.owner = &ow
		}
		if o.owner != nil {
			if err := o.owner.CanGive(); err != nil {
				return ExitError, fmt.Errorf("%s: %v", o.out, err)
			}
		}
		o.dns = append(append([]string{}, hosts...), dns...)
		for _, h := range o.dns {
			if h == "" || strings.ContainsAny(h, " \t\r\n\x00,/") {
				return ExitError, usagef("--host %q is not a DNS name", h)
			}
		}
		for _, s := range ips {
			ip := net.ParseIP(s)
			if ip == nil {
				return ExitError, usagef("--ip %q is not an IP address", s)
			}
			o.ips = append(o.ips, ip)
		}
		for _, s := range clients {
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				if ip := net.ParseIP(s); ip != nil {
					n = hostNet(ip)
				} else {
					return ExitError, usagef("--clients %q is not a network (CIDR such as 10.1.0.0/16)", s)
				}
			}
			o.clients = append(o.clients, n)
		}
		if len(o.dns) == 0 && len(o.ips) == 0 {
			if o.pgdata == "" {
				return ExitError, usagef("a server certificate needs --host and/or --ip (or --pgdata, which defaults them)")
			}
			var err error
			if o.dns, o.ips, o.notes, err = defaultServerNames(o.pgdata); err != nil {
				return ExitError, err
			}
		}
		if *passFile != "" {
			b, err := os.ReadFile(*passFile)
			if err != nil {
				return ExitError, err
			}
			o.passphrase = []byte(strings.TrimRight(string(b), "\r\n"))
			if len(o.passphrase) == 0 {
				return ExitError, fmt.Errorf("%s: empty passphrase", *passFile)
			}
			o.passFile, _ = filepath.Abs(*passFile)
		}
		if *clientCA != "" {
			o.clientCA = *clientCA
			if st, err := os.Stat(o.clientCA); err == nil && st.IsDir() {
				o.clientCA = filepath.Join(o.clientCA, tlsca.CACert)
			}
		}
		return o.run(textEnv(env), *c.configOut)
	})
	return cmd
}

// serverIssue is one `tls issue server`, its flags resolved.
type serverIssue struct {
	out, pgdata, caDir string
	caDefault          bool          // caDir was not given: create the CA there if absent
	caTrust            []tlsca.Trust // besides this user and root, who may own the CA (the data directory's owner)
	owner              *tlsca.Owner
	dns                []string
	ips                []net.IP
	clients            []*net.IPNet
	clientCA           string // the client CA certificate file, when given
	keyType            string
	days               int
	force              bool
	renewWithin        time.Duration
	passphrase         []byte
	passFile           string
	notes              []string // said before the snippets (defaults taken, settings to replace)
}

func (o *serverIssue) run(env *Env, configOut string) (int, error) {
	certFile, keyFile := filepath.Join(o.out, tlsca.ServerCertName), filepath.Join(o.out, tlsca.ServerKeyName)
	var ca *tlsca.CA
	loadCA := func() error {
		if ca != nil {
			return nil
		}
		var err error
		if o.caDefault {
			var created bool
			ca, created, err = tlsca.LoadOrInit(o.caDir, "pgaegis server CA", o.caTrust...)
			if err == nil && created {
				fmt.Fprintf(env.Stdout, "created CA %s (ca.crt, ca.key 0600): clients verify the server with sslrootcert=%s\n", esc(o.caDir), esc(absPath(filepath.Join(o.caDir, tlsca.CACert))))
			}
		} else {
			ca, err = tlsca.LoadCA(o.caDir, o.caTrust...)
		}
		return err
	}
	have, why := tlsca.CheckPair(certFile, keyFile, tlsca.Want{DNSNames: o.dns, IPs: o.ips, MinLeft: o.renewWithin})
	keep := why == nil && !o.force
	if why != nil && !errors.Is(why, tlsca.ErrNoPair) && !o.force {
		// Ours may be replaced (a renewal, new names); another's only on request.
		ours := false
		if _, err := os.Stat(filepath.Join(o.caDir, tlsca.CACert)); err == nil {
			if err := loadCA(); err != nil {
				return ExitError, err
			}
			ours = ca.Signed(have)
		}
		if !ours {
			return ExitError, fmt.Errorf("%v; it was not issued by the CA in %s, so it is left alone: pass --force to replace it", why, o.caDir)
		}
		fmt.Fprintf(env.Stdout, "replacing %s: %s\n", esc(certFile), esc(why.Error()))
	}
	if keep {
		fmt.Fprintf(env.Stdout, "%s: a valid server certificate is already in place (CN=%s, valid until %s): nothing issued\n", esc(certFile), esc(have.Subject.CommonName), have.NotAfter.Format("2006-01-02"))
		if o.owner != nil {
			// Kept, but the server must be able to read it.
			for _, f := range []struct {
				path string
				mode os.FileMode
			}{{keyFile, 0o600}, {certFile, 0o644}} {
				changed, err := tlsca.FixOwnership(f.path, f.mode, *o.owner)
				if err != nil {
					return ExitError, err
				}
				if changed {
					fmt.Fprintf(env.Stdout, "%s: given to %s, mode %04o\n", esc(f.path), esc(o.owner.String()), f.mode)
				}
			}
		}
	} else {
		if err := loadCA(); err != nil {
			return ExitError, err
		}
		req := tlsca.Request{KeyType: o.keyType, Validity: time.Duration(o.days) * 24 * time.Hour, DNSNames: o.dns, IPs: o.ips,
			Passphrase: o.passphrase, Owner: o.owner}
		if len(o.dns) > 0 {
			req.CommonName = o.dns[0]
		} else {
			req.CommonName = o.ips[0].String()
		}
		is, err := ca.Issue(req, o.out, "server")
		if err != nil {
			return ExitError, err
		}
		owned := ""
		if o.owner != nil {
			owned = ", owned by " + o.owner.String()
		}
		fmt.Fprintf(env.Stdout, "issued server certificate %s (key %s, 0600%s), CN=%s, valid until %s\n", esc(is.CertFile), esc(is.KeyFile), esc(owned), esc(req.CommonName), is.Cert.NotAfter.Format("2006-01-02"))
		fmt.Fprintf(env.Stdout, "  names: %s\n", esc(strings.Join(certNames(is.Cert), ", ")))
	}
	// The client CA is copied beside the key: the server reads it at every
	// start and reload, and the CA directory is usually private to its keeper.
	var caFile, crlFile string
	if o.clientCA != "" {
		caFile = filepath.Join(o.out, "client-ca.crt")
		if _, err := tlsca.ReadCert(o.clientCA); err != nil {
			return ExitError, err
		}
		if err := installIfChanged(o.clientCA, caFile, o.owner); err != nil {
			return ExitError, err
		}
		if crl := filepath.Join(filepath.Dir(o.clientCA), tlsca.CRLFile); fileExists(crl) {
			crlFile = filepath.Join(o.out, "client-ca.crl")
			if err := installIfChanged(crl, crlFile, o.owner); err != nil {
				return ExitError, err
			}
		}
	}
	for _, n := range o.notes {
		fmt.Fprintf(env.Stdout, "note: %s\n", esc(n))
	}
	fmt.Fprintln(env.Stdout)
	snippets := serverSnippets(serverSnippetInput{cert: certFile, key: keyFile, caFile: caFile, crlFile: crlFile,
		ips: o.ips, clients: o.clients, owner: o.owner, passFile: o.passFile})
	return writeSnippets(env, snippets, configOut)
}

func writeSnippets(env *Env, snippets map[string]string, configOut string) (int, error) {
	keys := make([]string, 0, len(snippets))
	for k := range snippets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(env.Stdout, "# %s\n%s\n", k, snippets[k])
		if configOut != "" {
			if err := os.MkdirAll(configOut, 0o700); err != nil {
				return ExitError, err
			}
			if err := safefile.WriteFile(filepath.Join(configOut, k), []byte(snippets[k]), 0o600); err != nil {
				return ExitError, err
			}
		}
	}
	return ExitOK, nil
}

func installIfChanged(src, dst string, owner *tlsca.Owner) error {
	a, err := safefile.ReadFile(src, safefile.ConfigMax)
	if err != nil {
		return err
	}
	if b, err := safefile.ReadFile(dst, safefile.ConfigMax); err == nil && string(a) == string(b) {
		if owner != nil {
			_, err := tlsca.FixOwnership(dst, 0o644, *owner)
			return err
		}
		return nil
	}
	return tlsca.Install(src, dst, 0o644, owner)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func certNames(c *x509.Certificate) []string {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// dataDir checks that dir is a PostgreSQL data directory and returns it
// absolute.
func dataDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s: not a directory", abs)
	}
	if !fileExists(filepath.Join(abs, "PG_VERSION")) {
		return "", fmt.Errorf("%s: not a PostgreSQL data directory (no PG_VERSION)", abs)
	}
	return abs, nil
}

// defaultServerNames are the names a certificate for this data
// directory's server should carry when none are given: this host's name
// and localhost, the loopback addresses and what listen_addresses names
// (every local address for * or 0.0.0.0).
func defaultServerNames(pgdata string) (dns []string, ips []net.IP, notes []string, err error) {
	seenDNS, seenIP := map[string]bool{}, map[string]bool{}
	addDNS := func(n string) {
		n = strings.TrimSuffix(strings.ToLower(n), ".")
		if n != "" && !seenDNS[n] && !strings.ContainsAny(n, " \t\r\n\x00,/") {
			seenDNS[n] = true
			dns = append(dns, n)
		}
	}
	addIP := func(ip net.IP) {
		if ip != nil && !seenIP[ip.String()] {
			seenIP[ip.String()] = true
			ips = append(ips, ip)
		}
	}
	if h, err := os.Hostname(); err == nil {
		addDNS(h)
	}
	addDNS("localhost")
	addIP(net.ParseIP("127.0.0.1"))
	addIP(net.ParseIP("::1"))
	listen := "localhost"
	if conf := filepath.Join(pgdata, "postgresql.conf"); fileExists(conf) {
		cfg, err := pgconf.Load(conf, pgconf.Options{DataDir: pgdata})
		if err != nil {
			return nil, nil, nil, err
		}
		if e, ok := cfg.Get("listen_addresses"); ok {
			listen = e.Value
		}
		for _, name := range []string{"ssl_cert_file", "ssl_key_file"} {
			want := "server.crt"
			if name == "ssl_key_file" {
				want = "server.key"
			}
			if e, ok := cfg.Get(name); ok && e.Value != "" && !samePath(pgdata, e.Value, filepath.Join(pgdata, want)) {
				notes = append(notes, fmt.Sprintf("%s sets %s = %s: the line printed below replaces it (ALTER SYSTEM or that file)", e.Location(), name, quote.Literal(e.Value)))
			}
		}
	}
	for _, a := range strings.Split(listen, ",") {
		a = strings.TrimSpace(a)
		switch {
		case a == "" || a == "localhost":
		case a == "*" || a == "0.0.0.0" || a == "::":
			addrs, err := net.InterfaceAddrs()
			if err != nil {
				continue
			}
			for _, ad := range addrs {
				if n, ok := ad.(*net.IPNet); ok && n.IP.IsGlobalUnicast() {
					addIP(n.IP)
				}
			}
		case net.ParseIP(a) != nil:
			addIP(net.ParseIP(a))
		default:
			addDNS(a)
		}
	}
	notes = append(notes, "no --host/--ip given: the certificate names "+strings.Join(append(append([]string{}, dns...), ipStrings(ips)...), ", ")+" (listen_addresses = "+quote.Literal(listen)+")")
	return dns, ips, notes, nil
}

func samePath(base, p, want string) bool {
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	return filepath.Clean(p) == filepath.Clean(want)
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// hostNet is the network holding only ip.
func hostNet(ip net.IP) *net.IPNet {
	if v4 := ip.To4(); v4 != nil {
		return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}
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

type serverSnippetInput struct {
	cert, key       string // where the pair is
	caFile, crlFile string // the client CA (and CRL) the server reads, when known
	ips             []net.IP
	clients         []*net.IPNet
	owner           *tlsca.Owner // who owns the pair already (nil: the caller)
	passFile        string
}

// serverSnippets renders the configuration that goes with a server
// certificate. Every path and token goes through the quoting of the file it
// lands in; nothing is printed that the server would read as a file or
// network the command was not told about.
func serverSnippets(in serverSnippetInput) map[string]string {
	var conf strings.Builder
	keyNote := "must be owned by the server's OS user, mode 0600"
	if in.owner != nil {
		keyNote = "owned by " + textsafe.String(in.owner.String()) + ", mode 0600"
	}
	fmt.Fprintf(&conf, "ssl = on\nssl_cert_file = %s\nssl_key_file = %s    # %s\n", confValue(absPath(in.cert)), confValue(absPath(in.key)), keyNote)
	if in.caFile != "" {
		fmt.Fprintf(&conf, "ssl_ca_file = %s    # the client CA: clients are asked for a certificate it signed\n", confValue(absPath(in.caFile)))
		if in.crlFile != "" {
			fmt.Fprintf(&conf, "ssl_crl_file = %s    # certificates it revoked\n", confValue(absPath(in.crlFile)))
		}
	} else {
		conf.WriteString("# no ssl_ca_file: no client CA given (--client-ca DIR), so clients are not asked for certificates\n")
	}
	conf.WriteString("ssl_min_protocol_version = 'TLSv1.2'    # TLSv1.3 for CIS PostgreSQL 17\nssl_ciphers = 'HIGH:!aNULL:!MD5:!3DES:!RC4:!SHA1'\n")
	if in.passFile != "" {
		fmt.Fprintf(&conf, "ssl_passphrase_command = %s    # the file owned by the server's OS user, 0600\nssl_passphrase_command_supports_reload = on\n", confValue("cat "+quote.Shell(in.passFile)))
	}
	out := map[string]string{"postgresql.conf": conf.String(), "pg_hba.conf": hbaSnippet(in.ips, in.clients, in.caFile != "")}
	if in.owner == nil {
		k := quote.Shell(absPath(in.key))
		out["shell"] = fmt.Sprintf("chown postgres:postgres %s && chmod 0600 %s    # the server's OS user; then SELECT pg_reload_conf();\n", k, k)
	}
	return out
}

// hbaSnippet suggests hostssl lines only for networks the command was
// told about: --clients, and the loopback addresses on the certificate
// (a loopback address is reached only from this host). The server's own
// other addresses say nothing about where its clients are.
func hbaSnippet(ips []net.IP, clients []*net.IPNet, clientCerts bool) string {
	nets := append([]*net.IPNet{}, clients...)
	for _, ip := range ips {
		if ip.IsLoopback() {
			nets = append(nets, hostNet(ip))
		}
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, n := range nets {
		tok, err := quote.HBAToken(n.String())
		if err != nil || seen[tok] {
			continue
		}
		seen[tok] = true
		if clientCerts {
			fmt.Fprintf(&b, "# TCP from %s, TLS required; the client certificate (signed by the client CA) must have CN = the role name, no password\nhostssl all all %s cert\n", tok, tok)
		} else {
			fmt.Fprintf(&b, "# TCP from %s, TLS required, then the password (SCRAM); add clientcert=verify-full once clients have certificates (--client-ca)\nhostssl all all %s scram-sha-256\n", tok, tok)
		}
	}
	if b.Len() == 0 {
		return "# no line suggested: the certificate's addresses are the server's, not where its clients connect from;\n# give --clients CIDR (repeatable) for their networks\n"
	}
	// The rejects go first: the first matching line decides, so below a
	// plain host line they would never refuse anything.
	return "# put these above the other host lines: the first line that matches a connection decides\n" +
		"# refuse TCP without TLS from anywhere (clients that do not use TLS will fail)\nhostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n" + b.String()
}

func tlsIssueClientCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client --ca DIR --out DIR --role ROLE [--host NAME] [--port N] [--dbname DB] [--server-ca FILE]",
		Short: "issue a client certificate for a role, with the pg_service.conf entry that uses it",
		Example: `  pgaegis tls issue client --ca ca --out certs --role app
  pgaegis tls issue client --ca ca --out certs --role app --server-ca server-ca/ca.crt --host db.example.com --port 5433 --dbname shop --config-out conf`,
		Args: noArgs,
	}
	c := addIssueCommon(cmd, "CA directory (from init-ca)", "output directory")
	fs := cmd.Flags()
	role := fs.String("role", "", "the role name (becomes the CN)")
	serverCA := fs.String("server-ca", "", "the CA certificate (or CA directory) that signed the server's certificate, for the service file's sslrootcert")
	host := fs.String("host", "localhost", "the server's name as on its certificate, for the service entry")
	port := fs.Int("port", 5432, "the server's port, for the service entry")
	dbname := fs.String("dbname", "postgres", "the database, for the service entry")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		if *c.caDir == "" || *c.out == "" {
			return ExitError, usagef("--ca and --out are required")
		}
		if *role == "" {
			return ExitError, usagef("a client certificate needs --role")
		}
		if *port < 1 || *port > 65535 {
			return ExitError, usagef("--port %d is not a port", *port)
		}
		root := ""
		if *serverCA != "" {
			root = *serverCA
			if st, err := os.Stat(root); err == nil && st.IsDir() {
				root = filepath.Join(root, tlsca.CACert)
			}
			if _, err := tlsca.ReadCert(root); err != nil {
				return ExitError, err
			}
			root = absPath(root)
		}
		ca, err := tlsca.LoadCA(*c.caDir)
		if err != nil {
			return ExitError, err
		}
		req := tlsca.Request{CommonName: *role, KeyType: *c.keyType, Validity: time.Duration(*c.days) * 24 * time.Hour, Client: true}
		is, err := ca.Issue(req, *c.out, *role)
		if err != nil {
			return ExitError, err
		}
		env = textEnv(env) // the snippets are configuration text: escaped by the writer, backslashes kept
		fmt.Fprintf(env.Stdout, "issued client certificate %s (key %s, 0600), CN=%s, valid until %s\n\n", esc(is.CertFile), esc(is.KeyFile), esc(req.CommonName), is.Cert.NotAfter.Format("2006-01-02"))
		entry := serviceEntry(serviceInput{role: *role, host: *host, port: *port, dbname: *dbname, rootCert: root, cert: is.CertFile, key: is.KeyFile})
		return writeSnippets(env, map[string]string{"pg_service.conf": entry}, *c.configOut)
	})
	return cmd
}

type serviceInput struct {
	role, host, dbname  string
	port                int
	rootCert, cert, key string // rootCert empty: not given
}

// serviceEntry renders the ~/.pg_service.conf section for a client
// certificate. libpq's service file has no quoting: a value it cannot hold
// gives an explanation, never an entry that would read as something else.
func serviceEntry(in serviceInput) string {
	section, err := quote.ServiceName(in.role)
	kv := [][2]string{{"host", in.host}, {"port", strconv.Itoa(in.port)}, {"dbname", in.dbname}, {"user", in.role}, {"sslmode", "verify-full"}}
	if in.rootCert != "" {
		kv = append(kv, [2]string{"sslrootcert", absPath(in.rootCert)})
	}
	kv = append(kv, [2]string{"sslcert", absPath(in.cert)}, [2]string{"sslkey", absPath(in.key)})
	var b strings.Builder
	b.WriteString(section + "\n")
	for _, p := range kv {
		if err != nil {
			break
		}
		var v string
		if v, err = quote.ServiceValue(p[1]); err == nil {
			fmt.Fprintf(&b, "%s=%s\n", p[0], v)
		}
	}
	if err != nil {
		return "# no service entry: " + textsafe.String(err.Error()) + "; pass the settings as connection options instead\n"
	}
	if in.rootCert == "" {
		// A comment line of its own: the format has no trailing comments.
		b.WriteString("# no sslrootcert: --server-ca was not given, so libpq reads ~/.postgresql/root.crt to verify the server\n")
	}
	return b.String()
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
			if os.Geteuid() == 0 {
				// Root renewing a key the server reads: the new files go to
				// whoever owned the old ones, not to root.
				if ow, err := tlsca.OwnerOf(f); err == nil && ow.UID != 0 {
					req.Owner = &ow
				}
			}
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
	user := fs.String("user", "", "role that exists, for the unencrypted-session check (with --hba-file; no password is sent)")
	database := fs.String("database", "", "database that exists, for the unencrypted-session check (default: --user)")
	hbaFile := fs.String("hba-file", "", "the server's pg_hba.conf: the unencrypted-session check is decided from it, and sent only where the server will not log a failure")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, targets []string) (int, error) {
		if len(targets) != 1 {
			return ExitError, usagef("give one HOST[:PORT]")
		}
		addr := targets[0]
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), "5432")
		}
		o := tlsprobe.Options{Addr: addr, ServerName: *serverName, Timeout: *timeout, SkipCiphers: *fast, User: *user, Database: *database}
		if o.Database == "" {
			o.Database = o.User
		}
		if *hbaFile != "" {
			f, err := hba.ParseFile(*hbaFile, hba.Options{})
			if err != nil {
				return ExitError, err
			}
			if len(f.Errors) > 0 {
				// The server keeps its old rules when the file has errors.
				return ExitError, fmt.Errorf("%s: %v", *hbaFile, f.Errors[0])
			}
			o.HBA = f.Rules
		}
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
		// Nothing answered at all (a closed port, a dead host): a table of
		// "refused" rows would read as the server's verdict.
		unreached := r.Stalled == "" && len(r.Errors) > 0 && !r.TLSOffered && !r.PlaintextAccepted
		if unreached && *format != "json" {
			return ExitError, fmt.Errorf("%s", strings.Join(r.Errors, "; "))
		}
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
		// The answer of an unchecked session starts with "not checked"
		// itself: said once.
		plain := yn[r.PlaintextAccepted] + " (" + esc(r.PlaintextAnswer) + ")"
		if !r.PlaintextChecked {
			plain = esc(r.PlaintextAnswer)
		}
		fmt.Fprintf(env.Stdout, "  direct TLS (PostgreSQL 17+): %s\n  unencrypted sessions accepted: %s\n",
			yn[r.DirectTLS], plain)
	}
	if !r.TLSOffered && len(r.NotTested) == 0 {
		// ssl = off: no version was refused, none was tried.
		fmt.Fprintf(env.Stdout, "  TLS versions: TLS not offered\n")
	}
	for _, v := range []string{"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"} {
		if !r.TLSOffered && len(r.NotTested) == 0 {
			break
		}
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
