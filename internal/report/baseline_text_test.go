package report

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// With --baseline only new findings are kept: the result line must not
// read "0 failed · 0 passed · 0 not checked" when 18 failures are known.
func TestBaselineResultLineSaysWhatIsCounted(t *testing.T) {
	s := &snapshot.Snapshot{FormatVersion: 1, Server: &snapshot.Server{Version: "15.20"}}
	fs := []rules.Finding{{Rule: "AUTH-02", Status: rules.Fail, Severity: rules.High, Object: "hba rule: host all all 0.0.0.0/0 md5"}}
	prev := Build(s, fs, rules.High)
	cur := Build(s, fs, rules.High)
	ApplyBaseline(cur, prev, "last.json", rules.High)
	var b strings.Builder
	if err := WriteText(&b, cur, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "0 failing new since the baseline · 1 unchanged (not shown) · 0 fixed") || strings.Contains(out, "0 passed · 0 not checked") {
		t.Errorf("result line:\n%s", out)
	}
}
