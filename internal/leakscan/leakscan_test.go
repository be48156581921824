package leakscan

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// majors: 15 (the reference) and the newest installed.
func majors(t *testing.T) []int {
	var ms []int
	inst := localpg.Installed()
	for _, in := range inst {
		if in.Major == 15 {
			ms = append(ms, 15)
		}
	}
	if len(inst) > 0 && inst[len(inst)-1].Major != 15 {
		ms = append(ms, inst[len(inst)-1].Major)
	}
	if len(ms) == 0 {
		pgtest.Unavailable(t, localpg.ErrNoServer)
	}
	return ms
}

func marker(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "leakscan-marker-" + hex.EncodeToString(b)
}

// A server with the collector writing every destination it has, every
// statement logged, and pg_stat_statements keeping utility statements.
func startCollecting(t *testing.T, major int) *localpg.Server {
	dest := "stderr,csvlog"
	if major >= 15 {
		dest += ",jsonlog"
	}
	return pgtest.StartMajor(t, major, localpg.Options{Conf: []string{
		"logging_collector = on", "log_destination = '" + dest + "'", "log_statement = 'all'",
		"shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track_utility = on",
	}})
}

// ORACLE: the server's own log files (read here, from the data directory)
// and pg_stat_statements, on 15 and the newest major.
func TestScan(t *testing.T) {
	t.Parallel()
	for _, major := range majors(t) {
		t.Run("pg"+strconv.Itoa(major), func(t *testing.T) {
			t.Parallel()
			srv := startCollecting(t, major)
			admin := pgtest.Conn(t, srv, "postgres")
			exec(t, admin, "CREATE EXTENSION pg_stat_statements", "CREATE ROLE ls_target LOGIN")
			// Sequential: they share the log.
			t.Run("planted", func(t *testing.T) { testPlanted(t, srv, admin, major) })
			t.Run("clean, and the needle is never sent", func(t *testing.T) { testClean(t, srv, admin) })
			t.Run("across a chunk boundary", func(t *testing.T) { testBoundary(t, srv, admin) })
			t.Run("rotation", func(t *testing.T) { testRotation(t, srv, admin) })
			t.Run("privileges", func(t *testing.T) { testPrivileges(t, srv, admin) })
		})
	}
}

// A leak (a statement with the marker, logged and kept by
// pg_stat_statements) is found in every log file and in pg_stat_statements.
func testPlanted(t *testing.T, srv *localpg.Server, admin *pgx.Conn, major int) {
	ctx := pgtest.Ctx(t)
	m, err := TakeMark(ctx, admin)
	if err != nil || m.Why != "" {
		t.Fatalf("TakeMark: %v %q", err, m.Why)
	}
	want := 2
	if major >= 15 {
		want = 3
	}
	if len(m.Files) != want {
		t.Fatalf("mark: %d files, want %d: %v", len(m.Files), want, m.Files)
	}
	secret := marker(t)
	exec(t, admin, "ALTER ROLE ls_target PASSWORD '"+secret+"'")
	r, err := Scan(ctx, admin, m, []Needle{{"new password", []byte(secret)}, {"absent", []byte(marker(t))}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.LogChecked || r.LogWhy != "" || !r.StatementsChecked || r.StatementsWhy != "" || r.LogBytes == 0 || r.Statements == 0 {
		t.Fatalf("not all searched: %+v", r)
	}
	logs, stat := 0, 0
	for _, h := range r.Hits {
		if h.Label != "new password" {
			t.Errorf("hit %+v", h)
		}
		switch {
		case strings.HasPrefix(h.Where, "server log log/"):
			logs++
		case h.Where == "pg_stat_statements":
			stat++
		default:
			t.Errorf("hit where %q", h.Where)
		}
		if strings.Contains(h.Where, secret) {
			t.Error("a hit holds the secret")
		}
	}
	if logs != want || stat != 1 {
		t.Errorf("hits %+v: want one per log file (%d) and pg_stat_statements", r.Hits, want)
	}
}

// With log_statement = all, a scan for a needle used nowhere finds
// nothing, and leaves it in neither the log nor pg_stat_statements.
func testClean(t *testing.T, srv *localpg.Server, admin *pgx.Conn) {
	ctx := pgtest.Ctx(t)
	m, err := TakeMark(ctx, admin)
	if err != nil || m.Why != "" {
		t.Fatalf("TakeMark: %v %q", err, m.Why)
	}
	exec(t, admin, "ALTER ROLE ls_target PASSWORD '"+marker(t)+"'") // another secret
	secret := marker(t)
	r, err := Scan(ctx, admin, m, []Needle{{"new password", []byte(secret)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Hits) > 0 || !r.LogChecked || !r.StatementsChecked || r.LogBytes == 0 {
		t.Fatalf("a clean scan: %+v", r)
	}
	// ORACLE: the scan's own statements were logged (log_statement = all):
	// none of them held the needle.
	all := serverLogs(t, srv)
	if !bytes.Contains(all, []byte("pg_read_binary_file")) {
		t.Fatal("the scan's statements are not in the log: the oracle sees nothing")
	}
	if bytes.Contains(all, []byte(secret)) {
		t.Fatal("the needle reached the server log")
	}
	if n := statementsHolding(t, admin, secret); n > 0 {
		t.Fatalf("the needle is in %d pg_stat_statements entries", n)
	}
}

// A needle across the boundary of two chunks is found, in the server's
// files and with ScanFile.
func testBoundary(t *testing.T, srv *localpg.Server, admin *pgx.Conn) {
	ctx := pgtest.Ctx(t)
	m, err := TakeMark(ctx, admin)
	if err != nil || m.Why != "" {
		t.Fatalf("TakeMark: %v %q", err, m.Why)
	}
	var stderrLog string
	for p := range m.Files {
		if strings.HasSuffix(p, ".log") {
			stderrLog = p
		}
	}
	secret := marker(t)
	exec(t, admin, "SELECT 'password "+secret+"'")
	local := filepath.Join(srv.DataDir, stderrLog)
	off := m.Files[stderrLog]
	var b []byte
	var at int64 = -1
	// The collector writes from a pipe, later: wait for the line.
	for at < 0 {
		if b, err = os.ReadFile(local); err != nil {
			t.Fatal(err)
		}
		if at = int64(bytes.Index(b[off:], []byte(secret))); at >= 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the marker is not in %s", local)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The first chunk ends in the middle of the marker.
	chunk := int(at) + len(secret)/2
	r, err := scan(ctx, admin, m, []Needle{{"secret", []byte(secret)}}, chunk)
	if err != nil {
		t.Fatal(err)
	}
	if !hasHit(r, "server log "+stderrLog) {
		t.Errorf("the marker across a chunk boundary was not found in %s: %+v", stderrLog, r.Hits)
	}
	fr, err := scanFile(local, off, []Needle{{"secret", []byte(secret)}}, chunk)
	if err != nil {
		t.Fatal(err)
	}
	if !hasHit(fr, "log file "+local) || fr.LogBytes < int64(len(b))-off {
		t.Errorf("ScanFile across a chunk boundary: %+v", fr)
	}
	// From the marker's second byte, in chunks shorter than the marker:
	// no whole marker, nothing found.
	fr, err = scanFile(local, off+at+1, []Needle{{"secret", []byte(secret)}}, 7)
	if err != nil || len(fr.Hits) > 0 {
		t.Errorf("ScanFile from inside the marker: %v %+v", err, fr)
	}
}

// A leak written before a rotation and one after, into a file that did
// not exist at the mark, are both found.
func testRotation(t *testing.T, srv *localpg.Server, admin *pgx.Conn) {
	ctx := pgtest.Ctx(t)
	m, err := TakeMark(ctx, admin)
	if err != nil || m.Why != "" {
		t.Fatalf("TakeMark: %v %q", err, m.Why)
	}
	before, after := marker(t), marker(t)
	exec(t, admin, "SELECT 'password "+before+"'")
	// A new name (log_filename has whole seconds), then the rotation.
	exec(t, admin, "ALTER SYSTEM SET log_filename = 'rotated-%Y%m%d%H%M%S.log'", "SELECT pg_reload_conf()", "SELECT pg_rotate_logfile()")
	t.Cleanup(func() {
		exec(t, admin, "ALTER SYSTEM RESET log_filename", "SELECT pg_reload_conf()")
	})
	for {
		var cur string
		if err := admin.QueryRow(ctx, "SELECT pg_current_logfile('stderr')").Scan(&cur); err != nil {
			t.Fatal(err)
		}
		if _, old := m.Files[cur]; !old {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the log did not rotate")
		case <-time.After(50 * time.Millisecond):
		}
		exec(t, admin, "SELECT pg_rotate_logfile()")
	}
	exec(t, admin, "SELECT 'password "+after+"'")
	r, err := Scan(ctx, admin, m, []Needle{{"before", []byte(before)}, {"after", []byte(after)}})
	if err != nil {
		t.Fatal(err)
	}
	var inOld, inNew bool
	for _, h := range r.Hits {
		_, old := m.Files[strings.TrimPrefix(h.Where, "server log ")]
		inOld = inOld || h.Label == "before" && old
		inNew = inNew || h.Label == "after" && strings.HasPrefix(h.Where, "server log log/rotated-")
	}
	if !inOld || !inNew {
		rows, _ := admin.Query(ctx, "SELECT name || ' ' || size || ' ' || modification || ' ' || $1::timestamptz FROM pg_ls_logdir()", m.At)
		l, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		t.Logf("mark %+v; listing %q", m, l)
		t.Errorf("across a rotation: before in the old file %v, after in the new %v: %+v", inOld, inNew, r.Hits)
	}
}

// A non-superuser is told which privilege it lacks; with them it scans.
func testPrivileges(t *testing.T, srv *localpg.Server, admin *pgx.Conn) {
	ctx := pgtest.Ctx(t)
	exec(t, admin, "CREATE ROLE ls_none LOGIN PASSWORD 'ls-none-only-in-a-test'",
		"CREATE ROLE ls_monitor LOGIN PASSWORD 'ls-monitor-only-in-a-test' IN ROLE pg_monitor",
		"CREATE ROLE ls_reader LOGIN PASSWORD 'ls-reader-only-in-a-test' IN ROLE pg_monitor",
		"GRANT EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint, boolean) TO ls_reader",
		"GRANT EXECUTE ON FUNCTION pg_current_logfile(text) TO ls_reader", // pg_monitor's on 16+ only
		"CREATE DATABASE ls_other")
	for _, tc := range []struct {
		user, db string
		why      []string // in the Mark's Why
		statWhy  string   // in StatementsWhy
	}{
		// pg_monitor may run pg_ls_logdir (and pg_current_logfile(text)
		// from 16 on); pg_read_binary_file needs a grant, in each database.
		{"ls_none", "postgres", []string{"role ls_none in database postgres", "pg_ls_logdir()", "GRANT pg_monitor TO ls_none",
			"pg_read_binary_file(text,bigint,bigint,boolean)", "GRANT EXECUTE ON FUNCTION ", "pg_read_binary_file(text,bigint,bigint,boolean) TO ls_none in database postgres"},
			"GRANT pg_read_all_stats TO ls_none"},
		{"ls_monitor", "postgres", []string{"role ls_monitor", "pg_read_binary_file(text,bigint,bigint,boolean)", "GRANT EXECUTE ON FUNCTION "}, ""},
		{"ls_reader", "postgres", nil, ""},
		{"ls_reader", "ls_other", []string{"in database ls_other", "pg_read_binary_file"}, "not installed in database ls_other"},
	} {
		cfg := srv.ConnConfig(tc.db)
		cfg.User, cfg.Password = tc.user, strings.ReplaceAll(tc.user, "_", "-")+"-only-in-a-test"
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m, err := TakeMark(ctx, c)
		if err != nil {
			t.Fatalf("%s: TakeMark: %v", tc.user, err)
		}
		for _, w := range tc.why {
			if !strings.Contains(m.Why, w) {
				t.Errorf("%s: the mark's Why does not say %q: %q", tc.user, w, m.Why)
			}
		}
		if len(tc.why) == 0 && m.Why != "" {
			t.Errorf("%s: %q", tc.user, m.Why)
		}
		secret := marker(t)
		exec(t, admin, "ALTER ROLE ls_target PASSWORD '"+secret+"'")
		r, err := Scan(ctx, c, m, []Needle{{"secret", []byte(secret)}})
		c.Close(ctx)
		if err != nil {
			t.Fatalf("%s in %s: Scan: %v", tc.user, tc.db, err)
		}
		if r.LogWhy != m.Why || r.LogChecked != (m.Why == "") {
			t.Errorf("%s: LogWhy %q, checked %v", tc.user, r.LogWhy, r.LogChecked)
		}
		if tc.statWhy == "" && r.StatementsWhy != "" || !strings.Contains(r.StatementsWhy, tc.statWhy) {
			t.Errorf("%s in %s: StatementsWhy %q, want %q", tc.user, tc.db, r.StatementsWhy, tc.statWhy)
		}
		// The admin's statement: found where the role may see it.
		if m.Why == "" && !hasHit(r, "") {
			t.Errorf("%s: nothing found: %+v", tc.user, r)
		}
		if tc.db == "postgres" && tc.statWhy == "" && !hasHit(r, "pg_stat_statements") {
			t.Errorf("%s: not found in pg_stat_statements: %+v", tc.user, r)
		}
	}
}

// Without the collector the log is the server's standard error: the mark
// says so and names log_destination, and ScanFile reads that file.
// ORACLE: the file the server's standard error goes to.
func TestNoCollector(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{Conf: []string{"log_statement = 'all'"}})
	c := pgtest.Conn(t, srv, "postgres")
	ctx := pgtest.Ctx(t)
	m, err := TakeMark(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"logging_collector is off", "log_destination = 'stderr'", "--log-file"} {
		if !strings.Contains(m.Why, w) {
			t.Errorf("Why does not say %q: %q", w, m.Why)
		}
	}
	st, err := os.Stat(srv.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := marker(t)
	exec(t, c, "SELECT 'password "+secret+"'")
	r, err := Scan(ctx, c, m, []Needle{{"secret", []byte(secret)}})
	if err != nil || r.LogChecked || r.LogWhy != m.Why {
		t.Errorf("Scan without the collector: %v %+v", err, r)
	}
	fr, err := ScanFile(srv.LogFile, st.Size(), []Needle{{"secret", []byte(secret)}, {"absent", []byte(marker(t))}})
	if err != nil {
		t.Fatal(err)
	}
	if len(fr.Hits) != 1 || fr.Hits[0].Label != "secret" || fr.Hits[0].Where != "log file "+srv.LogFile {
		t.Errorf("ScanFile: %+v", fr)
	}
	if !strings.Contains(r.StatementsWhy, "not loaded") {
		t.Errorf("StatementsWhy: %q", r.StatementsWhy)
	}
	if _, err := ScanFile(filepath.Join(srv.Dir, "missing.log"), 0, nil); err == nil || !strings.Contains(err.Error(), "missing.log") {
		t.Errorf("ScanFile of a missing file: %v", err)
	}
}

func hasHit(r *Result, where string) bool {
	for _, h := range r.Hits {
		if where == "" || h.Where == where {
			return true
		}
	}
	return false
}

func exec(t *testing.T, c *pgx.Conn, sql ...string) {
	t.Helper()
	for _, q := range sql {
		if _, err := c.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(q, "'", 2)[0], err)
		}
	}
}

// serverLogs is every file of the collector's directory.
func serverLogs(t *testing.T, srv *localpg.Server) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(srv.DataDir, "log", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no log files: %v", err)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// statementsHolding counts pg_stat_statements entries holding s, searched
// here.
func statementsHolding(t *testing.T, c *pgx.Conn, s string) int {
	t.Helper()
	rows, err := c.Query(context.Background(), "SELECT query FROM pg_stat_statements")
	if err != nil {
		t.Fatal(err)
	}
	texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, q := range texts {
		if strings.Contains(q, s) {
			n++
		}
	}
	return n
}
