// Package backupset is a backup set on disk: a directory DIR/NAME-STAMP/
// holding sealed files (sealedfile), manifest.json describing them, and,
// once 'pgaegis backup verify' has checked it, verification.json. It
// reads, writes and authenticates those two records and decides which
// sets retention keeps. It never talks to a server.
package backupset

import (
	"errors"
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
func DumpFileName(database string, part int) string { return "" }

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
	Files       map[string]string `json:"files"` // file name -> sha256 checked
	RestoreTest *RestoreTest      `json:"restore_test,omitempty"`
	MAC         string            `json:"mac"`
}

// RestoreTest is the throwaway-server restore's outcome.
type RestoreTest struct {
	ServerVersion string   `json:"server_version"`
	PgRestore     Tool     `json:"pg_restore"`
	Seconds       float64  `json:"seconds"`
	Tables        int      `json:"tables"`
	Mismatches    []string `json:"mismatches,omitempty"` // "schema.table: dump 10 rows, restored 9"
}

// Sign sets m.MAC; VerifyMAC checks it (constant time).
func (m *Manifest) Sign(key [32]byte)            {}
func (m *Manifest) VerifyMAC(key [32]byte) error { return errors.New("backupset: not implemented") }
func (v *Verification) Sign(key [32]byte)        {}
func (v *Verification) VerifyMAC(key [32]byte) error {
	return errors.New("backupset: not implemented")
}

// WriteManifest and WriteVerification write atomically (temp, fsync,
// rename), mode 0600.
func WriteManifest(dir string, m *Manifest) error { return errors.New("backupset: not implemented") }
func WriteVerification(dir string, v *Verification) error {
	return errors.New("backupset: not implemented")
}

// ReadManifest and ReadVerification parse strictly (unknown fields and a
// wrong format are errors naming the file); a missing verification is
// (nil, nil).
func ReadManifest(dir string) (*Manifest, error) {
	return nil, errors.New("backupset: not implemented")
}
func ReadVerification(dir string) (*Verification, error) {
	return nil, errors.New("backupset: not implemented")
}

// Set is one directory found under a backup root.
type Set struct {
	Dir          string
	Manifest     *Manifest     // nil when unreadable (Problem says why)
	Verification *Verification // nil when never verified
	Problem      string        // unreadable manifest, missing or resized file, ...
}

// Verified reports whether the set counts as verified without a key: a
// verification record that says ok, names every file of the manifest,
// and whose sha256s match the manifest's and the files' sizes on disk
// match. (With a key, callers also check both MACs.)
func (s Set) Verified() bool { return false }

// List reads every set directly under root, newest first (by manifest
// start time; sets without a readable manifest last, by name).
func List(root string) ([]Set, error) { return nil, errors.New("backupset: not implemented") }

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
func Select(sets []Set, k Keep, now time.Time) []Decision { return nil }
