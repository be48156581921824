package store

import (
	"bytes"
	"encoding/json"

	"github.com/pgaegis/pgaegis/internal/conninfo"
)

// redactJSON masks connection-string passwords in every string of a JSON
// document. collect already redacts the settings it knows hold them
// (primary_conninfo, *_command); the store does it again over everything
// because a snapshot may come from elsewhere (a file, an older pgaegis)
// and a password in a stored history outlives any fix.
func redactJSON(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	v = redactValue(v)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

func redactValue(v any) any {
	switch v := v.(type) {
	case string:
		return conninfo.RedactDSN(v)
	case []any:
		for i := range v {
			v[i] = redactValue(v[i])
		}
	case map[string]any:
		for k, x := range v {
			v[k] = redactValue(x)
		}
	}
	return v
}

// redactLabels masks passwords in label values (a label holding a DSN).
func redactLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		out[conninfo.RedactDSN(k)] = conninfo.RedactDSN(v)
	}
	return out
}
