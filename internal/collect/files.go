package collect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/hostcheck"
	"github.com/pgaegis/pgaegis/internal/pgconf"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// collectFiles reads the configuration files and stats the server's files.
// Paths given explicitly win; otherwise, with a live server, its own paths
// are used when its data directory is on this host.
func collectFiles(s *snapshot.Snapshot, o *Options) error {
	dataDir, configFile, hbaFile, identFile := o.DataDir, o.ConfigFile, o.HBAFile, o.IdentFile
	explicit := dataDir != "" || configFile != "" || hbaFile != "" || identFile != ""
	// What the user named must be what the flag expects and readable: a
	// typo, a directory or a FIFO is an error (exit 2), not a clean audit.
	if dataDir != "" {
		st, err := os.Stat(dataDir)
		if err != nil {
			return fmt.Errorf("--pgdata %s: %s", dataDir, cleanErr(err))
		}
		if !st.IsDir() {
			return fmt.Errorf("--pgdata %s: not a directory", dataDir)
		}
	}
	for _, p := range []struct{ flag, path string }{{"--config-file", configFile}, {"--hba-file", hbaFile}, {"--ident-file", identFile}} {
		if p.path == "" {
			continue
		}
		if _, err := safefile.ReadConfig(p.path); err != nil {
			var le *safefile.LineError
			if errors.As(err, &le) {
				return fmt.Errorf("%s %s", p.flag, err)
			}
			return fmt.Errorf("%s %s: %s", p.flag, p.path, cleanErr(err))
		}
	}
	if s.Server != nil && !explicit {
		dd, ok := s.Setting("data_directory")
		if !ok || dd.Value == "" {
			s.AddGap(snapshot.GapFiles, "the server's data directory is hidden from the audit role (needs pg_read_all_settings): file checks were skipped")
			return nil
		}
		if reason := sameServer(dd.Value, s); reason != "" {
			s.AddGap(snapshot.GapFiles, reason)
			return nil
		}
		dataDir = dd.Value
		configFile = settingValue(s, "config_file")
		hbaFile = settingValue(s, "hba_file")
		identFile = settingValue(s, "ident_file")
	}
	if !explicit && s.Server == nil {
		return nil
	}
	s.Target.OnHost = true
	if configFile == "" && dataDir != "" {
		configFile = filepath.Join(dataDir, "postgresql.conf")
	}
	if configFile != "" && dataDir == "" {
		// The Debian layout keeps postgresql.conf apart from the data
		// directory it names; postgresql.auto.conf lives in the latter.
		if c, err := pgconf.Load(configFile, pgconf.Options{SkipAutoConf: true}); err == nil {
			if e, ok := c.Get("data_directory"); ok && e.Value != "" {
				dataDir = e.Value
			}
		}
	}
	if dataDir != "" {
		if b, err := safefile.ReadFile(filepath.Join(dataDir, "PG_VERSION"), smallFileMax); err == nil {
			s.Target.MajorVersion, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	s.Target.DataDir, s.Target.ConfigFile = dataDir, configFile
	if configFile != "" {
		readConfig(s, configFile, dataDir)
	}
	// Unless set, pg_hba.conf and pg_ident.conf sit beside postgresql.conf
	// (the server's ConfigDir), not necessarily in the data directory.
	configDir := dataDir
	if configFile != "" {
		configDir = filepath.Dir(configFile)
	}
	if s.Config != nil {
		if e, ok := s.Config.Get("hba_file"); ok && hbaFile == "" {
			hbaFile = e.Value
		}
		if e, ok := s.Config.Get("ident_file"); ok && identFile == "" {
			identFile = e.Value
		}
	}
	// With only --hba-file (a config repository), nothing else is implied.
	if configDir != "" && (o.DataDir != "" || o.ConfigFile != "" || s.Server != nil) {
		if hbaFile == "" {
			hbaFile = filepath.Join(configDir, "pg_hba.conf")
		}
		if identFile == "" {
			identFile = filepath.Join(configDir, "pg_ident.conf")
		}
	}
	s.Target.HBAFile, s.Target.IdentFile = hbaFile, identFile
	if s.Server == nil {
		applyDefaults(s)
	}
	if hbaFile != "" {
		readHBAFile(s, hbaFile)
	}
	if identFile != "" {
		readIdentFile(s, identFile)
	}
	statServerFiles(s, dataDir)
	readLibraryFiles(s, dataDir)
	// Host checks only where the server's own host is being looked at
	// (not for a configuration repository audited with --config-file).
	if dataDir != "" && (s.Server != nil || o.DataDir != "") {
		logDir := ""
		for _, f := range s.FilesOfKind(snapshot.KindLogDir) {
			logDir = f.Path
		}
		s.Host = o.hostChecks(hostcheck.Options{DataDir: dataDir, Major: s.MajorVersion(), LogDir: logDir, Commands: true,
			LogFilename: settingValue(s, "log_filename"), LogDestination: settingValue(s, "log_destination")})
	}
	return nil
}

// hostJob is a host check running beside the live collection.
type hostJob struct {
	opts hostcheck.Options
	done chan struct{}
	host *snapshot.Host
}

// startHostChecks starts the host checks (process environments, package
// queries: ~1 s) while the server's catalogs are read, when the settings
// already say which data directory collectFiles will look at: --pgdata,
// or the server's own on this host. Anything else is checked in
// collectFiles as before.
func startHostChecks(s *snapshot.Snapshot, o *Options) {
	if o.NoFiles || o.ConfigFile != "" || o.HBAFile != "" || o.IdentFile != "" {
		return
	}
	dataDir := o.DataDir
	if dataDir == "" {
		dataDir = settingValue(s, "data_directory")
		if dataDir == "" || sameServer(dataDir, s) != "" {
			return
		}
	}
	j := &hostJob{opts: hostcheck.Options{DataDir: dataDir, Major: s.MajorVersion(), Commands: true}, done: make(chan struct{})}
	go func() {
		defer close(j.done)
		start := time.Now()
		j.host = hostcheck.Collect(j.opts)
		o.trace("host checks: %s", time.Since(start).Round(time.Millisecond))
	}()
	o.host = j
}

// hostChecks is the host check for ho: the one started early when it
// looked at the same place, else run now.
func (o *Options) hostChecks(ho hostcheck.Options) *snapshot.Host {
	if j := o.host; j != nil && j.opts.DataDir == ho.DataDir && j.opts.Major == ho.Major && j.opts.Root == ho.Root {
		start := time.Now()
		<-j.done
		o.trace("host checks: waited %s for them after the live collection", time.Since(start).Round(time.Millisecond))
		// The early checks ran before the live log settings were read:
		// what depends on them is judged again (AUTH-20 passed a jail
		// on a log_directory the server had left).
		j.host.LogDiskUsedPct = hostcheck.LogDiskUsedPct(ho.LogDir)
		hostcheck.Fail2ban(ho, j.host)
		return j.host
	}
	return hostcheck.Collect(ho)
}

// smallFileMax caps PG_VERSION and postmaster.pid (a few lines each).
const smallFileMax = 64 << 10

func settingValue(s *snapshot.Snapshot, name string) string {
	if v, ok := s.Setting(name); ok {
		return v.Value
	}
	return ""
}

// sameServer checks that a data directory on this host belongs to the
// server we are connected to (its postmaster.pid names the same port), so a
// remote audit never reports on an unrelated local cluster.
func sameServer(dataDir string, s *snapshot.Snapshot) string {
	b, err := safefile.ReadFile(filepath.Join(dataDir, "postmaster.pid"), smallFileMax)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("the server's data directory %s is not on this host (or not running from it): file checks were skipped; run pgaegis on the database host, or pass --pgdata", dataDir)
		}
		return fmt.Sprintf("the server's data directory %s is not readable by this OS user (%v): file checks were skipped; run as the cluster owner or root", dataDir, cleanErr(err))
	}
	lines := strings.Split(string(b), "\n")
	port := settingValue(s, "port")
	if len(lines) < 4 || strings.TrimSpace(lines[3]) != port {
		return fmt.Sprintf("the data directory %s on this host belongs to another server (postmaster.pid port differs from %s): file checks were skipped", dataDir, port)
	}
	return ""
}

func cleanErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func readConfig(s *snapshot.Snapshot, configFile, dataDir string) {
	// The major decides how include paths are cleaned (up to 14 an
	// inner ".." stays in the name the server reports).
	cfg, err := pgconf.Load(configFile, pgconf.Options{DataDir: dataDir, Major: s.MajorVersion()})
	if err != nil {
		s.AddGap(snapshot.GapConfigFiles, fmt.Sprintf("%s: %s", configFile, cleanErr(err)))
		return
	}
	s.Config = cfg
	live := s.Server != nil
	if !live || s.Gap(snapshot.GapConfigFiles) != "" {
		for _, e := range cfg.Errors {
			s.ConfigErrors = append(s.ConfigErrors, snapshot.ConfigError{File: e.File, Line: e.Line, Msg: e.Msg})
		}
	}
	for _, e := range cfg.Entries {
		if e.Overridden {
			continue
		}
		name := strings.ToLower(e.Name)
		if !live {
			s.SetSetting(snapshot.Setting{Name: name, Value: e.Value, File: e.File, Line: e.Line, Source: "configuration file", Origin: snapshot.FromFile})
			continue
		}
		// Live: the server's value stands; we only add where it came from
		// when the audit role may not see sourcefile.
		if v, ok := s.Setting(name); ok && v.File == "" && v.Source == "configuration file" {
			v.File, v.Line = e.File, e.Line
			s.SetSetting(v)
		}
	}
}

func readHBAFile(s *snapshot.Snapshot, path string) {
	ssl := false
	if v, ok := s.Setting("ssl"); ok {
		ssl, _ = guc.ParseBool(v.Value)
	}
	o := hba.Options{SSL: ssl, Version: s.MajorVersion()}
	// 18's oauth lines are checked against the validators the server
	// loads; unknown (nil) when the setting was not read.
	if v, ok := s.Setting("oauth_validator_libraries"); ok {
		o.OAuthValidators = []string{}
		if libs, ok := guc.SplitQuotedList(v.Value); ok {
			o.OAuthValidators = append(o.OAuthValidators, libs...)
		}
	}
	f, err := hba.ParseFile(path, o)
	if err != nil {
		if s.HBA == nil {
			s.AddGap(snapshot.GapHBA, fmt.Sprintf("%s: %s", path, cleanErr(err)))
		}
		return
	}
	// The file is exact (quoting, raw text); it replaces the server's view.
	s.HBA = &snapshot.HBA{Source: "file", Path: path, Rules: f.Rules, Errors: f.Errors}
	delete(s.Gaps, snapshot.GapHBA)
}

func readIdentFile(s *snapshot.Snapshot, path string) {
	f, err := hba.ParseIdentFile(path, hba.Options{Version: s.MajorVersion()})
	if err != nil {
		if s.Ident == nil && !errors.Is(err, fs.ErrNotExist) {
			s.AddGap(snapshot.GapIdent, fmt.Sprintf("%s: %s", path, cleanErr(err)))
		}
		return
	}
	s.Ident = &snapshot.Ident{Source: "file", Path: path, Maps: f.Maps, Errors: f.Errors}
	delete(s.Gaps, snapshot.GapIdent)
}

// statServerFiles records owner and mode of everything whose permissions
// matter: data directory, configuration files, keys, sockets, logs.
func statServerFiles(s *snapshot.Snapshot, dataDir string) {
	add := func(path, kind string) {
		if path == "" {
			return
		}
		for _, f := range s.Files {
			if f.Path == path && f.Kind == kind {
				return
			}
		}
		s.Files = append(s.Files, statFile(path, kind))
	}
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) || dataDir == "" {
			return p
		}
		return filepath.Join(dataDir, p)
	}
	add(dataDir, snapshot.KindDataDir)
	if s.Config != nil {
		for i, f := range s.Config.Files {
			switch {
			case i == 0:
				add(f, snapshot.KindConfig)
			case filepath.Base(f) == pgconf.AutoConfName:
				add(f, snapshot.KindAutoConf)
			default:
				add(f, snapshot.KindInclude)
			}
		}
	} else if s.Target.ConfigFile != "" {
		add(s.Target.ConfigFile, snapshot.KindConfig)
	}
	add(s.Target.HBAFile, snapshot.KindHBA)
	if s.HBA != nil && s.HBA.Source == "file" {
		for _, r := range s.HBA.Rules {
			if r.File != s.Target.HBAFile {
				add(r.File, snapshot.KindHBAInclude) // PostgreSQL 16 include files
			}
		}
	}
	if _, err := os.Stat(s.Target.IdentFile); err == nil {
		add(s.Target.IdentFile, snapshot.KindIdent)
	}
	if v, ok := s.Setting("ssl"); ok {
		if on, _ := guc.ParseBool(v.Value); on {
			add(rel(settingValue(s, "ssl_key_file")), snapshot.KindSSLKey)
			add(rel(settingValue(s, "ssl_cert_file")), snapshot.KindSSLCert)
			if p := rel(settingValue(s, "ssl_cert_file")); p != "" {
				s.ServerCert = readCertificate(p)
			}
		}
	}
	port := settingValue(s, "port")
	sockets := ""
	if s.Server != nil {
		// Only for a running server: in a files audit the host's socket
		// directory may belong to another cluster.
		sockets = settingValue(s, "unix_socket_directories")
	}
	for _, d := range strings.Split(sockets, ",") {
		d = strings.TrimSpace(d)
		if d == "" || strings.HasPrefix(d, "@") { // abstract namespace: no file
			continue
		}
		add(d, snapshot.KindSocketDir)
		if port != "" {
			add(filepath.Join(d, ".s.PGSQL."+port), snapshot.KindSocket)
		}
	}
	if v, ok := s.Setting("logging_collector"); ok {
		if on, _ := guc.ParseBool(v.Value); on {
			add(rel(settingValue(s, "log_directory")), snapshot.KindLogDir)
		}
	}
	if dataDir != "" {
		add(filepath.Join(dataDir, "pg_wal"), snapshot.KindWALDir)
	}
	if major := s.MajorVersion(); major > 0 {
		// The Debian layout; pg_config is consulted when it is elsewhere.
		ext := fmt.Sprintf("/usr/share/postgresql/%d/extension", major)
		bin := fmt.Sprintf("/usr/lib/postgresql/%d/bin", major)
		lib := fmt.Sprintf("/usr/lib/postgresql/%d/lib", major)
		if _, err := os.Stat(bin); err != nil {
			ext, bin, lib = pgConfigDirs()
		}
		add(ext, snapshot.KindExtDir)
		add(bin, snapshot.KindBinDir)
		add(lib, snapshot.KindLibDir)
	}
	for _, t := range s.Tablespaces {
		add(t.Location, snapshot.KindTablespace)
	}
}

// pgConfigDirs asks pg_config for the extension, binary and library
// directories (RHEL and source installs).
func pgConfigDirs() (ext, bin, lib string) {
	cmd := exec.Command("pg_config", "--sharedir", "--bindir", "--pkglibdir")
	cmd.Env = conninfo.ChildEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", "", ""
	}
	l := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(l) != 3 {
		return "", "", ""
	}
	return filepath.Join(l[0], "extension"), l[1], l[2]
}

func statFile(path, kind string) snapshot.File {
	f := snapshot.File{Path: path, Kind: kind, UID: -1, GID: -1}
	lst, err := os.Lstat(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.Error = cleanErr(err)
		}
		return f
	}
	f.Symlink = lst.Mode()&fs.ModeSymlink != 0
	st, err := os.Stat(path)
	if err != nil {
		f.Error = cleanErr(err)
		return f
	}
	f.Exists = true
	f.IsDir = st.IsDir()
	f.Mode = uint32(st.Mode().Perm())
	if st.Mode()&fs.ModeSticky != 0 {
		f.Mode |= 0o1000
	}
	if st.Mode()&fs.ModeSetgid != 0 {
		f.Mode |= 0o2000
	}
	if st.Mode()&fs.ModeSetuid != 0 {
		f.Mode |= 0o4000
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		f.UID, f.GID = int(sys.Uid), int(sys.Gid)
		if u, err := user.LookupId(strconv.Itoa(f.UID)); err == nil {
			f.Owner = u.Username
		}
		if g, err := user.LookupGroupId(strconv.Itoa(f.GID)); err == nil {
			f.Group = g.Name
		}
	}
	return f
}

// applyDefaults fills in the built-in default of every setting the rules
// read that the files do not set (files-only audits).
func applyDefaults(s *snapshot.Snapshot) {
	for _, name := range guc.Known() {
		if _, ok := s.Setting(name); ok {
			continue
		}
		if v, ok := guc.Default(name, s.MajorVersion()); ok {
			s.SetSetting(snapshot.Setting{Name: name, Value: v, Source: "default", Origin: snapshot.FromDefault})
		}
	}
}
