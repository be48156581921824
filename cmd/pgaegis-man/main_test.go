package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestManPages runs the generator into a temporary directory: one page per
// command, each with its examples, and none with a generation date.
func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	if err := run(dir); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"pgaegis.1", "pgaegis-audit.1", "pgaegis-hba-diff.1", "pgaegis-tls-issue-client.1",
		"pgaegis-logs-scan.1", "pgaegis-access-policy-check.1", "pgaegis-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("%s: %v", page, err)
			continue
		}
		if !strings.Contains(string(b), ".SH EXAMPLE") && page != "pgaegis-completion-bash.1" {
			t.Errorf("%s has no EXAMPLE section", page)
		}
		if strings.Contains(string(b), "Auto generated") {
			t.Errorf("%s carries a generation tag", page)
		}
	}
}

// TestBinaryHasNoDocDependencies: cobra/doc and its Markdown renderer are
// for this generator only.
func TestBinaryHasNoDocDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/pgaegis/pgaegis/cmd/pgaegis").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, dep := range []string{"github.com/spf13/cobra/doc", "github.com/cpuguy83/go-md2man", "github.com/russross/blackfriday"} {
		if strings.Contains(string(out), dep) {
			t.Errorf("pgaegis depends on %s", dep)
		}
	}
}
