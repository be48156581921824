package rotate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/secretsink"
)

// ORACLE: psql (libpq) logins with the new and old passwords, pg_authid.
func TestSingleRotateAndRollback(t *testing.T) {
	srv := shared(t)
	old := loginRole(t, srv, "single_app")
	dir := t.TempDir()
	root := filepath.Join(dir, "journal")
	secretPath := filepath.Join(dir, "app.json")
	until := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	var prog progressLog
	res, err := Rotate(pgtest.Ctx(t), socketAdmin(srv, "postgres"), Options{
		Role: "single_app", ValidUntil: &until, JournalRoot: root, Progress: prog.f,
		Sinks: []secretsink.Sink{fileSink(t, secretPath, secretsink.FormatJSON)},
	})
	record(&prog, res, err)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	t.Logf("stages: %v, total %s", res.Stages, res.Duration)
	if res.User != "single_app" || res.Restored || res.PlanID == "" || len(res.Delivered) != 1 {
		t.Errorf("result: %+v", res)
	}
	if !strings.Contains(res.Verified, "single_app@") || !strings.Contains(res.Verified, "unix socket") {
		t.Errorf("Verified = %q", res.Verified)
	}
	for _, st := range []string{"connect", "preflight", "set", "verify", "deliver"} {
		if _, ok := res.Stages[st]; !ok {
			t.Errorf("no stage %q in %v", st, res.Stages)
		}
	}
	sec := readSecret(t, secretPath)
	if sec.User != "single_app" || len(sec.Password) != 32 {
		t.Fatalf("secret file: user %q, %d characters", sec.User, len(sec.Password))
	}
	if st, err := os.Stat(secretPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode: %v %v", st.Mode(), err)
	}
	for _, host := range []string{"127.0.0.1", srv.SocketDir} {
		if err := psqlLogin(t, srv, host, "single_app", sec.Password); err != nil {
			t.Errorf("new password: %v", err)
		}
		if err := psqlLogin(t, srv, host, "single_app", old); err == nil {
			t.Errorf("the old password still logs in over %s", host)
		}
	}
	_, vu := authid(t, srv, "single_app")
	if vu == nil || !strings.HasPrefix(*vu, until.Format("2006-01-02 15:04:05")) {
		t.Errorf("rolvaliduntil = %v, want %s", vu, until)
	}
	// The journal: 0700 directory, 0600 files, no verifier in the plan.
	jd := filepath.Join(root, res.PlanID)
	if st, err := os.Stat(jd); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("journal dir %s: %v %v", jd, st.Mode(), err)
	}
	ents, _ := os.ReadDir(jd)
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
		if e.IsDir() {
			continue
		}
		st, _ := os.Stat(filepath.Join(jd, e.Name()))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("journal file %s mode %v", e.Name(), st.Mode())
		}
	}
	for _, n := range []string{"plan.json", "state.json", verifiersFile, deliveriesFile} {
		if !names[n] {
			t.Errorf("journal lacks %s (has %v)", n, names)
		}
	}
	pj, _ := os.ReadFile(filepath.Join(jd, "plan.json"))
	if bytes.Contains(pj, []byte("SCRAM-SHA-256$")) || !bytes.Contains(pj, []byte("new SCRAM-SHA-256 verifier")) {
		t.Errorf("plan.json:\n%s", pj)
	}

	rb, err := Rollback(pgtest.Ctx(t), socketAdmin(srv, "postgres"), root, res.PlanID)
	record(nil, rb, err)
	if err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if err := psqlLogin(t, srv, "127.0.0.1", "single_app", old); err != nil {
		t.Errorf("after rollback the old password: %v", err)
	}
	if err := psqlLogin(t, srv, "127.0.0.1", "single_app", sec.Password); err == nil {
		t.Error("after rollback the new password still logs in")
	}
	if _, err := os.Stat(secretPath); !os.IsNotExist(err) {
		t.Errorf("the secret file the rotation created is still there after the rollback: %v (result %+v)", err, rb)
	}
	if len(rb.Removed) != 1 || rb.Removed[0] != secretPath || len(rb.Files) != 0 {
		t.Errorf("the rollback reports files %v removed %v; the created file was removed, not restored", rb.Files, rb.Removed)
	}
	if _, err := Rollback(pgtest.Ctx(t), socketAdmin(srv, "postgres"), root, res.PlanID); err == nil || !strings.Contains(err.Error(), "already rolled back") {
		t.Errorf("second rollback: %v", err)
	}
}

// A rollback of a rotation that a later one superseded is refused.
// ORACLE: pg_authid (the later verifier stays).
func TestRollbackRefusesAnOlderRotation(t *testing.T) {
	srv := shared(t)
	loginRole(t, srv, "twice_app")
	dir := t.TempDir()
	root := filepath.Join(dir, "journal")
	var ids []string
	for i := 0; i < 2; i++ {
		res, err := Rotate(pgtest.Ctx(t), socketAdmin(srv, "postgres"), Options{Role: "twice_app", JournalRoot: root, NoLeakScan: true,
			Sinks: []secretsink.Sink{fileSink(t, filepath.Join(dir, "pw"), secretsink.FormatPassword)}})
		record(nil, res, err)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.PlanID)
	}
	before, _ := authid(t, srv, "twice_app")
	_, err := Rollback(pgtest.Ctx(t), socketAdmin(srv, "postgres"), root, ids[0])
	record(nil, err)
	if err == nil || !strings.Contains(err.Error(), "changed after rotation") {
		t.Fatalf("rollback of the older rotation: %v", err)
	}
	if after, _ := authid(t, srv, "twice_app"); *after != *before {
		t.Error("the refused rollback changed the password")
	}
}

// ORACLE: psql logins and pg_authid after a login that fails.
func TestFailedVerificationRestores(t *testing.T) {
	srv := shared(t)
	free, err := localpg.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, role string
		port       int
		want       string
	}{
		{"hba rejects", "rej_app", srv.Port, "rejects connection"},
		{"nobody listens", "nolisten_app", free, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := loginRole(t, srv, tc.role)
			before, beforeUntil := authid(t, srv, tc.role)
			dir := t.TempDir()
			secretPath := filepath.Join(dir, "pw")
			verify := tcpPlain(t, srv, "postgres", "ignored", "")
			verify.Port = uint16(tc.port)
			verify.ConnectTimeout = 5 * time.Second
			until := time.Now().Add(time.Hour)
			var prog progressLog
			res, err := Rotate(pgtest.Ctx(t), socketAdmin(srv, "postgres"), Options{Role: tc.role, Verify: verify, ValidUntil: &until,
				JournalRoot: filepath.Join(dir, "j"), Progress: prog.f, Sinks: []secretsink.Sink{fileSink(t, secretPath, secretsink.FormatPassword)}})
			record(&prog, res, err)
			if err == nil {
				t.Fatal("Rotate succeeded over a path that cannot log in")
			}
			t.Logf("error: %v", err)
			if !res.Restored || !strings.Contains(err.Error(), "did not log in as "+tc.role+"@127.0.0.1") || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "put back") {
				t.Errorf("restored %v, error %v", res.Restored, err)
			}
			if err := psqlLogin(t, srv, srv.SocketDir, tc.role, old); err != nil {
				t.Errorf("the old password after the restore: %v", err)
			}
			after, afterUntil := authid(t, srv, tc.role)
			if *after != *before {
				t.Error("the verifier is not the previous one")
			}
			if afterUntil == nil || beforeUntil != nil && *afterUntil != *beforeUntil {
				t.Errorf("VALID UNTIL %v, was %v (infinity expected for none)", afterUntil, beforeUntil)
			} else if beforeUntil == nil && *afterUntil != "infinity" {
				t.Errorf("VALID UNTIL %v, want infinity", *afterUntil)
			}
			if _, err := os.Stat(secretPath); !os.IsNotExist(err) {
				t.Errorf("the sink was written: %v", err)
			}
			st, err := (&plan.Journal{Dir: filepath.Join(dir, "j", res.PlanID)}).State()
			if err != nil || st.State != plan.StateFailed {
				t.Errorf("journal state %+v %v", st, err)
			}
		})
	}
}

// ORACLE: psql with the old password after a destination failed.
func TestFailingSinkRestores(t *testing.T) {
	srv := shared(t)
	old := loginRole(t, srv, "sink_app")
	dir := t.TempDir()
	first := filepath.Join(dir, "first.pw")
	if err := os.WriteFile(first, []byte("previous content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var prog progressLog
	res, err := Rotate(pgtest.Ctx(t), socketAdmin(srv, "postgres"), Options{Role: "sink_app", JournalRoot: filepath.Join(dir, "j"), Progress: prog.f,
		Sinks: []secretsink.Sink{fileSink(t, first, secretsink.FormatPassword), execSink("cat >/dev/null; echo no vault here >&2; exit 3")}})
	record(&prog, res, err)
	if err == nil || !res.Restored {
		t.Fatalf("Rotate: restored %v, %v", res.Restored, err)
	}
	t.Logf("error: %v", err)
	if err := psqlLogin(t, srv, "127.0.0.1", "sink_app", old); err != nil {
		t.Errorf("the old password: %v", err)
	}
	if b, _ := os.ReadFile(first); string(b) != "previous content\n" {
		t.Errorf("the first destination was not put back: %q", b)
	}
}

// Refusals happen before any change. ORACLE: pg_authid unchanged.
func TestRefusals(t *testing.T) {
	srv := shared(t)
	loginRole(t, srv, "ref_app")
	dropRoles(t, srv, "ref_nologin", "ref_owner_b", "ref_owner")
	quietExec(t, srv, "postgres", "CREATE ROLE ref_nologin NOLOGIN")
	loginRole(t, srv, "ref_super", "SUPERUSER")
	rotPW := loginRole(t, srv, "ref_rotator", "CREATEROLE")
	if srv.Major >= 16 {
		quietExec(t, srv, "postgres", "GRANT ref_app TO ref_rotator WITH ADMIN OPTION")
	}
	loginRole(t, srv, "ref_owner_a")
	quietExec(t, srv, "postgres", "CREATE ROLE ref_owner NOLOGIN", "CREATE ROLE ref_owner_b LOGIN", "GRANT ref_owner TO ref_owner_a, ref_owner_b")
	rotator := socketAdmin(srv, "postgres")
	rotator.User, rotator.Password = "ref_rotator", rotPW
	for _, tc := range []struct {
		name  string
		o     Options
		plain bool
		as    string
		want  string
	}{
		{name: "plain TCP", o: Options{Role: "ref_app"}, plain: true, want: "over plain TCP without TLS"},
		{name: "NOLOGIN", o: Options{Role: "ref_nologin"}, want: "cannot log in: the new password would prove nothing"},
		{name: "no such role", o: Options{Role: "ref_nobody"}, want: "does not exist"},
		{name: "past VALID UNTIL", o: Options{Role: "ref_app", ValidUntil: func() *time.Time { x := time.Now().Add(-time.Hour); return &x }()}, want: "in the past"},
		{name: "non-superuser without NoRestore", o: Options{Role: "ref_app"}, as: "rotator", want: "pg_authid is readable by superusers only"},
		{name: "superuser role by CREATEROLE", o: Options{Role: "ref_super", NoRestore: true}, as: "rotator", want: "is a superuser: only a superuser can change its password"},
		{name: "alternate: login roles not made by rotate", o: Options{Role: "ref_owner", Strategy: Alternate}, want: "was not made by pgaegis rotate"},
		{name: "no destination", o: Options{Role: "ref_app"}, want: "no destination"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := tc.o
			o.JournalRoot = filepath.Join(dir, "j")
			if tc.name != "no destination" {
				o.Sinks = []secretsink.Sink{fileSink(t, filepath.Join(dir, "pw"), secretsink.FormatPassword)}
			}
			admin := socketAdmin(srv, "postgres")
			if tc.plain {
				admin = tcpPlain(t, srv, "postgres", srv.AdminUser, srv.Password)
			}
			if tc.as == "rotator" {
				admin = rotator
			}
			before := allAuthid(t, srv)
			res, err := Rotate(pgtest.Ctx(t), admin, o)
			record(nil, res, err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
			if after := allAuthid(t, srv); after != before {
				t.Error("a refused rotation changed pg_authid")
			}
			if _, err := os.Stat(o.JournalRoot); !os.IsNotExist(err) {
				t.Errorf("a refused rotation wrote a journal: %v", err)
			}
			if _, err := Plan(pgtest.Ctx(t), admin, o); tc.name != "no destination" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Plan: %v, want %q", err, tc.want)
			}
		})
	}
}

func allAuthid(t *testing.T, srv *localpg.Server) string {
	t.Helper()
	c := pgtest.Conn(t, srv, "postgres")
	var s string
	err := c.QueryRow(pgtest.Ctx(t), `SELECT string_agg(concat_ws(' ', rolname, rolpassword, rolvaliduntil, rolcanlogin, shobj_description(oid, 'pg_authid')), E'\n' ORDER BY rolname) FROM pg_authid`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Plan changes nothing and shows no verifier. ORACLE: pg_authid.
func TestPlanChangesNothing(t *testing.T) {
	srv := shared(t)
	loginRole(t, srv, "plan_app")
	dropRoles(t, srv, "plan_owner")
	quietExec(t, srv, "postgres", "CREATE ROLE plan_owner NOLOGIN")
	dir := t.TempDir()
	for _, o := range []Options{
		{Role: "plan_app"},
		{Role: "plan_owner", Strategy: Alternate},
	} {
		o.Sinks = []secretsink.Sink{fileSink(t, filepath.Join(dir, "pw"), secretsink.FormatPassword)}
		o.JournalRoot = filepath.Join(dir, "j")
		before := allAuthid(t, srv)
		p, err := Plan(pgtest.Ctx(t), socketAdmin(srv, "postgres"), o)
		if err != nil {
			t.Fatal(err)
		}
		if after := allAuthid(t, srv); after != before {
			t.Error("Plan changed pg_authid")
		}
		var text, js bytes.Buffer
		if err := plan.WriteText(&text, p); err != nil {
			t.Fatal(err)
		}
		if err := plan.WriteJSON(&js, p); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", text.String())
		record(nil, text.String(), js.String())
		for _, out := range []string{text.String(), js.String()} {
			if strings.Contains(out, "SCRAM-SHA-256$") || !strings.Contains(out, "new SCRAM-SHA-256 verifier") {
				t.Errorf("plan output:\n%s", out)
			}
		}
		if !strings.Contains(text.String(), "deliver the secret to file") || !strings.Contains(text.String(), "log in as") {
			t.Errorf("plan text lacks the verify or deliver step:\n%s", text.String())
		}
		if _, err := os.Stat(o.JournalRoot); !os.IsNotExist(err) {
			t.Error("Plan wrote a journal")
		}
	}
}

// A CREATEROLE role (allowed to quiet the log with GRANT SET ON
// PARAMETER) rotates with NoRestore: it cannot read pg_authid, so a
// failed login leaves the role with a password nobody holds, and says
// so. ORACLE: psql logins; TestLeak later searches the log this wrote.
func TestNonSuperuserNoRestore(t *testing.T) {
	srv := shared(t)
	if srv.Major < 15 {
		t.Skip("GRANT SET ON PARAMETER needs 15+")
	}
	loginRole(t, srv, "nr_target")
	loginRole(t, srv, "nr_target2")
	rotPW := loginRole(t, srv, "nr_rot", "CREATEROLE")
	if srv.Major >= 16 {
		quietExec(t, srv, "postgres", "GRANT nr_target, nr_target2 TO nr_rot WITH ADMIN OPTION")
	}
	c := pgtest.Conn(t, srv, "postgres")
	for _, p := range []string{"log_statement", "log_min_duration_statement", "log_min_error_statement", "pgaudit.log", "pg_stat_statements.track_utility", "track_activities"} {
		var v *string
		if err := c.QueryRow(pgtest.Ctx(t), "SELECT current_setting($1, true)", p).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != nil {
			quietExec(t, srv, "postgres", "GRANT SET ON PARAMETER "+p+" TO nr_rot")
		}
	}
	admin := socketAdmin(srv, "postgres")
	admin.User, admin.Password = "nr_rot", rotPW
	dir := t.TempDir()
	path := filepath.Join(dir, "pw.json")
	var prog progressLog
	res, err := Rotate(pgtest.Ctx(t), admin, Options{Role: "nr_target", NoRestore: true, JournalRoot: filepath.Join(dir, "j"), Progress: prog.f,
		Sinks: []secretsink.Sink{fileSink(t, path, secretsink.FormatJSON)}})
	record(&prog, res, err)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Warnings {
		if strings.Contains(w, "may") {
			t.Errorf("warning although every setting was granted: %s", w)
		}
	}
	if err := psqlLogin(t, srv, "127.0.0.1", "nr_target", readSecret(t, path).Password); err != nil {
		t.Error(err)
	}
	if _, err := Rollback(pgtest.Ctx(t), socketAdmin(srv, "postgres"), filepath.Join(dir, "j"), res.PlanID); err == nil || !strings.Contains(err.Error(), "cannot be rolled back") {
		t.Errorf("rollback of a rotation without the previous verifier: %v", err)
	}

	free, _ := localpg.FreePort()
	verify := tcpPlain(t, srv, "postgres", "x", "")
	verify.Port, verify.ConnectTimeout = uint16(free), 5*time.Second
	prog = progressLog{}
	res, err = Rotate(pgtest.Ctx(t), admin, Options{Role: "nr_target2", NoRestore: true, Verify: verify, JournalRoot: filepath.Join(dir, "j"), Progress: prog.f,
		Sinks: []secretsink.Sink{fileSink(t, filepath.Join(dir, "never"), secretsink.FormatJSON)}})
	record(&prog, res, err)
	if err == nil || res.Restored || !strings.Contains(err.Error(), "could not be put back") {
		t.Errorf("failed login without restore: restored %v, %v", res.Restored, err)
	}
}

// A session holding the role's row makes the change wait; the lock
// timeout names it. ORACLE: the server's lock wait (pg_blocking_pids)
// and a psql login with the old password afterwards.
func TestLockTimeoutNamesTheBlocker(t *testing.T) {
	srv := shared(t)
	old := loginRole(t, srv, "lock_app")
	saved := lockTimeout
	lockTimeout = time.Second
	defer func() { lockTimeout = saved }()
	ctx := pgtest.Ctx(t)
	blocker := pgtest.Conn(t, srv, "postgres")
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "ALTER ROLE lock_app VALID UNTIL 'infinity'"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Rotate(ctx, socketAdmin(srv, "postgres"), Options{Role: "lock_app", JournalRoot: filepath.Join(dir, "j"), NoLeakScan: true,
		Sinks: []secretsink.Sink{fileSink(t, filepath.Join(dir, "pw"), secretsink.FormatPassword)}})
	record(nil, res, err)
	if err == nil || !strings.Contains(err.Error(), "lock timeout") || !strings.Contains(err.Error(), "blocked by pid") || !strings.Contains(err.Error(), "pgaegis-localpg") {
		t.Fatalf("error %v, want the lock timeout naming the blocker", err)
	}
	t.Logf("error: %v", err)
	tx.Rollback(ctx)
	if err := psqlLogin(t, srv, "127.0.0.1", "lock_app", old); err != nil {
		t.Error(err)
	}
}
