package inspect

import (
	"bytes"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// marshalYAMLv3 is the writer Marshal replaced (yaml.v3's encoder, the
// model's MarshalYAML methods): the oracle for the document structure.
func marshalYAMLv3(f *policy.File, header []string) ([]byte, error) {
	var buf bytes.Buffer
	for _, h := range header {
		buf.WriteString("# " + commentSafe(h) + "\n")
	}
	clean := *f
	if f.Roles != nil {
		clean.Roles = make(policy.Roles, len(f.Roles))
		for n, r := range f.Roles {
			if r == nil {
				clean.Roles[n] = nil
				continue
			}
			c := *r
			c.Password = ""
			clean.Roles[n] = &c
		}
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&clean); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
