package scram

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// findPsql returns the psql (libpq) beside the server, else on PATH.
func findPsql(t *testing.T, srv *localpg.Server) string {
	t.Helper()
	psql := filepath.Join(srv.BinDir, "psql")
	if _, err := os.Stat(psql); err != nil {
		if psql, err = exec.LookPath("psql"); err != nil {
			t.Skip("no psql (libpq) to log in with")
		}
	}
	return psql
}

// redact keeps a password out of a message that goes to test output.
func redact(msg string, pw []byte) string {
	if len(pw) == 0 {
		return msg
	}
	return strings.ReplaceAll(msg, string(pw), "<password>")
}

// psqlLogin logs in as role over loopback TCP (pg_hba: scram-sha-256)
// with libpq, the password in psql's environment only (never argv). It
// reports whether the login worked, and any failure other than a wrong
// password, redacted.
func psqlLogin(ctx context.Context, psql string, srv *localpg.Server, role string, pw []byte) (bool, string) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, psql, "-X", "-w", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port), "-U", role, "-d", "postgres", "-c", "SELECT 1")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "PGPASSFILE=/dev/null", "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=30", "PGPASSWORD=" + string(pw)}
	out, err := cmd.CombinedOutput()
	if err == nil {
		return true, ""
	}
	msg := string(out)
	if strings.Contains(msg, "password authentication failed") {
		return false, ""
	}
	return false, "unexpected psql failure: " + redact(msg, pw)
}

// pgxLogin logs in as role with pgx, password given as is in
// ConnConfig.Password, like psqlLogin otherwise.
func pgxLogin(ctx context.Context, srv *localpg.Server, role, password string) (bool, string) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg := srv.ConnConfig("postgres")
	cfg.User, cfg.Password = role, password
	c, err := pgx.ConnectConfig(cctx, cfg)
	if err == nil {
		c.Close(cctx)
		return true, ""
	}
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "28P01" {
		return false, ""
	}
	return false, "unexpected pgx failure: " + redact(err.Error(), []byte(password))
}

// loginRole creates role afresh on the shared server (which outlives a
// test run under -count).
func loginRole(t *testing.T, admin *pgx.Conn, role string) {
	t.Helper()
	ctx := pgtest.Ctx(t)
	for _, q := range []string{`DROP ROLE IF EXISTS ` + role, `CREATE ROLE ` + role + ` LOGIN`} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
