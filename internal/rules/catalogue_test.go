package rules

import "testing"

// catalogue lists the control ids of the catalogue (shared/controls.md):
// each must have a rule (automated, or a manual one that says what to
// look at), so nothing in the catalogue is silently skipped.
var catalogue = []string{
	"INST-01", "INST-02", "INST-03", "INST-04", "INST-05", "INST-06", "INST-07", "INST-08", "INST-09", "INST-10",
	"INST-11", "INST-12", "INST-13", "FS-01", "FS-02", "FS-03", "FS-04", "FS-05", "FS-06", "FS-07",
	"FS-08", "FS-09", "FS-10", "LOG-01", "LOG-02", "LOG-03", "LOG-04", "LOG-05", "LOG-06", "LOG-07",
	"LOG-08", "LOG-09", "LOG-10", "LOG-11", "LOG-12", "LOG-13", "LOG-14", "LOG-15", "LOG-16", "LOG-17",
	"LOG-18", "LOG-19", "LOG-20", "LOG-21", "LOG-22", "LOG-23", "LOG-24", "LOG-25", "LOG-26", "LOG-27",
	"LOG-28", "LOG-29", "LOG-30", "LOG-31", "LOG-32", "LOG-33", "AUTH-01", "AUTH-02", "AUTH-03", "AUTH-04",
	"AUTH-05", "AUTH-06", "AUTH-07", "AUTH-08", "AUTH-09", "AUTH-10", "AUTH-11", "AUTH-12", "AUTH-13", "AUTH-14",
	"AUTH-15", "AUTH-16", "AUTH-17", "AUTH-18", "AUTH-19", "AUTH-20", "PRIV-01", "PRIV-02", "PRIV-03", "PRIV-04",
	"PRIV-05", "PRIV-06", "PRIV-07", "PRIV-08", "PRIV-09", "PRIV-10", "PRIV-11", "PRIV-12", "PRIV-13", "PRIV-14",
	"PRIV-15", "PRIV-16", "PRIV-17", "PRIV-18", "PRIV-19", "NET-01", "NET-02", "NET-03", "NET-04", "NET-05",
	"NET-06", "TLS-01", "TLS-02", "TLS-03", "TLS-04", "TLS-05", "TLS-06", "TLS-07", "TLS-08", "REPL-01",
	"REPL-02", "REPL-03", "REPL-04", "REPL-05", "BKP-01", "BKP-02", "BKP-03", "BKP-04", "BKP-05", "BKP-06",
	"EXT-01", "EXT-02", "EXT-03", "EXT-04", "EXT-05", "EXT-06", "EXT-07", "EXT-08", "EXT-09", "EXT-10",
	"EXT-11", "OTH-01", "OTH-02", "OTH-03", "OTH-04", "OTH-05",
}

func TestEveryControlHasARule(t *testing.T) {
	have := map[string]bool{}
	for _, r := range All() {
		have[controlOf(r.ID)] = true
	}
	for _, id := range catalogue {
		if !have[id] {
			t.Errorf("control %s has no rule", id)
		}
	}
}
