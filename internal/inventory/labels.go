package inventory

import (
	"sort"
	"strings"
)

// FormatLabels writes a server's labels as "key=value" pairs in key
// order, space-separated: how reports, the dashboard and its filter show
// them.
func FormatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}
