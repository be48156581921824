package logscan

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// jsonlog records are flat JSON objects, one per line, with string and
// number values. decodeJSONRecord walks one without reflection, decoding
// only the fields the analysis reads; anything it does not expect
// (nesting, bad syntax) goes to encoding/json, which also words the error.

type jsonRecord struct {
	Timestamp  string `json:"timestamp"`
	User       string `json:"user"`
	Dbname     string `json:"dbname"`
	PID        int    `json:"pid"`
	RemoteHost string `json:"remote_host"`
	Severity   string `json:"error_severity"`
	Message    string `json:"message"`
	Detail     string `json:"detail"`
	Statement  string `json:"statement"`
	App        string `json:"application_name"`
}

func decodeJSONRecord(l []byte, j *jsonRecord) error {
	if decodeFlatJSON(l, j) {
		return nil
	}
	*j = jsonRecord{}
	return json.Unmarshal(l, j)
}

// decodeFlatJSON reports false when the line is not a flat object it can
// decode exactly as encoding/json would.
func decodeFlatJSON(l []byte, j *jsonRecord) bool {
	l = bytes.TrimSpace(l)
	if len(l) < 2 || l[0] != '{' || l[len(l)-1] != '}' {
		return false
	}
	l = l[1 : len(l)-1]
	for {
		l = bytes.TrimLeft(l, " \t")
		if len(l) == 0 {
			return true
		}
		key, rest, ok := jsonString(l)
		if !ok || !plainKey(key) {
			return false
		}
		rest = bytes.TrimLeft(rest, " \t")
		if len(rest) == 0 || rest[0] != ':' {
			return false
		}
		rest = bytes.TrimLeft(rest[1:], " \t")
		var val []byte
		if len(rest) > 0 && rest[0] == '"' {
			val, rest, ok = jsonString(rest)
			if !ok {
				return false
			}
			if string(key) == "pid" {
				return false // a string where a number belongs
			}
			if dst := j.stringField(key); dst != nil {
				if *dst, ok = jsonText(val); !ok {
					return false
				}
			}
		} else {
			end := bytes.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, rest = bytes.TrimRight(rest[:end], " \t"), rest[end:]
			switch {
			case string(key) == "pid":
				n, err := strconv.Atoi(string(val))
				if err != nil {
					return false
				}
				j.PID = n
			case len(val) == 0 || val[0] == '{' || val[0] == '[' || val[0] == '"':
				return false
			case j.stringField(key) != nil:
				return false // a number where a string belongs: let encoding/json say so
			}
		}
		rest = bytes.TrimLeft(rest, " \t")
		if len(rest) == 0 {
			return true
		}
		if rest[0] != ',' {
			return false
		}
		l = rest[1:]
	}
}

// plainKey: lower-case ASCII, as jsonlog writes its keys. Others go to
// encoding/json, which matches keys case-insensitively (and folds K and ſ).
func plainKey(k []byte) bool {
	for _, c := range k {
		if c == '\\' || c >= 0x80 || (c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// stringField is where a key's string value goes (nil: not needed).
// Keys match exactly: jsonlog writes them in lower case.
func (j *jsonRecord) stringField(key []byte) *string {
	switch string(key) {
	case "timestamp":
		return &j.Timestamp
	case "user":
		return &j.User
	case "dbname":
		return &j.Dbname
	case "remote_host":
		return &j.RemoteHost
	case "error_severity":
		return &j.Severity
	case "message":
		return &j.Message
	case "detail":
		return &j.Detail
	case "statement":
		return &j.Statement
	case "application_name":
		return &j.App
	}
	return nil
}

// jsonString splits a quoted string off l: its raw contents (escapes
// still escaped) and the rest.
func jsonString(l []byte) (raw, rest []byte, ok bool) {
	if len(l) == 0 || l[0] != '"' {
		return nil, nil, false
	}
	i := 1
	for {
		q := bytes.IndexByte(l[i:], '"')
		if q < 0 {
			return nil, nil, false
		}
		i += q
		bs := 0 // an odd run of backslashes escapes the quote
		for k := i - 1; k > 0 && l[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return l[1:i], l[i+1:], true
		}
		i++
	}
}

// jsonText decodes a string's raw contents; escapes and invalid UTF-8
// (rare) go through encoding/json so the result is the same.
func jsonText(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		for _, c := range raw {
			if c < 0x20 {
				return "", false // control characters are invalid JSON
			}
		}
		return string(raw), true
	}
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", false
	}
	return s, true
}
