package guc

import "strings"

// SplitQuotedList splits a list setting the way the server's
// SplitDirectoriesString does (shared_preload_libraries and the other
// GUC_LIST_QUOTE settings): commas separate items, blanks around an item
// are dropped, a double-quoted item keeps commas and blanks ("" is a
// quote). ok is false where the server refuses the value: an unterminated
// quote, text after a closing quote, an empty unquoted item. Unlike
// SplitList, `"a,b"` is one item named a,b, as the server reads it.
func SplitQuotedList(v string) (items []string, ok bool) {
	s := strings.TrimLeft(v, " \t\n\r\f\v")
	if s == "" {
		return nil, true
	}
	isSpace := func(b byte) bool { return strings.IndexByte(" \t\n\r\f\v", b) >= 0 }
	for {
		var item string
		if s[0] == '"' {
			var b strings.Builder
			i := 1
			for {
				j := strings.IndexByte(s[i:], '"')
				if j < 0 {
					return items, false
				}
				b.WriteString(s[i : i+j])
				i += j + 1
				if i < len(s) && s[i] == '"' { // "" inside quotes
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			item, s = b.String(), s[i:]
		} else {
			j := strings.IndexByte(s, ',')
			if j < 0 {
				j = len(s)
			}
			item = strings.TrimRight(s[:j], " \t\n\r\f\v")
			if item == "" {
				return items, false
			}
			s = s[j:]
		}
		items = append(items, item)
		for len(s) > 0 && isSpace(s[0]) {
			s = s[1:]
		}
		if s == "" {
			return items, true
		}
		if s[0] != ',' {
			return items, false
		}
		s = strings.TrimLeft(s[1:], " \t\n\r\f\v")
		if s == "" {
			return items, false // a trailing comma leaves an empty item
		}
	}
}

// JoinQuotedList renders list items the way SHOW prints a GUC_LIST_QUOTE
// setting: ", " between items, an item double-quoted (quotes doubled)
// unless it is a plain lower-case name. SplitQuotedList reads it back.
func JoinQuotedList(items []string) string {
	out := make([]string, len(items))
	for i, it := range items {
		if plainName(it) {
			out[i] = it
		} else {
			out[i] = `"` + strings.ReplaceAll(it, `"`, `""`) + `"`
		}
	}
	return strings.Join(out, ", ")
}

func plainName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}
