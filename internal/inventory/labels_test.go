package inventory

import "testing"

func TestFormatLabels(t *testing.T) {
	for _, c := range []struct {
		in   map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"env": "prod"}, "env=prod"},
		{map[string]string{"team": "billing", "env": "prod", "a": ""}, "a= env=prod team=billing"},
	} {
		if got := FormatLabels(c.in); got != c.want {
			t.Errorf("FormatLabels(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
