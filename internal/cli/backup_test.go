package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupUsage: mistakes are exit 2 with a clear message and the
// --help hint, before any file is read or any connection is made.
func TestBackupUsage(t *testing.T) {
	dir := t.TempDir()
	noServer := []string{"-h", filepath.Join(dir, "no-socket-here"), "-p", "1"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no recipients", []string{"backup", "--out", dir}, "--recipients FILE is needed"},
		{"no out", []string{"backup", "--recipients", "r"}, "--out DIR is needed"},
		{"all and database", []string{"backup", "--recipients", "r", "--out", dir, "--all", "--database", "x"}, "contradict"},
		{"passwords without globals", []string{"backup", "--recipients", "r", "--out", dir, "--with-passwords"}, "give --globals or --all"},
		{"jobs", []string{"backup", "--recipients", "r", "--out", dir, "--jobs", "0"}, "--jobs 0"},
		{"level", []string{"backup", "--recipients", "r", "--out", dir, "--level", "9"}, "--level 9"},
		{"name", []string{"backup", "--recipients", "r", "--out", dir, "--name", "../x"}, "--name"},
		{"format", []string{"backup", "--recipients", "r", "--out", dir, "--format", "yaml"}, `unknown --format "yaml"`},
		{"stray argument", []string{"backup", "vrify"}, "unexpected argument"},
		{"prune no rule", []string{"backup", "prune", dir}, "give --keep-days N, --keep-last N or both"},
		{"prune no dir", []string{"backup", "prune", "--keep-last", "1"}, "needs the backup root DIR"},
		{"verify no identity", []string{"backup", "verify", dir}, "--identity FILE is needed"},
		{"rekey no recipients", []string{"backup", "rekey", dir, "--identity", "i"}, "--recipients FILE is needed"},
		{"restore no set", []string{"restore"}, "needs one backup set directory"},
		{"restore no identity", []string{"restore", dir}, "--identity FILE is needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args[0] == "restore" || len(args) > 1 && !strings.HasPrefix(args[1], "prune") && args[1] != "verify" && args[1] != "rekey" {
				args = append(args, noServer...)
			}
			code, out, errs := runCLI(t, args...)
			if code != ExitError || out != "" || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "--help") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errs, tc.want)
			}
		})
	}
}
