package rules

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// docs/rules.md is generated from the registry; this keeps it current.
func TestRulesDocIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	const path = "../../docs/rules.md"
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(old, b.Bytes()) {
		t.Fatalf("docs/rules.md is out of date: run go test ./internal/rules -run TestRulesDocIsCurrent -update")
	}
}

func TestEveryRuleHasMetadata(t *testing.T) {
	for _, r := range All() {
		if r.Title == "" || r.Rationale == "" || r.Area == "" || r.Check == nil || len(r.References) < 2 {
			t.Errorf("%s: incomplete metadata", r.ID)
		}
	}
}
