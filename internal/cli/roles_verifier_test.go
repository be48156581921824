package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/scram"
)

// roles verifier prints a verifier the policy loader takes and that
// matches the password; the password itself is never printed.
func TestRolesVerifier(t *testing.T) {
	pw := "correct horse battery staple"
	file := filepath.Join(t.TempDir(), "app.pw")
	if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--password-file", file}, {"--password-file", "-"}} {
		code, out, errs := runCLIInput(t, pw+"\n", append([]string{"roles", "verifier"}, args...)...)
		v := strings.TrimSpace(out)
		if code != ExitOK || !scram.IsVerifier(v) || strings.Contains(out+errs, pw) {
			t.Fatalf("%v: exit %d, %q, %q", args, code, out, errs)
		}
		if !scram.Matches(v, []byte(pw)) {
			t.Fatalf("%v: the verifier does not match the password", args)
		}
	}
	if code, _, errs := runCLIInput(t, "\n", "roles", "verifier", "--password-file", "-"); code != ExitError || !strings.Contains(errs, "empty") {
		t.Fatalf("empty password: exit %d: %s", code, errs)
	}
}
