package execute

import (
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/plan"
)

// midTrafficPlan is the change of TestApplyMidTrafficNoPermissionError,
// in the order the diff gives: cluster additions, then the database's
// grants before its revokes in one transaction.
func midTrafficPlan(t *testing.T, srv *localpg.Server) *plan.Plan {
	return newPlan(
		sqlStep("1", "postgres", true, "CREATE ROLE app_rw", "GRANT app_rw TO app"),
		sqlStep("2", "appdb", false,
			"GRANT USAGE ON SCHEMA public TO app_rw",
			"GRANT SELECT, INSERT, UPDATE ON TABLE t1, t2, t3 TO app_rw", "GRANT USAGE ON SEQUENCE t2_id_seq TO app_rw",
			"REVOKE ALL ON TABLE t1, t2 FROM app", "REVOKE ALL ON SEQUENCE t2_id_seq FROM app", "REVOKE USAGE ON SCHEMA public FROM app",
			"REVOKE SELECT ON TABLE t2 FROM other"),
	)
}
