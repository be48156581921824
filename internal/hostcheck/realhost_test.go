package hostcheck

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// running maps the running clusters of a collection by data directory.
func running(h *snapshot.Host) map[string]snapshot.Cluster {
	out := map[string]snapshot.Cluster{}
	for _, c := range h.Clusters {
		if c.Running {
			out[c.DataDir] = c
		}
	}
	return out
}

// changedSince says whether a cluster's presence may differ from a
// collection at t0 for a reason of its own: it started after t0 (its
// postmaster.pid start time) or its postmaster is gone now. Other tests
// on this machine start and stop servers between our collections; a
// count that changes for any other reason is unstable.
func changedSince(c snapshot.Cluster, t0 time.Time) bool {
	if _, err := os.Stat("/proc/" + strconv.Itoa(c.PID)); err != nil {
		return true
	}
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return true
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 3 || strings.TrimSpace(lines[0]) != strconv.Itoa(c.PID) {
		return true
	}
	start, _ := strconv.ParseInt(strings.TrimSpace(lines[2]), 10, 64)
	return start >= t0.Unix()-1
}

// On the real host: two clusters and a client process pointing libpq at
// a password file. The servers say which postmaster is theirs (the parent
// of the backend serving us); the collection must count each cluster
// once, the same way twice, tie the client to the cluster its PGPORT
// names, and tie files in each data directory to that cluster. No
// password may appear in what is collected or reported.
func TestRealHostClustersAndFiles(t *testing.T) {
	t0 := time.Now()
	before := Collect(Options{})
	a := pgtest.Start(t, localpg.Options{})
	b := pgtest.Start(t, localpg.Options{})
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	// The servers' own answer: data directory, port, postmaster pid.
	type truth struct {
		dataDir string
		port    int
		pid     int
	}
	oracle := func(s *localpg.Server) truth {
		c := pgtest.Conn(t, s, "postgres")
		var backend int
		var dd, port string
		if err := c.QueryRow(pgtest.Ctx(t), "SELECT pg_backend_pid(), current_setting('data_directory'), current_setting('port')").Scan(&backend, &dd, &port); err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		return truth{dd, p, ppidOf("/proc/" + strconv.Itoa(backend))}
	}
	ta, tb := oracle(a), oracle(b)

	const secret = "rEaLhOsTsEcReT"
	place := func(path, text string, mode os.FileMode) {
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	place(filepath.Join(ta.dataDir, "pgpass"), "*:*:*:app:"+secret+"\n", 0o600)
	place(filepath.Join(tb.dataDir, "pg_service.conf"), "[app]\npassword="+secret+"\n", 0o644)
	passfile := filepath.Join(t.TempDir(), "client.pgpass")
	place(passfile, "localhost:"+strconv.Itoa(tb.port)+":*:app:"+secret+"\n", 0o640)

	sleep := exec.Command("sleep", "600")
	sleep.Env = []string{"PATH=/usr/bin:/bin", "PGPASSFILE=" + passfile, "PGPORT=" + strconv.Itoa(tb.port)}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })

	first := Collect(Options{DataDir: ta.dataDir})
	t1 := time.Now()
	second := Collect(Options{DataDir: ta.dataDir})

	for i, h := range []*snapshot.Host{first, second} {
		run := running(h)
		if h.Postmasters != len(run) {
			t.Errorf("collection %d: Postmasters = %d but %d clusters are listed: %+v", i+1, h.Postmasters, len(run), h.Clusters)
		}
		for _, want := range []truth{ta, tb} {
			c, ok := run[want.dataDir]
			if !ok || c.PID != want.pid || c.Port != want.port {
				t.Errorf("collection %d: cluster %s is %+v, the server says pid %d port %d", i+1, want.dataDir, c, want.pid, want.port)
			}
		}
		// Everything that was running before is still counted, unless it
		// really stopped; anything new really started.
		for dd, c := range running(before) {
			if _, ok := run[dd]; !ok && !changedSince(c, t0) {
				t.Errorf("collection %d lost cluster %s that still runs", i+1, dd)
			}
		}
		for dd, c := range run {
			if _, ok := running(before)[dd]; !ok && dd != ta.dataDir && dd != tb.dataDir && !changedSince(c, t0) {
				t.Errorf("collection %d counts cluster %s that neither ran before nor started since: %+v", i+1, dd, c)
			}
		}
	}
	r1, r2 := running(first), running(second)
	for dd, c := range r1 {
		if _, ok := r2[dd]; !ok && !changedSince(c, t1) {
			t.Errorf("cluster %s counted once, then not, and it still runs", dd)
		}
	}
	for dd, c := range r2 {
		if _, ok := r1[dd]; !ok && !changedSince(c, t1) {
			t.Errorf("cluster %s counted only the second time, and it did not start in between", dd)
		}
	}

	files := map[string]snapshot.ConnFile{}
	for _, f := range second.ConnFiles {
		files[f.Path] = f
	}
	client, ok := files[passfile]
	switch {
	case !ok:
		t.Errorf("%s, named by PGPASSFILE of pid %d, was not found", passfile, sleep.Process.Pid)
	case len(client.Procs) != 1 || client.Procs[0].PID != sleep.Process.Pid || client.Procs[0].Command != "sleep" || client.Procs[0].User != me.Username || client.Procs[0].Cluster != tb.dataDir:
		t.Errorf("client password file: procs %+v, want pid %d sleep of %s for cluster %s", client.Procs, sleep.Process.Pid, me.Username, tb.dataDir)
	case !client.Ignored || client.Passwords != 1:
		t.Errorf("client password file at 0640: ignored %v passwords %d, want ignored and 1", client.Ignored, client.Passwords)
	}
	for path, dd := range map[string]string{filepath.Join(ta.dataDir, "pgpass"): ta.dataDir, filepath.Join(tb.dataDir, "pg_service.conf"): tb.dataDir} {
		if f, ok := files[path]; !ok || strings.Join(f.Clusters, ",") != dd || f.Passwords != 1 {
			t.Errorf("%s: %+v, want it tied to cluster %s with 1 password", path, f, dd)
		}
	}

	findings := rules.Run(&snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, Host: second})
	var fs04 []string
	for _, f := range findings {
		if f.Rule == "FS-04" && f.Object == "file "+passfile {
			fs04 = append(fs04, f.Evidence)
			for _, want := range []string{"pid " + strconv.Itoa(sleep.Process.Pid) + " (sleep, user " + me.Username + ")", "cluster " + tb.dataDir, "exposed", "ignored by libpq"} {
				if f.Status != rules.Fail || !strings.Contains(f.Evidence, want) {
					t.Errorf("FS-04 on the client's password file: %s %q, want a failure naming %q", f.Status, f.Evidence, want)
				}
			}
		}
	}
	if len(fs04) != 1 {
		t.Errorf("FS-04 findings on %s: %v, want one", passfile, fs04)
	}
	js, _ := json.Marshal(struct {
		H []*snapshot.Host
		F []rules.Finding
	}{[]*snapshot.Host{first, second}, findings})
	if strings.Contains(string(js), secret) {
		t.Fatal("a password from a placed file appears in the snapshot or the findings")
	}
}
