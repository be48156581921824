package cli

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/tlsca"
)

// TestTLSSnippetsHostilePaths: the postgresql.conf lines printed after
// `tls issue` read back (pg_file_settings) as exactly the paths, the shell
// line keeps each path one argument, and a service entry is refused for a
// CN the service file cannot hold. Before the quote package the paths went
// into '...' raw, so a path with a quote ended the value early.
func TestTLSSnippetsHostilePaths(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	dir := "/tmp/pgaegis q'uote \\ back\nslash $(touch x)"
	is := &tlsca.Issued{CertFile: dir + "/server.crt", KeyFile: dir + "/server.key"}
	snip := serverSnippets(serverSnippetInput{cert: is.CertFile, key: is.KeyFile})
	conf := snip["postgresql.conf"]
	for _, l := range strings.Split(strings.TrimSpace(conf), "\n") {
		if strings.HasPrefix(l, "ssl_cert_file") || strings.HasPrefix(l, "ssl_key_file") {
			continue
		}
		if !strings.HasPrefix(l, "# ") && !strings.HasPrefix(l, "ssl ") && !strings.HasPrefix(l, "ssl_min") && !strings.HasPrefix(l, "ssl_ciphers") {
			t.Errorf("unexpected line %q", l)
		}
	}
	// Only the two path lines go to the server: the placeholders are not
	// files it could check.
	var lines []string
	for _, l := range strings.Split(conf, "\n") {
		if strings.HasPrefix(l, "ssl_cert_file") || strings.HasPrefix(l, "ssl_key_file") {
			lines = append(lines, strings.Replace(l, "ssl_", "pgaegis_test.ssl_", 1))
		}
	}
	if len(lines) != 2 {
		t.Fatalf("path lines: %q", conf)
	}
	if err := srv.AppendConf("include_if_exists 'tls_snippet.conf'"); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteDataFile("tls_snippet.conf", strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	got := map[string]string{}
	rows, err := c.Query(ctx, "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%tls_snippet.conf' AND error IS NULL")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		got[n] = v
	}
	if got["pgaegis_test.ssl_cert_file"] != is.CertFile || got["pgaegis_test.ssl_key_file"] != is.KeyFile {
		t.Errorf("paths read back as %q", got)
	}
	// The shell line: each path one argument (checked with printf in place
	// of chown/chmod).
	sh := strings.SplitN(snip["shell"], "    #", 2)[0]
	sh = strings.NewReplacer("chown postgres:postgres", "printf '%s\\0'", "chmod 0600", "printf '%s\\0'").Replace(sh)
	out, err := exec.Command("sh", "-c", sh).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", sh, err)
	}
	if want := is.KeyFile + "\x00" + is.KeyFile + "\x00"; string(out) != want {
		t.Errorf("shell words %q, want %q", out, want)
	}
	// A CN with a line break cannot be a service section: an explanation,
	// not an entry with an injected host=.
	cl := serviceEntry(serviceInput{role: "app\nhost=evil", host: "localhost", port: 5432, dbname: "postgres", cert: "/c.crt", key: "/c.key"})
	if strings.Contains(cl, "\nhost=evil") || !strings.HasPrefix(cl, "# no service entry") {
		t.Errorf("service entry for a hostile CN: %q", cl)
	}
	ok := serviceEntry(serviceInput{role: "app", host: "localhost", port: 5432, dbname: "postgres", cert: "/c.crt", key: "/c.key"})
	if !strings.HasPrefix(ok, "[app]\n") || !strings.Contains(ok, "user=app\n") {
		t.Errorf("service entry: %q", ok)
	}
	// A path the file cannot hold (a line break) refuses the whole entry.
	bad := serviceEntry(serviceInput{role: "app", host: "localhost", port: 5432, dbname: "postgres", rootCert: dir + "/ca.crt", cert: "/c.crt", key: "/c.key"})
	if !strings.HasPrefix(bad, "# no service entry") {
		t.Errorf("service entry with a line break in sslrootcert: %q", bad)
	}
}
