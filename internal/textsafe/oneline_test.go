package textsafe

import "testing"

func TestOneLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"connecting to host=h port=1: failed to connect to `user=u database=d`:\n\th:1 (127.0.0.1): dial error: connection refused\n\th:1 (127.0.0.1): dial error: connection refused",
			"connecting to host=h port=1: failed to connect to `user=u database=d`: h:1 (127.0.0.1): dial error: connection refused"},
		{"a:\r\n\tb\n\n\tc\n", "a: b c"},
		{"a\nb\na", "a b"},
	} {
		if got := OneLine(c.in); got != c.want {
			t.Errorf("OneLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
