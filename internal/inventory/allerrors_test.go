package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes name -> content under a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

// TestLoadListsEveryProblem: a file with several problems has all of
// them listed, in file order, across includes; none hides another.
func TestLoadListsEveryProblem(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{{
		// The new-user trial: the unknown profile hid the inline password.
		name: "password above unknown profile",
		files: map[string]string{"fleet.yaml": lines(
			"servers:",
			"  - name: a",
			"    conninfo: host=127.0.0.1 password=xx",
			"    profile: cis-99")},
		want: []string{
			"fleet.yaml:3:15: inline password in conninfo refused (value not shown): reference it with password_env, password_file, a passfile or a service file",
			`fleet.yaml:4:14: unknown profile "cis-99" (one of all, cis-16, cis-17, stig, seeds)`,
		},
	}, {
		// An unknown top-level key no longer hides the rest of the file
		// nor its includes.
		name: "unknown top-level key",
		files: map[string]string{
			"fleet.yaml": lines(
				"concurrency: 3",
				"include: teams/*.yaml",
				"servers:",
				"  - name: a",
				"    conninfo: host=a",
				"    timeout: forever",
				"  - name: b",
				"    conninfo: postgresql://u:pw@b/app"),
			"teams/x.yaml": lines(
				"servers:",
				"  - name: c",
				"    conninfo: host=c",
				"    schedule: every 0m",
				"    labels: {Team: x}"),
		},
		want: []string{
			`fleet.yaml:1:1: unknown key "concurrency" in the inventory (known: defaults, include, servers, version); concurrency belongs under defaults:`,
			`fleet.yaml:6:14: timeout: "forever" is not a duration (30m, 6h, 7d)`,
			"fleet.yaml:8:15: inline password in conninfo refused (value not shown): reference it with password_env, password_file, a passfile or a service file",
			`teams/x.yaml:4:15: schedule "every 0m": the interval must be between 1m and 366d`,
			`teams/x.yaml:5:14: label name "Team": use lower-case letters, digits and _ (at most 63, not starting with a digit or __)`,
		},
	}, {
		// A duplicate name across an include is found even when both
		// entries have other problems.
		name: "duplicate across include",
		files: map[string]string{
			"fleet.yaml": lines(
				"servers:",
				"  - name: db1",
				"    conninfo: host=db1",
				"    profile: nope",
				"include: more.yaml"),
			"more.yaml": lines(
				"servers:",
				"  - name: db1",
				"    conninfo: host=db1 password=hunter2",
				"    typo: 1"),
		},
		want: []string{
			`fleet.yaml:4:14: unknown profile "nope" (one of all, cis-16, cis-17, stig, seeds)`,
			`more.yaml:2:11: duplicate server name "db1": also at fleet.yaml:2:11`,
			"more.yaml:3:15: inline password in conninfo refused (value not shown): reference it with password_env, password_file, a passfile or a service file",
			`more.yaml:4:5: unknown key "typo" in a server (known: connect_timeout, conninfo, for, labels, name, passfile, password_env, password_file, profile, schedule, service, servicefile, timeout, waivers)`,
		},
	}, {
		// Every key of one entry is checked, in line order; an inline
		// password key is refused and the misspelt key does not bring
		// a "no connection" echo.
		name: "one entry, many problems",
		files: map[string]string{"fleet.yaml": lines(
			"servers:",
			"  - name: db1",
			"    schedule: 0 0 31 2 *",
			"    password: s3cr3t",
			"    conifo: host=db1",
			"    connect_timeout: 0s",
			"    password_env: Sup3rSecretX",
			"    waivers: absent.yaml")},
		want: []string{
			"fleet.yaml:3:15: schedule \"0 0 31 2 *\" never fires (no such date)",
			`fleet.yaml:4:5: inline password refused ("password" key in a server): reference it with password_env, password_file, a passfile or a service file`,
			`fleet.yaml:5:5: unknown key "conifo" in a server (known: connect_timeout, conninfo, for, labels, name, passfile, password_env, password_file, profile, schedule, service, servicefile, timeout, waivers)`,
			"fleet.yaml:6:22: connect_timeout 0s is out of range (more than 0, at most 24h)",
			"fleet.yaml:7:19: " + passwordEnvMsg,
			"fleet.yaml:8:14: waivers: absent.yaml: no such file or directory",
		},
	}, {
		// A broken for: generates nothing, but the template's inline
		// password is still found; defaults keep their good keys.
		name: "broken for and defaults",
		files: map[string]string{"fleet.yaml": lines(
			"defaults:",
			"  profile: cis-99",
			"  retries: 3",
			"servers:",
			"  - name: shard-{n}",
			"    for: {n: 1..x}",
			"    conninfo: host=shard-{n} password=top-secret",
			"  - name: shard-{n}",
			"    for: {m: 1..2}",
			"    conninfo: host=b")},
		want: []string{
			`fleet.yaml:2:12: unknown profile "cis-99" (one of all, cis-16, cis-17, stig, seeds)`,
			`fleet.yaml:3:3: unknown key "retries" in defaults (known: concurrency, connect_timeout, labels, passfile, profile, schedule, servicefile, timeout, waivers)`,
			`fleet.yaml:6:14: for: n: "1..x" is not a range (1..40, 01..40, 5432..5439) or a list`,
			"fleet.yaml:7:15: inline password in conninfo refused (value not shown): reference it with password_env, password_file, a passfile or a service file",
			"fleet.yaml:8:11: the name of a generated server must use {m}, so each one gets its own name",
		},
	}, {
		// A YAML syntax error stops the checks of its file only (and
		// says so): the other files are still checked.
		name: "syntax error in an include",
		files: map[string]string{
			"fleet.yaml": lines(
				"include: [a.yaml, b.yaml]",
				"servers:",
				"  - name: top",
				"    conninfo: host=top",
				"    timeout: 25h"),
			"a.yaml": lines(
				"servers:",
				"  - name: x",
				"   conninfo: host=x"),
			"b.yaml": lines(
				"servers:",
				"  - name: top",
				"    conninfo: host=b"),
		},
		want: []string{
			"fleet.yaml:5:14: timeout 25h is out of range (more than 0, at most 24h)",
			"a.yaml:1: YAML: did not find expected '-' indicator; the rest of this file is not checked until this is fixed",
			`b.yaml:2:11: duplicate server name "top": also at fleet.yaml:3:11`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			_, err := Load(filepath.Join(dir, "fleet.yaml"))
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("%T: %v", err, err)
			}
			var got []string
			for _, e := range list {
				s := strings.ReplaceAll(e.Error(), dir+"/", "")
				got = append(got, strings.ReplaceAll(s, dir, "DIR"))
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
			for _, secret := range []string{"hunter2", "s3cr3t", "top-secret", "Sup3rSecretX", "xx"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the errors show %q", secret)
				}
			}
		})
	}
}
