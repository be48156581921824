package hostcheck

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// jail is one section of fail2ban's jail files, merged across them.
type jail struct {
	name, file string
	keys       map[string]string
}

// jailFiles are read in fail2ban's order: later files override earlier.
func jailFiles(o Options) []string {
	root := o.path("/etc/fail2ban")
	files := []string{filepath.Join(root, "jail.conf")}
	confs, _ := filepath.Glob(filepath.Join(root, "jail.d", "*.conf"))
	sort.Strings(confs)
	files = append(files, confs...)
	files = append(files, filepath.Join(root, "jail.local"))
	locals, _ := filepath.Glob(filepath.Join(root, "jail.d", "*.local"))
	sort.Strings(locals)
	return append(files, locals...)
}

// parseJails reads INI sections; a line starting with whitespace
// continues the previous value (logpath lists).
func parseJails(o Options) map[string]*jail {
	jails := map[string]*jail{}
	for _, f := range jailFiles(o) {
		data, err := readHostFile(f)
		if err != nil {
			continue
		}
		var cur *jail
		key := ""
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			l := sc.Text()
			t := strings.TrimSpace(l)
			switch {
			case t == "" || t[0] == '#' || t[0] == ';':
				continue
			case t[0] == '[' && strings.HasSuffix(t, "]"):
				n := strings.TrimSpace(t[1 : len(t)-1])
				if jails[n] == nil {
					jails[n] = &jail{name: n, keys: map[string]string{}}
				}
				cur, key = jails[n], ""
				cur.file = strings.TrimPrefix(f, o.Root)
			case cur != nil && (l[0] == ' ' || l[0] == '\t') && key != "":
				cur.keys[key] += "\n" + t
			case cur != nil:
				k, v, ok := strings.Cut(t, "=")
				if !ok {
					continue
				}
				key = strings.ToLower(strings.TrimSpace(k))
				cur.keys[key] = strings.TrimSpace(v)
			}
		}
	}
	return jails
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "1", "on":
		return true
	}
	return false
}

// Fail2ban finds an enabled jail on PostgreSQL's log (pgaegis's own or a
// hand-written [postgresql] one) and whether its logpath is where the
// server logs. The collector calls it again once the live log settings
// are known (the host checks start before them).
func Fail2ban(o Options, h *snapshot.Host) {
	h.Fail2ban, h.Fail2banJail, h.Fail2banLogPath, h.Fail2banLogOK = "", "", "", ""
	if _, err := os.Stat(o.path("/etc/fail2ban")); err != nil {
		h.Fail2ban = "no"
		return
	}
	jails := parseJails(o)
	def := jails["DEFAULT"]
	var names []string
	for n := range jails {
		names = append(names, n)
	}
	sort.Strings(names)
	h.Fail2ban = "no"
	for _, n := range names {
		j := jails[n]
		if n == "DEFAULT" || n == "INCLUDES" {
			continue
		}
		filter := j.keys["filter"]
		if !strings.Contains(strings.ToLower(n), "postgres") && !strings.Contains(strings.ToLower(filter), "postgres") {
			continue
		}
		enabled, ok := j.keys["enabled"]
		if !ok && def != nil {
			enabled = def.keys["enabled"]
		}
		if !truthy(enabled) {
			continue
		}
		h.Fail2ban = "yes"
		h.Fail2banJail = n + " (" + j.file + ")"
		h.Fail2banLogPath = strings.Join(strings.Fields(j.keys["logpath"]), " ")
		h.Fail2banLogOK = logCovered(o, j.keys["logpath"], j.keys["backend"])
		if h.Fail2banLogOK == "yes" {
			return
		}
	}
}

// logCovered: one of the jail's log globs matches the file the server
// writes now (log_directory/log_filename, for each file destination), or
// is Debian's per-cluster file ("" when the server's log directory is
// unknown). A glob merely in the directory is not enough: a changed
// log_filename leaves it matching only old files.
func logCovered(o Options, logpath, backend string) string {
	if strings.TrimSpace(logpath) == "" {
		if strings.HasPrefix(strings.TrimSpace(backend), "systemd") {
			return "" // the journal: which entries is journalmatch's business
		}
		return "no"
	}
	names := liveLogNames(o.LogFilename, o.LogDestination)
	for _, p := range strings.Fields(logpath) {
		if strings.HasPrefix(p, "/var/log/postgresql/") {
			return "yes"
		}
		if o.LogDir == "" || filepath.Clean(filepath.Dir(p)) != filepath.Clean(o.LogDir) {
			continue
		}
		if len(names) == 0 {
			return "yes" // log_filename unknown: the directory is all we can check
		}
		for _, n := range names {
			if ok, err := filepath.Match(filepath.Base(p), n); err == nil && ok {
				return "yes"
			}
		}
	}
	if o.LogDir == "" {
		return ""
	}
	return "no"
}

// liveLogNames are names the collector gives its files now: log_filename
// expanded at a fixed time, with csvlog's and jsonlog's suffixes.
func liveLogNames(pattern, dest string) []string {
	if pattern == "" {
		return nil
	}
	name := strftime(pattern, time.Date(2026, 12, 3, 17, 5, 9, 0, time.UTC))
	names := []string{name}
	for _, d := range strings.Split(dest, ",") {
		ext := map[string]string{"csvlog": ".csv", "jsonlog": ".json"}[strings.ToLower(strings.TrimSpace(d))]
		if ext == "" {
			continue
		}
		names = append(names, strings.TrimSuffix(name, ".log")+ext)
	}
	return names
}

// strftime expands the escapes PostgreSQL's log_filename uses; an unknown
// one prints a digit (it is variable, like the others).
func strftime(pattern string, t time.Time) string {
	layouts := map[byte]string{'Y': "2006", 'y': "06", 'm': "01", 'd': "02", 'H': "15", 'M': "04", 'S': "05",
		'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'h': "Jan", 'e': "_2", 'I': "03", 'p': "PM", 'Z': "MST", 'z': "-0700"}
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '%' || i+1 == len(pattern) {
			b.WriteByte(pattern[i])
			continue
		}
		i++
		switch c := pattern[i]; {
		case c == '%':
			b.WriteByte('%')
		case c == 'F':
			b.WriteString(t.Format("2006-01-02"))
		case c == 'j':
			b.WriteString(fmt.Sprintf("%03d", t.YearDay()))
		case layouts[c] != "":
			b.WriteString(t.Format(layouts[c]))
		default:
			b.WriteByte('0')
		}
	}
	return b.String()
}
