package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/store"
	"github.com/pgaegis/pgaegis/internal/web"
)

// TestServeTokens: create prints the token once (stdout) and stores only
// its hash; list never shows it; revoke by name stops it.
func TestServeTokens(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fleet.db")
	code, out, errOut := runCLI(t, "serve", "token", "create", "--store", db, "--role", "read-only", "--name", "grafana")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if !regexp.MustCompile(`^pgaegis_[A-Za-z0-9_-]{43}$`).MatchString(tok) {
		t.Fatalf("token %q is not pgaegis_ and 43 base64url characters", tok)
	}
	if strings.Contains(errOut, tok) {
		t.Error("the token is on stderr too")
	}
	code, out, _ = runCLI(t, "serve", "token", "list", "--store", db)
	if code != 0 || !strings.Contains(out, "grafana") || !strings.Contains(out, "read-only") || strings.Contains(out, tok) {
		t.Errorf("list: %d\n%s", code, out)
	}
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), tok) {
		t.Error("the token itself is in the store file")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.LookupToken(ctx, web.HashToken(tok), time.Now()); err != nil {
		t.Errorf("the printed token is not the stored one: %v", err)
	}
	st.Close()
	if code, _, e := runCLI(t, "serve", "token", "create", "--store", db, "--role", "admin"); code != 2 || !strings.Contains(e, "read-only or operator") {
		t.Errorf("--role admin: %d %s", code, e)
	}
	if code, _, e := runCLI(t, "serve", "token", "create", "--store", db, "--role", "operator", "--name", "grafana"); code != 2 || !strings.Contains(e, "exists") {
		t.Errorf("a second grafana: %d %s", code, e)
	}
	if code, out, e := runCLI(t, "serve", "token", "revoke", "--store", db, "grafana"); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("revoke: %d %s %s", code, out, e)
	}
	if code, _, e := runCLI(t, "serve", "token", "revoke", "--store", db, "grafana"); code != 2 || !strings.Contains(e, "no active token") {
		t.Errorf("second revoke: %d %s", code, e)
	}
	code, out, _ = runCLI(t, "serve", "token", "list", "--store", db)
	if code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("list after revoke:\n%s", out)
	}
}

// TestServeListen: plain HTTP beyond loopback is refused before anything
// listens; TLS flags go together.
func TestServeListen(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fleet.db")
	for _, args := range [][]string{
		{"--listen", "0.0.0.0:8642"},
		{"--listen", ":8642"},
		{"--listen", "192.0.2.1:8642"},
		{"--listen", "nohost"},
		{"--tls-cert", "x.crt"},
	} {
		code, _, e := runCLI(t, append([]string{"serve", "--store", db}, args...)...)
		if code != 2 {
			t.Errorf("serve %v: exit %d, want 2 (%s)", args, code, e)
		}
	}
	for _, ok := range []string{"127.0.0.1:1", "localhost:1", "[::1]:1"} {
		if err := checkListen(ok, false, false); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	if err := checkListen("0.0.0.0:1", false, true); err != nil {
		t.Errorf("--insecure-listen refused: %v", err)
	}
	if err := checkListen("0.0.0.0:1", true, false); err != nil {
		t.Errorf("TLS on 0.0.0.0 refused: %v", err)
	}
	code, _, e := runCLI(t, "serve", "--store", db, "--listen", "0.0.0.0:8642")
	if code != 2 || !strings.Contains(e, "--tls-cert") {
		t.Errorf("the refusal says what to do: %s", e)
	}
}
