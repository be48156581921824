package inspect

import (
	"bytes"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pgaegis/pgaegis/internal/policy"
)

// Marshal writes a policy file as YAML after a comment header (one "# "
// line per entry, control characters shown escaped so a hostile name
// cannot end the comment). Keys are sorted: the same state gives the same
// bytes. A File has no place for a password verifier other than
// Role.Password, which Read never fills; Marshal clears it anyway.
func Marshal(f *policy.File, header []string) ([]byte, error) {
	var buf bytes.Buffer
	for _, h := range header {
		buf.WriteString("# ")
		buf.WriteString(commentSafe(h))
		buf.WriteByte('\n')
	}
	clean := *f
	if f.Roles != nil {
		clean.Roles = make(policy.Roles, len(f.Roles))
		for n, r := range f.Roles {
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

func commentSafe(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029:
			sb.WriteString(`\x`)
			sb.WriteString(strings.ToLower(string("0123456789ABCDEF"[r>>4&0xf]) + string("0123456789ABCDEF"[r&0xf])))
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}
