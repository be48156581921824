package web

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/store"
	"github.com/pgaegis/pgaegis/internal/tlsca"
)

// TestTLS serves the dashboard with a certificate issued by pgaegis's own
// CA (what 'pgaegis tls issue server' writes): HSTS is sent and the
// session cookie is Secure.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsca.InitCA(filepath.Join(dir, "ca"), "Dashboard Test CA", "ecdsa-p256", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(tlsca.Request{CommonName: "localhost", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		KeyType: "ecdsa-p256", Validity: time.Hour}, filepath.Join(dir, "certs"), "server")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(is.CertFile, is.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Store: fleetStore(t), TLS: true, Now: func() time.Time { return fixNow }})
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	hs.StartTLS()
	defer hs.Close()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// Verified against the CA: the chain pgaegis issued is what a browser sees.
	resp := get(t, c, hs.URL+"/login", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=") {
		t.Errorf("no HSTS over TLS: %q", h)
	}
	if lc := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); !strings.Contains(lc, "Secure") {
		t.Errorf("login cookie not Secure over TLS: %s", lc)
	}
	tok := token(t, fleetStore(t), store.RoleReadOnly)
	var lck *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == loginCookie {
			lck = ck
		}
	}
	r2, err := c.Do(postReq(hs.URL+"/login", url.Values{"csrf": {formCSRF(t, string(body))}, "token": {tok}}, lck))
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	sc := strings.Join(r2.Header.Values("Set-Cookie"), "\n")
	if r2.StatusCode != 303 || !strings.Contains(sc, sessionCookie+"=") || !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") {
		t.Errorf("login over TLS: %d, cookies %s", r2.StatusCode, sc)
	}
	if r := get(t, c, hs.URL+"/metrics", tok); r.StatusCode != 200 {
		t.Errorf("/metrics over TLS: %d", r.StatusCode)
	}
}
