package fix_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/fixtest"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// TestFileModesOnServer loosens the data directory and the configuration
// files of a real server, and proves the planned chmods: one step, the
// server restarts with them, the findings are gone and the second plan is
// empty.
func TestFileModesOnServer(t *testing.T) {
	// Each proof has its own server: they run side by side.
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{})
	for _, tc := range []struct {
		rule, path string
		mode, want os.FileMode
	}{
		{"FS-05", srv.DataDir, 0o750, 0o700},
		{"FS-06", filepath.Join(srv.DataDir, "postgresql.conf"), 0o646, 0o640},
		{"FS-07", filepath.Join(srv.DataDir, "pg_hba.conf"), 0o666, 0o640},
		{"FS-09", filepath.Join(srv.DataDir, "pg_wal"), 0o751, 0o700},
		{"NET-04", srv.SocketDir, 0o777, 0o775},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			if err := os.Chmod(tc.path, tc.mode); err != nil {
				t.Fatal(err)
			}
			pr := fixtest.Prove(t, srv, []string{tc.rule}, fixtest.Options{})
			var chmods int
			for _, st := range pr.Plan.Steps {
				if st.Kind == plan.KindFileMode {
					chmods++
				}
			}
			if chmods != 1 {
				t.Fatalf("plan %+v", pr.Plan.Steps)
			}
			fi, err := os.Stat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.want {
				t.Errorf("%s is %04o, want %04o", tc.path, fi.Mode().Perm(), tc.want)
			}
		})
	}
}

// TestFileModesPlan: several rules asking for one path make one change
// (the strictest), a mode is never loosened, symlinks are held, and the
// host rules a person must carry out are manual with their text.
func TestFileModesPlan(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	conf := filepath.Join(data, "postgresql.conf")
	link := filepath.Join(data, "pg_hba.conf")
	if err := os.MkdirAll(data, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{data} {
		if err := os.Chmod(p, 0o751); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(conf, nil, 0o604); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, 0o604); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(conf, link); err != nil {
		t.Fatal(err)
	}
	s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion}
	s.Target.DataDir, s.Target.OnHost = data, true
	s.Files = []snapshot.File{
		{Path: data, Kind: snapshot.KindDataDir, Exists: true, IsDir: true, Mode: 0o751},
		{Path: conf, Kind: snapshot.KindConfig, Exists: true, Mode: 0o604},
		{Path: link, Kind: snapshot.KindHBA, Exists: true, Mode: 0o666, Symlink: true},
	}
	s.SetSetting(snapshot.Setting{Name: "data_checksums", Value: "off"})
	s.Host = &snapshot.Host{Encrypted: "no", Fail2ban: "no", InstalledMajors: []int{14, 15}}
	findings := rules.Run(s)
	// A second finding on the same path asking for a looser mode.
	findings = append(findings, rules.Finding{Rule: "TEST-LOOSE", Object: "file " + conf, Status: rules.Fail, Severity: rules.High,
		Changes: []remedy.Change{{File: &remedy.FileMode{Path: conf, Mode: 0o644, From: 0o604}}}})
	res := fix.Build(s, findings, fix.Options{Only: []string{"FS-05", "FS-06", "FS-07", "TEST-LOOSE", "INST-04", "OTH-01", "AUTH-20", "INST-02"}})
	if len(res.Plan.Steps) != 1 {
		t.Fatalf("steps %+v", res.Plan.Steps)
	}
	got := map[string]os.FileMode{}
	for _, m := range res.Plan.Steps[0].Modes {
		if _, dup := got[m.Path]; dup {
			t.Errorf("%s changed twice", m.Path)
		}
		got[m.Path] = m.To
	}
	if got[data] != 0o700 || got[conf] != 0o600 || len(got) != 2 {
		t.Errorf("modes %v (want data 0700, conf 0600, nothing for the symlink)", got)
	}
	var heldLink bool
	for _, h := range res.Plan.Held {
		if h.Rule == "FS-07" && strings.Contains(h.Why, "symbolic link") {
			heldLink = true
		}
	}
	if !heldLink {
		t.Errorf("the symlink is not held: %+v", res.Plan.Held)
	}
	// Packages, volumes and a stopped server are a person's job.
	manual := map[string]string{}
	for _, m := range res.Plan.Manual {
		manual[m.Rule] = m.What
	}
	for rule, want := range map[string]string{"INST-04": "stop the server and run pg_checksums --enable", "OTH-01": "LUKS volume",
		"AUTH-20": "fail2ban", "INST-02": "remove the old majors"} {
		if !strings.Contains(manual[rule], want) {
			t.Errorf("%s manual text %q, want %q", rule, manual[rule], want)
		}
	}
}

// TestFileModesHostilePaths: a path with quotes, a line break, $(...) and
// ; reaches the plan as data, and its chmod text is one shell argument
// naming exactly that path.
func TestFileModesHostilePaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d'ir\n$(touch pwned) `touch pwned2`;rm -rf x #")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o666); err != nil {
		t.Fatal(err)
	}
	s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion}
	s.Target.DataDir, s.Target.OnHost = dir, true
	s.Files = []snapshot.File{{Path: file, Kind: snapshot.KindHBA, Exists: true, Mode: 0o666}}
	findings := rules.Run(s)
	res := fix.Build(s, findings, fix.Options{Only: []string{"FS-07"}})
	if len(res.Plan.Steps) != 1 || len(res.Plan.Steps[0].Modes) != 1 || res.Plan.Steps[0].Modes[0].Path != file {
		t.Fatalf("plan %+v", res.Plan.Steps)
	}
	n := 0
	for _, f := range findings {
		txt, ok := res.Texts[f.Key()]
		if !ok {
			continue
		}
		n++
		cmd, _, _ := strings.Cut(txt, "    #")
		rest, ok := strings.CutPrefix(cmd, "chmod 0640 ")
		if !ok {
			t.Fatalf("fix text %q", txt)
		}
		out, err := exec.Command("sh", "-c", "printf '%s\\0' "+rest).Output()
		if err != nil || string(out) != file+"\x00" {
			t.Errorf("chmod argument %q is %q to the shell (%v)", rest, out, err)
		}
	}
	if n == 0 {
		t.Error("no fix text for FS-07")
	}
}
