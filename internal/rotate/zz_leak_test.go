package rotate

// The leak test runs last (file order) on the shared server, so its
// search of the log and pg_stat_statements covers every rotation the
// package's tests made, and its own on a second major without pgaudit.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/secretsink"
)

// leakScenario rotates (single with VALID UNTIL, a failed verification
// that restores, a rollback, alternate's first rotation) on srv.
func leakScenario(t *testing.T, srv *localpg.Server) {
	t.Helper()
	loginRole(t, srv, "leak_app")
	loginRole(t, srv, "leak_fail")
	dropRoles(t, srv, "leak_own_a", "leak_own_b", "leak_own")
	quietExec(t, srv, "postgres", "CREATE ROLE leak_own NOLOGIN")
	dir := t.TempDir()
	root := filepath.Join(dir, "j")
	admin := socketAdmin(srv, "postgres")
	until := time.Now().Add(30 * 24 * time.Hour)
	var prog progressLog
	res, err := Rotate(pgtest.Ctx(t), admin, Options{Role: "leak_app", ValidUntil: &until, JournalRoot: root, Progress: prog.f,
		Sinks: []secretsink.Sink{fileSink(t, filepath.Join(dir, "app.json"), secretsink.FormatJSON)}})
	record(&prog, res, err)
	if err != nil {
		t.Fatal(err)
	}
	record(nil, res.Leak)

	free, _ := localpg.FreePort()
	verify := tcpPlain(t, srv, "postgres", "x", "")
	verify.Port, verify.ConnectTimeout = uint16(free), 5*time.Second
	prog = progressLog{}
	fres, err := Rotate(pgtest.Ctx(t), admin, Options{Role: "leak_fail", Verify: verify, JournalRoot: root, Progress: prog.f,
		Sinks: []secretsink.Sink{fileSink(t, filepath.Join(dir, "fail.pw"), secretsink.FormatPassword)}})
	record(&prog, fres, err)
	if err == nil || !fres.Restored {
		t.Fatalf("the failing rotation: restored %v, %v", fres.Restored, err)
	}

	rb, err := Rollback(pgtest.Ctx(t), admin, root, res.PlanID)
	record(nil, rb, err)
	if err != nil {
		t.Fatal(err)
	}

	prog = progressLog{}
	ares, err := Rotate(pgtest.Ctx(t), admin, Options{Role: "leak_own", Strategy: Alternate, JournalRoot: root, Progress: prog.f,
		Sinks: []secretsink.Sink{fileSink(t, filepath.Join(dir, "alt.json"), secretsink.FormatJSON)}})
	record(&prog, ares, err)
	if err != nil {
		t.Fatal(err)
	}
	record(nil, ares.Leak)
}

// needles (secret #0 is the verifier prefix) are every password the tests set or rotate generated, every
// verifier pg_authid holds now (whole and its key parts), and the prefix
// every SCRAM verifier starts with: no verifier at all, old or new, may
// appear.
func needles(t *testing.T, srv *localpg.Server) []string {
	t.Helper()
	out := append([]string{"SCRAM-SHA-256$"}, usedSecrets.all()...)
	c := pgtest.Conn(t, srv, "postgres")
	rows, err := c.Query(pgtest.Ctx(t), "SELECT rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, verifierParts(v)...)
	}
	return out
}

// ORACLE: the server's own log files on disk (every file, the
// collector's and stderr's), pg_stat_statements (every row), and
// everything Rotate, Plan and Rollback returned or printed.
func checkNoLeak(t *testing.T, srv *localpg.Server) {
	t.Helper()
	ns := needles(t, srv)
	if len(ns) < 5 {
		t.Fatalf("only %d needles: the test would prove nothing", len(ns))
	}
	var files []string
	filepath.WalkDir(filepath.Join(srv.DataDir, "log"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	files = append(files, srv.LogFile)
	total := 0
	sawAlter := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		s := string(b)
		// The log is loud: the test's own quieted setup aside, it holds
		// the rotations' other statements (proof that it logs at all).
		sawAlter = sawAlter || strings.Contains(s, "pg_authid")
		for i, n := range ns {
			if strings.Contains(s, n) {
				t.Errorf("server log %s holds secret #%d (%d characters)", f, i, len(n))
			}
		}
	}
	if !sawAlter {
		t.Errorf("the server log (%d bytes in %d files) shows no statement of the rotations: it does not log what the test assumes", total, len(files))
	}
	c := pgtest.Conn(t, srv, "postgres")
	rows, err := c.Query(pgtest.Ctx(t), "SELECT query FROM pg_stat_statements")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		n++
		for i, x := range ns {
			if strings.Contains(q, x) {
				t.Errorf("pg_stat_statements holds secret #%d (%d characters)", i, len(x))
			}
		}
	}
	rows.Close()
	outs := outputs.all()
	for _, o := range outs {
		for i, x := range ns {
			if strings.Contains(o, x) {
				t.Errorf("rotate's output holds secret #%d (%d characters)", i, len(x))
			}
		}
	}
	t.Logf("searched %d needles in %d bytes of server log (%d files), %d pg_stat_statements rows, %d outputs", len(ns), total, len(files), n, len(outs))
	if n == 0 || len(outs) == 0 {
		t.Error("nothing to search: pg_stat_statements or the outputs are empty")
	}
}

func TestLeak(t *testing.T) {
	t.Run("pg"+pgtest.Version, func(t *testing.T) {
		srv := shared(t)
		if srv.Major == 15 && !hasPgaudit(srv.BinDir) {
			t.Log("pgaudit is not installed for 15 here: the log is searched without it")
		}
		leakScenario(t, srv)
		checkNoLeak(t, srv)
	})
	// One more major, without pgaudit (Debian ships it for 15 only).
	other := 0
	for _, in := range localpg.Installed() {
		if (in.Major == 17 || in.Major == 18) && in.Major > other {
			other = in.Major
		}
	}
	if other == 0 {
		t.Log("PostgreSQL 17 or 18 not installed: the second major is not tested")
		return
	}
	t.Run("pg"+strconv.Itoa(other), func(t *testing.T) {
		srv := startLoud(t, strconv.Itoa(other))
		defer srv.Stop()
		leakScenario(t, srv)
		checkNoLeak(t, srv)
		trustWarning(t, srv)
	})
}

// On 16+ a verify path that does not check the password is warned
// about. ORACLE: the server's system_user (NULL under trust).
func trustWarning(t *testing.T, srv *localpg.Server) {
	t.Helper()
	loginRole(t, srv, "trust_app")
	dir := t.TempDir()
	var prog progressLog
	res, err := Rotate(pgtest.Ctx(t), socketAdmin(srv, "postgres"), Options{Role: "trust_app", Verify: tcpPlain(t, srv, "postgres", "x", ""),
		JournalRoot: filepath.Join(dir, "j"), NoLeakScan: true, Progress: prog.f, Sinks: []secretsink.Sink{fileSink(t, filepath.Join(dir, "pw"), secretsink.FormatPassword)}})
	record(&prog, res, err)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "does not check the password (trust)") || !strings.Contains(res.Verified, "trust") {
		t.Errorf("no trust warning: verified %q, warnings %q", res.Verified, res.Warnings)
	}
}
