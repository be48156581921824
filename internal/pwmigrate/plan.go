package pwmigrate

import (
	"fmt"

	"github.com/pgaegis/pgaegis/internal/plan"
)

// PlanSource marks the settings plan in the journal (fix history).
const PlanSource = "passwords-migrate"

// SettingsPlan is the journalled part of --apply: password_encryption =
// scram-sha-256 by ALTER SYSTEM and a reload, and a RESET of each
// override that is not scram-sha-256, with the old value as its undo.
// It runs through internal/apply like a fix plan, so 'pgaegis fix
// rollback ID' restores it. Empty when nothing is to change.
func SettingsPlan(r *Report) *plan.Plan {
	p := &plan.Plan{FormatVersion: plan.FormatVersion, Source: PlanSource, Target: r.Target}
	next := func() string { return fmt.Sprint(len(p.Steps) + 1) }
	pe := r.PasswordEncryption
	if pe.Set {
		p.Steps = append(p.Steps, plan.Step{ID: next(), Kind: plan.KindSettings, Apply: plan.ApplyReload,
			Summary: "set password_encryption = scram-sha-256 (new passwords are stored as SCRAM verifiers)",
			Closes:  []plan.FindingRef{{Rule: "AUTH-11", Object: "setting password_encryption", Severity: "high"}},
			Settings: []plan.SettingChange{{Name: "password_encryption", From: pe.Value, To: VerifierSCRAM,
				Rules: []string{"AUTH-11"}}},
			Breaks: []string{"clients that cannot do SCRAM (libpq before 10, old drivers) cannot log in as roles whose passwords are set from now on"}})
	}
	for _, ov := range pe.Overrides {
		if !ov.Reset {
			continue
		}
		p.Steps = append(p.Steps, plan.Step{ID: next(), Kind: plan.KindSQL, Cluster: true,
			Summary: "reset the " + overrideWhere(ov.Override) + " password_encryption = " + ov.Value + " override",
			Closes:  []plan.FindingRef{},
			SQL:     []string{ov.SQL}, Undo: []string{ov.Undo}})
	}
	return p
}

func overrideWhere(ov Override) string {
	switch {
	case ov.Role != "" && ov.Database != "":
		return "role " + ov.Role + " in database " + ov.Database
	case ov.Role != "":
		return "role " + ov.Role
	case ov.Database != "":
		return "database " + ov.Database
	}
	return "every role's"
}
