package hostcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// fakeRoot is a host in a directory: /etc/passwd, /proc entries and files.
type fakeRoot struct {
	t    *testing.T
	root string
}

func (r fakeRoot) write(p, content string, mode os.FileMode) {
	r.t.Helper()
	full := filepath.Join(r.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil { // past the umask
		r.t.Fatal(err)
	}
}

// proc fakes /proc/<pid>: comm, stat (for the parent), cmdline, environ
// and the cwd link (to a host path, as the kernel's is).
func (r fakeRoot) proc(pid, ppid int, comm string, args []string, env []string, cwd string) {
	r.t.Helper()
	d := fmt.Sprintf("proc/%d/", pid)
	r.write(d+"comm", comm+"\n", 0o644)
	r.write(d+"stat", fmt.Sprintf("%d (%s) S %d 1 1 0 -1", pid, comm, ppid), 0o644)
	r.write(d+"cmdline", strings.Join(args, "\x00")+"\x00", 0o644)
	r.write(d+"environ", strings.Join(env, "\x00")+"\x00", 0o600)
	if cwd != "" {
		if err := os.Symlink(cwd, filepath.Join(r.root, d, "cwd")); err != nil {
			r.t.Fatal(err)
		}
	}
}

const (
	mainData = "/var/lib/postgresql/15/main"
	mainConf = "/etc/postgresql/15/main"
	sock     = "/var/run/postgresql"
	pg2Data  = "/srv/pg2/data"
)

// host builds a host with two clusters (main on 5432 with a separate
// configuration directory, pg2 on 5433), their backends, one-shot postgres
// runs that are no servers, and client processes pointing libpq at files.
func (r fakeRoot) host() {
	r.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"+
		"postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/bash\n"+
		"alice:x:1001:1001::/home/alice:/bin/bash\n"+
		"svc:x:998:998::/srv/svc:/usr/sbin/nologin\n", 0o644)
	r.proc(1, 0, "systemd", []string{"/sbin/init"}, nil, "/")
	r.write(mainData+"/postmaster.pid", "100\n"+mainData+"\n1700000000\n5432\n"+sock+"\n*\n", 0o600)
	r.proc(100, 1, "postgres", []string{"/usr/lib/postgresql/15/bin/postgres", "-D", mainData, "-c", "config_file=" + mainConf + "/postgresql.conf"}, nil, mainData)
	r.proc(101, 100, "postgres", []string{"postgres: checkpointer "}, nil, mainData)
	r.proc(102, 100, "postgres", []string{"postgres: walreceiver "}, []string{"PGPASSFILE=" + mainData + "/.pgpass"}, mainData)
	// pg_ctl's "postgres -C data_directory" and a leftover backend whose
	// postmaster pid file names another process: neither is a server.
	r.proc(50, 1, "pg_ctl", []string{"pg_ctl", "start"}, nil, "/")
	r.proc(51, 50, "postgres", []string{"postgres", "-C", "data_directory", "-D", mainData}, nil, "/")
	r.proc(103, 1, "postgres", []string{"postgres: idle "}, nil, mainData)
	r.write(pg2Data+"/postmaster.pid", "300\n"+pg2Data+"\n1700000000\n5433\n/tmp\n*\n", 0o600)
	r.proc(300, 1, "postgres", []string{"postgres", "-D", pg2Data, "-p", "5433"}, nil, pg2Data)
	r.proc(301, 300, "postgres", []string{"postgres: walwriter "}, nil, pg2Data)
	// Clients: one for each variable, attributed by port, PGDATA, socket.
	r.proc(200, 1, "app", []string{"app"}, []string{"PGPASSFILE=/opt/app/pgpass", "PGPORT=5433", "PGPASSWORD=not-a-file-secret"}, "/opt/app")
	r.proc(201, 1, "report", []string{"report"}, []string{"PGSERVICEFILE=svc.conf", "PGDATA=" + mainData}, "/opt/app")
	r.proc(202, 1, "cron", []string{"cron"}, []string{"PGSYSCONFDIR=/opt/sys", "PGPORT=5432", "PGHOST=" + sock}, "/")
	r.proc(203, 1, "job", []string{"job"}, []string{"HOME=/opt/jobhome"}, "/")
}

// location is one place libpq would find a file, with what the scan must
// say about it.
type location struct {
	name, path, kind, source string
	pid                      int    // the process that names it (0: none)
	cluster                  string // the cluster it belongs to ("": none)
}

var locations = []location{
	{"PGPASSFILE", "/opt/app/pgpass", "pgpass", "PGPASSFILE", 200, pg2Data},
	{"PGSERVICEFILE relative to the process's directory", "/opt/app/svc.conf", "service", "PGSERVICEFILE", 201, mainData},
	{"PGSYSCONFDIR", "/opt/sys/pg_service.conf", "service", "PGSYSCONFDIR", 202, mainData},
	{"HOME of a process", "/opt/jobhome/.pgpass", "pgpass", "HOME of a process", 203, ""},
	{"system service file", "/etc/postgresql-common/pg_service.conf", "service", "system service file", 0, ""},
	{"home in /home", "/home/alice/.pgpass", "pgpass", "home of user alice", 0, ""},
	{"home service file", "/home/alice/.pg_service.conf", "service", "home of user alice", 0, ""},
	{"home outside /home", "/srv/svc/.pgpass", "pgpass", "home of user svc", 0, ""},
	{"root's home", "/root/.pg_service.conf", "service", "home of user root", 0, ""},
	{"data directory .pgpass (WAL receiver's PGPASSFILE)", mainData + "/.pgpass", "pgpass", "data directory", 102, mainData},
	{"data directory pgpass", pg2Data + "/pgpass", "pgpass", "data directory", 0, pg2Data},
	{"data directory service file", pg2Data + "/pg_service.conf", "service", "data directory", 0, pg2Data},
	{"parent of the data directory", "/var/lib/postgresql/15/.pgpass", "pgpass", "parent of the data directory", 0, mainData},
	{"configuration directory", mainConf + "/.pg_service.conf", "service", "configuration directory", 0, mainData},
	{"socket directory", sock + "/.pgpass", "pgpass", "socket directory", 0, mainData},
}

// secretFor is a token unique to the location: it must never show.
func secretFor(l location) string {
	return "s3cr3t" + strings.NewReplacer(" ", "", "'", "", "(", "", ")", "", ".", "").Replace(l.name)
}

// content is a file of the kind with or without a password in it.
func content(kind, secret string, withPassword bool) string {
	switch {
	case kind == "pgpass" && withPassword:
		return "# comment\nlocalhost:5432:*:app:" + strings.ReplaceAll(secret, "-", "\\:") + "\n"
	case kind == "pgpass":
		return "localhost:5432:*:app:\n*:*:*:*\n"
	case withPassword:
		return "[app]\nhost=localhost\npassword=" + secret + "\n"
	default:
		return "[app]\nhost=localhost\n#password=" + secret + "\n"
	}
}

// Every place libpq looks, at each mode, with and without a password:
// the file is found, its mode, password count and libpq's verdict are
// right, it is tied to the process and cluster it belongs to, FS-04
// judges it, and no secret appears anywhere.
func TestConnFilesEverywhere(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o640, 0o644} {
		for _, withPW := range []bool{true, false} {
			t.Run(fmt.Sprintf("%04o/password=%v", mode, withPW), func(t *testing.T) {
				r := fakeRoot{t, t.TempDir()}
				r.host()
				for _, l := range locations {
					r.write(l.path, content(l.kind, secretFor(l), withPW), mode)
				}
				h := Collect(Options{Root: r.root, DataDir: mainData})
				if h.Postmasters != 2 {
					t.Errorf("Postmasters = %d, want 2 (main and pg2; not backends, pg_ctl's postgres -C, an orphan): %+v", h.Postmasters, h.Clusters)
				}
				got := map[string]snapshot.ConnFile{}
				for _, f := range h.ConnFiles {
					got[f.Kind+" "+f.Path] = f
				}
				s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, Host: h}
				findings := rules.Run(s)
				status := map[string]rules.Finding{}
				for _, f := range findings {
					if f.Rule == "FS-04" {
						status[f.Object] = f
					}
				}
				for _, l := range locations {
					f, ok := got[l.kind+" "+l.path]
					if !ok {
						t.Errorf("%s: %s not found", l.name, l.path)
						continue
					}
					wantPW := 0
					if withPW {
						wantPW = 1
					}
					if f.Mode != uint32(mode) || f.Passwords != wantPW {
						t.Errorf("%s: mode %04o passwords %d, want %04o and %d", l.name, f.Mode, f.Passwords, mode, wantPW)
					}
					if wantIgnored := l.kind == "pgpass" && mode != 0o600; f.Ignored != wantIgnored {
						t.Errorf("%s: ignored = %v, want %v (libpq skips a pgpass with group or world access)", l.name, f.Ignored, wantIgnored)
					}
					if !strings.Contains(strings.Join(f.Sources, ", "), l.source) {
						t.Errorf("%s: sources %v, want one naming %q", l.name, f.Sources, l.source)
					}
					if l.pid != 0 && (len(f.Procs) == 0 || f.Procs[0].PID != l.pid || f.Procs[0].User != "root") {
						t.Errorf("%s: procs %+v, want pid %d of root", l.name, f.Procs, l.pid)
					}
					if l.cluster != "" && strings.Join(f.Clusters, ",") != l.cluster {
						t.Errorf("%s: clusters %v, want %s", l.name, f.Clusters, l.cluster)
					}
					fd, ok := status["file "+l.path]
					if !ok {
						t.Errorf("%s: no FS-04 finding", l.name)
						continue
					}
					inData := strings.HasPrefix(l.path, mainData+"/") || strings.HasPrefix(l.path, pg2Data+"/")
					wantFail := l.kind == "pgpass" && (mode != 0o600 || inData && withPW) || l.kind == "service" && withPW
					if (fd.Status == rules.Fail) != wantFail {
						t.Errorf("%s: FS-04 %s (%s), want fail=%v", l.name, fd.Status, fd.Evidence, wantFail)
					}
					if l.kind == "pgpass" && mode != 0o600 && !strings.Contains(fd.Evidence, "exposed") || l.kind == "pgpass" && mode != 0o600 && !strings.Contains(fd.Evidence, "ignored by libpq") {
						t.Errorf("%s: evidence %q does not say the file is both exposed and ignored", l.name, fd.Evidence)
					}
					if l.pid != 0 && !strings.Contains(fd.Evidence, fmt.Sprintf("pid %d (", l.pid)) {
						t.Errorf("%s: evidence %q does not name pid %d", l.name, fd.Evidence, l.pid)
					}
					if l.cluster != "" && !strings.Contains(fd.Evidence, "cluster "+l.cluster) {
						t.Errorf("%s: evidence %q does not name cluster %s", l.name, fd.Evidence, l.cluster)
					}
				}
				js, _ := json.Marshal(struct {
					H *snapshot.Host
					F []rules.Finding
				}{h, findings})
				for _, l := range locations {
					if strings.Contains(string(js), secretFor(l)) || strings.Contains(string(js), "not-a-file-secret") {
						t.Fatalf("a secret appears in the snapshot or findings: %s", secretFor(l))
					}
				}
			})
		}
	}
}

// A service file's passfile= is one more password file libpq reads; it
// belongs to whatever the service file belongs to.
func TestPassfileInServiceFile(t *testing.T) {
	r := fakeRoot{t, t.TempDir()}
	r.host()
	r.write(pg2Data+"/pg_service.conf", "[repl]\nhost=primary\npassfile=/etc/pg2/replication.pass\n", 0o600)
	r.write("etc/pg2/replication.pass", "primary:5432:replication:rep:hunter2\n", 0o644)
	h := Collect(Options{Root: r.root})
	for _, f := range h.ConnFiles {
		if f.Path == "/etc/pg2/replication.pass" {
			if f.Kind != "pgpass" || f.Passwords != 1 || !f.Ignored || strings.Join(f.Clusters, ",") != pg2Data || !strings.Contains(f.Sources[0], pg2Data+"/pg_service.conf") {
				t.Errorf("passfile= target: %+v", f)
			}
			return
		}
	}
	t.Errorf("the passfile= named in %s/pg_service.conf was not looked at: %+v", pg2Data, h.ConnFiles)
}

// The system service file is also wherever the installed pg_config says
// its build looks (Debian: /etc/postgresql-common).
func TestPgConfigSysconfdir(t *testing.T) {
	dirs := pgConfigSysconfdirs(Options{Commands: true})
	if len(dirs) == 0 {
		t.Skip("no pg_config on this host")
	}
	r := fakeRoot{t, t.TempDir()}
	r.write(filepath.Join(dirs[0], "pg_service.conf"), "[x]\npassword=pgconfigsecret\n", 0o644)
	h := Collect(Options{Root: r.root, Commands: true})
	for _, f := range h.ConnFiles {
		if f.Path == filepath.Join(dirs[0], "pg_service.conf") && f.Passwords == 1 && f.Sources[0] == "system service file" {
			return
		}
	}
	t.Errorf("%s/pg_service.conf (pg_config --sysconfdir) not found: %+v", dirs[0], h.ConnFiles)
}

// Which processes are servers: one per data directory, never a backend,
// a one-shot postgres run or a process that merely sits in a data
// directory, however many of those there are at the moment.
func TestPostmasterCount(t *testing.T) {
	type proc struct {
		pid, ppid int
		comm      string
		args      []string
		cwd       string
	}
	pm := func(pid int, dd string) proc { return proc{pid, 1, "postgres", []string{"postgres", "-D", dd}, dd} }
	cases := []struct {
		name     string
		pidFiles map[string]int // data directory -> pid in postmaster.pid
		procs    []proc
		want     int
	}{
		{"one server and its backends", map[string]int{"/d1": 10},
			[]proc{pm(10, "/d1"), {11, 10, "postgres", []string{"postgres: checkpointer "}, "/d1"}, {12, 10, "postgres", []string{"postgres: app db idle"}, "/d1"}}, 1},
		{"pg_ctl's postgres -C and a --single run", map[string]int{"/d1": 10},
			[]proc{pm(10, "/d1"), {20, 1, "postgres", []string{"postgres", "-C", "data_directory", "-D", "/d1"}, "/"}, {21, 1, "postgres", []string{"postgres", "--single", "-D", "/d2"}, "/d2"}, {22, 1, "postgres", []string{"postgres", "--describe-config"}, "/"}}, 1},
		{"an orphaned backend in a data directory", map[string]int{"/d1": 10},
			[]proc{pm(10, "/d1"), {30, 1, "postgres", []string{"postgres: idle"}, "/d1"}}, 1},
		{"a postgres that has not written its pid file yet", map[string]int{},
			[]proc{pm(40, "/d3")}, 0},
		{"two clusters, the old postmaster name", map[string]int{"/d1": 10, "/d2": 50},
			[]proc{pm(10, "/d1"), {50, 1, "postmaster", []string{"postmaster", "-D", "/d2"}, "/d2"}}, 2},
		{"unreadable working directories: one per -D", map[string]int{},
			[]proc{{60, 1, "postgres", []string{"postgres", "-D", "/x"}, ""}, {61, 1, "postgres", []string{"postgres", "-D/x/"}, ""}, {62, 1, "postgres", []string{"postgres", "--pgdata=/y"}, ""}}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := fakeRoot{t, t.TempDir()}
			for dd, pid := range tc.pidFiles {
				r.write(dd+"/postmaster.pid", fmt.Sprintf("%d\n%s\n1700000000\n5432\n/tmp\n", pid, dd), 0o600)
			}
			for _, p := range tc.procs {
				r.proc(p.pid, p.ppid, p.comm, p.args, nil, p.cwd)
			}
			for run := 0; run < 2; run++ {
				if h := Collect(Options{Root: r.root}); h.Postmasters != tc.want {
					t.Errorf("run %d: Postmasters = %d, want %d: %+v", run+1, h.Postmasters, tc.want, h.Clusters)
				}
			}
		})
	}
}

// A PGPASSFILE naming a descriptor of the process itself (pgaegis's own
// in-memory pgpass for pg_dump) is no file to audit: from here it would be
// our fd 3, or another process's pipe.
func TestDescriptorPathIsNotAFile(t *testing.T) {
	for v, want := range map[string]bool{
		"/proc/self/fd/3":        true,
		"/proc/thread-self/fd/9": true,
		"/dev/fd/3":              true,
		"/dev/stdin":             true,
		"/proc/1234/fd/3":        false, // a real path from anywhere
		"/home/app/.pgpass":      false,
		"/proc/selfish/pgpass":   false,
	} {
		if got := descriptorPath(v); got != want {
			t.Errorf("descriptorPath(%q) = %v", v, got)
		}
	}
}
