package plan

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"
	"time"

	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Journal states (state.json).
const (
	StatePreparing  = "preparing"   // journal written, nothing proven yet
	StateApplied    = "applied"     // every step ran and was verified
	StateRolledBack = "rolled-back" // restored by a rollback
	StateFailed     = "failed"      // a step or the verification failed; restored
	StateRefused    = "refused"     // refused before anything changed
)

// A journal is <root>/<plan-id>/ (0700) holding plan.json, manifest.json
// (what was saved and how to put it back), state.json and files/ (every
// file that changes, byte for byte). Everything in it is 0600: it holds
// pg_hba.conf and postgresql.auto.conf, which may carry secrets.
const (
	journalPlan     = "plan.json"
	journalManifest = "manifest.json"
	journalState    = "state.json"
	journalFiles    = "files"
	maxSavedFile    = 64 << 20
)

// JournalState is state.json.
type JournalState struct {
	State      string    `json:"state"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	Target     string    `json:"target"`
	Steps      int       `json:"steps"`
	Applied    []string  `json:"applied_steps,omitempty"`
	Reloaded   bool      `json:"reloaded,omitempty"`
	Restarted  bool      `json:"restarted,omitempty"`
	Problem    string    `json:"problem,omitempty"`
	RolledBack time.Time `json:"rolled_back,omitzero"`
}

// SavedFile is one file as it was before the plan, and its hash after.
type SavedFile struct {
	Path   string      `json:"path"` // absolute, on the server host
	Name   string      `json:"name"` // the copy under files/
	Exists bool        `json:"exists"`
	Mode   fs.FileMode `json:"mode"`
	UID    int         `json:"uid"`
	GID    int         `json:"gid"`
	SHA256 string      `json:"sha256"`
	// AfterSHA256 is the file's hash once the plan ran: a rollback
	// refuses to overwrite a file edited since.
	AfterSHA256 string `json:"after_sha256,omitempty"`
}

// SavedSetting is a setting's value before the plan.
type SavedSetting struct {
	Name       string `json:"name"`
	Setting    string `json:"setting"` // pg_settings.setting
	Source     string `json:"source"`  // pg_settings.source
	SourceFile string `json:"sourcefile,omitempty"`
	SourceLine int    `json:"sourceline,omitempty"`
	// InAutoConf says postgresql.auto.conf held a value (AutoConf) for
	// it; a rollback without the file's bytes sets it back or resets it.
	InAutoConf bool   `json:"in_auto_conf"`
	AutoConf   string `json:"auto_conf,omitempty"`
}

// SavedSQL is the undo of one SQL step.
type SavedSQL struct {
	Step     string   `json:"step"`
	Database string   `json:"database"`
	Undo     []string `json:"undo"`
	Done     bool     `json:"done"` // committed: undo on rollback
}

// SavedMode is a path's mode before a chmod step.
type SavedMode struct {
	Path string      `json:"path"`
	Mode fs.FileMode `json:"mode"`
	UID  int         `json:"uid"`
	GID  int         `json:"gid"`
	Done bool        `json:"done"`
}

// Manifest is manifest.json: everything needed to put the server back.
type Manifest struct {
	DataDirectory string         `json:"data_directory,omitempty"`
	HBAFile       string         `json:"hba_file,omitempty"`
	AutoConf      string         `json:"auto_conf,omitempty"`
	Files         []SavedFile    `json:"files,omitempty"`
	Settings      []SavedSetting `json:"settings,omitempty"`
	SQL           []SavedSQL     `json:"sql,omitempty"`
	Modes         []SavedMode    `json:"modes,omitempty"`
}

// File returns the saved file for path, or nil.
func (m *Manifest) File(path string) *SavedFile {
	for i := range m.Files {
		if m.Files[i].Path == path {
			return &m.Files[i]
		}
	}
	return nil
}

// Journal is one plan's journal directory.
type Journal struct {
	ID  string
	Dir string
}

var idPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$`)

// ValidID reports whether id can name a journal directory (no path
// separators, no "..").
func ValidID(id string) bool { return idPattern.MatchString(id) && id != "." && id != ".." }

// NewJournalID is YYYYMMDD-HHMMSS-xxxx in UTC.
func NewJournalID(t time.Time) string {
	b := make([]byte, 2)
	rand.Read(b)
	return t.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// CreateJournal makes <root>/<p.ID>/ and writes plan.json and a
// preparing state; p.ID is set when empty. An existing journal for the
// same id is an error: a plan is applied once.
func CreateJournal(root string, p *Plan) (*Journal, error) {
	if p.ID == "" {
		p.ID = NewJournalID(time.Now())
	}
	if !ValidID(p.ID) {
		return nil, fmt.Errorf("plan id %q cannot name a journal directory", p.ID)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := trustedDir(root); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, p.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("journal %s already exists: plan %s was applied before (see fix history)", dir, p.ID)
		}
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // whatever the umask
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, journalFiles), 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{ID: p.ID, Dir: dir}
	if err := j.writeJSON(journalPlan, p); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if err := j.WriteState(&JournalState{State: StatePreparing, Created: now, Target: p.Target, Steps: len(p.Steps)}); err != nil {
		return nil, err
	}
	if err := j.WriteManifest(&Manifest{}); err != nil {
		return nil, err
	}
	return j, nil
}

// OpenJournal opens the journal of plan id under root.
func OpenJournal(root, id string) (*Journal, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%q is not a plan id (see fix history)", id)
	}
	dir := filepath.Join(root, id)
	st, err := os.Lstat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no journal for plan %s in %s (see fix history)", id, root)
		}
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a journal directory", dir)
	}
	for _, d := range []string{root, dir, filepath.Join(dir, journalFiles)} {
		if err := trustedDir(d); err != nil {
			return nil, err
		}
	}
	return &Journal{ID: id, Dir: dir}, nil
}

// ListJournals opens every journal under root, in no particular order.
// A missing root is an empty list.
func ListJournals(root string) ([]*Journal, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := trustedDir(root); err != nil {
		return nil, err
	}
	var out []*Journal
	for _, e := range ents {
		if e.IsDir() && ValidID(e.Name()) {
			if _, err := os.Stat(filepath.Join(root, e.Name(), journalState)); err == nil {
				out = append(out, &Journal{ID: e.Name(), Dir: filepath.Join(root, e.Name())})
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, nil
}

func (j *Journal) writeJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := safefile.WriteFile(filepath.Join(j.Dir, name), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func (j *Journal) readJSON(name string, v any) error {
	p := filepath.Join(j.Dir, name)
	if err := trustedFile(p); err != nil {
		return err
	}
	b, err := safefile.ReadFile(p, maxSavedFile)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("journal %s: %v", p, err)
	}
	return nil
}

// WriteExtra keeps one more file in the journal (0600), such as the
// state a policy apply started from; name is a plain file name.
func (j *Journal) WriteExtra(name string, data []byte) error {
	if name != filepath.Base(name) || name == journalPlan || name == journalManifest || name == journalState || name == journalFiles {
		return fmt.Errorf("journal: %q is not a name for an extra file", name)
	}
	if err := safefile.WriteFile(filepath.Join(j.Dir, name), data, 0o600); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// ReadExtra reads a file WriteExtra kept.
func (j *Journal) ReadExtra(name string) ([]byte, error) {
	if name != filepath.Base(name) {
		return nil, fmt.Errorf("journal: %q is not a name for an extra file", name)
	}
	p := filepath.Join(j.Dir, name)
	if err := trustedFile(p); err != nil {
		return nil, err
	}
	b, err := safefile.ReadFile(p, maxSavedFile)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return b, nil
}

// Plan reads plan.json.
func (j *Journal) Plan() (*Plan, error) {
	var p Plan
	return &p, j.readJSON(journalPlan, &p)
}

// State reads state.json.
func (j *Journal) State() (*JournalState, error) {
	var s JournalState
	return &s, j.readJSON(journalState, &s)
}

// WriteState replaces state.json, stamping Updated.
func (j *Journal) WriteState(s *JournalState) error {
	s.Updated = time.Now().UTC()
	return j.writeJSON(journalState, s)
}

// Manifest reads manifest.json.
func (j *Journal) Manifest() (*Manifest, error) {
	var m Manifest
	return &m, j.readJSON(journalManifest, &m)
}

// WriteManifest replaces manifest.json.
func (j *Journal) WriteManifest(m *Manifest) error { return j.writeJSON(journalManifest, m) }

// SaveFile copies path (byte for byte, with its mode and owner) into the
// journal and records it in m, once per path; a missing file is recorded
// as missing. The caller writes the manifest.
func (j *Journal) SaveFile(m *Manifest, path string) (*SavedFile, error) {
	if f := m.File(path); f != nil {
		return f, nil
	}
	sf := SavedFile{Path: path, Name: fmt.Sprintf("%02d-%s", len(m.Files)+1, filepath.Base(path)), UID: -1, GID: -1}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("journal: %w", err)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file (%s); pgaegis changes regular files only", path, safefile.Kind(st.Mode()))
	default:
		data, err := safefile.ReadFile(path, maxSavedFile)
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		sf.Exists, sf.Mode = true, st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			sf.UID, sf.GID = int(sys.Uid), int(sys.Gid)
		}
		sf.SHA256 = Hash(data)
		if err := safefile.WriteFile(filepath.Join(j.Dir, journalFiles, sf.Name), data, 0o600); err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
	}
	m.Files = append(m.Files, sf)
	return &m.Files[len(m.Files)-1], nil
}

// FileBytes reads a saved file's copy back, checking its hash.
func (j *Journal) FileBytes(f *SavedFile) ([]byte, error) {
	p := filepath.Join(j.Dir, journalFiles, f.Name)
	if filepath.Base(f.Name) != f.Name {
		return nil, fmt.Errorf("journal: saved file name %q is not a plain name", f.Name)
	}
	if err := trustedFile(p); err != nil {
		return nil, err
	}
	data, err := safefile.ReadFile(p, maxSavedFile)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if Hash(data) != f.SHA256 {
		return nil, fmt.Errorf("journal copy %s of %s does not match its recorded hash", p, f.Path)
	}
	return data, nil
}

// Hash is the hex SHA-256 of data.
func Hash(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// OpenApplied opens plan id's journal for a rollback: only a plan whose
// state is applied has anything in force to put back.
func OpenApplied(root, id string) (*Journal, *JournalState, error) {
	j, err := OpenJournal(root, id)
	if err != nil {
		return nil, nil, err
	}
	st, err := j.State()
	if err != nil {
		return j, nil, err
	}
	switch st.State {
	case StateApplied:
		return j, st, nil
	case StateRolledBack:
		return j, st, fmt.Errorf("plan %s was already rolled back (%s)", id, st.RolledBack.Format(time.RFC3339))
	default:
		return j, st, fmt.Errorf("plan %s is %s: nothing of it is in force to roll back", id, st.State)
	}
}
