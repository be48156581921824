package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pgaegis/pgaegis/internal/conninfo"
)

// redactor removes connection-string passwords from what a scan writes.
// collect already redacts the settings it knows hold them
// (primary_conninfo, *_command); the store does it again because a
// snapshot may come from elsewhere (a file, an older pgaegis) and a
// password in a stored history outlives any fix.
//
// Observed text (the snapshot, a finding's evidence and object, messages,
// labels) is redacted as connection strings are. A finding's own prose
// (title, expected, fix) is not: "remove password= from …" reads as a
// password "from" to libpq's grammar. Instead every password learnt from
// the observed text is masked wherever it appears.
type redactor struct{ secrets []string }

// learn remembers the passwords s holds.
func (r *redactor) learn(s string) {
	for _, sp := range conninfo.SecretSpans(s) {
		v := s[sp.Start:sp.End]
		for _, x := range []string{v, strings.Trim(v, `'"`)} {
			if x != "" && x != conninfo.Mask {
				r.secrets = append(r.secrets, x)
			}
		}
	}
}

// observed redacts text that was read from a server or a file.
func (r *redactor) observed(s string) string { return r.prose(conninfo.RedactDSN(s)) }

// prose masks the learnt passwords: long ones anywhere, short ones only
// as whole words, so that a two-letter password does not garble the text.
func (r *redactor) prose(s string) string {
	for _, pw := range r.secrets {
		if len(pw) >= 8 {
			s = strings.ReplaceAll(s, pw, conninfo.Mask)
			continue
		}
		var spans []conninfo.Span
		for from := 0; ; {
			i := strings.Index(s[from:], pw)
			if i < 0 {
				break
			}
			i += from
			j := i + len(pw)
			before, _ := utf8.DecodeLastRuneInString(s[:i])
			after, _ := utf8.DecodeRuneInString(s[j:])
			if !isWord(before) && !isWord(after) {
				spans = append(spans, conninfo.Span{Start: i, End: j})
			}
			from = j
		}
		s = conninfo.Replace(s, spans, conninfo.Mask)
	}
	return s
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// decodeJSON reads a document as generic values, numbers kept exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func encodeJSON(v any) ([]byte, error) {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// walk calls fn on every string of v with the key of the object field it
// sits under (an array's elements inherit their field's key).
func walk(v any, key string, fn func(key, s string) string) any {
	switch v := v.(type) {
	case string:
		return fn(key, v)
	case []any:
		for i := range v {
			v[i] = walk(v[i], key, fn)
		}
	case map[string]any:
		for k, x := range v {
			v[k] = walk(x, k, fn)
		}
	}
	return v
}

// observedFindingKeys are a finding's fields that quote what was seen.
var observedFindingKeys = map[string]bool{"object": true, "objects": true, "evidence": true, "location": true, "reason": true}

// redactScan returns the snapshot and findings JSON, the message and the
// labels with passwords removed.
func redactScan(snap, findings []byte, msg string, labels map[string]string) (snapOut, findOut []byte, msgOut string, labelsOut map[string]string, err error) {
	r := &redactor{}
	var sv, fv any
	if snap != nil {
		if sv, err = decodeJSON(snap); err != nil {
			return
		}
		walk(sv, "", func(_, s string) string { r.learn(s); return s })
	}
	if findings != nil {
		if fv, err = decodeJSON(findings); err != nil {
			return
		}
		walk(fv, "", func(k, s string) string {
			if observedFindingKeys[k] {
				r.learn(s)
			}
			return s
		})
	}
	r.learn(msg)
	for k, v := range labels {
		r.learn(k)
		r.learn(v)
	}
	if sv != nil {
		walk(sv, "", func(_, s string) string { return r.observed(s) })
		if snapOut, err = encodeJSON(sv); err != nil {
			return
		}
	}
	if fv != nil {
		walk(fv, "", func(k, s string) string {
			if observedFindingKeys[k] {
				return r.observed(s)
			}
			return r.prose(s)
		})
		if findOut, err = encodeJSON(fv); err != nil {
			return
		}
	}
	labelsOut = make(map[string]string, len(labels))
	for k, v := range labels {
		labelsOut[r.observed(k)] = r.observed(v)
	}
	return snapOut, findOut, r.observed(msg), labelsOut, nil
}
