package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func docYAMLBlocks(t *testing.T) (string, []string) {
	t.Helper()
	b, err := os.ReadFile("../../docs/inventory.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var blocks []string
	for _, part := range strings.Split(doc, "```yaml\n")[1:] {
		blocks = append(blocks, part[:strings.Index(part, "```")])
	}
	return doc, blocks
}

// TestDocsExampleLoads: the full example of docs/inventory.md loads and
// generates the servers its comments promise.
func TestDocsExampleLoads(t *testing.T) {
	isolate(t)
	_, blocks := docYAMLBlocks(t)
	if len(blocks) < 2 {
		t.Fatalf("%d yaml blocks in docs/inventory.md", len(blocks))
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "teams"), 0o755)
	files := map[string]string{
		"fleet.yaml":          blocks[0],
		"teams/payments.yaml": blocks[1],
		"waivers.yaml":        "waivers:\n  - rule: AUTH-05\n    reason: loopback only\n    expires: 2027-03-31\n",
		"pg_service.conf":     "[reporting]\nhost=reporting.example.com\n",
		"shards.pgpass":       "*:*:*:pgaegis:x\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := Load(filepath.Join(dir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range inv.Servers {
		names = append(names, s.Name)
	}
	want := "billing-primary billing-replica reporting shard-01 shard-02 shard-03 edge-ams-5432 edge-ams-5433 edge-fra-5432 edge-fra-5433 payments"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("servers:\n got %s\nwant %s", got, want)
	}
}

// TestDocsEveryKey: each key the loader accepts has its row in the docs.
func TestDocsEveryKey(t *testing.T) {
	doc, _ := docYAMLBlocks(t)
	for _, set := range []map[string]bool{topKeys, defaultsKeys, serverKeys} {
		for k := range set {
			if !strings.Contains(doc, "| `"+k+"` |") {
				t.Errorf("docs/inventory.md has no table row for %q", k)
			}
		}
	}
	for _, set := range []map[string]bool{inlineSecretKeys} {
		for k := range set {
			if !strings.Contains(doc, "`"+k+"`") {
				t.Errorf("docs/inventory.md does not document %q", k)
			}
		}
	}
}
