package apply

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
)

func sslPlan() *plan.Plan {
	return &plan.Plan{Target: "test", Steps: []plan.Step{{ID: "1", Kind: plan.KindSettings, Apply: plan.ApplyReload,
		Settings: []plan.SettingChange{{Name: "ssl", From: "off", To: "on"}}}}}
}

// TLS-01: ssl = on without a certificate; a reload would silently keep
// SSL off and the next restart would fail. The throwaway server proves
// ssl before the reload and the plan is refused.
func TestSSLWithoutCertificateRefused(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	auto0 := stateOf(t, filepath.Join(s.DataDir, "postgresql.auto.conf"))
	_, err := Apply(ctx, sslPlan(), opts(t, s))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("got %v, want a refusal about the certificate", err)
	}
	sameState(t, "postgresql.auto.conf", stateOf(t, filepath.Join(s.DataDir, "postgresql.auto.conf")), auto0)
	if got := show(t, s, "ssl"); got != "off" {
		t.Errorf("ssl = %s", got)
	}
}

func TestSSLWithCertificateApplies(t *testing.T) {
	s := pgtest.Start(t, localpg.Options{Init: pgtest.SelfSignedTLS})
	ctx := pgtest.Ctx(t)
	auto0 := stateOf(t, filepath.Join(s.DataDir, "postgresql.auto.conf"))
	o := opts(t, s)
	res, err := Apply(ctx, sslPlan(), o)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	c, err := s.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	var tls bool
	err = c.QueryRow(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&tls)
	c.Close(ctx)
	if err != nil || !tls {
		t.Errorf("a new connection after ssl = on uses TLS: %v (%v)", tls, err)
	}
	if _, err := Rollback(ctx, res.PlanID, o); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	sameState(t, "postgresql.auto.conf", stateOf(t, filepath.Join(s.DataDir, "postgresql.auto.conf")), auto0)
	if got := show(t, s, "ssl"); got != "off" {
		t.Errorf("ssl after rollback = %s", got)
	}
}
