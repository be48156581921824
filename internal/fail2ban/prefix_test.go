package fail2ban

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestCompilePrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix, re string
		host       bool
		date       byte
		first      bool
	}{
		{"%m [%p] ", ` \S+ \[\d+\] `, false, 'm', true},
		{"%m [%p] %q%u@%d %h ", ` \S+ \[\d+\] \S*@\S* <HOST> `, true, 'm', true},
		{"%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ", ` \S+ \[\d+\]: \[\d+\-1\] user=\S*,db=\S*,app=[^\n]*?,client=<HOST> `, true, 't', true},
		{"%m [%p] %r ", ` \S+ \[\d+\] <HOST>\(\d+\) `, true, 'm', true},
		// After the host, names may hold spaces; before it they may not.
		{"%n %h %u ", ` <HOST> [^\n]*? `, true, 'n', true},
		{"%m [%p] %h %q%u@%d ", ` \S+ \[\d+\] <HOST> [^\n]*?@[^\n]*? `, true, 'm', true},
		{"[%p] %m %h ", `\[\d+\]  \S+ <HOST> `, true, 'm', false},
		{"%-10u%5p", ` *\S* * *\d+ *`, false, 0, false},
		{"100%% %h %h", `100%% <HOST> \S+`, true, 0, false},
		{"%m %t", ` \S+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+`, false, 'm', true},
		{"%Z%", ``, false, 0, false}, // unknown escape and a lone % print nothing
		{"a.b*c(d)[e]{f}|g^h$i?j+k\\l", `a\.b\*c\(d\)\[e\]\{f\}\|g\^h\$i\?j\+k\\l`, false, 0, false},
		{"", ``, false, 0, false},
		{"<HOST> %h", `[<]HOST[>] <HOST>`, true, 0, false},
	} {
		p := CompilePrefix(tc.prefix)
		if p.Regex != tc.re || p.Host != tc.host || p.Date != tc.date || p.DateFirst != tc.first {
			t.Errorf("CompilePrefix(%q) = %q host=%v date=%q first=%v, want %q %v %q %v", tc.prefix, p.Regex, p.Host, p.Date, p.DateFirst, tc.re, tc.host, tc.date, tc.first)
		}
	}
	if !CompilePrefix("%a %h").ClientBeforeHost || CompilePrefix("%h %a").ClientBeforeHost {
		t.Error("ClientBeforeHost wrong")
	}
}

// goOnly are constructs RE2 (Go) accepts and Python's re does not.
var goOnly = regexp.MustCompile(`\\[pPzQE]|\[\[:|\(\?[A-Za-z]*U`)

// goCheck compiles a failregex as Go's regexp after fail2ban's
// substitutions (<HOST> is a named group, %% a %).
func goCheck(re string) error {
	re = strings.ReplaceAll(re, "<HOST>", `(?P<host>\S+)`)
	re = strings.ReplaceAll(re, "%%", "%")
	_, err := regexp.Compile(re)
	return err
}

// ORACLE: Python's re (fail2ban's) compiles every failregex of every
// table prefix and destination.
func TestRegexesCompileInPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is required under CI=true")
		}
		t.Skip("python3 not installed")
	}
	var all []string
	for _, prefix := range []string{"%m [%p] %h ", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ", "%-10u|%5p|(%e) %% %r%q [%c] %x %v %b %i %s %Q %L %P ", "a.b*c(d)[e]{f}|g^h$i?j+k\\l'\"%h"} {
		for _, dest := range []string{"stderr", "csvlog", "jsonlog", "syslog"} {
			f, err := BuildFilter(Settings{LogLinePrefix: prefix, LogDestination: dest, LoggingCollector: dest != "syslog"})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, failregexes(f.Text)...)
		}
	}
	script := `import re, sys
for line in sys.stdin.read().split("\n\x00\n"):
    if not line: continue
    # fail2ban's ConfigParser turns %% into %; <HOST> becomes a group.
    re.compile(line.replace("%%", "%").replace("<HOST>", "(?P<host>\\S+)"))
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(strings.Join(all, "\n\x00\n"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python3 re.compile: %v\n%s", err, out)
	}
}

// failregexes are the failregex lines of a filter text.
func failregexes(text string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "failregex = "):
			in = true
			out = append(out, strings.TrimPrefix(l, "failregex = "))
		case in && strings.HasPrefix(l, "            "):
			out = append(out, strings.TrimSpace(l))
		default:
			in = false
		}
	}
	return out
}

func FuzzCompilePrefix(f *testing.F) {
	for _, s := range []string{"%m [%p] %q%u@%d %h ", "%-10u%", "%%%", "%5", "\n%r\t", "[%p] (%a) %h", "é%h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prefix string) {
		p := CompilePrefix(prefix)
		if strings.Count(p.Regex, "<HOST>") > 1 {
			t.Fatalf("%q: more than one <HOST>", prefix)
		}
		if goOnly.MatchString(strings.ReplaceAll(p.Regex, `\\`, ``)) {
			t.Fatalf("%q: Go-only syntax in %q", prefix, p.Regex)
		}
		if err := goCheck(p.Regex); err != nil {
			t.Fatalf("%q: %v", prefix, err)
		}
		f, err := BuildFilter(Settings{LogLinePrefix: prefix, LoggingCollector: true})
		if err != nil {
			return // no host: refused, and that is fine
		}
		for _, re := range failregexes(f.Text) {
			if err := goCheck(re); err != nil {
				t.Fatalf("%q: %v", prefix, err)
			}
		}
	})
}

// TestGolden: the files for the settings of common setups.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
	}{
		{"debian-host", Settings{LogLinePrefix: "%m [%p] %q%u@%d %h ", LogDestination: "stderr", ClusterName: "17/main", DataDirectory: "/var/lib/postgresql/17/main", Port: 5432, LogTimezone: "Etc/UTC", LcMessages: "C.UTF-8"}},
		{"collector-csv", Settings{LogLinePrefix: "%m [%p] ", LogDestination: "stderr,csvlog", LoggingCollector: true, LogDirectory: "log", LogFilename: "postgresql-%a.log", DataDirectory: "/srv/pg", Port: 5433, LogTimezone: "Europe/Berlin"}},
		{"jsonlog", Settings{LogDestination: "jsonlog", LoggingCollector: true, LogDirectory: "/var/log/pg", LogFilename: "pg-%Y%m%d.log", Port: 5432, LogTimezone: "UTC"}},
		{"syslog", Settings{LogLinePrefix: "%m %h %u ", LogDestination: "syslog", Port: 5432}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.name == "debian-host" {
				os.MkdirAll(filepath.Join(root, "var/log/postgresql"), 0o755)
				os.WriteFile(filepath.Join(root, "var/log/postgresql/postgresql-17-main.log"), nil, 0o644)
			}
			o := Defaults()
			o.Root, o.BanAction = root, "nftables-multiport"
			c, err := Build(tc.s, o)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Filter.Text + "\n---- jail\n" + c.Jail + "\n---- notes\n" + strings.Join(c.Notes, "\n") + "\n"
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -run Golden -update):\n%s", golden, got)
			}
		})
	}
}

func TestStrftimeGlob(t *testing.T) {
	for in, want := range map[string]string{
		"postgresql-%Y-%m-%d_%H%M%S.log": "postgresql-*-*-*_*.log",
		"postgresql-%a.log":              "postgresql-*.log",
		"pg.log":                         "pg.log",
		"100%%.log":                      "100%.log",
	} {
		if got := strftimeGlob(in); got != want {
			t.Errorf("strftimeGlob(%q) = %q, want %q", in, got, want)
		}
	}
	if got := logFileName("postgresql-%a.log", "csvlog"); got != "postgresql-%a.csv" {
		t.Errorf("csvlog file %q", got)
	}
	if got := logFileName("pg", "jsonlog"); got != "pg.json" {
		t.Errorf("jsonlog file %q", got)
	}
}
