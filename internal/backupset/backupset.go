// Package backupset is a backup set on disk: a directory DIR/NAME-STAMP/
// holding sealed files (sealedfile), manifest.json describing them, and,
// once 'pgaegis backup verify' has checked it, verification.json. It
// reads, writes and authenticates those two records and decides which
// sets retention keeps. It never talks to a server.
package backupset

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Format names the manifest's schema; a reader refuses another.
const Format = "pgaegis-backup/1"

const (
	ManifestName     = "manifest.json"
	VerificationName = "verification.json"
	GlobalsName      = "globals.sql.zst.age"
)

// DumpFileName is a database's file ("app.dump.zst.age"; part N>0 of a
// parallel dump "app.part2.dump.zst.age"). Database names are escaped so
// that any name gives one safe file name (no '/', no leading '.').
func DumpFileName(database string, part int) string {
	base := EscapeName(database)
	if part > 0 {
		return fmt.Sprintf("%s.part%d.dump.zst.age", base, part)
	}
	return base + ".dump.zst.age"
}

// EscapeName percent-encodes every byte outside [A-Za-z0-9_-] ('.' and
// '%' included), so the result never holds '/', never starts with '.',
// cannot collide with the ".part" suffix, and UnescapeName reverses it.
// The empty name becomes "%" so it still names a file.
func EscapeName(name string) string {
	if name == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// UnescapeName reverses EscapeName.
func UnescapeName(s string) (string, error) {
	if s == "%" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+3 > len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		v, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), nil
}

// File is one sealed file of the set.
type File struct {
	Name            string `json:"name"`
	PlainBytes      int64  `json:"plain_bytes"`
	CompressedBytes int64  `json:"compressed_bytes"`
	CipherBytes     int64  `json:"cipher_bytes"`
	SHA256          string `json:"sha256"`
}

// Table is one table's data in the dump.
type Table struct {
	Schema   string `json:"schema"`
	Name     string `json:"name"`
	Rows     int64  `json:"rows"`     // counted in the dump stream (exact at the dump's snapshot)
	Estimate int64  `json:"estimate"` // pg_class.reltuples when the dump started (-1: never analyzed)
	Part     int    `json:"part,omitempty"`
}

// Database is one dumped database.
type Database struct {
	Name       string  `json:"name"`
	Files      []File  `json:"files"` // part 0 (schema and small tables), then data parts of a parallel dump
	TOCEntries int     `json:"toc_entries"`
	Tables     []Table `json:"tables"`
	Blobs      int64   `json:"blobs,omitempty"`
}

// Manifest describes a set. Its MAC (HMAC-SHA256 keyed with the key
// carried inside every sealed file of the set, over the manifest's
// canonical JSON with MAC empty) is what makes an edit detectable.
type Manifest struct {
	Format        string     `json:"format"`
	Name          string     `json:"name"`
	Started       time.Time  `json:"started"`
	Finished      time.Time  `json:"finished"`
	Server        Server     `json:"server"`
	PgDump        Tool       `json:"pg_dump"`
	Compression   string     `json:"compression"` // "zstd"
	Encryption    string     `json:"encryption"`  // "age"
	Recipients    []string   `json:"recipients"`  // public keys as written in the recipients file
	WithPasswords bool       `json:"with_passwords"`
	Jobs          int        `json:"jobs,omitempty"`
	Globals       *File      `json:"globals,omitempty"`
	Databases     []Database `json:"databases"`
	MAC           string     `json:"mac"`
}

// Server is the dumped server.
type Server struct {
	Version          string `json:"version"`     // server_version
	VersionNum       int    `json:"version_num"` // server_version_num
	SystemIdentifier string `json:"system_identifier,omitempty"`
	Target           string `json:"target"` // host:port/dbname as connected, no secrets
}

// Tool is a client program used.
type Tool struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

// Verification records a 'backup verify' run. It is MACed with the
// set's key like the manifest, and names the ciphertext it checked, so
// replacing a file after verification is caught without any key.
type Verification struct {
	Format      string            `json:"format"`
	Verified    time.Time         `json:"verified"`
	OK          bool              `json:"ok"`
	Problems    []string          `json:"problems,omitempty"`
	Files       map[string]string `json:"files"`    // file name -> sha256 checked
	Manifest    string            `json:"manifest"` // the manifest checked: its Digest
	RestoreTest *RestoreTest      `json:"restore_test,omitempty"`
	MAC         string            `json:"mac"`
}

// RestoreTest is the throwaway-server restore's outcome.
type RestoreTest struct {
	// At is when the test ran; a later verify without --restore-test
	// carries the test over (the same files, the same key), so At may be
	// older than the record's Verified. Zero in records from before.
	At            time.Time `json:"at,omitzero"`
	ServerVersion string    `json:"server_version"`
	PgRestore     Tool      `json:"pg_restore"`
	Seconds       float64   `json:"seconds"`
	Tables        int       `json:"tables"`
	Mismatches    []string  `json:"mismatches,omitempty"` // "schema.table: dump 10 rows, restored 9"
}

// Sign sets m.MAC; VerifyMAC checks it (constant time).
func (m *Manifest) Sign(key [32]byte) { m.MAC = m.mac(key) }

func (m *Manifest) VerifyMAC(key [32]byte) error {
	return checkMAC("manifest", m.MAC, m.mac(key))
}

// Digest is the sha256 of the manifest as it stands (MAC included). A
// verification records the digest of the manifest it checked, so an edit
// made afterwards un-verifies the set even where no key is at hand (list,
// prune, the audit).
func (m *Manifest) Digest() string {
	c := *m
	c.Started, c.Finished = c.Started.UTC(), c.Finished.UTC()
	b, err := json.Marshal(&c)
	if err != nil {
		panic(err) // plain structs of strings, numbers and times always marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (m *Manifest) mac(key [32]byte) string {
	c := *m
	c.MAC = ""
	c.Started, c.Finished = c.Started.UTC(), c.Finished.UTC()
	return macOf(key, &c)
}

func (v *Verification) Sign(key [32]byte) { v.MAC = v.mac(key) }

func (v *Verification) VerifyMAC(key [32]byte) error {
	return checkMAC("verification", v.MAC, v.mac(key))
}

func (v *Verification) mac(key [32]byte) string {
	c := *v
	c.MAC = ""
	c.Verified = c.Verified.UTC()
	return macOf(key, &c)
}

func macOf(key [32]byte, x any) string {
	b, err := json.Marshal(x)
	if err != nil {
		panic(err) // plain structs of strings, numbers and times always marshal
	}
	h := hmac.New(sha256.New, key[:])
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func checkMAC(what, got, want string) error {
	if got == "" {
		return fmt.Errorf("%s has no MAC", what)
	}
	if !hmac.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("%s MAC does not match: it was changed after it was written, or the key is not this set's", what)
	}
	return nil
}

// WriteManifest and WriteVerification write atomically (temp, fsync,
// rename), mode 0600.
func WriteManifest(dir string, m *Manifest) error { return writeJSON(dir, ManifestName, m) }
func WriteVerification(dir string, v *Verification) error {
	return writeJSON(dir, VerificationName, v)
}

func writeJSON(dir, name string, x any) error {
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("syncing %s: %w", dir, err)
		}
	}
	return nil
}

// maxRecord bounds what a reader loads: a manifest of a huge cluster is
// megabytes, never this.
const maxRecord = 64 << 20

// DecodeManifest parses a manifest strictly; path names it in errors.
func DecodeManifest(path string, data []byte) (*Manifest, error) {
	var m Manifest
	if err := decodeStrict(path, data, &m); err != nil {
		return nil, err
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%s: format %q, want %q", path, m.Format, Format)
	}
	return &m, nil
}

// DecodeVerification parses a verification record strictly.
func DecodeVerification(path string, data []byte) (*Verification, error) {
	var v Verification
	if err := decodeStrict(path, data, &v); err != nil {
		return nil, err
	}
	if v.Format != Format {
		return nil, fmt.Errorf("%s: format %q, want %q", path, v.Format, Format)
	}
	return &v, nil
}

func decodeStrict(path string, data []byte, x any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(x); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%s: data after the JSON object", path)
	}
	return nil
}

func readRecord(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxRecord {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, maxRecord>>20)
	}
	return b, nil
}

// ReadManifest and ReadVerification parse strictly (unknown fields and a
// wrong format are errors naming the file); a missing verification is
// (nil, nil).
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestName)
	b, err := readRecord(p)
	if err != nil {
		return nil, err
	}
	return DecodeManifest(p, b)
}

func ReadVerification(dir string) (*Verification, error) {
	p := filepath.Join(dir, VerificationName)
	b, err := readRecord(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return DecodeVerification(p, b)
}

// AllFiles is every sealed file the manifest names, globals first.
func (m *Manifest) AllFiles() []File {
	var fs []File
	if m.Globals != nil {
		fs = append(fs, *m.Globals)
	}
	for _, d := range m.Databases {
		fs = append(fs, d.Files...)
	}
	return fs
}

// Set is one directory found under a backup root.
type Set struct {
	Dir          string
	Manifest     *Manifest     // nil when unreadable (Problem says why)
	Verification *Verification // nil when never verified
	Problem      string        // unreadable manifest, missing or resized file, ...
	// InUse: another process holds the set's lock (a backup still
	// writing it, a verify, a rekey); nothing may judge or remove it now.
	InUse bool
	// Unreadable: its manifest could not be read (permissions, I/O), so
	// nothing is known about it; retention never deletes such a set.
	Unreadable bool
	// Rehashed: Rehash read every file and each matched the manifest.
	Rehashed bool
}

// Verified reports whether the set counts as verified without a key: a
// verification record that says ok, names every file of the manifest,
// and whose sha256s match the manifest's and the files' sizes on disk
// match. (With a key, callers also check both MACs.)
func (s Set) Verified() bool {
	m, v := s.Manifest, s.Verification
	if m == nil || v == nil || !v.OK || s.Problem != "" || v.Verified.Before(m.Finished) || v.Manifest != m.Digest() {
		return false
	}
	for _, f := range m.AllFiles() {
		if sum, ok := v.Files[f.Name]; !ok || sum != f.SHA256 {
			return false
		}
		if fi, err := os.Lstat(filepath.Join(s.Dir, f.Name)); err != nil || !fi.Mode().IsRegular() || fi.Size() != f.CipherBytes {
			return false
		}
	}
	return true
}

// List reads every set directly under root, newest first (by manifest
// start time; sets without a readable manifest last, by name).
func List(root string) ([]Set, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var sets []Set
	for _, e := range ents {
		// Symlinks are skipped: a set is a directory we own, and pruning
		// must never follow a link out of the root.
		if strings.HasPrefix(e.Name(), ".") || e.Type()&os.ModeType != os.ModeDir {
			continue
		}
		dir := filepath.Join(root, e.Name())
		s := Set{Dir: dir, InUse: inUse(dir)}
		m, err := ReadManifest(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			ages, _ := filepath.Glob(filepath.Join(dir, "*.age"))
			switch {
			case s.InUse:
				s.Problem = "no manifest yet: a backup is writing it"
			case len(ages) > 0 || Unfinished(dir):
				s.Problem = "no manifest: an unfinished backup (it stopped before writing one)"
			default:
				continue // not a backup set
			}
		case err != nil:
			s.Problem = "unreadable manifest: " + err.Error()
			s.Unreadable = ioError(err)
		default:
			s.Manifest = m
			s.Problem = fileProblem(dir, m)
			v, err := ReadVerification(dir)
			if err != nil {
				if s.Problem == "" {
					s.Problem = "unreadable verification: " + err.Error()
					s.Unreadable = ioError(err)
				}
			} else {
				s.Verification = v
			}
		}
		sets = append(sets, s)
	}
	sort.SliceStable(sets, func(i, j int) bool {
		a, b := sets[i], sets[j]
		if (a.Manifest == nil) != (b.Manifest == nil) {
			return a.Manifest != nil
		}
		if a.Manifest == nil {
			return a.Dir < b.Dir
		}
		if !a.Manifest.Started.Equal(b.Manifest.Started) {
			return a.Manifest.Started.After(b.Manifest.Started)
		}
		return a.Dir > b.Dir
	})
	return sets, nil
}

func fileProblem(dir string, m *Manifest) string {
	for _, f := range m.AllFiles() {
		if strings.ContainsAny(f.Name, "/\\") || f.Name == "" || strings.HasPrefix(f.Name, ".") {
			return fmt.Sprintf("manifest names an unsafe file %q", f.Name)
		}
		fi, err := os.Lstat(filepath.Join(dir, f.Name))
		if err != nil {
			return fmt.Sprintf("%s is missing", f.Name)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Sprintf("%s is not a regular file", f.Name)
		}
		if fi.Size() != f.CipherBytes {
			return fmt.Sprintf("%s is %d bytes, the manifest says %d", f.Name, fi.Size(), f.CipherBytes)
		}
	}
	return ""
}

// Keep is a retention policy; zero fields are off.
type Keep struct {
	Days int // keep sets started within this many days of now
	Last int // keep the newest N verified sets
}

// Decision is retention's verdict on one set.
type Decision struct {
	Set    Set
	Keep   bool
	Reason string // "newest verified", "within 30 days", "unverified, older than 30 days", ...
}

// Select applies k to sets (as List returns them) at now. The newest
// verified set is always kept; unverified sets never count towards Last;
// an unverified set newer than the newest verified one is kept (it may be
// awaiting verification) unless older than Days.
func Select(sets []Set, k Keep, now time.Time) []Decision {
	out := make([]Decision, len(sets))
	if k.Days == 0 && k.Last == 0 {
		for i, s := range sets {
			out[i] = Decision{Set: s, Keep: true, Reason: "no retention rule given"}
		}
		return out
	}
	cutoff := now.AddDate(0, 0, -k.Days)
	within := func(s Set) bool {
		return k.Days > 0 && s.Manifest != nil && !s.Manifest.Started.Before(cutoff)
	}
	newest := -1
	for i, s := range sets {
		if s.Manifest != nil && s.Verified() && (newest < 0 || s.Manifest.Started.After(sets[newest].Manifest.Started)) {
			newest = i
		}
	}
	// Rank verified sets by start time, newest first, for Last.
	var ver []int
	for i, s := range sets {
		if s.Manifest != nil && s.Verified() {
			ver = append(ver, i)
		}
	}
	sort.SliceStable(ver, func(a, b int) bool {
		return sets[ver[a]].Manifest.Started.After(sets[ver[b]].Manifest.Started)
	})
	rank := map[int]int{}
	for r, i := range ver {
		rank[i] = r
	}
	days := fmt.Sprintf("%d days", k.Days)
	if k.Days == 1 {
		days = "1 day"
	}
	for i, s := range sets {
		d := Decision{Set: s}
		r, verified := rank[i]
		switch {
		case s.InUse:
			d.Keep, d.Reason = true, "in use by a running backup, verify or rekey"
		case s.Unreadable:
			d.Keep, d.Reason = true, "could not be read ("+s.Problem+"); retention deletes only what it could judge"
		case i == newest:
			d.Keep, d.Reason = true, "newest verified set, always kept"
		case within(s):
			d.Keep, d.Reason = true, "started within "+days
		case verified && k.Last > 0 && r < k.Last:
			d.Keep, d.Reason = true, fmt.Sprintf("one of the newest %d verified sets", k.Last)
		case !verified && k.Days == 0 && s.Manifest != nil && (newest < 0 || s.Manifest.Started.After(sets[newest].Manifest.Started)):
			d.Keep, d.Reason = true, unverifiedKept(s, newest >= 0)
		case verified:
			d.Reason = fmt.Sprintf("verified, but not among the newest %d verified sets", k.Last)
			if k.Days > 0 {
				d.Reason += " and older than " + days
			}
		case s.Problem != "":
			d.Reason = "has a problem (" + s.Problem + ")"
			if k.Days > 0 {
				d.Reason += " and is older than " + days
			}
		case k.Days > 0:
			d.Reason = "unverified, older than " + days
		default:
			d.Reason = "unverified, older than the newest verified set"
		}
		out[i] = d
	}
	return out
}

// unverifiedKept says why an unverified set is kept under --keep-last:
// one never verified may be awaiting it; one whose verification failed is
// kept only because nothing verified is newer (retention deletes nothing
// it cannot replace with a verified set).
func unverifiedKept(s Set, anyVerified bool) string {
	than := "no set is verified"
	if anyVerified {
		than = "newer than the newest verified set"
	}
	switch {
	case s.Verification == nil:
		return "never verified (" + than + "; it may be awaiting 'backup verify')"
	case !s.Verification.OK:
		return "its verification failed, kept because " + than
	default:
		return "changed since its verification, kept because " + than
	}
}
