package hostcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// walgEncryptionVars turn on WAL-G's client-side encryption (libsodium,
// OpenPGP, the older GPG key id, AWS KMS client-side); walgServerSide
// asks the storage to encrypt (the provider holds that key).
var (
	walgEncryptionVars = []string{"WALG_LIBSODIUM_KEY", "WALG_LIBSODIUM_KEY_PATH", "WALG_PGP_KEY", "WALG_PGP_KEY_PATH", "WALG_GPG_KEY_ID", "WALE_GPG_KEY_ID", "WALG_CSE_KMS_ID"}
	walgServerSide     = []string{"WALG_S3_SSE", "WALG_S3_SSE_KMS_ID"}
)

func isWALGVar(k string) bool { return strings.HasPrefix(k, "WALG_") || strings.HasPrefix(k, "WALE_") }

// walgSummary fills the names of a configuration's variables: set is
// the variable names, nonEmpty says whether one has a value. Values are
// never kept.
func walgSummary(c *snapshot.WALGConfig, names []string, nonEmpty func(string) bool) {
	sort.Strings(names)
	for _, k := range names {
		if !isWALGVar(k) {
			continue
		}
		c.Vars = append(c.Vars, k)
		if !nonEmpty(k) {
			continue
		}
		for _, e := range walgEncryptionVars {
			if k == e {
				c.Encryption = append(c.Encryption, k)
			}
		}
		for _, e := range walgServerSide {
			if k == e {
				c.ServerSide = append(c.ServerSide, k)
			}
		}
	}
}

// walgEnv reads a process environment (NUL-separated) for WAL-G's variables.
func walgEnv(env []byte) *snapshot.WALGConfig {
	vals := map[string]bool{}
	var names []string
	for _, kv := range bytes.Split(env, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok || !isWALGVar(string(k)) {
			continue
		}
		names = append(names, string(k))
		vals[string(k)] = len(bytes.TrimSpace(v)) > 0
	}
	if len(names) == 0 {
		return nil
	}
	c := &snapshot.WALGConfig{Kind: "process"}
	walgSummary(c, names, func(k string) bool { return vals[k] })
	return c
}

// walgEnvDirs are the envdir directories WAL-G is commonly run from
// (envdir DIR wal-g ...): one file per variable, the file's content its value.
var walgEnvDirs = []string{"/etc/wal-g.d/env", "/etc/wal-e.d/env", "/etc/wal-g/env"}

// walgConfigs finds WAL-G's settings: ~/.walg.json of every home (WAL-G's
// default --config), JSON files in /etc/wal-g.d and /etc/wal-g, envdir
// directories, and the environments of running processes.
func walgConfigs(o Options, h *snapshot.Host, accts []account, procs []procInfo) []snapshot.WALGConfig {
	var out []snapshot.WALGConfig
	jsonFiles := []string{}
	for _, home := range homes(o, h, accts) {
		jsonFiles = append(jsonFiles, filepath.Join(home, ".walg.json"))
	}
	for _, d := range []string{"/etc/wal-g.d", "/etc/wal-g"} {
		if ents, err := os.ReadDir(o.path(d)); err == nil {
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".json") {
					jsonFiles = append(jsonFiles, filepath.Join(d, e.Name()))
				}
			}
		}
	}
	for _, p := range jsonFiles {
		if c, ok := walgJSON(o, p); ok {
			out = append(out, c)
		}
	}
	for _, d := range walgEnvDirs {
		if c, ok := walgEnvDir(o, d); ok {
			out = append(out, c)
		}
	}
	// Processes sharing one environment (a postmaster and its children)
	// are one configuration.
	seen := map[string]bool{}
	for _, p := range procs {
		if p.walg == nil {
			continue
		}
		key := p.User + "\x00" + p.Command + "\x00" + strings.Join(p.walg.Vars, ",") + "\x00" + strings.Join(p.walg.Encryption, ",")
		if seen[key] {
			continue
		}
		seen[key] = true
		c := *p.walg
		c.Path = fmt.Sprintf("process %d (%s)", p.PID, p.Command)
		out = append(out, c)
	}
	return out
}

// readError renders why an existing file could not be read, naming it.
func readError(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return path + " not readable (permission denied)"
	default:
		msg := err.Error()
		// Errors from os name the full path already (with the test
		// root); keep only what went wrong.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return path + " not readable (" + msg + ")"
	}
}

func walgJSON(o Options, p string) (snapshot.WALGConfig, bool) {
	f, exists := statFile(o, p)
	if !exists {
		return snapshot.WALGConfig{}, false
	}
	c := snapshot.WALGConfig{Path: p, Kind: "json", File: &f}
	data, err := readHostFile(o.path(p))
	if err != nil {
		c.Unreadable = readError(p, err)
		return c, true
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		// json's message quotes no content beyond a character or two.
		c.Unreadable = p + " is not a JSON object (" + jsonErr(err) + ")"
		return c, true
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	walgSummary(&c, names, func(k string) bool {
		switch v := m[k].(type) {
		case string:
			return strings.TrimSpace(v) != ""
		case nil:
			return false
		}
		return true
	})
	return c, true
}

// jsonErr describes a JSON syntax error by offset only, so no part of a
// key in a broken file reaches the report.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "not an object"
	}
	return "invalid"
}

func walgEnvDir(o Options, d string) (snapshot.WALGConfig, bool) {
	f, exists := statFile(o, d)
	if !exists {
		return snapshot.WALGConfig{}, false
	}
	c := snapshot.WALGConfig{Path: d, Kind: "envdir", File: &f}
	ents, err := os.ReadDir(o.path(d))
	if err != nil {
		c.Unreadable = readError(d, err)
		return c, true
	}
	var names []string
	size := map[string]int64{}
	for _, e := range ents {
		// envdir sets a variable from a file's first line; an empty file
		// removes it. The size tells which without reading a key.
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			names = append(names, e.Name())
			size[e.Name()] = info.Size()
		}
	}
	walgSummary(&c, names, func(k string) bool { return size[k] > 0 })
	return c, true
}

// barmanFiles are Barman's configuration: the system file (either
// place), users' ~/.barman.conf, and configuration_files_directory
// (/etc/barman.d by default in the packages).
func barman(o Options, h *snapshot.Host, accts []account) *snapshot.Barman {
	var b snapshot.Barman
	files := []string{"/etc/barman.conf", "/etc/barman/barman.conf"}
	for _, home := range homes(o, h, accts) {
		files = append(files, filepath.Join(home, ".barman.conf"))
	}
	dirs := map[string]bool{"/etc/barman.d": true}
	seen := map[string]bool{}
	var read func(p string, global bool)
	read = func(p string, global bool) {
		if seen[p] {
			return
		}
		seen[p] = true
		f, exists := statFile(o, p)
		if !exists {
			return
		}
		bf := snapshot.BarmanFile{Path: p, File: &f}
		data, err := readHostFile(o.path(p))
		if err != nil {
			bf.Unreadable = readError(p, err)
			b.Files = append(b.Files, bf)
			return
		}
		b.Files = append(b.Files, bf)
		if dir := parseBarman(&b, p, data, global); dir != "" {
			dirs[dir] = true
		}
	}
	for _, p := range files {
		read(p, true)
	}
	var ds []string
	for d := range dirs {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	for _, d := range ds {
		ents, err := os.ReadDir(o.path(d))
		if err != nil {
			if _, serr := os.Lstat(o.path(d)); serr == nil {
				b.Files = append(b.Files, snapshot.BarmanFile{Path: d, Unreadable: readError(d, err)})
			}
			continue
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".conf") {
				read(filepath.Join(d, e.Name()), false)
			}
		}
	}
	if len(b.Files) == 0 {
		return nil
	}
	// Servers inherit the global section's options.
	for i := range b.Servers {
		s := &b.Servers[i]
		if s.Encryption == "" {
			s.Encryption = b.Global["encryption"]
		}
		if !s.EncryptionKeyID {
			s.EncryptionKeyID = b.Global["encryption_key_id"] != ""
		}
		if s.BackupMethod == "" {
			s.BackupMethod = b.Global["backup_method"]
		}
		if s.BackupCompression == "" {
			s.BackupCompression = b.Global["backup_compression"]
		}
	}
	return &b
}

// barmanKeep are the options kept: how backups are written. Passphrase
// commands, connection strings and ssh commands are never kept.
var barmanKeep = map[string]bool{"encryption": true, "encryption_key_id": true, "backup_method": true, "backup_compression": true}

// parseBarman reads one INI file: [barman] is global (only in the main
// files), every other section a server. It returns the
// configuration_files_directory the global section names.
func parseBarman(b *snapshot.Barman, path string, data []byte, global bool) string {
	var cur *snapshot.BarmanServer
	inGlobal := false
	dir := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			name := strings.TrimSpace(line[1 : len(line)-1])
			inGlobal, cur = false, nil
			if name == "barman" {
				inGlobal = global
				continue
			}
			b.Servers = append(b.Servers, snapshot.BarmanServer{Name: name, Config: fmt.Sprintf("%s:%d", path, n)})
			cur = &b.Servers[len(b.Servers)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			if k, v, ok = strings.Cut(line, ":"); !ok {
				continue
			}
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch {
		case inGlobal && k == "configuration_files_directory":
			dir = v
		case inGlobal && barmanKeep[k]:
			if b.Global == nil {
				b.Global = map[string]string{}
			}
			if k == "encryption_key_id" && v != "" {
				v = "set" // only whether it is set matters
			} else {
				v = strings.ToLower(v)
			}
			b.Global[k] = v
		case cur != nil:
			switch k {
			case "encryption":
				cur.Encryption = strings.ToLower(v)
			case "encryption_key_id":
				cur.EncryptionKeyID = v != ""
			case "backup_method":
				cur.BackupMethod = strings.ToLower(v)
			case "backup_compression":
				cur.BackupCompression = strings.ToLower(v)
			}
		}
	}
	return dir
}
