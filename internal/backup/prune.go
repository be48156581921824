package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pgaegis/pgaegis/internal/backupset"
)

// PruneOptions for Prune.
type PruneOptions struct {
	Keep     backupset.Keep
	DryRun   bool
	Now      func() time.Time
	Progress Progress
}

// Prune lists root, applies backupset.Select, and removes the sets not
// kept (unless DryRun). It returns every decision.
func Prune(root string, o PruneOptions) ([]backupset.Decision, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	root = filepath.Clean(root)
	sets, err := backupset.List(root)
	if err != nil {
		return nil, fmt.Errorf("backup prune: %w", err)
	}
	// Retention leans on the verified sets it keeps: their files are read
	// again first, so one changed since its verification does not stand in
	// for the older good ones.
	backupset.Rehash(sets, 0)
	decisions := backupset.Select(sets, o.Keep, now())
	var errs []error
	for _, d := range decisions {
		if d.Keep {
			say(o.Progress, "keep %s: %s", d.Set.Dir, d.Reason)
			continue
		}
		if o.DryRun {
			say(o.Progress, "would remove %s: %s", d.Set.Dir, d.Reason)
			continue
		}
		if err := removeSet(root, d.Set.Dir); err != nil {
			errs = append(errs, err)
			continue
		}
		say(o.Progress, "removed %s: %s", d.Set.Dir, d.Reason)
	}
	return decisions, errors.Join(errs...)
}

// removeSet removes dir only when it is a real directory directly under
// root holding a set's files: never a symlink (which could point out of
// root), never anything deeper or elsewhere.
func removeSet(root, dir string) error {
	dir = filepath.Clean(dir)
	if filepath.Dir(dir) != root {
		return fmt.Errorf("backup prune: %s is not directly under %s: not removed", dir, root)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("backup prune: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("backup prune: %s is not a directory (a link?): not removed", dir)
	}
	_, merr := os.Lstat(filepath.Join(dir, backupset.ManifestName))
	ages, _ := filepath.Glob(filepath.Join(dir, "*.age"))
	if merr != nil && len(ages) == 0 && !backupset.Unfinished(dir) {
		return fmt.Errorf("backup prune: %s holds neither a manifest nor sealed files: not removed", dir)
	}
	// The lock is held while the files go: a backup, verify or rekey that
	// started since the listing makes this fail instead of losing its set.
	lock, err := backupset.Lock(dir)
	if err != nil {
		return fmt.Errorf("backup prune: %w: not removed", err)
	}
	defer lock.Close()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("backup prune: %w", err)
	}
	return nil
}

func say(p Progress, format string, args ...any) {
	if p != nil {
		p(format, args...)
	}
}
