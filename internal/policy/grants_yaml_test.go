package policy

import (
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// Grantee names YAML would read as something else come back as written.
func TestGrantsYAMLKeys(t *testing.T) {
	g := Grants{"on": {"SELECT"}, "1": {}, "*": {"USAGE"}, "null": {"SELECT", "INSERT"}, "a: b": nil, "we\"ird\nname": {"ALL"}, "PUBLIC": {}}
	b, err := yaml.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	var back Grants
	if err := yaml.Unmarshal(b, &back); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	for k, v := range g {
		if v == nil {
			g[k] = []string{} // written as [], read back empty
		}
	}
	if !reflect.DeepEqual(g, back) {
		t.Fatalf("got %v from\n%s", back, b)
	}
}
