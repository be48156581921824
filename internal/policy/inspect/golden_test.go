package inspect

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/export.golden.yaml")

// TestExportGolden reads the planted estate on the reference major,
// checks the export expands to what was read, and compares the YAML with
// the golden file (go test ./internal/policy/inspect -run TestExportGolden
// -update rewrites it).
func TestExportGolden(t *testing.T) {
	srv := pgtest.Shared(t)
	major, _ := strconv.Atoi(pgtest.Version)
	plant(t, major, srv.ExecIn)
	live, err := Read(pgtest.Ctx(t), srv.ConnConfig("postgres"), Options{Databases: []string{"appdb"}})
	if err != nil {
		t.Fatal(err)
	}
	ex := Export(live, ExportOptions{})
	data, err := Marshal(ex, []string{"golden", "a hostile\nheader"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "password") || strings.Contains(string(data), "x-secret-1") || strings.Contains(string(data), "SCRAM") {
		t.Fatalf("the export names a password:\n%s", data)
	}
	if !strings.HasPrefix(string(data), "# golden\n# a hostile\\nheader\n") {
		t.Fatalf("header not escaped:\n%s", data)
	}
	var back policy.File
	if err := yaml.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := normalize(Expand(&back, live)), normalize(live.File); !reflect.DeepEqual(got, want) {
		t.Fatalf("the export does not expand to the live state:\n%s", lineDiff(yamlText(t, got), yamlText(t, want)))
	}
	again, _ := Marshal(Export(live, ExportOptions{}), []string{"golden", "a hostile\nheader"})
	if string(again) != string(data) {
		t.Fatal("two exports of one state differ")
	}
	golden := filepath.Join("testdata", "export.golden.yaml")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != string(data) {
		t.Errorf("export differs from %s (run with -update if intended):\n%s", golden, lineDiff(string(data), string(want)))
	}
}
