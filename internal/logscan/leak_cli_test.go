package logscan_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
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

// TestLogsScanCutGzipExits2 (issue #10 defect 10): through the command, a
// cut .gz is exit 2 with an error naming the file, not a clean-looking scan.
func TestLogsScanCutGzipExits2(t *testing.T) {
	var log bytes.Buffer
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&log, "2026-11-22 08:00:%02d.000 UTC [%d] app@shop 10.0.0.9(5432) FATAL:  password authentication failed for user \"app%d\"\n", i%60, i, i%7)
	}
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(log.Bytes())
	w.Close()
	path := filepath.Join(t.TempDir(), "postgresql.log.gz")
	if err := os.WriteFile(path, z.Bytes()[:z.Len()*2/3], 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := cli.Main([]string{"logs", "scan", "--prefix", "%m [%p] %q%u@%d %r ", path}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), path+": compressed file is truncated") {
		t.Errorf("exit %d, stderr %q: want 2 and an error naming %s", code, errb.String(), path)
	}
}
