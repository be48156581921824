package fail2ban

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/safefile"
)

// Source names fail2ban's journals among the plans.
const Source = "fail2ban"

// Target is one file a write puts in place.
type Target struct {
	Path string
	Data []byte
	// Exists: a file is there now; Ours: it carries Marker.
	Exists, Ours bool
}

// Targets are the two files under dir, with what is there now.
func Targets(dir string, c *Config) ([]Target, error) {
	fp, jp := Files()
	var ts []Target
	for _, t := range []Target{{Path: filepath.Join(dir, fp), Data: []byte(c.Filter.Text)}, {Path: filepath.Join(dir, jp), Data: []byte(c.Jail)}} {
		if _, err := safefile.CheckReplace(t.Path); err != nil {
			return nil, err
		}
		old, err := os.ReadFile(t.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			t.Exists, t.Ours = true, bytes.HasPrefix(old, []byte(Marker))
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// Write journals what is there, then writes each file atomically with
// mode 0644 (fail2ban runs as root and reads them; they hold no secret).
// A file pgaegis did not write is refused unless force. It returns the
// journal's id for Rollback.
func Write(journalRoot string, ts []Target, force bool) (string, error) {
	for _, t := range ts {
		if t.Exists && !t.Ours && !force {
			return "", fmt.Errorf("%s exists and was not written by pgaegis: refusing to replace it (--force replaces it; the journal keeps it for a rollback)", t.Path)
		}
	}
	p := &plan.Plan{FormatVersion: plan.FormatVersion, Created: time.Now().UTC(), Source: Source, Target: "fail2ban " + filepath.Dir(filepath.Dir(ts[0].Path))}
	for i, t := range ts {
		p.Steps = append(p.Steps, plan.Step{ID: fmt.Sprint(i + 1), Kind: plan.KindCommand, Summary: "write " + t.Path})
	}
	j, err := plan.CreateJournal(journalRoot, p)
	if err != nil {
		return "", err
	}
	m := &plan.Manifest{}
	for _, t := range ts {
		if _, err := j.SaveFile(m, t.Path); err != nil {
			return j.ID, fail(j, err)
		}
	}
	if err := j.WriteManifest(m); err != nil {
		return j.ID, fail(j, err)
	}
	st := &plan.JournalState{State: plan.StateApplied, Created: p.Created, Target: p.Target, Steps: len(ts)}
	for i, t := range ts {
		if err := os.MkdirAll(filepath.Dir(t.Path), 0o755); err != nil {
			return j.ID, fail(j, err)
		}
		if err := safefile.WriteFile(t.Path, t.Data, 0o644); err != nil {
			return j.ID, fail(j, err)
		}
		m.Files[i].AfterSHA256 = plan.Hash(t.Data)
		st.Applied = append(st.Applied, p.Steps[i].ID)
		if err := j.WriteManifest(m); err != nil {
			return j.ID, fail(j, err)
		}
	}
	return j.ID, j.WriteState(st)
}

// fail records the problem; what was written so far stays (and rolls back).
func fail(j *plan.Journal, err error) error {
	j.WriteState(&plan.JournalState{State: plan.StateApplied, Problem: err.Error(), Created: time.Now().UTC()})
	return fmt.Errorf("%v (journal %s: 'pgaegis fail2ban rollback %s' puts back what was written)", err, j.ID, j.ID)
}

// ErrNothing is wrapped by Rollback's error for a journal already rolled
// back: nothing to do, not a failure (like firewall rollback).
var ErrNothing = errors.New("nothing to roll back")

// Rollback puts back what journal id replaced: the old bytes, or no file
// where there was none. A file edited since is left alone (an error).
func Rollback(journalRoot, id string) ([]string, error) {
	j, st, err := plan.OpenApplied(journalRoot, id)
	if err != nil {
		if st != nil && st.State == plan.StateRolledBack {
			return nil, fmt.Errorf("fail2ban write %s: %w (rolled back %s)", id, ErrNothing, st.RolledBack.Format(time.RFC3339))
		}
		return nil, err
	}
	p, err := j.Plan()
	if err != nil {
		return nil, err
	}
	if p.Source != Source {
		return nil, fmt.Errorf("plan %s is not a fail2ban write (it is %q): use its own rollback", id, p.Source)
	}
	m, err := j.Manifest()
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if f.AfterSHA256 == "" {
			continue
		}
		now, err := os.ReadFile(f.Path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err == nil && plan.Hash(now) != f.AfterSHA256 {
			if !f.Exists {
				return nil, fmt.Errorf("%s was changed since pgaegis created it: not removed (there was no file before; remove it yourself if the edit is not wanted)", f.Path)
			}
			return nil, fmt.Errorf("%s was changed since pgaegis wrote it: not rolled back (journal %s holds the old copy)", f.Path, j.Dir)
		}
	}
	var done []string
	for _, f := range m.Files {
		if f.AfterSHA256 == "" {
			continue
		}
		if !f.Exists {
			if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return done, err
			}
			done = append(done, "removed "+f.Path)
			continue
		}
		data, err := j.FileBytes(&f)
		if err != nil {
			return done, err
		}
		if err := safefile.WriteFile(f.Path, data, f.Mode); err != nil {
			return done, err
		}
		done = append(done, "restored "+f.Path)
	}
	st.State, st.RolledBack = plan.StateRolledBack, time.Now().UTC()
	return done, j.WriteState(st)
}
