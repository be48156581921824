package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/pgaegis/pgaegis/internal/rules"
)

// withWaiver marks one failure as waived, so every writer shows that case.
func withWaiver(r *Report) *Report {
	for i := range r.Findings {
		if r.Findings[i].Rule == "AUTH-06" && r.Findings[i].Status == rules.Fail {
			r.Findings[i].Status = rules.Waived
			r.Findings[i].Waiver = &rules.Waiver{Reason: "legacy network, moved by Q2", Expires: "2027-06-30", Owner: "dba"}
			break
		}
	}
	SortFindings(r.Findings)
	return r
}

func render(t *testing.T, write func(*bytes.Buffer, *Report) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b, withWaiver(build(t))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSARIFGolden(t *testing.T) {
	out := render(t, func(b *bytes.Buffer, r *Report) error { return WriteSARIF(b, r, SARIFOptions{Root: "/etc/postgresql"}) })
	golden(t, "audit.sarif", out)
	var doc sarifLog
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	fileResults := 0
	for _, res := range doc.Runs[0].Results {
		if pl := res.Locations[0].PhysicalLocation; pl != nil {
			fileResults++
			if pl.ArtifactLocation.URIBaseID != "SRCROOT" || strings.HasPrefix(pl.ArtifactLocation.URI, "/") {
				t.Errorf("file location not relative to the root: %+v", pl.ArtifactLocation)
			}
		}
		if doc.Runs[0].Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("ruleIndex of %s points at %s", res.RuleID, doc.Runs[0].Tool.Driver.Rules[res.RuleIndex].ID)
		}
	}
	if fileResults == 0 {
		t.Error("no result points at a file")
	}
}

// TestSARIFValidatesAgainstSchema validates against the official SARIF
// 2.1.0 schema. The schema is not committed here; .ci/run fetches it
// (from the npm package of Microsoft's SARIF multitool) and sets
// PGAEGIS_SARIF_SCHEMA.
func TestSARIFValidatesAgainstSchema(t *testing.T) {
	path := os.Getenv("PGAEGIS_SARIF_SCHEMA")
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PGAEGIS_SARIF_SCHEMA is not set under CI=true")
		}
		t.Skip("PGAEGIS_SARIF_SCHEMA not set (the SARIF 2.1.0 schema file)")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	schemaDoc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sarif-2.1.0.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("sarif-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*Report{"findings": withWaiver(build(t)), "empty": {Tool: "pgaegis", ToolVersion: "x", CollectedAt: time.Now()}} {
		var b bytes.Buffer
		if err := WriteSARIF(&b, r, SARIFOptions{Root: "/etc"}); err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(&b)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s: SARIF does not validate: %v", name, err)
		}
	}
	// The validator must be able to say no.
	broken, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"level": "fatal", "message": {"text": "m"}}]}]}`))
	if sch.Validate(broken) == nil {
		t.Error("an invalid result level passed validation")
	}
}

func TestJUnitGolden(t *testing.T) {
	out := render(t, func(b *bytes.Buffer, r *Report) error { return WriteJUnit(b, r) })
	golden(t, "audit.junit.xml", out)
	var doc junitSuites
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if doc.Failures == 0 || doc.Tests < doc.Failures+doc.Skipped {
		t.Errorf("counts: %+v", doc)
	}
}

func TestMarkdownGolden(t *testing.T) {
	golden(t, "audit.md", render(t, func(b *bytes.Buffer, r *Report) error { return WriteMarkdown(b, r) }))
}

func TestHTMLGolden(t *testing.T) {
	out := render(t, func(b *bytes.Buffer, r *Report) error { return WriteHTML(b, r) })
	golden(t, "audit.html", out)
	s := string(out)
	for _, bad := range []string{"<script src", "<link ", "http://", "@import"} {
		if strings.Contains(s, bad) {
			t.Errorf("HTML is not self-contained: contains %q", bad)
		}
	}
}

func TestHTMLEscapesHostileNames(t *testing.T) {
	r := build(t)
	r.Findings[0].Object = `role "<script>alert(1)</script>"`
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>alert(1)") {
		t.Error("object name not escaped")
	}
}
