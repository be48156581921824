package fail2ban

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Name is the jail's and the filter's name.
const Name = "pgaegis-postgresql"

// Options shape the jail.
type Options struct {
	LogPath   string // overrides the path derived from the settings
	MaxRetry  int
	FindTime  time.Duration
	BanTime   time.Duration
	BanAction string // "" picks nftables-multiport or iptables-multiport
	// Root prefixes the host paths looked at (tests).
	Root string
}

// Defaults: 5 failures in 10 minutes ban for an hour.
func Defaults() Options {
	return Options{MaxRetry: 5, FindTime: 10 * time.Minute, BanTime: time.Hour}
}

// Config is the pair of files and what was assumed to write them.
type Config struct {
	Filter  *Filter
	Jail    string
	LogPath string // the glob fail2ban follows; "" with the journal
	Backend string // "auto" or "systemd"
	Notes   []string
}

// Files are the paths under the fail2ban directory.
func Files() (filter, jail string) {
	return filepath.Join("filter.d", Name+".conf"), filepath.Join("jail.d", Name+".local")
}

// strftimeGlob turns log_filename's strftime escapes into a glob.
func strftimeGlob(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] != '%' || i+1 == len(name) {
			b.WriteByte(name[i])
			continue
		}
		i++
		if name[i] == '%' {
			b.WriteByte('%')
			continue
		}
		// Every conversion prints something variable; runs of them
		// collapse into one star.
		if !strings.HasSuffix(b.String(), "*") {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// logFileName is the collector's file for the destination: csvlog and
// jsonlog replace a ".log" suffix (or append).
func logFileName(pattern, dest string) string {
	ext := map[string]string{"csvlog": ".csv", "jsonlog": ".json"}[dest]
	if ext == "" {
		return pattern
	}
	if strings.HasSuffix(pattern, ".log") {
		return strings.TrimSuffix(pattern, ".log") + ext
	}
	return pattern + ext
}

// Build makes the filter and the jail.
func Build(s Settings, o Options) (*Config, error) {
	f, err := BuildFilter(s)
	if err != nil {
		return nil, err
	}
	c := &Config{Filter: f, Backend: "auto"}
	c.Notes = append(c.Notes, f.Notes...)
	switch {
	case o.LogPath != "":
		c.LogPath = o.LogPath
	case f.Destination == "syslog":
		c.Backend = "systemd"
	case s.LoggingCollector:
		dir := s.LogDirectory
		if dir == "" {
			dir = "log"
		}
		if !filepath.IsAbs(dir) {
			if s.DataDirectory == "" {
				return nil, fmt.Errorf("log_directory %q is relative to the data directory, which is not known: give --log-path", dir)
			}
			dir = filepath.Join(s.DataDirectory, dir)
		}
		name := s.LogFilename
		if name == "" {
			name = "postgresql-%Y-%m-%d_%H%M%S.log"
		}
		c.LogPath = filepath.Join(dir, strftimeGlob(logFileName(name, f.Destination)))
	default:
		// Debian's pg_ctlcluster sends stderr to this file.
		if p := debianLog(s); p != "" {
			if _, err := os.Stat(filepath.Join(o.Root, p)); err == nil {
				c.LogPath = p
				break
			}
		}
		if f.Destination != "stderr" {
			return nil, fmt.Errorf("log_destination %s needs logging_collector = on to write a file; turn it on or give --log-path", f.Destination)
		}
		return nil, fmt.Errorf("logging_collector is off, so stderr goes wherever the service manager sends it (the journal, a file): give --log-path, or turn the collector on")
	}
	ba := o.BanAction
	if ba == "" {
		ba = banAction(o.Root)
	}
	port := s.Port
	if port == 0 {
		port = 5432
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ban addresses that fail PostgreSQL's authentication.\n", Marker)
	b.WriteString("# Filter: filter.d/" + Name + ".conf. Remove both files (or set enabled = false) to stop.\n\n")
	b.WriteString("[" + Name + "]\n")
	b.WriteString("enabled   = true\n")
	b.WriteString("filter    = " + Name + "\n")
	fmt.Fprintf(&b, "port      = %d\n", port)
	b.WriteString("banaction = " + ba + "\n")
	if c.Backend == "systemd" {
		b.WriteString("backend   = systemd\n")
	} else {
		b.WriteString("backend   = auto\n")
		b.WriteString("logpath   = " + c.LogPath + "\n")
	}
	if f.Destination != "syslog" && utcZone(s.LogTimezone) {
		b.WriteString("logtimezone = UTC\n")
	}
	fmt.Fprintf(&b, "maxretry  = %d\n", o.MaxRetry)
	fmt.Fprintf(&b, "findtime  = %d\n", int(o.FindTime.Seconds()))
	fmt.Fprintf(&b, "bantime   = %d\n", int(o.BanTime.Seconds()))
	c.Jail = b.String()
	return c, nil
}

// debianLog is /var/log/postgresql/postgresql-MAJOR-CLUSTER.log from
// cluster_name "15/main" (or the data directory's last two parts).
func debianLog(s Settings) string {
	ver, name, ok := strings.Cut(s.ClusterName, "/")
	if !ok && s.DataDirectory != "" {
		ver, name = filepath.Base(filepath.Dir(s.DataDirectory)), filepath.Base(s.DataDirectory)
	}
	if ver == "" || name == "" || strings.ContainsAny(ver+name, "/ ") {
		return ""
	}
	return "/var/log/postgresql/postgresql-" + ver + "-" + name + ".log"
}

// banAction: nftables when the host uses it (Debian 11+ default).
func banAction(root string) string {
	for _, p := range []string{"/usr/sbin/nft", "/sbin/nft"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			return "nftables-multiport"
		}
	}
	return "iptables-multiport"
}
