package logscan_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/cli"
	"github.com/pgaegis/pgaegis/internal/logscan"
)

// TestLogsScanOutputHasNoPassword (issue #10 defect 3): pgaegis logs scan
// over a real server's logs prints no part of any password, in any output
// format, for any log format.
func TestLogsScanOutputHasNoPassword(t *testing.T) {
	dir := logscan.LeakLogs(t)
	for _, log := range []string{"pg.log", "pg.csv", "pg.json"} {
		for _, format := range []string{"text", "json", "sarif", "markdown", "html", "junit"} {
			t.Run(log+"/"+format, func(t *testing.T) {
				var out, errb bytes.Buffer
				code := cli.Main([]string{"logs", "scan", "--format", format, "--prefix", "%m [%p] %q%u@%d %r ", filepath.Join(dir, log)}, &out, &errb)
				if code == 2 {
					if len(logscan.LeakedSecrets(errb.String())) == 0 {
						t.Fatalf("exit 2: %s", errb.String())
					}
					t.Fatalf("exit 2: %d bytes of errors", errb.Len())
				}
				if l := logscan.LeakedSecrets(out.String() + errb.String()); len(l) > 0 {
					t.Errorf("forms %v leak into the %s output", l, format)
				}
				if !strings.Contains(out.String(), "secret-in-log") && !strings.Contains(out.String(), "password was written to the log") {
					t.Errorf("the %s output does not report the secret in the log", format)
				}
			})
		}
	}
}
