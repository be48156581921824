package rotate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/safefile"
)

// maxDestination bounds a destination file read back for its hash.
const maxDestination = 16 << 20

func rollback(ctx context.Context, adminCfg *pgx.ConnConfig, root, id string) (*RollbackResult, error) {
	res := &RollbackResult{PlanID: id}
	j, st, err := plan.OpenApplied(root, id)
	if err != nil {
		return res, err
	}
	p, err := j.Plan()
	if err != nil {
		return res, err
	}
	if p.Source != "rotate" {
		return res, fmt.Errorf("plan %s is not a rotation (its source is %q): roll it back with the command that made it", id, p.Source)
	}
	var s savedRotation
	missing, err := readExtra(j, j.Dir, verifiersFile, &s)
	if err != nil {
		return res, err
	}
	if missing {
		return res, fmt.Errorf("journal %s has no %s: nothing to restore the passwords from", j.Dir, verifiersFile)
	}
	for _, r := range s.Roles {
		if r.NewSHA256 != "" && !r.Readable {
			return res, fmt.Errorf("rotation %s did not journal the previous password of %s (pg_authid was not readable): it cannot be rolled back", id, quote.Ident(r.Role))
		}
	}
	var ds []savedDelivery
	if _, err := readExtra(j, j.Dir, deliveriesFile, &ds); err != nil {
		return res, err
	}
	// A rollback sends old verifiers: the same transport rule as a
	// rotation, with no way around it here.
	a, err := connectAdmin(ctx, adminCfg, false)
	if err != nil {
		return res, err
	}
	defer a.close()
	for _, r := range s.Roles {
		if r.NewSHA256 == "" {
			continue
		}
		var cur *string
		qctx, cancel := a.bound(ctx)
		err := a.conn.QueryRow(qctx, `SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1`, r.Role).Scan(&cur)
		cancel()
		if errors.Is(err, pgx.ErrNoRows) {
			return res, fmt.Errorf("role %s no longer exists: nothing of rotation %s to roll back", quote.Ident(r.Role), id)
		}
		if err != nil {
			return res, fmt.Errorf("reading the password of %s: %s (a rollback needs a superuser)", quote.Ident(r.Role), errText(err))
		}
		if cur == nil || plan.Hash([]byte(*cur)) != r.NewSHA256 {
			return res, fmt.Errorf("the password of %s was changed after rotation %s (a later rotation or an ALTER ROLE): refusing to roll it back over the newer one; roll back the later rotation first", quote.Ident(r.Role), id)
		}
	}
	// The destinations first: under alternate the application then moves
	// back to the previous login role, whose password still works, before
	// the rolled-back role's password changes under it.
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		if d.Path == "" {
			res.Skipped = append(res.Skipped, d.Sink+": not a file, cannot be put back (it received the rotated password)")
			continue
		}
		if why := restoreFile(d); why != "" {
			res.Skipped = append(res.Skipped, d.Sink+": "+why)
			continue
		}
		if !d.Existed {
			res.Removed = append(res.Removed, d.Path)
			continue
		}
		res.Files = append(res.Files, d.Path)
	}
	var warned []string
	if err := a.quietTx(ctx, restoreStatements(s), func(w string) { warned = append(warned, w) }); err != nil {
		return res, fmt.Errorf("restoring the passwords of rotation %s: %s", id, err)
	}
	for _, r := range s.Roles {
		res.Roles = append(res.Roles, r.Role)
	}
	for _, w := range warned {
		res.Skipped = append(res.Skipped, "warning: "+w)
	}
	st.State, st.RolledBack = plan.StateRolledBack, time.Now().UTC()
	return res, j.WriteState(st)
}

// restoreFile puts a destination file back as it was, only when it
// still holds what the rotation wrote; otherwise it says why not.
func restoreFile(d savedDelivery) string {
	data, err := safefile.ReadFile(d.Path, maxDestination)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "removed since the rotation: left as it is"
	case err != nil:
		return "not restored: " + err.Error()
	}
	h := sha256.Sum256(data)
	clear(data)
	if hex.EncodeToString(h[:]) != d.Written {
		return "changed since the rotation: left as it is"
	}
	if !d.Existed {
		if err := os.Remove(d.Path); err != nil {
			return "not removed: " + err.Error()
		}
		return ""
	}
	mode := fs.FileMode(d.PreviousMode).Perm()
	if mode == 0 {
		mode = 0o600
	}
	if err := safefile.WriteFile(d.Path, d.Previous, mode); err != nil {
		return "not restored: " + err.Error()
	}
	return ""
}
